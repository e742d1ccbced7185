"""The screening funnel: candidates -> a fast composition model with intervals -> ranking -> what to compute next.

:func:`screen` takes candidates (a :class:`~battlab.design.CandidateSet`, its table or its file) and a tuned
composition model (:class:`battlab.steps.TunedModel` or its folder, e.g. of the average voltage of insertion
electrodes), predicts every candidate with its conformal interval (:func:`battlab.steps.predict`) and ranks them:

- by the prediction (``rank_by="prediction"``), or
- by an energy proxy (``rank_by="energy"``, a model of voltage): predicted voltage x redox-limited theoretical
  gravimetric capacity of the working ion (:func:`battlab.design.capacity.redox_capacity`: the ions of the discharged
  formula that its redox-active cations can compensate, from pymatgen's oxidation-state guesses), in Wh/kg of active
  material, an upper bound, not a cell's energy. A candidate without a redox-active cation (a solid electrolyte such
  as Na3OF) has capacity 0, energy 0 and ranks last, with the reason in ``capacity_note``; one whose oxidation states
  cannot be guessed has no energy proxy and is set aside with the reason.

Every ranked table has ``capacity_mAh_g`` (redox-limited, the reachable one), ``capacity_all_ions_mAh_g`` (every
working ion extracted, as :class:`battlab.featurize.BatteryDescriptors`), ``redox`` (the couples, e.g. ``Fe2+->Fe3+``),
``capacity_note`` and ``energy_Wh_kg`` (prediction x ``capacity_mAh_g``).

With ``done`` (the results known so far: e.g. the Materials Project electrodes of the working ion, a table with a
formula column and the target), the ``plan_top`` best-ranked candidates go to
:func:`battlab.plan.recommend.next_experiments`: a campaign fitted on the done rows suggests the ``batch_size``
candidates to compute (DFT, a universal potential) or synthesize next, by expected improvement, with the reason.

With ``stability`` (a second tuned composition model of a stability proxy, e.g. the formation enthalpy per atom of
the apps' default model), its prediction and interval join the ranked table as ``stability``, ``stability_low`` and
``stability_high`` (``stability_error`` says why a row has none); the ranking does not use them.

Nothing is lost: a candidate the model cannot predict (the reason is in ``error``) is kept, unranked, and listed in
:attr:`Screening.set_aside`; candidates already in ``done`` (same formula) are set aside by the planning step.
Relaxing the most promising candidates with a universal potential is a separate, optional step (it needs PyTorch);
its results join ``done`` like any other computed values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.errors import BattlabError

__all__ = ["RANK_BY", "Screening", "not_used", "plot_screening", "screen"]

#: How :func:`screen` ranks the candidates.
RANK_BY = ("prediction", "energy")


@dataclass
class Screening:
    """Ranked candidates with predictions and intervals, the planning step's suggestions, what was set aside."""

    ranked: pd.DataFrame
    suggestions: pd.DataFrame | None = None
    set_aside: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["candidate_id", "formula",
                                                                                    "reason"]))
    settings: dict[str, Any] = field(default_factory=dict)
    recommendation: Any = field(default=None, repr=False)

    def summary(self) -> str:
        n_ok = int(self.ranked["rank"].notna().sum())
        s = f"{n_ok} of {len(self.ranked)} candidates ranked by {self.settings.get('rank_by', 'prediction')}"
        if self.suggestions is not None:
            s += f"; {len(self.suggestions)} suggested to compute next"
        return s + (f"; {len(self.set_aside)} set aside" if len(self.set_aside) else "")

    def save(self, out: str | Path) -> dict[str, Path]:
        """``ranked.csv``, ``next.csv`` (with a plan), ``set_aside.csv`` and ``screening.json``."""
        from battlab.steps import artefact_header

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"ranked": out / "ranked.csv", "set_aside": out / "set_aside.csv", "record": out / "screening.json"}
        self.ranked.to_csv(paths["ranked"], index=False)
        self.set_aside.to_csv(paths["set_aside"], index=False)
        if self.suggestions is not None:
            paths["next"] = out / "next.csv"
            self.suggestions.to_csv(paths["next"], index=False)
        paths["record"].write_text(json.dumps({**artefact_header("Screening"), "settings": self.settings},
                                              indent=1, default=str))
        return paths

    @classmethod
    def load(cls, path: str | Path) -> Screening:
        from battlab.steps import check_artefact

        path = Path(path)
        if not (path / "screening.json").is_file():
            raise BattlabError(f"{path}: no screening.json (not a folder written by Screening.save)")
        meta = json.loads((path / "screening.json").read_text())
        check_artefact(meta, "Screening", path)
        nxt = pd.read_csv(path / "next.csv") if (path / "next.csv").is_file() else None
        return cls(pd.read_csv(path / "ranked.csv"), nxt,
                   pd.read_csv(path / "set_aside.csv", dtype=str, keep_default_na=False), meta.get("settings", {}))


