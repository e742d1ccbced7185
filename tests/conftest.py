"""Shared test set-up: no network, a data cache filled from ``../shared/datasets``.

``shared/datasets`` (beside the repository) holds byte-exact copies of the upstream
files; they are never copied into the repository. For the whole session,
``BATTLAB_DATA`` points to a temporary cache laid out as battlab expects
(``<cache>/<dataset name>/<upstream file name>``) and ``BATTLAB_OFFLINE=1``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")

from shared_data import SHARED_DATASETS, fill_cache
from shared_data import shared_complete as _shared_complete

FUZZ_TRIED = "battlab_fuzz_tried"  # config attribute: examples tried per fuzz test (tests/test_fuzz.py)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Print, and keep in ``test-artifacts/fuzz-examples.json``, how many examples the fuzzer tried."""
    tried = dict(getattr(config, FUZZ_TRIED, {}) or {})
    if not tried:
        return
    total = sum(tried.values())
    detail = ", ".join(f"{k}={v}" for k, v in sorted(tried.items()))
    terminalreporter.write_line(f"fuzz examples tried: {total} ({detail})")
    out = Path(__file__).resolve().parents[1] / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "fuzz-examples.json").write_text(json.dumps({"total": total, **tried}, indent=1) + "\n")


@pytest.fixture(scope="session", autouse=True)
def _battlab_test_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point BATTLAB_DATA to a session cache (filled if shared/datasets exists), offline."""
    cache = tmp_path_factory.mktemp("battlab_cache")
    if _shared_complete():
        fill_cache(cache)
    saved = {k: os.environ.get(k) for k in ("BATTLAB_DATA", "BATTLAB_OFFLINE", "BATTLAB_CACHE")}
    os.environ["BATTLAB_DATA"] = str(cache)
    os.environ["BATTLAB_CACHE"] = str(tmp_path_factory.mktemp("battlab_feature_cache"))
    os.environ["BATTLAB_OFFLINE"] = "1"
    try:
        yield cache
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """Path of ``shared/datasets``; skips the test when it is missing."""
    if not _shared_complete():
        if os.environ.get("CI"):  # CI always has shared/ beside the clone: a skip there would hide a failure
            pytest.fail(f"public reference datasets not found in {SHARED_DATASETS}")
        pytest.skip(f"public reference datasets not found in {SHARED_DATASETS} "
                    "(clone them as shared/datasets beside the repository)")
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def cycler_files(shared_datasets: Path) -> Path:
    """``shared/datasets/cycler_files``: real files as cyclers write them (read-only; never copied into the repo)."""
    return shared_datasets / "cycler_files"


@pytest.fixture(scope="session")
def data_cache(shared_datasets: Path, _battlab_test_env: Path) -> Path:
    """The session's filled data cache (BATTLAB_DATA); skips without shared/datasets."""
    return _battlab_test_env


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    """400 compositions; the target is a smooth function of composition plus noise of known size.
    Returns (feature table, kept feature names, path of the table written with its _info.csv)."""
    from test_featurize import random_formulas

    from battlab.featurize import featurize_table, prune_info

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"formula": random_formulas(400, seed=7)})
    table, info = featurize_table(df, preset="magpie")
    info = prune_info(table, info)
    x = table["MagpieData mean Electronegativity"].to_numpy()
    table["y"] = 2.0 * x + 0.5 * table["MagpieData mean Row"].to_numpy() + rng.normal(scale=0.1, size=len(table))
    folder = tmp_path_factory.mktemp("features")
    table.to_parquet(folder / "features.parquet")
    info.to_csv(folder / "features_info.csv", index=False)
    return table, info.loc[info["kept"], "feature"].tolist(), folder / "features.parquet"


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (the browser tests of apps and JupyterLab)."""
    from browser import launch
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture(scope="session")
def example_cells(tmp_path_factory):
    """12 synthetic cells written as Arbin CSV and EC-Lab text (one right-censored), with their true lives."""
    from battlab.cycling.synthetic import write_example_cells

    folder = tmp_path_factory.mktemp("example_cells")
    return folder, write_example_cells(folder, n_cells=12, seed=0)


@pytest.fixture(scope="session")
def example_model_dir(example_cells, tmp_path_factory):
    """`battlab cycling fit` on :func:`example_cells` (4 trials): the cycle-life model and its fade curves."""
    from battlab.cli import main
    from battlab.cycling.synthetic import EXAMPLE_NOMINAL_AH

    out = tmp_path_factory.mktemp("example_model")
    argv = ["cycling", "fit", example_cells[0], "--nominal", EXAMPLE_NOMINAL_AH, "--n-trials", 4, "--quiet",
            "--out", out]
    assert main([str(a) for a in argv]) == 0
    return out
