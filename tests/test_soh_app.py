"""The ``soh`` app: the ``SohSorter`` widget in plain Python (fake upload payloads: PulseBat's layout, a lab's own
column names, bad tables), its default model, the CLI on the same lab table, and the app served by Voilà in headless
Chromium (fixtures and helpers of ``tests/test_apps_browser.py``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from browser import ERRORS, shot
from test_apps_browser import open_app, voila  # noqa: F401  (voila: the Voilà server fixture)
from test_health import LAB_NAMES, lab_table

from battlab.cli import main
from battlab.health import example_pulse_table, fit_soh
from battlab.health.soh import SohModel
from battlab.health.sort import DECISIONS, sort_cells
from battlab.widgets.soh import SohSorter, parse_mapping

MAPPING = ", ".join(f"{k}={v}" for k, v in LAB_NAMES.items())


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("soh_model")
    fit_soh(example_pulse_table(8, seed=0), models=("ridge",), n_trials=1).save(folder)
    return folder


@pytest.fixture
def app(model_dir: Path) -> SohSorter:
    return SohSorter(model_dir)


def payload(name: str, content: bytes) -> tuple[dict, ...]:
    """What ipywidgets 8's FileUpload holds after a browser upload."""
    return ({"name": name, "type": "", "size": len(content), "last_modified": datetime.now(),
             "content": memoryview(content)},)


def csv_bytes(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False).encode()


# --------------------------------------------------------------------------- uploads


def test_upload_in_pulsebat_layout_is_estimated_and_sorted_as_battlab_health_does(app, model_dir) -> None:
    cells = example_pulse_table(3, seed=5).drop(columns=["SOH", "capacity_Ah"])
    app.upload.value = payload("batch 7.csv", csv_bytes(cells))
    assert app.state == "SUCCESS", app.message
    assert app.upload.value == ()  # cleared: the same file can be uploaded again
    assert app.cell_column.value == "cell_id" and app.soc_column.value == "SOC"
    direct = SohModel.load(model_dir).predict(cells)
    pd.testing.assert_frame_equal(app.predictions[direct.columns].reset_index(drop=True), direct)
    assert app.predictions.index.tolist() == list(range(2, len(cells) + 2))  # rows named as lines of the file
    expected = sort_cells(app.predictions, 0.8, 0.6, cell="cell_id")
    pd.testing.assert_frame_equal(app.sorting, expected)
    assert len(app.sorting) == 6 and sum(app.counts.values()) == 6 and list(app.counts) == list(DECISIONS)
    assert bytes(app.plot.value).startswith(b"\x89PNG") and app.plot.layout.display is None
    assert set(app.drivers["cell"]) == set(cells["cell_id"]) and app.drivers["rank"].max() == 3
    assert app.drivers["feature"].iloc[0] in app.cells_html.value
    assert "Download the sorting (6 rows)" in app.download.value
    assert app.message == "batch 7.csv: 6 cell(s) from 60 pulse test(s) sorted"


def test_sliders_move_the_thresholds_and_the_sorting_follows(app) -> None:
    app.use_example()
    assert app.state == "SUCCESS" and "synthetic" in app.source
    before = app.sorting.copy()
    app.reuse_slider.value = 0.95
    assert app.reuse == 0.95 and app.sorting.attrs["reuse"] == 0.95
    pd.testing.assert_frame_equal(app.sorting, sort_cells(app.predictions, 0.95, 0.6, cell="cell_id"))
    assert app.counts["reuse"] <= int((before["decision"] == "reuse").sum())
    assert "reuse at SOH ≥ 0.95" in app.result.value
    # thresholds in the wrong order: one line, the estimates kept
    app.repurpose_slider.value = 0.97
    assert app.state == "FAIL" and app.message.startswith("repurpose=0.97 must be below reuse=0.95")
    assert app.predictions is not None and app.sorting is None
    app.repurpose_slider.value = 0.5
    assert app.state == "SUCCESS" and app.sorting.attrs["repurpose"] == 0.5


