"""Retrospective screening on OBELiX: how much faster does battlab.plan find the best Li-ion conductors?

    python benchmarks/plan.py                          # reported seed sets 100-119 ... 500-519, every method
    python benchmarks/plan.py --seeds 500-519 --methods default,random   # the set run once at the end
    python benchmarks/plan.py --seeds 0-19 --methods default,et_group_ucb   # the development seeds

The pool is OBELiX's 599 entries (curated without merging, censored conductivities set to 1e-15 S/cm as in
OBELiX's processed.csv), featurized by ``battlab.featurize.featurize_table`` (composition and structure
descriptors, 172 features); the target is log10 of the ionic conductivity. Each campaign starts from 20
random entries (drawn by the campaign's seed), then suggests batches of 5, "measuring" each by looking up
its true value, until it has found every entry of the top 5 % (30 entries, log10 sigma >= -2.31) or spent
145 experiments (``--budget``: the most a campaign may take to half of the top with AF >= 2). Figures of merit
after Rohr et al. (Chem. Sci. 2020, 11, 2696), against random search:
``AF(x)`` = expected random experiments to find a share x of the top / median experiments of the method;
``EF(n)`` = share of the top found after n experiments / n / N. The headline is AF at half of the top
(15 entries: random search needs 290 experiments on average). Per seed, AF = 290.3 / that campaign's
experiments to 15 (0 when it did not get there within the budget); the benchmark prints them, their minimum and
how many campaigns got there within 100 experiments.

Methods (all through ``battlab.plan.Campaign``; surrogate, acquisition, batch):

- ``default`` — ``Campaign(pool)`` with its defaults, as users get them (the headline): extra trees with the
  spread calibrated on held-out chemical systems, learning the results with the poorest quarter raised to the
  lower quartile (``transform="floor"``), UCB (kappa 0.1), greedy batches, and exploration once 2 rounds in a
  row bring no better result (2 of each 5 picks by UCB with kappa 1, ``explore_kappa``, each from the least
  measured of 10 k-means clusters of the candidates, ``explore_clusters``, until a result beats the best);
- ``ucb_explore`` — ``default`` with ``explore_clusters=0``: the exploring picks are the top of the bound over
  the whole pool (the default until clusters were added);
- ``random_explore`` — ``default`` with ``explore_random_after=1``: once the exploring picks too stall for a
  round, they are random picks until a result beats the best (an option; not the default, see below);
- ``random`` — random search, simulated on the same seeds (beside the analytic expectation);
- the earlier planners, on the raw results and without exploration on a stall (``transform="none"``,
  ``explore_after=0``):
  ``et_group_ucb`` — the former headline, ``default`` without the floor and the exploration;
  ``et_mean`` — extra trees (100 trees, max_features 0.3), pure exploitation (ignores uncertainty);
  ``et_ucb`` — extra trees, UCB (kappa 0.1) on the raw spread of the trees;
  ``et_random_ucb`` — the spread rescaled to the errors of a random 5-fold (``GroupCalibrated``), UCB;
  ``et_group_ei`` — grouped uncertainty, expected improvement;
  ``et_ts`` — Thompson sampling over trees;
  ``gp_ei`` — scikit-learn Gaussian process (Matern 5/2 + noise), EI, kriging-believer batches;
  ``lgbm_ucb`` — 5 bagged LightGBM models (the zoo's defaults), UCB (kappa 0.1);
  ``explore`` — pure exploration (grouped uncertainty).

Settings were chosen on development seeds only: kappa, max_features and greedy batches on seeds 0-9 (budget 150);
the exploration's trigger and share (2 stalled rounds, 0.4 of a batch) on seeds 0-19 and on "hard starts" of the
same seeds (20 entries drawn below the 90th percentile); the floor (lower quartile) and the exploring picks (UCB
with kappa 1 rather than random picks, k-means clusters, max-min distance, a second surrogate, neighbours of the
best, a growing share or a half-random mix) on seeds 0-19, the one criterion being every seed reaching half of
the top within 100 experiments; ``explore_random_after`` on seeds 0-19 and their hard starts (1 brought every hard
start to half of the top within 145, but left one usual start beyond 100, so it is not the default); the
exploring picks' clusters (``explore_clusters``: 0, 6, 10, 16, all or half of the exploring picks, from the first
stalled round or the next) on seeds 0-19 and their hard starts, the criterion being the issue's: every usual start
within 145 experiments (AF >= 2) at an unchanged median, then the most hard starts within 145 (10 clusters: 19 of
20, 14 without). Reported on seeds 100-119 and 200-219 (both seen when the exploration's trigger was set), on seeds
300-319 (first run with the exploration's defaults), on seeds 400-419 (run once with them, before the clusters)
and on seeds 500-519, run once at the end with the clusters and never looked at before. ``--hard-starts`` replays the
development check: each campaign's first 20 entries are drawn below the 90th percentile.

Data come from the battlab cache (``BATTLAB_DATA``); when that is unset and ``../shared/datasets`` exists
beside the repository, a temporary cache is filled from it. Prints ``name: value`` lines per seed set, then
``obelix_acceleration_factor_top5`` (the lowest AF at half of the top 5 % of the headline method ``default`` over
the seed sets) last; exits 1 if it could not measure.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np
from matbench import _ensure_data  # BATTLAB_DATA, filled from ../shared/datasets when unset

HEADLINE = "default"
# name -> Campaign keyword arguments; the baselines neither explore on a stall nor floor the results (as before)
_FIXED = {"explore_after": 0, "transform": "none"}
METHODS: dict[str, dict[str, Any]] = {
    "default": {},  # Campaign's defaults: et-group, UCB kappa 0.1, greedy batches, exploration after 2 stalled rounds
    "ucb_explore": {"explore_clusters": 0},  # the default before clusters: exploring picks by the bound alone
    "random_explore": {"explore_random_after": 1},  # the default, then random exploring picks after a further stall
    "et_group_ucb": {"model": "et-group", "acquisition": "ucb", "batch": "greedy", "kappa": 0.1, **_FIXED},
    "et_mean": {"model": "et", "acquisition": "mean", "batch": "greedy", **_FIXED},
    "et_ucb": {"model": "et", "acquisition": "ucb", "batch": "greedy", "kappa": 0.1, **_FIXED},
    "et_random_ucb": {"model": "et-random", "acquisition": "ucb", "batch": "greedy", "kappa": 0.1, **_FIXED},
    "et_group_ei": {"model": "et-group", "acquisition": "ei", "batch": "greedy", **_FIXED},
    "et_ts": {"model": "et", "acquisition": "ts", **_FIXED},
    "gp_ei": {"model": "gp", "model_params": {"n_restarts": 0}, "acquisition": "ei", "batch": "believer", **_FIXED},
    "lgbm_ucb": {"model": "lgbm", "model_params": {"n_members": 5}, "acquisition": "ucb", "batch": "greedy",
                 "kappa": 0.1, **_FIXED},
    "explore": {"model": "et-group", "acquisition": "explore", "batch": "greedy", **_FIXED},
}


def obelix_pool() -> tuple[Any, np.ndarray]:
    """OBELiX as a candidate pool (ids "0".."598") and the true log10 conductivities."""
    from battlab.plan.screening import dataset_pool

    sp = dataset_pool("obelix")
    if len(sp.left_out):
        raise ValueError(f"{len(sp.left_out)} OBELiX rows left out of the pool: {sp.left_out['reason'].unique()}")
    return sp.pool, sp.y


def _seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", nargs="+", default=["100-119", "200-219", "300-319", "400-419", "500-519"],
                        help="seed sets, e.g. 100-119 200-219 300-319 400-419 500-519 (reported) or 0-19 "
                             "(development)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of the methods")
    parser.add_argument("--budget", type=int, default=145,
                        help="experiments per campaign (20 initial included); default 145, the most a campaign may "
                             "take to half of the top with AF >= 2 (290.3 / 145 = 2.002)")
    parser.add_argument("--out", default=None, help="folder for per-method JSON/CSV results")
    parser.add_argument("--hard-starts", action="store_true",
                        help="development check: the 20 starting entries are drawn below the 90th percentile")
    args = parser.parse_args()
    _ensure_data()
    os.environ.setdefault("BATTLAB_OFFLINE", "1")
    try:
        from battlab.plan import Campaign
        from battlab.plan.screening import expected_random_experiments, screen, top_mask

        sets = {text: _seeds(text) for text in args.seeds}
        methods = [m for m in args.methods.split(",") if m]
        unknown = [m for m in methods if m not in METHODS and m != "random"]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; methods are random, {', '.join(METHODS)}")
        pool, y = obelix_pool()
        top = top_mask(y, 0.05)
        n, k = len(y), int(top.sum())
        half = int(np.ceil(0.5 * k))
        random_half = expected_random_experiments(half, k, n)
        print(f"pool: {n}")
        print(f"top5_count: {k}")
        print(f"top5_threshold_log10: {np.sort(y)[::-1][k - 1]:.3f}")
        print(f"seed_sets: {' '.join(sets)}")
        print(f"random_expected_experiments_half_top5: {random_half:.1f}")
        headline: dict[str, float] = {}
        for label, seeds in sets.items():
            tag = "seeds_" + label.replace("-", "_").replace(",", "_")
            for name in methods:
                if name == "random":
                    make = _random_campaign(pool)
                else:
                    make = _factory(Campaign, pool, METHODS[name])
                if args.hard_starts:
                    make = _hard_start(make, y)
                res = screen(name, make, y, seeds, budget=args.budget, ef_at=(50, 100))
                if args.out:
                    res.save(os.path.join(args.out, tag))
                for share in res.af:  # nan: most campaigns did not get there within the budget (see reached)
                    af = res.af[share] if np.isfinite(res.experiments[share]) else float("nan")
                    print(f"{name}_{tag}_experiments_to_{int(share * 100)}pct_top5: {res.experiments[share]:.1f}")
                    print(f"{name}_{tag}_af_{int(share * 100)}pct_top5: {af:.2f}")
                    print(f"{name}_{tag}_reached_{int(share * 100)}pct_top5: {res.reached[share]:.2f}")
                for n_exp, ef in res.ef.items():
                    print(f"{name}_{tag}_ef_at_{n_exp}: {ef:.2f}")
                # per seed: random's expected experiments to half of the top / this seed's (0 if not reached)
                per_seed = res.to_frame()["experiments_to_0.5"].to_numpy(dtype=float)
                seed_af = np.where(np.isfinite(per_seed), random_half / per_seed, 0.0)
                print(f"{name}_{tag}_seed_af_50pct_top5: "
                      + " ".join(f"{s}:{a:.2f}" for s, a in zip(seeds, seed_af, strict=True)))
                print(f"{name}_{tag}_min_seed_af_50pct_top5: {seed_af.min():.2f}")
                print(f"{name}_{tag}_seeds_below_af2: {int((seed_af < 2).sum())}")
                print(f"{name}_{tag}_seeds_half_top5_within_100: {int((per_seed <= 100).sum())} of {len(seeds)}")
                print(f"{name}_{tag}_seconds: {res.seconds:.0f}", flush=True)
                if name == HEADLINE:
                    af = res.af[0.5] if np.isfinite(res.experiments[0.5]) else 0.0
                    headline[tag] = af
                    print(f"obelix_af_top5_{tag}: {af:.2f}")
                    print(f"obelix_min_seed_af_top5_{tag}: {seed_af.min():.2f}", flush=True)
        if len(headline) != len(sets):
            raise ValueError(f"the headline method {HEADLINE} was not run")
        if not all(af > 0 for af in headline.values()):
            raise ValueError(f"{HEADLINE} did not find half of the top 5 % within {args.budget} experiments")
        print(f"obelix_acceleration_factor_top5: {min(headline.values()):.2f}")
    except Exception as exc:  # any failure means no figure: say why and exit non-zero
        print(f"could not measure: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def _factory(campaign_cls: Any, pool: Any, settings: dict[str, Any]) -> Any:
    def make(seed: int) -> Any:
        return campaign_cls(pool, seed=seed, **settings)

    return make


class _RandomSearch:
    """Random search with the campaign's interface (a random permutation of the pool)."""

    def __init__(self, pool: Any, seed: int) -> None:
        self.order = np.random.default_rng(seed).permutation(pool.ids.to_numpy())
        self.position = 0

    def suggest(self, batch_size: int) -> Any:
        import pandas as pd

        ids = self.order[self.position:self.position + batch_size]
        self.position += len(ids)
        return pd.DataFrame({"design_id": ids})

    def observe(self, designs: Any, results: Any) -> None:
        return None