#: Columns of :func:`not_used`.
NOT_USED_COLUMNS = ["stage", "parent", "candidate", "reason"]


def not_used(candidates: Any, screening: Screening | None = None) -> pd.DataFrame:
    """Everything the funnel could not use, in one table with the reason: ``stage`` (``parents``: a parent that
    gave no candidate; ``candidates``: a candidate dropped while generating, e.g. a duplicate; ``screening``: a
    candidate the model could not predict or the planning step set aside), ``parent``, ``candidate``, ``reason``.

    ``candidates`` is the :class:`~battlab.design.CandidateSet` that was screened; ``screening`` its
    :class:`Screening` (``None`` before, or when nothing was generated).

    >>> from battlab.design import generate
    >>> not_used(generate(["LiXxO2"], ion="Li"))[["stage", "parent"]].values.tolist()
    [['parents', 'LiXxO2']]
    """
    aside = candidates.set_aside
    table = pd.DataFrame({"stage": np.where(aside["candidate"].fillna("").astype(str) == "", "parents", "candidates"),
                          "parent": aside["parent"].to_numpy(), "candidate": aside["candidate"].to_numpy(),
                          "reason": aside["reason"].to_numpy()})
    if screening is not None and len(screening.set_aside):
        screened = screening.set_aside
        parent_of = candidates.table.set_index("candidate_id")["parent"]
        table = pd.concat([table, pd.DataFrame({
            "stage": "screening", "parent": screened["candidate_id"].map(parent_of).fillna("").to_numpy(),
            "candidate": screened["formula"].to_numpy(), "reason": screened["reason"].to_numpy()})],
            ignore_index=True)
    return table[NOT_USED_COLUMNS]


def _candidate_table(candidates: Any) -> pd.DataFrame:
    from battlab.design.candidates import CandidateSet

    if isinstance(candidates, CandidateSet):
        return candidates.table.copy()
    if isinstance(candidates, pd.DataFrame):
        table = candidates.copy()
    else:
        path = Path(candidates)
        if path.is_dir():
            return CandidateSet.load(path).table.copy()
        from battlab.tables import load_table

        table = load_table(path)
    if "formula" not in table.columns:
        raise BattlabError("the candidate table has no 'formula' column (write it with battlab design candidates)")
    if "candidate_id" not in table.columns:
        table.insert(0, "candidate_id", [f"c{i + 1:04d}" for i in range(len(table))])
    return table