def test_a_lab_table_with_its_own_names_is_told_what_is_missing_then_mapped_like_the_cli(app, model_dir, tmp_path,
                                                                                         capsys) -> None:
    """A lab's own pulse table (other column names, no nominal-capacity column) through the widget and the CLI."""
    lab = lab_table(n_cells=4, seed=2, socs=(10, 30)).drop(columns="soh")
    app.upload.value = payload("lab pulses.csv", csv_bytes(lab))
    assert app.state == "FAIL" and app.predictions is None and app.sorting is None
    assert app.message.startswith("lab pulses.csv: the pulse table has no column(s) ['U1', 'U2'")
    assert len(app.table) == len(lab)  # kept: the mapping can fix it
    assert app.cell_column.value == "cell" and app.soc_column.value == "soc_pct"  # found by name
    app.mapping.value = MAPPING.replace(", ", "\n")
    app.nominal.value = "2"
    app.predict_button.click()
    assert app.state == "SUCCESS", app.message
    # the CLI on the same file with the same mapping gives the same estimates
    path = tmp_path / "lab pulses.csv"
    lab.to_csv(path, index=False)
    code = main(["health", "predict", str(path), "--model", str(model_dir), "--map", MAPPING.replace(", ", ","),
                 "--nominal", "2", "--soc-column", "soc_pct", "--out", str(tmp_path / "p.csv"), "--sort",
                 "--cell-column", "cell", "--sort-out", str(tmp_path / "s.csv")])
    assert code == 0, capsys.readouterr().err
    cli = pd.read_csv(tmp_path / "p.csv")
    pd.testing.assert_series_equal(cli["SOH_pred"], app.predictions["SOH_pred"].reset_index(drop=True),
                                   check_exact=False, rtol=1e-9)
    assert pd.read_csv(tmp_path / "s.csv")["decision"].tolist() == app.sorting["decision"].tolist()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.astype({"U12": object}).assign(U12=["3.4"] * 3 + ["oops"] + ["3.4"] * (len(t) - 4)),
     "batch.csv: row 5, column 'U12': 'oops' is not a voltage (a number in V)"),
    (lambda t: t.drop(columns="U7"), "batch.csv: the pulse table has no column(s) ['U7']"),
    (lambda t: t.astype({"SOC": object}).assign(SOC=["half"] + [20.0] * (len(t) - 1)),
     "batch.csv: row 2, column 'SOC': 'half' is not a state of charge"),
])
def test_bad_pulse_tables_are_one_line_in_the_app_and_the_table_is_kept(app, edit, message: str) -> None:
    table = edit(example_pulse_table(2, seed=3))
    app.upload.value = payload("batch.csv", csv_bytes(table))
    assert app.state == "FAIL" and app.message.startswith(message), app.message
    assert "\n" not in app.message and app.table is not None and len(app.table) == len(table)
    app.use_example()  # and the widget still answers
    assert app.state == "SUCCESS"


def test_a_soc_outside_the_trained_range_is_estimated_and_flagged(app) -> None:
    table = example_pulse_table(2, seed=4, soc_levels=(30, 70))
    app.upload.value = payload("high soc.xlsx", _excel(table))
    assert app.state == "SUCCESS"
    assert "4 test(s) at a SOC outside the trained 5-50 %: extrapolation" in app.message
    assert app.predictions["soc_extrapolation"].sum() == 4 and app.predictions["SOH_pred"].notna().all()
    assert app.sorting["reason"].str.contains("1 of 2 test").all()
    assert "SOC 70 % outside the trained 5-50 %" in app.drivers_html.value


def _excel(table: pd.DataFrame) -> bytes:
    import io

    buf = io.BytesIO()
    table.to_excel(buf, index=False)
    return buf.getvalue()


