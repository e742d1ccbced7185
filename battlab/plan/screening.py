"""Retrospective screening: replay a campaign on a table whose every value is known, and score it.

A campaign starts from ``n_initial`` random candidates, suggests batches, and "measures" each suggestion by
looking up its true value. The figures of merit are those of Rohr et al. (Chem. Sci. 2020, 11, 2696,
doi:10.1039/C9SC05999G), for the goal "find the top ``top_fraction`` of the candidates":

- ``Top%(i)`` — share of the top candidates found after ``i`` experiments;
- enhancement factor ``EF(i) = Top%_SL(i) / Top%_random(i)`` at a fixed number of experiments, with
  ``Top%_random(i) = i / N`` (the expected share for random picks without replacement);
- acceleration factor ``AF(x) = i_random(x) / i_SL(x)``: how many fewer experiments reach a share ``x`` of
  the top. For random search the expected number of experiments to find ``k`` of ``K`` top candidates among
  ``N`` is ``k (N + 1) / (K + 1)`` (the expected position of the k-th top candidate in a random order);
  ``i_SL`` is the median over seeds (a seed that never gets there within the budget counts as beyond it).

Example
-------
>>> import numpy as np
>>> y = np.arange(100.0)
>>> top = top_mask(y, 0.05)
>>> int(top.sum()), expected_random_experiments(3, 5, 100)
(5, 50.5)
>>> order = np.array([99, 98, 0, 97, 1, 96, 95])          # a campaign that finds the top quickly
>>> experiments_to_find(order, top, 3), enhancement_factor([order], top, 7, 100)
(4, 14.29)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.errors import BattlabError

__all__ = ["ScreeningPool", "ScreeningResult", "acceleration_factor", "dataset_pool", "discovery_curve",
           "enhancement_factor", "expected_random_experiments", "experiments_to_find", "replay", "screen", "top_mask"]


def top_mask(y: Any, fraction: float = 0.05) -> np.ndarray:
    """True for the best ``ceil(fraction * N)`` values of ``y`` (ties at the threshold included)."""
    y = np.asarray(y, dtype=float)
    if np.isnan(y).any():
        raise BattlabError(f"screening needs a value for every candidate; {int(np.isnan(y).sum())} are NaN.")
    if not 0 < fraction < 1:
        raise BattlabError(f"top fraction must be in (0, 1), got {fraction!r}.")
    k = int(np.ceil(fraction * len(y)))
    return y >= np.sort(y)[::-1][k - 1]


def expected_random_experiments(k: int, n_top: int, n: int) -> float:
    """Expected number of random experiments (without replacement) to find ``k`` of ``n_top`` among ``n``."""
    return k * (n + 1) / (n_top + 1)


def experiments_to_find(order: Sequence[int], top: np.ndarray, k: int) -> int | None:
    """Number of experiments of ``order`` (candidate positions, in measurement order) that found ``k`` top
    candidates; ``None`` if it never did."""
    found = np.cumsum(np.asarray(top)[np.asarray(order, dtype=int)])
    hit = np.flatnonzero(found >= k)
    return int(hit[0]) + 1 if len(hit) else None


def discovery_curve(orders: Sequence[Sequence[int]], top: np.ndarray, n_experiments: int) -> pd.DataFrame:
    """Mean, lowest and highest ``Top%`` over the campaigns after 1..n_experiments, beside random's ``i / N``.

    A campaign that stopped early (every top candidate found) stays at 1.

    Example
    -------
    >>> top = np.array([True, False, False, True])
    >>> discovery_curve([[0, 3], [1, 0, 3]], top, 3)["mean"].tolist()
    [0.25, 0.75, 1.0]
    """
    top = np.asarray(top)
    shares = np.ones((len(orders), n_experiments))
    for r, order in enumerate(orders):
        found = np.cumsum(top[np.asarray(order, dtype=int)[:n_experiments]]) / top.sum()
        shares[r, :len(found)] = found
    return pd.DataFrame({"experiments": np.arange(1, n_experiments + 1), "mean": shares.mean(axis=0),
                         "low": shares.min(axis=0), "high": shares.max(axis=0),
                         "random": np.arange(1, n_experiments + 1) / len(top)})


def enhancement_factor(orders: Sequence[Sequence[int]], top: np.ndarray, n_experiments: int, n: int) -> float:
    """Mean ``Top%`` after ``n_experiments`` over the campaigns, divided by random's ``n_experiments / N``."""
    top = np.asarray(top)
    # unique positions: a campaign that stopped early (every top candidate found) keeps its share of 1
    shares = [top[np.unique(np.asarray(o, dtype=int)[:n_experiments])].sum() / top.sum() for o in orders]
    return round(float(np.mean(shares)) / (n_experiments / n), 2)