def screen(candidates: Any, model: Any, *, rank_by: str = "prediction", maximize: bool = True,
           working_ion: str | None = None, done: Any = None, target: str | None = None, plan_top: int = 50,
           batch_size: int = 5, acquisition: str = "ei", seed: int = 0, stability: Any = None) -> Screening:
    """Predict, rank and (with ``done``) plan: see the module's description. Same ``seed``, same suggestions."""
    from battlab import steps
    from battlab.design.capacity import redox_capacity

    if rank_by not in RANK_BY:
        raise BattlabError(f"unknown rank_by {rank_by!r}; choose one of {', '.join(RANK_BY)}")
    table = _candidate_table(candidates)
    if not len(table):
        raise BattlabError("no candidates to screen")
    tuned = model if isinstance(model, steps.TunedModel) else steps.TunedModel.load(model)
    pred = steps.predict(tuned, table)
    out = table.reset_index(drop=True).copy()
    for col in ("prediction", "low", "high", "error"):
        out[col] = pred[col].to_numpy()
    out["error"] = out["error"].fillna("").astype(str)
    ok = (out["error"] == "").to_numpy() & np.isfinite(out["prediction"].to_numpy(dtype=float))
    ion = working_ion or (str(out["working_ion"].iloc[0]) if "working_ion" in out else "Li")
    cap = redox_capacity(out["formula"].tolist(), working_ion=ion)
    out["capacity_mAh_g"] = cap["capacity_mAh_g"].to_numpy()
    out["capacity_all_ions_mAh_g"] = cap["capacity_all_ions_mAh_g"].to_numpy()
    out["redox"] = cap["redox"].to_numpy()
    out["capacity_note"] = cap["note"].to_numpy()
    out["energy_Wh_kg"] = out["prediction"] * out["capacity_mAh_g"]
    if rank_by == "energy":  # no redox-limited capacity (NaN): no energy proxy, set aside with the reason
        no_cap = ok & ~np.isfinite(out["capacity_mAh_g"].to_numpy(dtype=float))
        out.loc[no_cap, "error"] = "no energy proxy: " + out.loc[no_cap, "capacity_note"]
        ok &= ~no_cap
    stability_target = None
    if stability is not None:
        stab = stability if isinstance(stability, steps.TunedModel) else steps.TunedModel.load(stability)
        sp = steps.predict(stab, table)
        for col in ("prediction", "low", "high", "error"):
            out[f"stability_{col}" if col != "prediction" else "stability"] = sp[col].to_numpy()
        out["stability_error"] = out["stability_error"].fillna("").astype(str)
        stability_target = stab.model_target
    key = "prediction" if rank_by == "prediction" else "energy_Wh_kg"
    score = out[key].where(ok)
    order = score.rank(ascending=not maximize, method="first")
    out.insert(1, "rank", order)
    out = out.sort_values("rank", na_position="last", kind="stable").reset_index(drop=True)
    aside = out.loc[out["rank"].isna(), ["candidate_id", "formula", "error"]].rename(columns={"error": "reason"})
    settings = {"rank_by": rank_by, "maximize": maximize, "working_ion": ion, "model": tuned.best_name,
                "model_target": tuned.model_target, "plan_top": plan_top, "batch_size": batch_size,
                "acquisition": acquisition, "seed": seed}
    if stability_target is not None:
        settings["stability_target"] = stability_target
    if done is None:
        return Screening(out, None, aside.reset_index(drop=True), settings)
    if target is None:
        raise BattlabError("give target= (the result column of the done table) to plan what to compute next")
    from battlab.plan.recommend import next_experiments

    shortlist = out.loc[out["rank"].notna()].head(plan_top)
    pool = shortlist[["candidate_id", "formula"]].reset_index(drop=True)
    rec = next_experiments(done, pool, target, formula_column="formula", maximize=maximize, acquisition=acquisition,
                           batch_size=min(batch_size, len(pool)), seed=seed)
    cols = ["rank", "candidate_id", "formula", "mean", "std", "acquisition", "reason"]
    nxt = rec.suggestions.rename(columns={"rank": "plan_rank"})
    extra = out.set_index("candidate_id")[["prediction", "low", "high", "parent", "substitution"]
                                           if "parent" in out else ["prediction", "low", "high"]]
    nxt = nxt.join(extra, on="candidate_id") if "candidate_id" in nxt else nxt
    nxt = nxt[[c for c in ["plan_rank", *cols[1:], *extra.columns] if c in nxt.columns]]
    planned_aside = rec.set_aside
    if len(planned_aside):
        rows = planned_aside[planned_aside["table"].astype(str).str.contains("candidate")]
        extra_aside = pd.DataFrame({"candidate_id": [pool["candidate_id"].iloc[int(r) - 1]
                                                     if str(r).isdigit() and 0 < int(r) <= len(pool) else ""
                                                     for r in rows["row"]],
                                    "formula": [pool["formula"].iloc[int(r) - 1]
                                                if str(r).isdigit() and 0 < int(r) <= len(pool) else ""
                                                for r in rows["row"]],
                                    "reason": ("planning: " + rows["reason"].astype(str)).tolist()})
        aside = pd.concat([aside, extra_aside], ignore_index=True)
    settings["plan_target"] = rec.target
    return Screening(out, nxt.reset_index(drop=True), aside.reset_index(drop=True), settings, rec)


def plot_screening(result: Screening, x: str = "prediction", y: str = "energy_Wh_kg", *,
                   labels: dict[str, str] | None = None, n_labels: int = 5, ax: Any = None) -> Any:
    """The ranked candidates as points (``x`` against ``y``, columns of :attr:`Screening.ranked`), the intervals of
    ``x`` when it is the prediction, the ``n_labels`` best-ranked named, and the planning step's suggestions circled.
    Returns the axes."""
    import matplotlib.pyplot as plt

    labels = labels or {}
    ranked = result.ranked.dropna(subset=["rank", x, y])
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2))
    if x == "prediction":
        ax.errorbar(ranked[x], ranked[y], xerr=[ranked[x] - ranked["low"], ranked["high"] - ranked[x]], fmt="o",
                    ms=4, color="C0", ecolor="0.7", capsize=2, label="candidates (interval)")
    else:
        ax.scatter(ranked[x], ranked[y], s=16, color="C0", label="candidates")
    for _, r in ranked.head(n_labels).iterrows():
        ax.annotate(f"{int(r['rank'])}. {r['formula']}", (r[x], r[y]), textcoords="offset points", xytext=(4, 4),
                    fontsize=8)
    if result.suggestions is not None and len(result.suggestions):
        picked = ranked[ranked["candidate_id"].isin(result.suggestions["candidate_id"])]
        ax.scatter(picked[x], picked[y], s=110, facecolors="none", edgecolors="C3", linewidths=1.5,
                   label="compute next (plan)")
    ax.set(xlabel=labels.get(x, x), ylabel=labels.get(y, y), title=f"{len(ranked)} ranked candidates")
    ax.legend(loc="best", fontsize=8)
    ax.figure.tight_layout()
    return ax
