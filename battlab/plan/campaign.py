"""An experiment-planning campaign with an ask/tell interface: suggest a batch, measure it, tell the results.

A :class:`Campaign` holds a search space (:class:`~battlab.plan.CandidatePool` or
:class:`~battlab.plan.ProcessWindow`), a surrogate model with uncertainty
(:mod:`battlab.plan.surrogates`), an acquisition function (:mod:`battlab.plan.acquisition`) and a way
to make a batch diverse, plus everything measured so far. :meth:`Campaign.save` writes it to a folder
and :meth:`Campaign.load` reads it back, so one campaign can span weeks of lab work; the state is
versioned (:data:`STATE_VERSION`) and the random generator is saved with it, so a loaded campaign
suggests exactly what the original would have.

Batches (``batch=``):

- ``"believer"`` — kriging believer: after each pick the model is refitted as if the pick had been
  measured at its predicted value (hyperparameters and calibration kept), so the next pick goes elsewhere;
- ``"penalize"`` — local penalisation: the acquisition of candidates near a pick (in standardized
  feature space) is multiplied by ``1 - exp(-d^2 / 2 r^2)``;
- ``"thompson"`` — each member of the batch is the best candidate of its own posterior draw (the batch of
  ``acquisition="ts"``);
- ``"greedy"`` — the top of the acquisition, no diversity (a baseline).

Bad input never changes the state half-way: a result for a design that was never suggested (or was
already observed) raises a :class:`~battlab.errors.BattlabError` naming it, and nothing is recorded; a
missing or non-numeric result (NaN, ``inf``, text) is kept aside in :attr:`Campaign.failed` with the reason.

Example
-------
>>> import numpy as np, pandas as pd
>>> from battlab.plan import CandidatePool
>>> x = np.linspace(0, 1, 60)
>>> pool = CandidatePool(pd.DataFrame({"name": [f"c{i}" for i in range(60)], "x": x}), id_column="name")
>>> campaign = Campaign(pool, model="gp", acquisition="ei", seed=0)
>>> first = campaign.suggest(4)                      # nothing measured yet: a random start
>>> _ = campaign.observe(first, -(pool.rows(first["design_id"])["x"] - 0.7) ** 2)
>>> batch = campaign.suggest(3)
>>> batch.columns.tolist()
['design_id', 'round', 'mean', 'std', 'acquisition', 'name']
>>> campaign.observe(["c99"], [1.0])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
battlab.errors.BattlabError: design 'c99' was never suggested by this campaign (pending: 3 designs); ...
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from battlab import __version__
from battlab.errors import BattlabError
from battlab.plan.acquisition import (
    ACQUISITIONS,
    expected_improvement,
    exploitation,
    exploration,
    upper_confidence_bound,
)
from battlab.plan.space import CandidatePool, ProcessWindow
from battlab.plan.surrogates import make_surrogate

__all__ = ["BATCHES", "FLOOR_QUANTILE", "STATE_VERSION", "TRANSFORMS", "Campaign", "check_suggested"]

#: Version of the saved state; :meth:`Campaign.load` refuses other versions.
STATE_VERSION = 1
#: Result transforms: ``"floor"`` raises the results below the lower quartile of those measured so far to it,
#: ``"rank"`` models their normal scores (both robust to a long tail of poor results); ``"auto"``: ``"floor"`` in
#: a candidate pool, ``"none"`` in a process window.
TRANSFORMS = ("auto", "none", "floor", "rank")
#: Quantile of the results measured so far below which ``transform="floor"`` raises them.
FLOOR_QUANTILE = 0.25
#: k-means clusters of a candidate pool over which exploring picks are spread (``explore_clusters=None``).
CLUSTERS = 10
#: Batch strategies accepted by :class:`Campaign` (``"auto"``: thompson for ``ts``, else greedy in a candidate pool
#: and believer in a process window).
BATCHES = ("auto", "believer", "penalize", "thompson", "greedy")
_FILES = ("campaign.json", "observations.parquet", "pending.parquet", "failed.parquet")
_META = ["design_id", "round", "source"]


def _accepts(method: Any, name: str) -> bool:
    try:
        return name in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


class Campaign:
    """Plan experiments in batches: :meth:`suggest`, measure, :meth:`observe`; :meth:`save`/:meth:`load`.

    Parameters
    ----------
    space : CandidatePool or ProcessWindow
    model : str or estimator, default "et-group"
        A name for :func:`battlab.plan.surrogates.make_surrogate` or an (unfitted) estimator whose
        ``predict(X, return_std=True)`` gives mean and std (e.g. scikit-learn's GaussianProcessRegressor).
    model_params : dict, optional
        Parameters for a named model.
    acquisition : {"ucb", "ei", "ts", "explore", "mean"}, default "ucb"
    batch : {"auto", "greedy", "believer", "penalize", "thompson"}, default "auto"
        ``"auto"``: Thompson batches for ``acquisition="ts"``, else greedy in a candidate pool and kriging
        believer in a process window (which keeps the designs of a batch apart). The defaults (extra trees with
        chemical-system-calibrated uncertainty, the results floored at their lower quartile, UCB with
        ``kappa=0.1``, greedy batches, exploration after 2 stalled rounds by UCB with ``explore_kappa=1``
        spread over 10 clusters of candidates) are those ``benchmarks/plan.py`` measures on OBELiX.
    maximize : bool
        ``False`` to look for the lowest result.
    kappa, xi : float
        UCB's weight of the uncertainty, EI's minimum improvement (in the model's units: the results, or their
        normal scores with ``transform="rank"``).
    penalty_radius : float
        Radius of ``"penalize"``, as a fraction of the median distance between candidates.
    n_candidates : int
        Sobol candidates drawn in a process window at each suggestion (the best are refined locally).
    transform : {"auto", "floor", "none", "rank"}, default "auto"
        ``"floor"``: the model learns the results with those below the lower quartile of the results measured
        so far (:data:`FLOOR_QUANTILE`) raised to it, so a long tail of very poor results (e.g. conductivities
        censored at 1e-15 S/cm) does not dominate the trees' splits and their spread, while the order and
        the gaps among the better results are kept; predictions below the quartile are reported at it.
        ``"rank"``: the model learns the normal scores of the results (scikit-learn's QuantileTransformer);
        decisions then depend only on the order of the results; predictions are reported back in result
        units (clipped to the measured range). ``"auto"``: ``"floor"`` in a candidate pool, ``"none"`` (the
        results as they are) in a process window.
    explore_after : int, optional
        Once this many suggested rounds in a row brought no result better than the best before them
        (:meth:`stalled_rounds`), ``explore_share`` of each batch explores: the candidates of highest upper
        confidence bound with the larger weight ``explore_kappa`` on the uncertainty, until a result beats the
        best again. A start with no good member otherwise keeps the campaign in a poor region (the model only
        knows that region, and ranks its own region first). 0: never; default: 2 in a candidate pool, 0 in a
        process window (whose Sobol candidates and EI/UCB explore already).
    explore_share : float, default 0.4
        Share of a batch (rounded up) that explores once the results stall.
    explore_kappa : float, default 1.0
        Weight of the uncertainty in the exploring picks' upper confidence bound (``kappa`` is that of the others).
    explore_random_after : int, default 0
        When the exploring picks too have brought no better result for this many rounds (the stall has lasted
        ``explore_after + explore_random_after`` rounds), they are drawn at random from the candidates left
        (with the campaign's seed) until a result beats the best. On a usual random start they cost time; an
        option, not the default (``benchmarks/plan.py``). 0: the exploring picks stay as they are.
    explore_clusters : int, optional
        Spread the exploring picks over this many k-means clusters of the pool's candidates (standardized
        features, :meth:`clusters`): each pick goes to the cluster least measured for its size (its measured,
        pending and failed designs and the batch's earlier picks over its candidates), at the candidate of
        highest upper confidence bound in it. A start that measured a few poor members of a family and none of
        its good ones makes the trees agree that the family is poor: their uncertainty does not point back to
        it, but its share of the measurements does. 0: the exploring picks are the top of the upper confidence
        bound over the whole pool. Default: :data:`CLUSTERS` (10) in a candidate pool; a process window has no
        clusters. On OBELiX (``benchmarks/plan.py``, development seeds 0-19) 10 clusters bring 19 of 20 starts
        with no entry above the 90th percentile to half of the top 5 % within 145 experiments (14 of 20
        without; median 72.5 experiments against 105), and every usual start (median 45, as without).
    seed : int
        Seeds the random start, Thompson draws, exploration, Sobol candidates and the models: same seed, same
        campaign.

    Attributes
    ----------
    observations : pandas.DataFrame
        Every usable result: ``design_id``, ``round``, ``source`` (``suggested`` or ``prior``), the design
        (candidate id or settings) and ``result``.
    pending : pandas.DataFrame
        Suggested designs waiting for a result, with the prediction made when they were suggested.
    failed : pandas.DataFrame
        Designs whose result was missing or not a number, with ``reason``; never used to fit the model and
        never suggested again.
    explore_picks_ : int
        How many designs of the last batch were exploration picks (the last ones of the batch).
    """

    def __init__(self, space: CandidatePool | ProcessWindow, model: str | Any = "et-group",
                 model_params: dict[str, Any] | None = None, acquisition: str = "ucb", batch: str = "auto",
                 maximize: bool = True, kappa: float = 0.1, xi: float = 0.0, penalty_radius: float = 0.25,
                 n_candidates: int = 1024, transform: str = "auto", explore_after: int | None = None,
                 explore_share: float = 0.4, explore_kappa: float = 1.0, explore_random_after: int = 0,
                 explore_clusters: int | None = None, seed: int = 0) -> None:
        if not isinstance(space, (CandidatePool, ProcessWindow)):
            raise BattlabError(f"space must be a CandidatePool or a ProcessWindow, got {type(space).__name__}.")
        if acquisition not in ACQUISITIONS:
            raise BattlabError(f"unknown acquisition {acquisition!r}; choose one of: {', '.join(ACQUISITIONS)}.")
        if batch not in BATCHES:
            raise BattlabError(f"unknown batch strategy {batch!r}; choose one of: {', '.join(BATCHES)}.")
        if batch == "thompson" and acquisition != "ts" or acquisition == "ts" and batch not in ("auto", "thompson"):
            raise BattlabError("Thompson batches go with acquisition='ts' (and acquisition='ts' with "
                               "batch='thompson' or 'auto').")
        if transform not in TRANSFORMS:
            raise BattlabError(f"unknown transform {transform!r}; choose one of: {', '.join(TRANSFORMS)}.")
        if explore_after is not None and (isinstance(explore_after, bool) or not isinstance(explore_after, (
                int, np.integer)) or explore_after < 0):
            raise BattlabError(f"explore_after must be an integer >= 0 (0: never explore), got {explore_after!r}.")
        if not isinstance(explore_share, (int, float, np.number)) or not 0.0 <= float(explore_share) <= 1.0:
            raise BattlabError(f"explore_share must be in [0, 1] (a share of each batch), got {explore_share!r}.")
        if not isinstance(explore_kappa, (int, float, np.number)) or not float(explore_kappa) >= 0.0:
            raise BattlabError(f"explore_kappa must be a number >= 0, got {explore_kappa!r}.")
        if isinstance(explore_random_after, bool) or not isinstance(explore_random_after, (int, np.integer)) or (
                explore_random_after < 0):
            raise BattlabError(f"explore_random_after must be an integer >= 0 (0: never), got "
                               f"{explore_random_after!r}.")
        if explore_clusters is not None and (isinstance(explore_clusters, bool) or not isinstance(
                explore_clusters, (int, np.integer)) or explore_clusters < 0):
            raise BattlabError(f"explore_clusters must be an integer >= 0 (0: no clusters), got {explore_clusters!r}.")
        if explore_clusters and not isinstance(space, CandidatePool):
            raise BattlabError("explore_clusters needs a candidate pool (a process window's candidates are drawn "
                               "anew each round).")
        if isinstance(model, str):
            make_surrogate(model, seed=0, **dict(model_params or {}))  # fails now on a bad name or parameter
        elif not hasattr(model, "fit") or not hasattr(model, "predict"):
            raise BattlabError(f"model must be a surrogate name or an estimator with fit/predict, got {model!r}.")
        self.space = space
        self.model = model
        self.model_params = dict(model_params or {})
        self.acquisition = acquisition
        self.batch = batch
        self.maximize = bool(maximize)
        self.kappa = float(kappa)
        self.xi = float(xi)
        self.penalty_radius = float(penalty_radius)
        self.n_candidates = int(n_candidates)
        self.transform = transform
        self.explore_after = None if explore_after is None else int(explore_after)
        self.explore_share = float(explore_share)
        self.explore_kappa = float(explore_kappa)
        self.explore_random_after = int(explore_random_after)
        self.explore_clusters = None if explore_clusters is None else int(explore_clusters)
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.round = 0
        self.n_designs = 0
        design_cols = self._design_columns()
        self.observations = pd.DataFrame(columns=[*_META, *design_cols, "result"])
        self.pending = pd.DataFrame(columns=["design_id", "round", "mean", "std", "acquisition", *design_cols])
        self.failed = pd.DataFrame(columns=[*_META, *design_cols, "result", "reason"])
        self.model_: Any = None
        self.transformer_: Any = None
        self.explore_picks_ = 0
        self._cluster_labels: np.ndarray | None = None

    # ----------------------------------------------------------------------------------------------- designs
    def _design_columns(self) -> list[str]:
        if isinstance(self.space, ProcessWindow):
            return list(self.space.names)
        pool = self.space
        return [c for c in dict.fromkeys([pool.id_column, pool.formula_column, pool.group_column]) if c]

    def _design_table(self, ids: Sequence[str], settings: pd.DataFrame | None = None) -> pd.DataFrame:
        """Rows ``design_id`` + design columns (pool: id and formula/group columns; window: settings)."""
        if isinstance(self.space, CandidatePool):
            rows = self.space.rows(ids)[self._design_columns()].reset_index(drop=True)
        else:
            rows = settings.reset_index(drop=True)
        return pd.concat([pd.DataFrame({"design_id": list(ids)}), rows], axis=1)

    def _features(self, table: pd.DataFrame) -> np.ndarray:
        if isinstance(self.space, CandidatePool):
            return self.space.features(self.space.rows(table["design_id"]))
        return self.space.features(table)

    def _groups(self, ids: Sequence[str]) -> np.ndarray | None:
        if not isinstance(self.space, CandidatePool):
            return None
        groups = self.space.groups()
        if groups is None:
            return None
        pos = {d: i for i, d in enumerate(self.space.ids)}
        return groups[[pos[str(i)] for i in ids]]

    def _new_ids(self, n: int) -> list[str]:
        ids = [f"d{self.n_designs + k + 1:04d}" for k in range(n)]
        self.n_designs += n
        return ids

    # ------------------------------------------------------------------------------------------------ models
    def _surrogate(self) -> Any:
        if isinstance(self.model, str):
            return make_surrogate(self.model, seed=self.seed, **self.model_params)
        return clone(self.model)

    def _fit(self, model: Any, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> Any:
        if _accepts(model.fit, "groups"):
            return model.fit(X, y, groups=groups)
        return model.fit(X, y)

    def _predict(self, model: Any, X: np.ndarray, groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        try:
            if _accepts(model.predict, "groups"):
                mean, std = model.predict(X, return_std=True, groups=groups)
            else:
                mean, std = model.predict(X, return_std=True)
        except TypeError:
            raise BattlabError(f"model {type(model).__name__} gives no uncertainty: it needs "
                               "predict(X, return_std=True).") from None
        return np.asarray(mean, dtype=float), np.maximum(np.asarray(std, dtype=float), 1e-12)

    def _sample(self, model: Any, X: np.ndarray, n: int, groups: np.ndarray | None) -> np.ndarray:
        if hasattr(model, "sample"):
            if _accepts(model.sample, "groups"):
                return model.sample(X, n, self.rng, groups=groups)
            return model.sample(X, n, self.rng)
        mean, std = self._predict(model, X, groups)
        return mean + std * self.rng.standard_normal((n, len(X)))

    def _condition(self, model: Any, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> Any:
        if hasattr(model, "condition"):
            return model.condition(X, y, groups=groups) if _accepts(model.condition, "groups") \
                else model.condition(X, y)
        return self._fit(clone(model), X, y, groups)

    def _score(self, mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
        if self.acquisition == "ei":
            return expected_improvement(mean, std, best, self.xi)
        if self.acquisition == "ucb":
            return upper_confidence_bound(mean, std, self.kappa)
        if self.acquisition == "explore":
            return exploration(mean, std)
        return exploitation(mean, std)

    # ------------------------------------------------------------------------------------------ ask and tell
    def _candidates(self, model: Any | None, best: float) -> tuple[pd.DataFrame, np.ndarray]:
        """Candidate designs (``design_id`` + design columns) and their feature matrix."""
        if isinstance(self.space, CandidatePool):
            used = self._used_ids()
            ids = [d for d in self.space.ids if d not in used]
            table = self._design_table(ids)
            return table, self._features(table)
        designs = self.space.sample(self.n_candidates, self.rng)
        if model is not None:  # refine: random neighbours of the best few candidates
            mean, std = self._predict(model, self.space.features(designs), None)
            top = designs.iloc[_top(self._score(mean, std, best), 8)]
            near = [self.space.perturb(top, scale, self.rng) for scale in (0.02, 0.05, 0.1) for _ in range(8)]
            designs = pd.concat([designs, *near], ignore_index=True)
        table = pd.concat([pd.DataFrame({"design_id": [""] * len(designs)}), designs], axis=1)
        return table, self.space.features(designs)

    def _training(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        obs = self.observations
        y = obs["result"].to_numpy(dtype=float) * (1.0 if self.maximize else -1.0)
        return self._features(obs), y, self._groups(obs["design_id"])

    def suggest(self, batch_size: int = 1) -> pd.DataFrame:
        """The next ``batch_size`` experiments, with the model's prediction for each.

        Before two results are known the batch is a random start (pool) or a Sobol design (window).

        Returns
        -------
        pandas.DataFrame
            ``design_id``, ``round``, ``mean`` and ``std`` of the predicted result, ``acquisition`` (its
            value when the design was picked) and the design columns. The designs become :attr:`pending`.

        Raises
        ------
        BattlabError
            A bad batch size, or a pool with no candidate left.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise BattlabError(f"batch_size must be an integer >= 1, got {batch_size!r}.")
        cold = len(self.observations) < 2
        model, best = None, -np.inf
        groups_obs = None
        if not cold:
            X, y, groups_obs = self._training()
            y = _comparable(y)  # the last bits of a result (Excel keeps ~15 digits) do not change the model
            self.transformer_ = None
            if self._transform() == "floor":
                y = np.maximum(y, np.quantile(y, FLOOR_QUANTILE))
            elif self._transform() == "rank":
                from sklearn.preprocessing import QuantileTransformer

                self.transformer_ = QuantileTransformer(n_quantiles=min(1000, len(y)), output_distribution="normal")
                y = self.transformer_.fit_transform(y[:, None])[:, 0]
            model = self._fit(self._surrogate(), X, y, groups_obs)
            best = float(y.max())
        table, Xc = self._candidates(model, best)
        if len(table) == 0:
            raise BattlabError("no candidate left in the pool: every one is measured, pending or failed.")
        batch_size = int(min(batch_size, len(table)))
        groups_c = self._groups(table["design_id"]) if isinstance(self.space, CandidatePool) else None
        if cold:
            picks = (self.rng.choice(len(table), batch_size, replace=False) if isinstance(self.space, CandidatePool)
                     else np.arange(batch_size))
            mean = std = score = np.full(batch_size, np.nan)
            self.explore_picks_ = 0
        else:
            picks, score = self._select(model, X, y, groups_obs, Xc, groups_c, best, batch_size)
            mean, std = self._predict(model, Xc[picks], None if groups_c is None else groups_c[picks])
            if self.transformer_ is not None:  # back to result units: the mean, and half the width of +-1 std
                back = [self.transformer_.inverse_transform(v[:, None])[:, 0] for v in (mean - std, mean, mean + std)]
                mean, std = back[1], (back[2] - back[0]) / 2
        self.model_ = model
        sign = 1.0 if self.maximize else -1.0
        out = table.iloc[picks].reset_index(drop=True)
        if isinstance(self.space, ProcessWindow):
            out["design_id"] = self._new_ids(len(out))
        self.round += 1
        out.insert(1, "round", self.round)
        out.insert(2, "mean", sign * mean)
        out.insert(3, "std", std)
        out.insert(4, "acquisition", score)
        self.pending = pd.concat([self.pending, out], ignore_index=True) if len(self.pending) else out.copy()
        return out

    def _select(self, model: Any, X: np.ndarray, y: np.ndarray, groups_obs: np.ndarray | None, Xc: np.ndarray,
                groups_c: np.ndarray | None, best: float, k: int) -> tuple[np.ndarray, np.ndarray]:
        batch = self.batch if self.batch != "auto" else ("thompson" if self.acquisition == "ts" else
                                                         "greedy" if isinstance(self.space, CandidatePool) else
                                                         "believer")
        stalled = self.stalled_rounds()  # once per suggestion: it walks every round's results
        n_explore = self._n_explore(k, stalled)
        self.explore_picks_ = n_explore
        if not n_explore:
            return self._select_kind(batch, model, X, y, groups_obs, Xc, groups_c, best, k)
        picks: list[int] = []
        values: list[float] = []
        if k > n_explore:
            first, first_values = self._select_kind(batch, model, X, y, groups_obs, Xc, groups_c, best, k - n_explore)
            picks, values = [int(j) for j in first], [float(v) for v in first_values]
        # exploration: the upper confidence bound with more weight on the uncertainty (the model that stalled
        # ranks its own region first), spread over the pool's clusters when there are any, or random picks once
        # that too has stalled for explore_random_after rounds; the acquisition reported is their score under the
        # campaign's acquisition
        mean, std = self._predict(model, Xc, groups_c)
        score = self._score(mean, std, best)
        bound = upper_confidence_bound(mean, std, self.explore_kappa)
        if self.explore_random_after and stalled >= self._explore_after() + self.explore_random_after:
            left = np.setdiff1d(np.arange(len(Xc)), picks)
            chosen = self.rng.choice(left, min(n_explore, len(left)), replace=False)
        elif self._explore_clusters():
            chosen = self._cluster_picks(bound, picks, n_explore)
        else:
            bound[picks] = -np.inf
            chosen = _top(bound, n_explore)
        picks += [int(j) for j in chosen]
        values += [float(score[j]) for j in chosen]
        return np.array(picks), np.array(values)

    def clusters(self) -> np.ndarray:
        """The cluster of each candidate of the pool (k-means, ``explore_clusters`` clusters, on the standardized
        features; seeded with the campaign's seed), in the pool's order."""
        if not self._explore_clusters():
            raise BattlabError("clusters are made in a candidate pool with explore_clusters > 0.")
        if self._cluster_labels is None:
            from sklearn.cluster import KMeans

            Z = self._standardized(self.space.features(self.space.table))
            k = int(min(self._explore_clusters(), len(np.unique(Z, axis=0))))
            self._cluster_labels = KMeans(k, n_init=4, random_state=self.seed).fit_predict(Z)
        return self._cluster_labels

    def _cluster_picks(self, bound: np.ndarray, picks: list[int], n: int) -> list[int]:
        """``n`` exploring picks, each from the cluster least measured for its size (measured, pending and
        failed designs and the batch's ``picks`` count; ties: the larger upper confidence bound), the best bound
        within it."""
        labels = self.clusters()
        used = np.isin(self.space.ids.to_numpy(), list(self._used_ids()))
        k = int(labels.max()) + 1
        cand = labels[~used]  # the candidates of this suggestion: the pool's unused ids, in the pool's order
        measured = np.bincount(np.r_[labels[used], cand[picks]].astype(int), minlength=k).astype(float)
        size = np.bincount(labels, minlength=k).astype(float)
        bound = bound.astype(float).copy()
        bound[picks] = -np.inf
        chosen: list[int] = []
        for _ in range(n):
            open_ = np.isfinite(bound)
            if not open_.any():
                break
            best_in = np.full(k, -np.inf)
            np.maximum.at(best_in, cand[open_], bound[open_])
            share = np.where(np.isfinite(best_in), measured / size, np.inf)
            c = min(range(k), key=lambda j: (share[j], -best_in[j]))
            j = int(np.flatnonzero(open_ & (cand == c))[np.argmax(bound[open_ & (cand == c)])])
            chosen.append(j)
            bound[j] = -np.inf
            measured[c] += 1
        return chosen

    def _used_ids(self) -> set[str]:
        return set(self.observations["design_id"]) | set(self.pending["design_id"]) | set(self.failed["design_id"])

    def _transform(self) -> str:
        if self.transform == "auto":
            return "floor" if isinstance(self.space, CandidatePool) else "none"
        return self.transform

    def stalled_rounds(self) -> int:
        """Suggested rounds in a row, up to the last one with a result, whose results did not beat the best
        result known before them (the random start, and rounds without a usable result, do not count).

        Once it reaches ``explore_after``, part of each batch (``explore_share``) explores.
        """
        obs = self.observations
        suggested = (obs["source"] == "suggested").to_numpy()
        if not suggested.any():
            return 0
        result = (1.0 if self.maximize else -1.0) * obs["result"].to_numpy(dtype=float)
        rounds = obs["round"].to_numpy(dtype=int)
        count = 0
        for r in np.unique(rounds[suggested]):
            before = result[(rounds < r) | ~suggested & (rounds <= r)]
            here = result[(rounds == r) & suggested]
            count = count + 1 if len(before) and here.max() <= before.max() else 0
        return count

    def _explore_after(self) -> int:
        if self.explore_after is None:
            return 2 if isinstance(self.space, CandidatePool) else 0
        return self.explore_after

    def _explore_clusters(self) -> int:
        if self.explore_clusters is None:
            return CLUSTERS if isinstance(self.space, CandidatePool) else 0
        return self.explore_clusters

    def _n_explore(self, k: int, stalled: int) -> int:
        after = self._explore_after()
        if after == 0 or self.explore_share == 0 or stalled < after:
            return 0
        return int(min(k, np.ceil(self.explore_share * k - 1e-9)))

    def _select_kind(self, batch: str, model: Any, X: np.ndarray, y: np.ndarray, groups_obs: np.ndarray | None,
                     Xc: np.ndarray, groups_c: np.ndarray | None, best: float, k: int) -> tuple[np.ndarray, np.ndarray]:
        picks: list[int] = []
        values: list[float] = []
        if batch == "thompson":
            draws = self._sample(model, Xc, k, groups_c)
            for d in draws:
                picks.append(_best_unpicked(d, picks))
                values.append(float(d[picks[-1]]))
            return np.array(picks), np.array(values)
        mean, std = self._predict(model, Xc, groups_c)
        score = self._score(mean, std, best)
        if batch == "greedy":
            order = _top(score, k)
            return order, score[order]
        if batch == "penalize":
            Z = self._standardized(Xc)
            length = self.penalty_radius * self._median_distance(Z)
            weight = score - score.min() + 1e-12
            for _ in range(k):
                j = _best_unpicked(weight, picks)
                picks.append(j)
                values.append(float(score[j]))
                d2 = np.sum((Z - Z[j]) ** 2, axis=1)
                weight = weight * (1.0 - np.exp(-0.5 * d2 / max(length, 1e-12) ** 2))
            return np.array(picks), np.array(values)
        # kriging believer
        Xf, yf = X.copy(), y.copy()
        gf = None if groups_obs is None else groups_obs.copy()
        current = model
        for _ in range(k):
            j = _best_unpicked(score, picks)
            picks.append(j)
            values.append(float(score[j]))
            if len(picks) == k:
                break
            Xf = np.vstack([Xf, Xc[j]])
            yf = np.append(yf, mean[j])
            if gf is not None and groups_c is not None:
                gf = np.append(gf, groups_c[j])
            best = max(best, float(mean[j]))
            current = self._condition(current, Xf, yf, gf)
            mean, std = self._predict(current, Xc, groups_c)
            score = self._score(mean, std, best)
        return np.array(picks), np.array(values)

    @staticmethod
    def _standardized(X: np.ndarray) -> np.ndarray:
        X = np.where(np.isfinite(X), X, np.nan)
        mu, sd = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
        Z = (X - mu) / np.where(sd > 0, sd, 1.0)
        return np.nan_to_num(Z)

    def _median_distance(self, Z: np.ndarray) -> float:
        rng = np.random.default_rng(self.seed)  # its own generator: the campaign's draws stay unchanged
        a, b = rng.integers(0, len(Z), size=(2, min(2000, len(Z) ** 2)))
        d = np.sqrt(np.sum((Z[a] - Z[b]) ** 2, axis=1))
        d = d[d > 0]
        return float(np.median(d)) if len(d) else 1.0

    @staticmethod
    def _parse_results(results: Any, n: int) -> tuple[list[float], list[str]]:
        values = list(results.tolist() if hasattr(results, "tolist") else
                      ([results] if np.isscalar(results) else results))
        if len(values) != n:
            raise BattlabError(f"got {len(values)} result(s) for {n} design(s).")
        out, reasons = [], []
        for v in values:
            try:
                f = float(v)
            except (TypeError, ValueError):
                out.append(float("nan"))
                reasons.append(f"result {v!r} is not a number")
                continue
            out.append(f)
            reasons.append("result is missing (NaN)" if np.isnan(f) else
                           "result is not finite" if not np.isfinite(f) else "")
        return out, reasons

    @staticmethod
    def _ids(designs: Any) -> list[str]:
        if isinstance(designs, pd.DataFrame):
            if "design_id" not in designs.columns:
                raise BattlabError("the designs table has no 'design_id' column (pass the table suggest() "
                                   "returned, or a list of design ids).")
            return designs["design_id"].astype(str).tolist()
        if isinstance(designs, str):
            return [designs]
        return [str(d) for d in designs]

    def observe(self, designs: Any, results: Any) -> pd.DataFrame:
        """Record the results of suggested designs.

        Parameters
        ----------
        designs : DataFrame with ``design_id``, or a sequence of design ids
        results : sequence of numbers, same length (or a column name of ``designs``)

        Returns
        -------
        pandas.DataFrame
            One row per design: ``design_id``, ``result``, ``status`` (``observed`` or ``failed``), ``reason``.

        Raises
        ------
        BattlabError
            A design that was never suggested, observed twice, or a length mismatch; nothing is recorded then.
        """
        ids = self._ids(designs)
        if isinstance(results, str) and isinstance(designs, pd.DataFrame):
            if results not in designs.columns:
                raise BattlabError(f"the designs table has no result column {results!r}.")
            results = designs[results]
        values, reasons = self._parse_results(results, len(ids))
        check_suggested(ids, set(self.pending["design_id"]),
                        {"already observed": set(self.observations["design_id"]),
                         "already recorded as failed": set(self.failed["design_id"])})
        rows = self.pending.set_index("design_id").loc[ids].reset_index()
        rows = rows[["design_id", "round", *self._design_columns()]].assign(source="suggested")
        self.pending = self.pending[~self.pending["design_id"].isin(ids)].reset_index(drop=True)
        return self._record(rows, values, reasons)

    def add_data(self, designs: Any, results: Any) -> pd.DataFrame:
        """Record experiments the campaign did not suggest (earlier work, another plan).

        Parameters
        ----------
        designs
            Pool: candidate ids (or a table with the pool's id column). Window: a table of settings, checked
            against the bounds and constraints (the first bad row and column are named).
        results
            One number per design; missing or non-numeric ones are kept aside in :attr:`failed`.
        """
        if isinstance(self.space, CandidatePool):
            if isinstance(designs, pd.DataFrame):
                col = self.space.id_column
                if col is None or col not in designs.columns:
                    raise BattlabError(f"the table of earlier experiments needs the pool's id column {col!r}.")
                ids = designs[col].astype(str).tolist()
            else:
                ids = self._ids(designs)
            self.space.rows(ids)  # unknown ids raise here
            known = set(self.observations["design_id"]) | set(self.failed["design_id"])
            again = [d for d in ids if d in known]
            if again:
                raise BattlabError(f"candidate {again[0]!r} already has a result; nothing recorded.")
            values, reasons = self._parse_results(results, len(ids))
            rows = self._design_table(ids)
            self.pending = self.pending[~self.pending["design_id"].isin(ids)].reset_index(drop=True)
        else:
            if not isinstance(designs, pd.DataFrame):
                raise BattlabError("earlier experiments in a process window are a table of settings.")
            self.space.check(designs, "earlier experiments")
            values, reasons = self._parse_results(results, len(designs))
            settings = designs[self.space.names].reset_index(drop=True)
            rows = self._design_table(self._new_ids(len(designs)), settings)
        rows.insert(1, "round", self.round)
        return self._record(rows.assign(source="prior"), values, reasons)

    def _record(self, rows: pd.DataFrame, values: list[float], reasons: list[str]) -> pd.DataFrame:
        rows = rows.assign(result=values)
        bad = np.array([bool(r) for r in reasons], dtype=bool)
        cols = [*_META, *self._design_columns(), "result"]
        good_rows = rows.loc[~bad, cols]
        bad_rows = rows.loc[bad, cols].assign(reason=[r for r in reasons if r])
        if len(good_rows):
            self.observations = (pd.concat([self.observations, good_rows], ignore_index=True)
                                 if len(self.observations) else good_rows.reset_index(drop=True))
        if len(bad_rows):
            self.failed = (pd.concat([self.failed, bad_rows], ignore_index=True)
                           if len(self.failed) else bad_rows.reset_index(drop=True))
        return pd.DataFrame({"design_id": rows["design_id"].to_numpy(), "result": values,
                             "status": np.where(bad, "failed", "observed"), "reason": reasons})

    @property
    def best(self) -> pd.Series | None:
        """The best observation so far (``None`` before any)."""
        if not len(self.observations):
            return None
        y = self.observations["result"].astype(float)
        return self.observations.loc[y.idxmax() if self.maximize else y.idxmin()]

    # ------------------------------------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Write the campaign to ``directory``: ``campaign.json`` (settings, space, counters, random state),
        the tables as parquet (``observations``, ``pending``, ``failed``, the pool) and a custom model as
        ``model.joblib``. Returns the folder."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        model: Any = self.model
        if not isinstance(self.model, str):
            import joblib

            joblib.dump(self.model, out / "model.joblib")
            model = {"file": "model.joblib", "class": type(self.model).__name__}
        state = {
            "format": "battlab.plan.Campaign", "version": STATE_VERSION, "battlab_version": __version__,
            "space": self.space.to_dict(), "model": model, "model_params": self.model_params,
            "settings": {k: getattr(self, k) for k in ("acquisition", "batch", "maximize", "kappa", "xi",
                                                        "penalty_radius", "n_candidates", "transform",
                                                        "explore_after", "explore_share", "explore_kappa",
                                                        "explore_random_after", "explore_clusters", "seed")},
            "round": self.round, "n_designs": self.n_designs, "rng": self.rng.bit_generator.state,
        }
        (out / "campaign.json").write_text(json.dumps(state, indent=1, default=str))
        for name in ("observations", "pending", "failed"):
            _to_parquet(getattr(self, name), out / f"{name}.parquet")
        if isinstance(self.space, CandidatePool):
            self.space.table.to_parquet(out / "pool.parquet", index=False)
        return out

    @classmethod
    def load(cls, directory: str | Path) -> Campaign:
        """Read a campaign written by :meth:`save`.

        Raises
        ------
        BattlabError
            A missing file, not a campaign, or a state version this battlab cannot read.
        """
        folder = Path(directory)
        for name in _FILES:
            if not (folder / name).is_file():
                raise BattlabError(f"{folder}: no {name}; not a saved campaign (Campaign.save writes it).")
        try:
            state = json.loads((folder / "campaign.json").read_text())
        except json.JSONDecodeError as exc:
            raise BattlabError(f"{folder / 'campaign.json'} is not valid JSON: {exc}") from None
        if state.get("format") != "battlab.plan.Campaign":
            raise BattlabError(f"{folder / 'campaign.json'} is not a battlab campaign.")
        if state.get("version") != STATE_VERSION:
            raise BattlabError(f"{folder / 'campaign.json'}: state version {state.get('version')!r}; this battlab "
                               f"reads version {STATE_VERSION}.")
        spec = state["space"]
        if spec["kind"] == "pool":
            if not (folder / "pool.parquet").is_file():
                raise BattlabError(f"{folder}: no pool.parquet for the campaign's candidate pool.")
            space: CandidatePool | ProcessWindow = CandidatePool(
                pd.read_parquet(folder / "pool.parquet"), features=spec["features"], id_column=spec["id_column"],
                group_column=spec["group_column"], formula_column=spec["formula_column"])
        else:
            space = ProcessWindow(spec["params"], spec["constraints"])
        model = state["model"]
        if isinstance(model, dict):
            import joblib

            model = joblib.load(folder / model["file"])
        # saved before exploration (or its random picks) existed: it goes on without
        settings = {"explore_after": 0, "explore_random_after": 0, "explore_clusters": 0, **state["settings"]}
        campaign = cls(space, model=model, model_params=state["model_params"], **settings)
        campaign.round, campaign.n_designs = int(state["round"]), int(state["n_designs"])
        campaign.rng.bit_generator.state = state["rng"]
        for name in ("observations", "pending", "failed"):
            table = pd.read_parquet(folder / f"{name}.parquet")
            if "design_id" in table:
                table["design_id"] = table["design_id"].astype(str)
            setattr(campaign, name, table if len(table) else getattr(campaign, name))
        return campaign

    def __repr__(self) -> str:
        model = self.model if isinstance(self.model, str) else type(self.model).__name__
        return (f"Campaign({self.space.kind}, model={model!r}, acquisition={self.acquisition!r}, "
                f"batch={self.batch!r}, {len(self.observations)} observed, {len(self.pending)} pending, "
                f"{len(self.failed)} failed)")


def check_suggested(ids: Sequence[str], pending: set[str], recorded: dict[str, set[str]], tail: str = "") -> None:
    """Raise a :class:`BattlabError` unless every id of ``ids`` is pending, once (before anything is recorded).

    ``recorded`` maps what a known id was (``"already observed"``) to those ids; ``tail`` ends the
    never-suggested message. Shared by :meth:`Campaign.observe` and the electrode campaign.
    """
    dup = pd.Series(list(ids))[pd.Series(list(ids)).duplicated()]
    if len(dup):
        raise BattlabError(f"design {dup.iloc[0]!r} appears twice in this call; give one result per design.")
    for d in ids:
        if d in pending:
            continue
        for what, known in recorded.items():
            if d in known:
                raise BattlabError(f"design {d!r} was {what}; nothing recorded.")
        raise BattlabError(f"design {d!r} was never suggested by this campaign (pending: {len(pending)} "
                           f"designs); use add_data() for experiments planned elsewhere{tail}.")


#: Significant digits the results are learnt at and the acquisition values compared at: differences in the last
#: bits (a table that went through Excel, which keeps ~15 digits) change neither the model (floored results tie,
#: and a tree's split between equal gains would follow those bits) nor the order of candidates; exact ties go to
#: the first in the pool.
RANK_DIGITS = 10


def _comparable(values: np.ndarray) -> np.ndarray:
    """``values`` rounded to :data:`RANK_DIGITS` significant digits (of the largest finite magnitude).

    >>> _comparable(np.array([1.0, 1.0 + 1e-14, 0.5])).tolist()
    [1.0, 1.0, 0.5]
    """
    values = np.asarray(values, dtype=float)
    finite = np.abs(values[np.isfinite(values)])
    scale = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    decimals = RANK_DIGITS - 1 - int(np.floor(np.log10(scale)))
    return np.round(values, decimals)


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest values, compared at :data:`RANK_DIGITS` digits, ties in pool order."""
    return np.argsort(-_comparable(values), kind="stable")[:k]


def _best_unpicked(values: np.ndarray, picks: list[int]) -> int:
    """Position of the largest value not yet in the batch (compared as :func:`_top` does)."""
    values = np.asarray(values, dtype=float).copy()
    values[picks] = -np.inf
    return int(_top(values, 1)[0])


def _to_parquet(table: pd.DataFrame, path: Path) -> None:
    table = table.copy()
    for col in table.columns:
        if table[col].dtype == object:
            values = table[col]
            numeric = pd.to_numeric(values, errors="coerce")
            if values.notna().sum() and numeric.notna().sum() == values.notna().sum() and col != "design_id":
                table[col] = numeric
            else:
                table[col] = values.astype("string")
    table.to_parquet(path, index=False)