def acceleration_factor(orders: Sequence[Sequence[int]], top: np.ndarray, share: float = 0.5) -> tuple[float, float]:
    """``AF(share)`` and the median number of experiments behind it (``inf`` if most campaigns failed)."""
    n_top = int(top.sum())
    k = max(1, int(np.ceil(share * n_top)))
    needed = [experiments_to_find(o, top, k) for o in orders]
    counts = np.array([np.inf if c is None else c for c in needed], dtype=float)
    median = float(np.median(counts))
    return expected_random_experiments(k, n_top, len(top)) / median, median


def replay(make_campaign: Callable[[int], Any], y: np.ndarray, seed: int, n_initial: int = 20,
           batch_size: int = 5, budget: int = 150, stop: np.ndarray | None = None) -> np.ndarray:
    """Run one campaign on a pool whose true values are ``y`` (in pool order); return the measured positions.

    ``make_campaign(seed)`` builds a fresh :class:`battlab.plan.Campaign` on a pool whose ids are the
    positions ``"0" .. "N-1"``. The campaign stops after ``budget`` experiments, or once every candidate
    of ``stop`` (a boolean mask, e.g. the top) has been measured.
    """
    campaign = make_campaign(seed)
    order: list[int] = []
    size = n_initial
    while len(order) < budget:
        batch = campaign.suggest(min(size, budget - len(order)))
        ids = batch["design_id"].astype(int).to_numpy()
        campaign.observe(batch, y[ids])
        order += ids.tolist()
        size = batch_size
        if stop is not None and stop[order].sum() >= stop.sum():
            break
    return np.array(order)


@dataclass
class ScreeningResult:
    """Campaigns of one method over several seeds, and their figures of merit."""

    method: str
    seeds: list[int]
    orders: list[np.ndarray] = field(repr=False)
    n: int
    n_top: int
    af: dict[float, float]
    experiments: dict[float, float]
    reached: dict[float, float]
    ef: dict[int, float]
    seconds: float

    top: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, dtype=bool))

    def to_frame(self) -> pd.DataFrame:
        """One row per seed: experiments needed for each share of the top (NaN: not within the budget)."""
        rows = []
        for seed, order in zip(self.seeds, self.orders, strict=True):
            row: dict[str, Any] = {"method": self.method, "seed": seed, "n_experiments": len(order)}
            for share in self.af:
                k = max(1, int(np.ceil(share * self.n_top)))
                found = experiments_to_find(order, self.top, k)
                row[f"experiments_to_{share:g}"] = np.nan if found is None else found
            rows.append(row)
        return pd.DataFrame(rows)

    def save(self, directory: str | Path) -> Path:
        """Write ``<method>.json`` (figures, measured positions per seed) and ``<method>_seeds.csv``."""
        import json

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        figures = {k: getattr(self, k) for k in ("method", "seeds", "n", "n_top", "af", "experiments", "reached",
                                                 "ef", "seconds")}
        figures["orders"] = [o.tolist() for o in self.orders]
        (out / f"{self.method}.json").write_text(json.dumps(figures, indent=1, default=str))
        self.to_frame().to_csv(out / f"{self.method}_seeds.csv", index=False)
        return out


