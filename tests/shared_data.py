"""Where the public reference files of ``../shared/datasets`` go in a battlab data cache.

Used by the tests (conftest) and the benchmarks; the product itself never reads ``shared/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

# (dataset name, upstream file name) -> file in shared/datasets
CACHE_LAYOUT: dict[tuple[str, str], str] = {
    ("obelix", "all.csv"): "obelix/all.csv",
    ("obelix", "train_idx.csv"): "obelix/train_idx.csv",
    ("obelix", "test_idx.csv"): "obelix/test_idx.csv",
    ("matbench_expt_gap", "matbench_expt_gap.json.bz2"): "matbench/matbench_expt_gap.json.bz2",
    ("matbench_steels", "matbench_steels.json.bz2"): "matbench/matbench_steels.json.bz2",
    ("artistic_coating_heterogeneity", "heterogeneity-dataset.csv"):
        "electrode_manufacturing/artistic_aiworkshop_heterogeneity-dataset.csv",
    ("artistic_calendering", "Dataset_Experimental_fitting.csv"):
        "electrode_manufacturing/artistic_calendering_experimental_porosity.csv",
    ("artistic_hybrid_mesostructures", "hybrid-dataset.csv"):
        "electrode_manufacturing/artistic_aiworkshop_hybrid-dataset.csv",
    ("tbsi_sunwoda", "Labels.xlsx"): "battery_health/tbsi_sunwoda/Labels.xlsx",
}
# severson2019: 124 per-cell curve files and 3 cycle-life files, cached flat as <split>_<file>
CACHE_LAYOUT.update({("severson2019", f"{split}_cycle_lives.csv"): f"severson/{split}_cycle_lives.csv"
                     for split in ("train", "test1", "test2")})
CACHE_LAYOUT.update({("severson2019", f"{split}_cell{k}.csv"): f"severson/curves/{split}/cell{k}.csv"
                     for split, n in (("train", 41), ("test1", 43), ("test2", 40)) for k in range(1, n + 1)})


def shared_complete() -> bool:
    return all((SHARED_DATASETS / rel).is_file() for rel in CACHE_LAYOUT.values())


def fill_cache(cache: Path) -> Path:
    """Copy the shared files into ``cache`` laid out as ``<cache>/<dataset>/<file>``."""
    for (name, filename), rel in CACHE_LAYOUT.items():
        (cache / name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHARED_DATASETS / rel, cache / name / filename)
    return cache
# pulsebat: the four 5 s pulse-test files
CACHE_LAYOUT.update({("pulsebat", name): f"battery_health/pulsebat/{name}"
                     for name in ("NMC_2.1Ah_W_5000.xlsx", "LMO_10Ah_W_5000.xlsx", "NMC_21Ah_W_5000.xlsx",
                                  "LFP_35Ah_W_5000.xlsx")})
