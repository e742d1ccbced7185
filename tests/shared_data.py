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
    fill_mp_electrodes(cache)
    return cache


MP_BATTERIES = "mp_batteries/mp_batteries.csv"
# the export's column names -> battlab.datasets' mp_insertion_electrodes fields (what mp-api returns)
MP_COLUMNS = {"Battery ID": "battery_id", "Battery Formula": "battery_formula", "Working Ion": "working_ion",
              "Formula Charge": "formula_charge", "Formula Discharge": "formula_discharge",
              "Average Voltage": "average_voltage", "Gravimetric Capacity": "capacity_grav",
              "Volumetric Capacity": "capacity_vol", "Gravimetric Energy": "energy_grav",
              "Volumetric Energy": "energy_vol", "Max Delta Volume": "max_delta_volume",
              "Stability Charge": "stability_charge", "Stability Discharge": "stability_discharge"}


def fill_mp_electrodes(cache: Path) -> list[str]:
    """The Materials Project export of ``mp_batteries/`` as the cache ``mp_insertion_electrodes/<ion>.parquet``
    that ``load_dataset("mp_insertion_electrodes", working_ion=ion)`` reads (as after an mp-api query)."""
    import pandas as pd

    path = SHARED_DATASETS / MP_BATTERIES
    if not path.is_file():
        return []
    df = pd.read_csv(path)[list(MP_COLUMNS)].rename(columns=MP_COLUMNS)
    (cache / "mp_insertion_electrodes").mkdir(parents=True, exist_ok=True)
    for ion, part in df.groupby("working_ion"):
        part.sort_values("battery_id", kind="stable").reset_index(drop=True).to_parquet(
            cache / "mp_insertion_electrodes" / f"{ion}.parquet", index=False)
    return sorted(df["working_ion"].unique())
# pulsebat: the four 5 s pulse-test files
CACHE_LAYOUT.update({("pulsebat", name): f"battery_health/pulsebat/{name}"
                     for name in ("NMC_2.1Ah_W_5000.xlsx", "LMO_10Ah_W_5000.xlsx", "NMC_21Ah_W_5000.xlsx",
                                  "LFP_35Ah_W_5000.xlsx")})