def screen(method: str, make_campaign: Callable[[int], Any], y: Any, seeds: Sequence[int], *,
           top_fraction: float = 0.05, shares: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
           ef_at: Sequence[int] = (50, 100), n_initial: int = 20, batch_size: int = 5, budget: int = 150,
           maximize: bool = True, progress: bool = True) -> ScreeningResult:
    """Replay ``make_campaign`` on every seed and compute AF (per share of the top) and EF (per budget).

    Each campaign runs until it has found every top candidate or spent ``budget`` experiments. With
    ``maximize=False`` the top are the lowest values (the campaigns must minimize too). EF is given only
    for numbers of experiments within the budget.
    """
    import sys

    y = np.asarray(y, dtype=float)
    top = top_mask(y if maximize else -y, top_fraction)
    t0 = time.perf_counter()
    orders = []
    for i, seed in enumerate(seeds):
        orders.append(replay(make_campaign, y, seed, n_initial, batch_size, budget, stop=top))
        if progress:
            print(f"  {method}: seed {seed} done ({i + 1}/{len(seeds)}, {time.perf_counter() - t0:.0f} s)",
                  file=sys.stderr, flush=True)
    af, experiments, reached = {}, {}, {}
    for share in shares:
        af[share], experiments[share] = acceleration_factor(orders, top, share)
        k = max(1, int(np.ceil(share * top.sum())))
        reached[share] = float(np.mean([experiments_to_find(o, top, k) is not None for o in orders]))
    ef = {n_exp: enhancement_factor(orders, top, n_exp, len(y)) for n_exp in ef_at if n_exp <= budget}
    return ScreeningResult(method, list(seeds), orders, len(y), int(top.sum()), af, experiments, reached, ef,
                           time.perf_counter() - t0, top)



@dataclass
class ScreeningPool:
    """A fully measured dataset as a candidate pool: ids ``"0" .. "N-1"`` (positions into ``y``)."""

    pool: Any
    y: np.ndarray
    target: str
    dataset: str
    left_out: pd.DataFrame  # rows not in the pool, with the reason

    def summary(self) -> str:
        return (f"{self.dataset}: {len(self.y)} candidates, {len(self.pool.feature_names)} features, target "
                f"{self.target!r}; {len(self.left_out)} rows left out")


def dataset_pool(dataset: str = "obelix") -> ScreeningPool:
    """Curate and featurize a battlab dataset into a pool for retrospective screening.

    Candidates are grouped by the chemical system of their formula (for grouped uncertainty). OBELiX keeps
    one row per entry (curated by official split and ID, so replicates are not merged) with censored
    conductivities at 1e-15 S/cm, as OBELiX's own processed.csv; conductivities are modelled as log10.
    Rows without a target or features are left out, listed in ``left_out`` with the reason.

    Example
    -------
    >>> sp = dataset_pool("exp_formation_enthalpy")
    >>> sp.summary()
    "exp_formation_enthalpy: 2135 candidates, 162 features, target 'formation_enthalpy_per_atom'; 0 rows left out"
    """
    from battlab.curate import curate_dataset
    from battlab.plan.space import CandidatePool
    from battlab.steps import featurize

    if dataset == "obelix":
        result, card = curate_dataset("obelix", group_by=["split", "ID"])
        curated = result.curated
        censored = curated[f"{card.target}_censored"] == "<"
        curated.loc[censored, card.target] = 1e-15  # as OBELiX's processed.csv
    else:
        result, card = curate_dataset(dataset)
    # the featurize step, as next_experiments uses it, unpruned: every descriptor is a feature of the pool
    features = featurize(result, prune_threshold=None)
    table, target, info = features.table, str(features.model_target), features.info
    bad_target = table[target].isna().to_numpy()
    bad_features = (table["featurize_error"].fillna("") != "").to_numpy()
    reasons = np.where(bad_features, "not featurized: " + table["featurize_error"].fillna("").astype(str),
                       "no target value")
    drop = bad_target | bad_features
    left_out = table.loc[drop, ["formula"]].assign(reason=reasons[drop])
    table = table.loc[~drop].reset_index(drop=True)
    table.insert(0, "candidate", [str(i) for i in range(len(table))])
    pool = CandidatePool(table, features=info["feature"].tolist(), id_column="candidate", formula_column="formula")
    return ScreeningPool(pool, table[target].to_numpy(dtype=float), target, dataset, left_out)