def test_a_file_that_is_not_a_table_is_one_line(app) -> None:
    app.upload.value = payload("cells.csv", b"\x00\x01\x02 binary")
    assert app.state == "FAIL" and app.message.startswith("cells.csv: looks like a binary file")
    assert app.table is None


def test_a_table_uploaded_before_the_model_is_sorted_when_it_comes(model_dir) -> None:
    app = SohSorter()
    assert app.state == "INIT"
    app.use_example()
    assert app.state == "INIT" and app.predictions is None and "waiting for the model" in app.message
    app.model_dir = str(model_dir)
    assert app.state == "SUCCESS" and len(app.sorting) == 12


def test_a_folder_without_a_model_is_one_line(tmp_path) -> None:
    app = SohSorter(tmp_path)
    assert app.state == "FAIL" and app.message.startswith("no SOH model at")


def test_column_mapping_text() -> None:
    assert parse_mapping("") == {}
    with pytest.raises(Exception, match="give MODEL_NAME=YOUR_COLUMN pairs"):
        parse_mapping("U1 ocv")


# --------------------------------------------------------------------------- registry and default model


def test_widget_is_in_the_lazy_registry_and_the_app_is_listed(capsys) -> None:
    import battlab.widgets
    from battlab.apps import APPS, app_path

    assert battlab.widgets.SohSorter is SohSorter
    assert "soh" in APPS and app_path("soh").is_file()
    assert main(["app", "--list"]) == 0
    assert "soh" in capsys.readouterr().out


def test_default_model_is_built_once_on_synthetic_cells_then_reused_or_taken_from_the_pipeline(tmp_path,
                                                                                              monkeypatch) -> None:
    import battlab.apps as apps

    monkeypatch.setattr(apps, "RUNS_DIR", tmp_path / "runs")
    heard: list[tuple[float, str]] = []
    folder, source = apps.default_soh_model(progress=lambda f, text: heard.append((f, text)))
    assert folder == tmp_path / "runs" / "app-default" / "soh"
    assert source.startswith("small default SOH model built now on SYNTHETIC pulse tests")
    assert [f for f, _ in heard] == sorted(f for f, _ in heard) and heard[-1][0] == 1.0
    assert [p.name for p in folder.parent.iterdir()] == ["soh"]  # no private build folder left behind
    model = SohModel.load(folder)
    assert model.card["n_cells"] == 48 and model.soc_range == (5.0, 50.0)
    again, source = apps.default_soh_model()
    assert again == folder and source.startswith("small default SOH model built earlier")
    latest = tmp_path / "runs" / "latest" / "08_soh"
    model.save(latest)  # what notebook 08 leaves in runs/latest
    found, source = apps.default_soh_model()
    assert found == latest and source.startswith("SOH model from the last pipeline run")


# --------------------------------------------------------------------------- the app in a browser


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty ``runs/`` (used by the ``voila`` fixture): the app builds its default model on synthetic cells, as
    on a fresh clone without ``make run``."""
    return tmp_path_factory.mktemp("runs")


@pytest.mark.browser
def test_app_sorts_the_example_and_the_slider_moves_the_counts(browser, voila):  # noqa: F811
    page = open_app(browser, voila, "soh")
    assert "Model: small default SOH model" in page.inner_text(".battlab-app-status")
    page.wait_for_selector(".battlab-soh.battlab-soh-ready", timeout=120_000)
    page.click(".battlab-soh-example")
    page.wait_for_selector(".battlab-soh.battlab-soh-success", timeout=120_000)
    counts = page.inner_text(".battlab-soh-counts")
    assert all(d in counts for d in DECISIONS), counts
    page.wait_for_function("[...document.querySelectorAll('.battlab-soh-sorting-plot')].filter("
                           "e => e.naturalWidth > 0).length === 1", timeout=30_000)
    assert "drivers (SHAP, SOH)" in page.inner_text(".battlab-soh-table")
    assert page.locator(ERRORS).count() == 0
    shot(page, "soh")
    page.close()
