"""The electrode closed loop as an ask/tell campaign: the grey-box surrogate is the model, PSO on it the acquisition.

:class:`ElectrodeCampaign` has the shape of :class:`battlab.plan.Campaign` (``suggest`` / ``observe`` /
``save`` / ``load``) for the virtual electrode line of :mod:`battlab.electrode`: the first batch is a Latin
hypercube of the process window; every later batch comes from PSO runs on an
:class:`~battlab.electrode.surrogate.ElectrodeSurrogate` refitted after each result table (pessimistic
``mean - kappa * std`` proposals aimed ``margin`` inside the constraints on predicted outputs, alternating
with pure exploitation at the boundary). The results are simulated (:func:`~battlab.electrode.doe.run_designs`)
or measured in a lab: a table with the objective and constrained output columns and a ``status``.
:func:`battlab.electrode.optimize.closed_loop` is a driver of this class.

Example
-------
>>> from battlab.electrode.doe import DEFAULT_SPACE, run_designs
>>> campaign = ElectrodeCampaign(constraints={"rate_capability": (0.8, None)}, n_initial=4, seed=0)
>>> batch = campaign.suggest()  # the initial Latin hypercube
>>> list(batch["design_id"])
['r0-0', 'r0-1', 'r0-2', 'r0-3']
>>> campaign.observe(batch, run_designs(batch[list(DEFAULT_SPACE)], progress=False))  # doctest: +SKIP
>>> batch = campaign.suggest(2)  # PSO on the refitted grey box  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab import __version__
from battlab.electrode.doe import DEFAULT_SPACE, fixed, latin_hypercube, ranges
from battlab.electrode.optimize import (
    Constraints,
    _best_observed,
    _score,
    _tighten,
    fit_surrogate,
    pso_surrogate,
    surrogate_evaluator,
)
from battlab.electrode.process import ProcessSettings, process_table
from battlab.electrode.surrogate import TRANSPORT_BLIND, TRANSPORT_OUTPUTS, ElectrodeSurrogate
from battlab.errors import BattlabError
from battlab.plan.campaign import Campaign, check_suggested

__all__ = ["ELECTRODE_STATE_VERSION", "ElectrodeCampaign"]

ELECTRODE_STATE_VERSION = 1
_FORMAT = "battlab.plan.ElectrodeCampaign"
_EI_CANDIDATES = 1000  # designs per batch of the expected-improvement search (two batches per refit)
_HISTORY = ["round", "n_data", "n_failed", "best_observed", "proposal_predicted", "proposal_std",
            "proposal_observed", "proposal_feasible_predicted", "proposal_feasible", "improved", "proposal_kind",
            "max_expected_improvement"]


def expected_improvement(table: pd.DataFrame, objective: str, best: float, maximize: bool = True,
                         constraints: Constraints | None = None) -> np.ndarray:
    """Expected improvement over ``best`` times the probability of meeting the predicted constraints.

    ``table`` holds the predicted means and ``<name>_std`` of the objective and of the constrained outputs
    (:func:`~battlab.electrode.optimize.surrogate_evaluator`), each taken as normal; a constrained column
    without ``_std`` is exact (probability 0 or 1). ``best`` NaN (no feasible design yet): the probability
    of feasibility alone.

    Example
    -------
    >>> t = pd.DataFrame({"y": [1.0, 0.0], "y_std": [0.0, 1.0], "c": [0.5, 0.5], "c_std": [0.1, 0.1]})
    >>> expected_improvement(t, "y", 0.0, constraints={"c": (0.5, None)}).round(3).tolist()
    [0.5, 0.199]
    """
    from scipy.stats import norm

    pof = np.ones(len(table))
    for name, (low, high) in dict(constraints or {}).items():
        v = table[name].to_numpy(float)
        s = table[f"{name}_std"].to_numpy(float) if f"{name}_std" in table else np.zeros(len(table))
        s = np.maximum(s, 1e-12)
        if low is not None:
            pof = pof * norm.cdf((v - low) / s)
        if high is not None:
            pof = pof * norm.cdf((high - v) / s)
    if np.isnan(best):
        return np.nan_to_num(pof)
    mu = table[objective].to_numpy(float)
    sd = np.maximum(table[f"{objective}_std"].to_numpy(float) if f"{objective}_std" in table else 0.0, 1e-12)
    z = (mu - best) / sd if maximize else (best - mu) / sd
    return np.nan_to_num(sd * (z * norm.cdf(z) + norm.pdf(z)) * pof)


def initial_size(space: dict[str, Any]) -> int:
    """The default initial Latin hypercube: 3 designs up to 3 varied knobs, then one more per knob.

    >>> initial_size({"a": (0, 1), "b": (0, 1), "c": 1.0}), initial_size({k: (0, 1) for k in "abcdef"})
    (3, 6)
    """
    return max(3, len(ranges(space)))


class ElectrodeCampaign:
    """Ask/tell active learning on the electrode process window with the grey-box surrogate.

    Parameters
    ----------
    objective, maximize, constraints
        As in :func:`~battlab.electrode.optimize.pso`; constraints may name process quantities (exact) or
        outputs (learned by the surrogate).
    space : dict, optional
        Design space (default :data:`~battlab.electrode.doe.DEFAULT_SPACE`): ``(low, high)`` varied, scalars fixed.
    outputs : list of str, optional
        Outputs the surrogate learns (default: the objective and the constrained outputs).
    n_initial : int, optional
        Size of the initial Latin hypercube (the first :meth:`suggest` when nothing is observed); default
        :func:`initial_size` of the space (3 designs up to 3 varied knobs, one per knob beyond).
    kappa, margin
        Uncertainty penalty of every other proposal of a batch, and how far (relative) those proposals aim
        inside the constraints on predicted outputs (see :func:`~battlab.electrode.optimize.closed_loop`).
    tol : float
        A round *improved* (``history["improved"]``) when the best feasible observed objective moved by more
        than ``tol`` (relative); the campaign has :meth:`converged` when the surrogate expects no gain above
        ``tol`` anywhere.
    patience : int
        :meth:`converged` needs the maximum expected improvement below ``tol`` after this many results in a row,
        none of which moved the best design.
    explore : bool
        After a proposal that did not improve the best design (the surrogate was wrong there), the next
        batch starts with the design of maximum expected improvement (times the probability of meeting the
        constraints) instead of the pessimistic optimum.
    seed : int
        Seeds the Latin hypercube (``seed``), PSO runs (``seed + 1000 * round + i``) and the jitter of proposals
        that repeat a known design (a ``numpy`` generator seeded with ``seed``, saved with the campaign).
    physics : bool
        Grey-box surrogate (see :func:`~battlab.electrode.optimize.closed_loop`).
    surrogate_params, pso_params
        Passed to :class:`~battlab.electrode.surrogate.EnsembleSurrogate` and
        :func:`~battlab.electrode.optimize.pso_surrogate` (default ``pop_size=30, n_gen=40``).
    simulate_kwargs : dict, optional
        What the designs are simulated with (``settings``, ``np_ratio``...): the surrogate's process model
        and theory use the same.
    surrogate_inputs : list of str, optional
        Features of the surrogate (default: from ``physics``).

    Attributes
    ----------
    data : pandas.DataFrame
        Every observed row, indexed by ``design_id``, failed ones included (``status`` not ``"ok"``, with
        ``reason``; they are not learned from).
    pending : pandas.DataFrame
        Suggested designs without a result yet.
    history : pandas.DataFrame
        One row per :meth:`observe` / :meth:`add_data` call.
    model_ : ElectrodeSurrogate or None
        The surrogate fitted on :attr:`data`.
    """

    def __init__(self, objective: str = "specific_energy_Wh_kg", *, space: dict[str, Any] | None = None,
                 constraints: Constraints | None = None, maximize: bool = True, outputs: list[str] | None = None,
                 n_initial: int | None = None, kappa: float = 1.0, margin: float = 0.03, tol: float = 0.002,
                 patience: int = 2, explore: bool = True, seed: int = 0,
                 physics: bool = True, surrogate_params: dict[str, Any] | None = None,
                 pso_params: dict[str, Any] | None = None, simulate_kwargs: dict[str, Any] | None = None,
                 surrogate_inputs: list[str] | None = None) -> None:
        self.objective = objective
        self.space = space
        self.constraints = constraints
        self.maximize = maximize
        self.outputs = outputs
        self.n_initial = n_initial
        self.kappa = kappa
        self.margin = margin
        self.tol = tol
        self.patience = patience
        self.explore = explore
        self.seed = seed
        self.physics = physics
        self.surrogate_params = surrogate_params
        self.pso_params = pso_params
        self.simulate_kwargs = simulate_kwargs
        self.surrogate_inputs = surrogate_inputs
        self.data = pd.DataFrame(index=pd.Index([], name="design_id", dtype=str))
        self.pending = pd.DataFrame(columns=["design_id", "round"])
        self.history = pd.DataFrame(columns=_HISTORY)
        self.model_: ElectrodeSurrogate | None = None
        self.round_ = -1
        self.best_value_ = float("nan")
        self.rng_ = np.random.default_rng(seed)
        self.max_ei_ = float("nan")
        self.ei_design_: dict[str, float] | None = None

    # ------------------------------------------------------------------------------------------ derived settings
    @property
    def _space(self) -> dict[str, Any]:
        return self.space or DEFAULT_SPACE

    @property
    def _constraints(self) -> Constraints:
        return dict(self.constraints or {})

    @property
    def _process_cols(self) -> set[str]:
        return set(process_table(latin_hypercube(self._space, 1, seed=0)).columns)

    @property
    def _outputs(self) -> list[str]:
        cons = [c for c in self._constraints if c not in self._process_cols]
        return list(self.outputs or dict.fromkeys([self.objective] + cons))

    @property
    def _sim_kw(self) -> dict[str, Any]:
        return dict(self.simulate_kwargs or {})

    def _inputs_for(self, data: pd.DataFrame) -> list[str]:
        var = ranges(self._space)
        if self.surrogate_inputs:
            return list(self.surrogate_inputs)
        if not self.physics:
            return list(var)
        # rate capability and utilisation follow the transport index, and the rest is exact physics; a
        # few designs cannot teach a net more inputs (measured: 6 designs give rate capability 2x better
        # on the index alone), many designs can refine it with the knobs (220: 3x better with them)
        few = (data["status"] == "ok").sum() < 10 * len(var) and set(self._outputs) <= TRANSPORT_OUTPUTS
        return ["transport_index"] + [v for v in var if v in TRANSPORT_BLIND or not few]

    def _fit(self) -> None:
        if not (self.data["status"] == "ok").any():  # nothing to learn from yet (suggest says so)
            self.model_, self.max_ei_, self.ei_design_ = None, float("nan"), None
            return
        sim_kw = self._sim_kw
        fit_kw = {"design": list(self._space), "settings": sim_kw.get("settings"),
                  "np_ratio": sim_kw.get("np_ratio", 1.1)}
        self.model_ = fit_surrogate(self.data, self._outputs, self._inputs_for(self.data), self.physics,
                                    **fit_kw, **(self.surrogate_params or {}))
        self._expected_improvement()

    def _expected_improvement(self) -> None:
        """The largest expected improvement on the surrogate and its design.

        Searched on candidates in two batches (one surrogate call each, far cheaper than a swarm): a Latin
        hypercube of the space and clouds around the best observed designs, then clouds around the ten best
        candidates of the first batch. Seeded by ``seed`` and the round.
        """
        space, objective, constraints = self._space, self.objective, self._constraints
        var = ranges(space)
        names = list(var)
        lo, hi = np.array([v[0] for v in var.values()]), np.array([v[1] for v in var.values()])
        evaluate = surrogate_evaluator(self.model_, self._sim_kw.get("settings"))
        best, process_cols = self.best_value_, self._process_cols
        exact = {k: v for k, v in constraints.items() if k in process_cols}
        learned = {k: v for k, v in constraints.items() if k not in process_cols}
        seed = self.seed + 1000 * max(self.round_, 0) + 500
        rng = np.random.default_rng(seed)

        def acquisition(unit: np.ndarray) -> np.ndarray:
            d = pd.DataFrame(lo + np.clip(unit, 0.0, 1.0) * (hi - lo), columns=names).assign(**fixed(space))
            t = evaluate(d)
            ei = expected_improvement(t, objective, best, self.maximize, learned)
            if exact:
                _, violation = _score(t.assign(**{objective: 0.0}), objective, self.maximize, exact, 0.0)
                ei = np.where(violation > 0, 0.0, ei)
            return ei

        ok = self.data[self.data["status"] == "ok"]
        ok = ok.sort_values(objective, ascending=not self.maximize)
        if not np.isnan(best):  # the feasible ones first
            _, violation = _score(ok, objective, self.maximize, constraints, 0.0)
            ok = ok.iloc[np.argsort(violation > 0, kind="stable")]
        centres = (ok[names].to_numpy(float)[:5] - lo) / (hi - lo)
        n_global = _EI_CANDIDATES // 2
        cloud = [rng.normal(c, 0.05, (_EI_CANDIDATES // 2 // len(centres), len(names))) for c in centres]
        first = np.vstack([(latin_hypercube(space, n_global, seed=seed)[names].to_numpy(float) - lo) / (hi - lo),
                           *cloud])
        first = np.clip(first, 0.0, 1.0)
        ei_first = acquisition(first)
        top = first[np.argsort(-ei_first, kind="stable")[:10]]
        second = np.clip(np.vstack([rng.normal(c, 0.01, (_EI_CANDIDATES // 10, len(names))) for c in top]), 0.0, 1.0)
        ei_second = acquisition(second)
        candidates, ei = np.vstack([first, second]), np.concatenate([ei_first, ei_second])
        k = int(np.argmax(ei))
        self.max_ei_ = float(ei[k])
        self.ei_design_ = dict(zip(names, (lo + candidates[k] * (hi - lo)).tolist(), strict=True)) | fixed(space)

    def converged(self) -> bool:
        """Whether the surrogate expects no gain above ``tol`` (relative to the best feasible design) anywhere.

        True when a feasible design was observed and

        - the largest expected improvement (times the probability of meeting the constraints,
          :func:`expected_improvement`) stayed below ``tol * |best|`` after each of the last ``patience`` results;
        - none of those results moved the best feasible design, by any amount: a loop that still climbs in
          steps below ``tol`` (common along a constraint boundary, where the surrogate is confident but each
          proposal gains a little) is not done;
        - the last proposal came out as predicted: its objective within three standard deviations (or ``tol``)
          of the prediction, and feasible if the surrogate predicted it would be. A surrogate that was just
          wrong is not trusted to say that nothing is left.
        """
        h = self.history
        if (len(self.pending) or len(h) < self.patience + 1 or np.isnan(self.best_value_)
                or "max_expected_improvement" not in h):
            return False
        last = h.iloc[-self.patience:]
        threshold = self.tol * abs(self.best_value_)
        if not (last["max_expected_improvement"].astype(float) < threshold).all():
            return False
        before = float(h["best_observed"].iloc[-self.patience - 1])
        if np.isnan(before) or before != self.best_value_:  # a gain of any size: the loop is still climbing
            return False
        observed, predicted = float(h["proposal_observed"].iloc[-1]), float(h["proposal_predicted"].iloc[-1])
        std = float(h["proposal_std"].iloc[-1])
        if np.isnan(predicted):  # the last result was not a proposal: nothing to compare
            return True
        if np.isnan(observed):  # the proposal failed or lacks the objective
            return False
        row = h.iloc[-1]
        if row.get("proposal_feasible_predicted") == 1 and row.get("proposal_feasible") == 0:
            return False  # predicted to meet the constraints, it did not: the surrogate is wrong at the boundary
        return abs(observed - predicted) <= 3 * max(std if np.isfinite(std) else 0.0, threshold)

    # ------------------------------------------------------------------------------------------------ ask
    def suggest(self, batch_size: int | None = None) -> pd.DataFrame:
        """The next designs: ``design_id``, ``round``, the design columns, ``<objective>_predicted`` and ``_std``,
        ``proposal_kind`` and ``feasible_predicted`` (1 when the predicted means meet every constraint).

        When nothing is observed: the initial Latin hypercube of ``n_initial`` designs (``batch_size`` of them
        if given; no prediction). Otherwise ``batch_size`` (default 1) PSO proposals on the surrogate.

        Raises
        ------
        BattlabError
            A bad ``batch_size``, or designs of an earlier batch still pending (observe them first).
        """
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer)
                                       or batch_size < 1):
            raise BattlabError(f"batch_size must be an integer >= 1, got {batch_size!r}.")
        if len(self.pending):
            raise BattlabError(f"{len(self.pending)} suggested design(s) have no result yet (first: "
                               f"{self.pending['design_id'].iloc[0]!r}); observe them before asking for more.")
        space, objective = self._space, self.objective
        if not len(self.data):
            rnd = 0
            n = (self.n_initial or initial_size(space)) if batch_size is None else int(batch_size)
            designs = latin_hypercube(space, n, seed=self.seed)
            predicted = [(np.nan, np.nan, "", np.nan)] * len(designs)
        else:
            rnd = self.round_ + 1
            designs, predicted = self._proposals(rnd, 1 if batch_size is None else int(batch_size))
        batch = designs.reset_index(drop=True)
        batch.insert(0, "round", rnd)
        batch.insert(0, "design_id", [f"r{rnd}-{i}" for i in range(len(batch))])
        batch[f"{objective}_predicted"] = [float(p[0]) for p in predicted]
        batch[f"{objective}_std"] = [float(p[1]) for p in predicted]
        batch["proposal_kind"] = [p[2] for p in predicted]
        batch["feasible_predicted"] = [p[3] for p in predicted]
        self.round_ = rnd
        self.pending = batch
        return batch.copy()

    def _proposals(self, rnd: int, batch_size: int) -> tuple[pd.DataFrame, list[tuple[float, float, str, float]]]:
        space, objective, constraints = self._space, self.objective, self._constraints
        if self.model_ is None:
            raise BattlabError("no successful observation to fit the surrogate on yet; observe designs whose "
                               "status is 'ok' first.")
        pso_kw = {"pop_size": 30, "n_gen": 40} | dict(self.pso_params or {})
        var = ranges(space)
        lo, hi = np.array([v[0] for v in var.values()]), np.array([v[1] for v in var.values()])
        process_cols = self._process_cols
        settings = self._sim_kw.get("settings")
        proposals: list[dict[str, float]] = []
        predicted: list[tuple[float, float, str, float]] = []
        # the surrogate was wrong where it pointed last (no gain): start this batch where it expects most
        last = self.history.iloc[-1]
        proposed = isinstance(last.get("proposal_kind"), str) and bool(last.get("proposal_kind"))
        explore = self.explore and self.ei_design_ is not None and proposed and not bool(last["improved"])
        for i in range(batch_size):
            if i == 0 and explore:
                design = pd.DataFrame([self.ei_design_])[list(space)]
                values = surrogate_evaluator(self.model_, settings)(design).iloc[0]
                x, kind = np.array([self.ei_design_[n] for n in var]), "expected_improvement"
            else:
                j = i - int(explore)
                k = self.kappa if j % 2 == 0 else 0.0
                cons = _tighten(constraints, self.margin if j % 2 == 0 else 0.0, process_cols)
                res = pso_surrogate(self.model_, objective, space=space, constraints=cons, maximize=self.maximize,
                                    kappa=k, seed=self.seed + 1000 * rnd + i, settings=settings, **pso_kw)
                x, values = np.array([res.best_design[n] for n in var]), res.best_values
                kind = "pessimistic" if k else "mean"
            scaled = (x - lo) / (hi - lo)
            # a repeat of a known design teaches the surrogate nothing: jitter it around the proposal
            known = [(np.array([p[n] for n in var]) - lo) / (hi - lo) for p in proposals]
            known += list((self.data[list(var)].to_numpy(float) - lo) / (hi - lo))
            if known and np.min(np.linalg.norm(np.array(known) - scaled, axis=1)) < 1e-2:
                scaled = np.clip(scaled + self.rng_.normal(0.0, 0.05, scaled.shape), 0.0, 1.0)
                x = lo + scaled * (hi - lo)
            proposals.append(dict(zip(var, x, strict=True)) | fixed(space))
            # whether the predicted means (and the exact process quantities) meet every constraint
            row = pd.DataFrame([{k: values[k] for k in constraints if k in values} | {objective: 0.0}])
            feasible = float(all(k in values for k in constraints)
                             and _score(row, objective, self.maximize, constraints, 0.0)[1][0] == 0)
            predicted.append((values[objective], values.get(f"{objective}_std", np.nan), kind, feasible))
        return pd.DataFrame(proposals)[list(space)], predicted

    # ------------------------------------------------------------------------------------------------ tell
    def _results_table(self, results: Any, n: int, what: str) -> pd.DataFrame:
        if not isinstance(results, pd.DataFrame):
            raise BattlabError(f"{what} must be a table (objective and constrained output columns, 'status'), got "
                               f"{type(results).__name__}.")
        if len(results) != n:
            raise BattlabError(f"got {len(results)} result row(s) for {n} design(s); nothing recorded.")
        missing = [c for c in self._outputs if c not in results.columns]
        if missing:
            raise BattlabError(f"{what} has no column {missing[0]!r} (the surrogate learns {self._outputs}); "
                               "nothing recorded.")
        return results.reset_index(drop=True).copy()

    def _mark_unusable(self, table: pd.DataFrame) -> pd.DataFrame:
        """``status``/``reason`` for lab tables without them; an 'ok' row with a NaN output is kept aside."""
        if "status" not in table:
            table["status"] = "ok"
        if "reason" not in table:  # a lab table: a failure's reason is its status
            table["reason"] = np.where(table["status"] == "ok", "", "status " + table["status"].astype(str))
        for col in self._outputs:
            bad = (table["status"] == "ok") & pd.to_numeric(table[col], errors="coerce").isna()
            if bad.any():
                table.loc[bad, "status"] = "failed"
                table.loc[bad, "reason"] = f"{col} is missing (NaN)"
        return table

    def observe(self, designs: Any, results: pd.DataFrame) -> pd.Series:
        """Record the results of suggested designs and refit the surrogate.

        Parameters
        ----------
        designs : DataFrame with ``design_id`` (what :meth:`suggest` returned), or a sequence of design ids
        results : pandas.DataFrame
            One row per design, in the same order (or with a ``design_id`` column): the objective and the
            constrained outputs, ``status`` (``"ok"`` or the failure; default ``"ok"``) and anything else the
            line or lab reports (e.g. :func:`~battlab.electrode.doe.run_designs` output). Design columns it
            lacks are taken from the suggestion, process quantities it lacks are computed from them. Rows
            that failed or lack an output are kept in :attr:`data` with their ``reason``, not learned from.

        Returns
        -------
        pandas.Series
            The new :attr:`history` row.

        Raises
        ------
        BattlabError
            A design that was never suggested (named) or observed twice, a row count mismatch, a missing
            output column; nothing is recorded then.
        """
        ids = Campaign._ids(designs)  # the same reading of a designs table as the generic campaign
        check_suggested(ids, set(self.pending["design_id"]), {"already observed": set(self.data.index)},
                        tail="; nothing recorded")
        table = self._results_table(results, len(ids), "the results")
        if "design_id" in table:
            given = table["design_id"].astype(str)
            if set(given) != set(ids):
                other = sorted(set(given) ^ set(ids))[0]
                raise BattlabError(f"the results' design_id column does not match the designs (e.g. {other!r}); "
                                   "nothing recorded.")
            table = table.set_index(given.rename("design_id")).loc[ids].drop(columns="design_id").reset_index(drop=True)
        suggested = self.pending.set_index("design_id").loc[ids].reset_index()
        table = self._complete(table, suggested)
        if "round" not in table:
            table["round"] = suggested["round"].to_numpy()
        table.index = pd.Index(ids, name="design_id")
        self.pending = self.pending[~self.pending["design_id"].isin(ids)].reset_index(drop=True)
        first = suggested.iloc[0]
        objective = self.objective
        return self._record(table, int(first["round"]), float(first[f"{objective}_predicted"]),
                            float(first[f"{objective}_std"]), proposal=int(first["round"]) > 0,
                            kind=str(first.get("proposal_kind", "")),
                            feasible_predicted=float(first.get("feasible_predicted", np.nan)))

    def _complete(self, table: pd.DataFrame, suggested: pd.DataFrame) -> pd.DataFrame:
        space = list(self._space)
        for col in space:
            if col not in table:
                table[col] = suggested[col].to_numpy()
        process = [c for c in self._constraints if c in self._process_cols and c not in table]
        if process:  # exact process quantities a constraint names, for a lab table without them
            computed = process_table(table[space].astype(float), self._sim_kw.get("settings"))
            for col in computed.columns:
                if col not in table:
                    table[col] = computed[col].to_numpy()
        return self._mark_unusable(table)

    def add_data(self, results: pd.DataFrame) -> pd.Series:
        """Record designs this campaign did not suggest (earlier simulations or experiments) and refit.

        ``results`` is a table with the design columns and what :meth:`observe` takes; its rows get the ids
        ``prior-<n>`` and the current round (0 before any suggestion). Returns the new :attr:`history` row.

        Raises
        ------
        BattlabError
            A missing design or output column (named); nothing is recorded then.
        """
        if not isinstance(results, pd.DataFrame):
            raise BattlabError(f"earlier experiments must be a table, got {type(results).__name__}.")
        missing = [c for c in self._space if c not in results.columns]
        if missing:
            raise BattlabError(f"the table of earlier experiments has no design column {missing[0]!r}; "
                               "nothing recorded.")
        table = self._results_table(results, len(results), "the table of earlier experiments")
        table = self._complete(table, table)
        rnd = max(self.round_, 0)
        if "round" not in table:
            table["round"] = rnd
        start = int(self.data.index.str.startswith("prior-").sum()) if len(self.data) else 0
        table.index = pd.Index([f"prior-{start + i}" for i in range(len(table))], name="design_id")
        self.round_ = rnd
        return self._record(table, rnd, np.nan, np.nan, False)

    def _record(self, new: pd.DataFrame, rnd: int, predicted: float, std: float, proposal: bool,
                kind: str = "", feasible_predicted: float = np.nan) -> pd.Series:
        data = pd.concat([self.data, new]) if len(self.data) else new
        data.index.name = "design_id"
        self.data = data
        objective, maximize = self.objective, self.maximize
        best = _best_observed(data, objective, maximize, self._constraints)
        value = float(best[objective]) if best is not None else float("nan")
        best_value = self.best_value_
        if len(self.history):
            gain = (value - best_value) if maximize else (best_value - value)
            improved = bool(np.isnan(best_value) and not np.isnan(value)) or gain > self.tol * abs(best_value)
            best_value = value if (np.isnan(best_value) or gain > 0) else best_value
            n_failed = int((new["status"] != "ok").sum())
        else:  # the first table: the initial design of experiments
            improved, best_value, n_failed = True, value, int((data["status"] != "ok").sum())
        self.best_value_ = best_value
        row = {"round": rnd, "n_data": len(data), "n_failed": n_failed, "best_observed": best_value,
               "proposal_predicted": predicted, "proposal_std": std,
               "proposal_observed": float(new[objective].iloc[0]) if proposal and objective in new else np.nan,
               "proposal_feasible_predicted": feasible_predicted if proposal else np.nan,
               "proposal_feasible": float(_best_observed(new.iloc[:1], objective, maximize, self._constraints)
                                          is not None) if proposal else np.nan,
               "improved": improved, "proposal_kind": kind if proposal else "",
               "max_expected_improvement": np.nan}
        self.history = (pd.concat([self.history, pd.DataFrame([row])], ignore_index=True) if len(self.history)
                        else pd.DataFrame([row]))
        self._fit()
        self.history.loc[self.history.index[-1], "max_expected_improvement"] = self.max_ei_
        return self.history.iloc[-1]

    def best(self) -> pd.Series | None:
        """The best feasible observed design (its :attr:`data` row), or ``None`` if none is feasible."""
        if not len(self.data):
            return None
        return _best_observed(self.data, self.objective, self.maximize, self._constraints)

    # ------------------------------------------------------------------------------------------- persistence
    def _settings(self) -> dict[str, Any]:
        sim_kw = {}
        for key, value in self._sim_kw.items():
            if isinstance(value, ProcessSettings):
                value = {"__ProcessSettings__": dataclasses.asdict(value)}
            try:
                json.dumps(value)
            except TypeError:
                raise BattlabError(f"simulate_kwargs[{key!r}] ({type(value).__name__}) cannot be saved as JSON; "
                                   "nothing written.") from None
            sim_kw[key] = value
        return {"objective": self.objective, "space": self.space, "constraints": self.constraints,
                "maximize": self.maximize, "outputs": self.outputs, "n_initial": self.n_initial,
                "kappa": self.kappa, "margin": self.margin, "tol": self.tol, "patience": self.patience,
                "explore": self.explore, "seed": self.seed,
                "physics": self.physics, "surrogate_params": self.surrogate_params, "pso_params": self.pso_params,
                "simulate_kwargs": sim_kw if self.simulate_kwargs is not None else None,
                "surrogate_inputs": self.surrogate_inputs}

    def save(self, directory: str | Path) -> Path:
        """Write ``campaign.json`` (settings, round, best value, the generator's state), ``data.parquet``,
        ``pending.parquet`` and ``history.parquet`` to ``directory``; the surrogate is refitted on load.
        Returns the folder."""
        out = Path(directory)
        state = {"format": _FORMAT, "version": ELECTRODE_STATE_VERSION, "battlab_version": __version__,
                 "settings": self._settings(), "round": self.round_,
                 "best_value": None if np.isnan(self.best_value_) else self.best_value_,
                 "rng": self.rng_.bit_generator.state}
        text = json.dumps(state, indent=1)
        out.mkdir(parents=True, exist_ok=True)
        (out / "campaign.json").write_text(text)
        self.data.to_parquet(out / "data.parquet")
        self.pending.to_parquet(out / "pending.parquet", index=False)
        self.history.to_parquet(out / "history.parquet", index=False)
        return out

    @classmethod
    def load(cls, directory: str | Path) -> ElectrodeCampaign:
        """Read a campaign written by :meth:`save` and refit its surrogate (fitting is seeded, so the loaded
        campaign suggests what the saved one would have).

        Raises
        ------
        BattlabError
            A missing file, not an electrode campaign, or a state version this battlab cannot read.
        """
        folder = Path(directory)
        for name in ("campaign.json", "data.parquet", "pending.parquet", "history.parquet"):
            if not (folder / name).is_file():
                raise BattlabError(f"{folder}: no {name}; not a saved electrode campaign "
                                   "(ElectrodeCampaign.save writes it).")
        try:
            state = json.loads((folder / "campaign.json").read_text())
        except json.JSONDecodeError as exc:
            raise BattlabError(f"{folder / 'campaign.json'} is not valid JSON: {exc}") from None
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise BattlabError(f"{folder / 'campaign.json'} is not a battlab electrode campaign.")
        if state.get("version") != ELECTRODE_STATE_VERSION:
            raise BattlabError(f"{folder / 'campaign.json'}: state version {state.get('version')!r}; this battlab "
                               f"reads version {ELECTRODE_STATE_VERSION}.")
        s = dict(state["settings"])
        if s["space"] is not None:
            s["space"] = {k: v if np.isscalar(v) else tuple(v) for k, v in s["space"].items()}
        if s["constraints"] is not None:
            s["constraints"] = {k: tuple(v) for k, v in s["constraints"].items()}
        if s["surrogate_params"] is not None:
            s["surrogate_params"] = {k: tuple(v) if isinstance(v, list) else v
                                     for k, v in s["surrogate_params"].items()}
        if s["simulate_kwargs"] is not None:
            s["simulate_kwargs"] = {k: ProcessSettings(**v["__ProcessSettings__"])
                                    if isinstance(v, dict) and "__ProcessSettings__" in v else v
                                    for k, v in s["simulate_kwargs"].items()}
        campaign = cls(**s)
        campaign.round_ = int(state["round"])
        campaign.best_value_ = float("nan") if state["best_value"] is None else float(state["best_value"])
        campaign.rng_.bit_generator.state = state["rng"]
        data = pd.read_parquet(folder / "data.parquet")
        for col in data.select_dtypes(include="object").columns:  # parquet gives list cells back as arrays
            data[col] = [v.tolist() if isinstance(v, np.ndarray) else v for v in data[col]]
        campaign.data = data
        pending = pd.read_parquet(folder / "pending.parquet")
        campaign.pending = pending if len(pending) else campaign.pending
        history = pd.read_parquet(folder / "history.parquet")
        campaign.history = history if len(history) else campaign.history
        if len(data):
            campaign._fit()
        return campaign

    def __repr__(self) -> str:
        return (f"ElectrodeCampaign({self.objective!r}, round {self.round_}, {len(self.data)} observed, "
                f"{len(self.pending)} pending)")
