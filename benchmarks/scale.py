"""Scale: curate and featurize 200,000 rows of messy cathode data within bounded memory.

Generates a realistic messy CSV (replicated formulas, capacities as text with units in some cells,
decimal commas, censored values, bad formulas, ragged rows, exact duplicates), then, in this process,
measures wall time and peak RSS of:

* ``pandas.read_csv`` of the same file (reference: what a plain typed read costs),
* ``battlab.tables.read_table`` + ``battlab.curate.curate`` (text-preserving read, then curation),
* ``battlab.featurize.featurize_table(curated, preset="battery")``.

Peak RSS per phase is VmHWM from ``/proc/self/status``, reset before each phase by writing ``5`` to
``/proc/self/clear_refs``; where the reset is not allowed, the process-wide ``ru_maxrss`` (an upper
bound that includes earlier phases) is used and ``rss_reset_supported: 0`` says so.

Output: one ``name: value`` line per figure, headline last (``peak_rss_mb_200000_rows``).
Exit 1 if the accounting identity ``n_input == n_kept + n_merged + n_quarantined`` is violated, a
row is missing/duplicated across curated/merged/quarantine, or memory could not be measured.

    python benchmarks/scale.py [--rows 200000] [--keep-csv PATH]
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FORMULAS = [
    "LiCoO2", "LiFePO4", "LiMn2O4", "LiNiO2", "LiNi0.8Co0.1Mn0.1O2", "LiNi0.6Co0.2Mn0.2O2",
    "LiNi1/3Co1/3Mn1/3O2", "LiNi0.8Co0.15Al0.05O2", "Li2MnO3", "LiMnPO4", "LiCoPO4", "LiNi0.5Mn1.5O4",
    "Li1.2Mn0.54Ni0.13Co0.13O2", "LiVPO4F", "Li3V2(PO4)3", "NaFePO4", "Na2FeP2O7", "LiTi2(PO4)3",
    "Li4Ti5O12", "LiFe0.5Mn0.5PO4",
]
BAD_FORMULAS = ["", "n/a", "Xx2O3", "LiCoO2??", "unknown", "Li(CoO2", "ÄÖÜ", "12345"]


def _vm(key: str) -> int | None:
    """A VmXXX figure of /proc/self/status, in kB (None where /proc is not available)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_kb(reset_ok: bool) -> int | None:
    hwm = _vm("VmHWM") if reset_ok else None
    if hwm is not None:
        return hwm
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    return int(ru) if ru > 0 else None


