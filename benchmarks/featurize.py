"""Magpie composition features: battlab's vectorized ``composition_features`` vs matminer.

Run ``python benchmarks/featurize.py [--sizes 2000,20000,200000] [--matminer-max 2000] [--seed 0]``.

What is measured, in one process on the same formulas:

* Random, mostly unique battery-like formula strings (2-5 of 40 common battery elements, integer
  amounts 1-8 or two-decimal fractions, e.g. ``Li1.05Ni0.8Mn0.1Co0.1O2``), reproducible from the seed.
* battlab: ``composition_features(formulas, preset="magpie")`` from strings, parsing included, best of
  ``--repeat`` runs per size -> ``battlab_compositions_per_s_N``. A first call on a few formulas
  (loads the element tables) is timed separately as ``battlab_warmup_s``. Memory: the peak RSS
  growth during one call (VmHWM is reset through /proc/self/clear_refs before each size) ->
  ``battlab_peak_rss_growth_mb_N``, and that growth less the output's 132 float64 per row, per row
  -> ``battlab_extra_bytes_per_row_N``; roughly constant across N means memory is flat per row.
* matminer 0.10 ``ElementProperty.from_preset("magpie").featurize`` one composition at a time in
  this process (no multiprocessing, as ``set_n_jobs(1)``), on the first min(N, --matminer-max)
  formulas: with ``Composition(f)`` construction (``matminer_with_parse_per_s``) and on
  pre-built compositions (``matminer_featurize_only_per_s``, its most favourable case).
* ``max_abs_diff``: largest absolute difference between battlab and matminer over all 132 features
  of that subsample (NaN positions must match, labels must be identical).
* Parsing alone on the subsample: battlab's ``parse_compositions`` vs pymatgen ``Composition``.

Headline, printed last: ``speedup_vs_matminer`` = battlab throughput at the largest size divided by
matminer's featurize-only throughput (conservative: it leaves out matminer's parsing).
Exits 1 (message on stderr) if matminer cannot be imported or the values/labels disagree.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from functools import partial

import numpy as np

ELEMENTS = ("Li Na K Mg Ca Al Ti V Cr Mn Fe Co Ni Cu Zn Zr Nb Mo La Ce Si Ge Sn P S Se O F Cl Br I B C N "
            "Sb Bi W Y Ga In").split()
TOL = 1e-9


def make_formulas(n: int, seed: int) -> list[str]:
    """``n`` battery-like formulas: 2-5 distinct elements, amounts 1-8 (1 omitted) or 0.01-4.00 (30 %)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in rng.integers(2, 6, size=n):
        els = rng.choice(len(ELEMENTS), size=k, replace=False)
        parts = []
        for e in els:
            amt = f"{rng.integers(1, 9)}" if rng.random() < 0.7 else f"{rng.integers(1, 401) / 100:g}"
            parts.append(ELEMENTS[e] + ("" if amt == "1" else amt))
        out.append("".join(parts))
    return out


def best_time(fn, repeat: int, setup=lambda: None) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        setup()
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(key + ":"))


def peak_rss_growth(fn) -> tuple[float, object]:
    """(peak RSS growth in bytes while running ``fn``, its result); resets VmHWM where Linux allows."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:  # no reset: the growth is then an upper bound (sizes run in increasing order)
        pass
    base = _status_kb("VmRSS")
    result = fn()
    return (_status_kb("VmHWM") - base) * 1024.0, result


def fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2000,20000,200000")
    ap.add_argument("--matminer-max", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    try:
        from matminer.featurizers.composition import ElementProperty
        from pymatgen.core import Composition
    except Exception as exc:  # noqa: BLE001 - any import failure means no reference
        fail(f"cannot import matminer/pymatgen: {exc!r}")
    from battlab.featurize import composition_features, parse_compositions

    formulas = make_formulas(max(sizes), args.seed)
    print(f"unique_formula_fraction: {len(set(formulas)) / len(formulas):.4f}")

    t0 = time.perf_counter()
    composition_features(["LiCoO2", "LiFePO4", "Li7La3Zr2O12"], preset="magpie")
    print(f"battlab_warmup_s: {time.perf_counter() - t0:.4f}")

    rates = {}
    for n in sizes:
        run = partial(composition_features, formulas[:n], preset="magpie")
        mem, df = peak_rss_growth(run)
        if df.shape != (n, 132):
            fail(f"battlab returned shape {df.shape} for {n} formulas")
        del df
        t, _ = best_time(run, args.repeat)
        rates[n] = n / t
        print(f"battlab_compositions_per_s_{n}: {rates[n]:.0f}")
        print(f"battlab_peak_rss_growth_mb_{n}: {mem / 2**20:.1f}")
        print(f"battlab_extra_bytes_per_row_{n}: {(mem - n * 132 * 8) / n:.0f}")

    # matminer, single process, on a subsample of the same formulas
    m = min(max(sizes), args.matminer_max)
    sample = formulas[:m]
    ep = ElementProperty.from_preset("magpie")
    ep.set_n_jobs(1)
    ep.featurize(Composition("LiCoO2"))  # warm-up: loads the Magpie data
    # pymatgen memoizes formula parsing (an LRU cache): cleared so repeats parse afresh.
    cache = getattr(sys.modules[Composition.__module__], "_parse_formula_cached", None)
    clear = getattr(cache, "cache_clear", lambda: None)
    cheap = 5 * args.repeat  # parsing alone takes milliseconds: more repeats steady the figure
    t_parse, comps = best_time(lambda: [Composition(f) for f in sample], cheap, clear)
    t_feat, rows = best_time(lambda: [ep.featurize(c) for c in comps], args.repeat)
    t_both, _ = best_time(lambda: [ep.featurize(Composition(f)) for f in sample], args.repeat, clear)
    t_bl_parse, _ = best_time(lambda: parse_compositions(sample), cheap)
    print(f"matminer_sample_size: {m}")
    print(f"matminer_with_parse_per_s: {m / t_both:.1f}")
    print(f"matminer_featurize_only_per_s: {m / t_feat:.1f}")
    print(f"battlab_parse_per_s: {m / t_bl_parse:.0f}")
    print(f"pymatgen_parse_per_s: {m / t_parse:.0f}")

    ours = composition_features(sample, preset="magpie")
    if list(ours.columns) != list(ep.feature_labels()):
        fail("feature labels differ from matminer's")
    a, b = ours.to_numpy(dtype=float), np.asarray(rows, dtype=float)
    if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
        fail("shapes or NaN positions differ from matminer's")
    ok = ~np.isnan(a)
    diff = float(np.max(np.abs(a[ok] - b[ok]), initial=0.0))
    print(f"max_abs_diff: {diff:.3g}")
    if diff > TOL:
        fail(f"values differ from matminer's by {diff:.3g} > {TOL:g}: not a valid comparison")

    print(f"speedup_vs_matminer: {rates[max(sizes)] / (m / t_feat):.1f}")


if __name__ == "__main__":
    main()