class _HardStart:
    """A campaign whose first 20 experiments are given: random entries below the 90th percentile (no good one)."""

    def __init__(self, campaign: Any, y: np.ndarray, seed: int) -> None:
        poor = np.flatnonzero(y < np.percentile(y, 90))
        self.start = np.random.default_rng(1000 + seed).choice(poor, 20, replace=False)
        self.campaign = campaign
        self.started = False

    def suggest(self, batch_size: int) -> Any:
        import pandas as pd

        if not self.started:
            return pd.DataFrame({"design_id": [str(i) for i in self.start]})
        return self.campaign.suggest(batch_size)

    def observe(self, designs: Any, results: Any) -> None:
        if not self.started:
            self.started = True
            if isinstance(self.campaign, _RandomSearch):  # not drawn again
                self.campaign.order = self.campaign.order[~np.isin(self.campaign.order, designs["design_id"])]
            else:
                self.campaign.add_data(designs["design_id"].tolist(), results)
            return None
        self.campaign.observe(designs, results)
        return None


def _hard_start(make: Any, y: np.ndarray) -> Any:
    return lambda seed: _HardStart(make(seed), y, seed)


def _random_campaign(pool: Any) -> Any:
    return lambda seed: _RandomSearch(pool, seed)


if __name__ == "__main__":
    sys.exit(main())