def generate(n: int, path: Path, seed: int = 0) -> None:
    """Write ``n`` rows of messy cathode data to ``path`` (CSV, comma-separated)."""
    rng = np.random.default_rng(seed)
    # ~30,000 distinct materials: doped variants of the base formulas, so replicates are common.
    n_materials = max(1, min(30_000, n // 6))
    base = rng.integers(0, len(FORMULAS), n_materials)
    dop = rng.integers(0, 200, n_materials)
    materials = np.array([f"{FORMULAS[b]}" if d == 0 else f"{FORMULAS[b]}Al{d / 1000:.3f}"
                          for b, d in zip(base, dop, strict=True)], dtype=object)
    pick = rng.integers(0, n_materials, n)
    formula = materials[pick]
    cap = rng.normal(150, 25, n_materials)[pick] + rng.normal(0, 3, n)
    volt = rng.normal(3.8, 0.3, n)
    temp = rng.choice(["25", "25 °C", "298 K", "45"], n)
    u = rng.random(n)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("formula,capacity (mAh/g),voltage (V),temperature,c_rate,source\n")
        lines = []
        for i in range(n):
            f = formula[i]
            c = f"{cap[i]:.1f}"
            r = u[i]
            if r < 0.10:
                c = f"{cap[i]:.1f} mAh/g"
            elif r < 0.13:
                c = f"{cap[i] / 1000:.4f} Ah/g"
            elif r < 0.16:
                c = c.replace(".", ",")
                c = f'"{c}"'
            elif r < 0.17:
                c = "<5"
            elif r < 0.18:
                c = rng.choice(["", "n/a", "-", "NaN"])
            elif r < 0.185:
                c = rng.choice(["abc", "see SI", "??"])
            elif r < 0.19:
                c = f"{-cap[i]:.1f}"  # below the physical bound
            if 0.19 <= r < 0.20:
                f = BAD_FORMULAS[i % len(BAD_FORMULAS)]
            line = f"{f},{c},{volt[i]:.3f},{temp[i]},{0.1 * (1 + i % 5):.1f},lab{i % 7}"
            if 0.20 <= r < 0.201:
                line += ",extra"  # ragged row
            lines.append(line)
            if 0.201 <= r < 0.211 and lines:
                lines.append(line)  # exact duplicate line (counts as one more input row)
            if len(lines) >= 20_000:
                fh.write("\n".join(lines) + "\n")
                lines = []
        if lines:
            fh.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--keep-csv", default=None, help="write the generated CSV here (kept)")
    args = ap.parse_args(argv)
    n = args.rows
    ok = True
    figures: list[tuple[str, object]] = []

    with tempfile.TemporaryDirectory(prefix="battlab-scale-") as tmp:
        csv_path = Path(args.keep_csv) if args.keep_csv else Path(tmp) / "messy_cathodes.csv"
        t0 = time.perf_counter()
        generate(n, csv_path)
        figures.append((f"generate_seconds_{n}", round(time.perf_counter() - t0, 2)))
        figures.append(("csv_size_mb", round(csv_path.stat().st_size / 2**20, 1)))

        import pandas as pd

        from battlab.curate import curate
        from battlab.featurize import featurize_table
        from battlab.tables import read_table

        gc.collect()
        figures.append(("baseline_rss_mb", round((_vm("VmRSS") or 0) / 1024)))

        # Reference: a plain typed pandas read of the same file.
        reset_ok = _reset_peak()
        t0 = time.perf_counter()
        ref = pd.read_csv(csv_path, on_bad_lines="skip")
        ref_s = time.perf_counter() - t0
        ref_kb = _peak_kb(reset_ok)
        figures += [(f"pandas_read_csv_seconds_{n}", round(ref_s, 2)),
                    ("pandas_read_csv_peak_rss_mb", round(ref_kb / 1024) if ref_kb else -1),
                    ("pandas_read_csv_rows", len(ref))]
        del ref

        # battlab: text-preserving read, then curation.
        reset_ok = _reset_peak() and reset_ok
        t0 = time.perf_counter()
        table = read_table(csv_path)
        read_s = time.perf_counter() - t0
        result = curate(table, target="capacity (mAh/g)")
        cur_s = time.perf_counter() - t0
        cur_kb = _peak_kb(reset_ok)
        del table
        rep = result.report
        figures += [(f"read_table_seconds_{n}", round(read_s, 2)),
                    (f"curate_seconds_{n}", round(cur_s, 2)),
                    ("curate_peak_rss_mb", round(cur_kb / 1024) if cur_kb else -1),
                    ("n_input", rep["n_input"]), ("n_kept", rep["n_kept"]), ("n_merged", rep["n_merged"]),
                    ("n_quarantined", rep["n_quarantined"])]
        identity = rep["n_input"] == rep["n_kept"] + rep["n_merged"] + rep["n_quarantined"]
        rows = np.concatenate([result.curated["row"].to_numpy(int), result.merged["row"].to_numpy(int),
                               result.quarantine["row"].to_numpy(int)])
        rows_ok = len(rows) == rep["n_input"] and np.array_equal(np.sort(rows), np.arange(1, rep["n_input"] + 1))
        figures += [("accounting_identity_ok", int(identity)), ("every_row_once_ok", int(rows_ok))]
        ok &= identity and rows_ok

        # Featurization of the curated table.
        curated = result.curated
        del result
        reset_ok = _reset_peak() and reset_ok
        t0 = time.perf_counter()
        feats, info = featurize_table(curated, preset="battery")
        fea_s = time.perf_counter() - t0
        fea_kb = _peak_kb(reset_ok)
        n_fail = int((feats["featurize_error"] != "").sum())
        figures += [(f"featurize_seconds_{len(curated)}_rows", round(fea_s, 2)),
                    ("featurize_peak_rss_mb", round(fea_kb / 1024) if fea_kb else -1),
                    ("featurize_n_features", len(info)), ("featurize_failed_rows", n_fail)]
        ok &= len(feats) == len(curated)
        figures.append(("rss_reset_supported", int(reset_ok)))

    if not (cur_kb and fea_kb):
        print("could not measure peak RSS", file=sys.stderr)
        ok = False
    peak = max(cur_kb or 0, fea_kb or 0) / 1024
    figures.append(("under_2gb_ok", int(0 < peak < 2048)))
    figures.append((f"peak_rss_mb_{n}_rows", round(peak)))
    for name, value in figures:
        print(f"{name}: {value}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
