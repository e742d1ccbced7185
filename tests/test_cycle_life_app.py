"""The ``cycle_life`` app: the ``CycleLifePredictor`` widget in plain Python (fake upload payloads, the real cycler
files of ``shared/datasets/cycler_files``, a cell cut short, bad files), its default model, and the app served by
Voilà in headless Chromium (fixtures and helpers of ``tests/test_apps_browser.py``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser import ERRORS, shot
from test_apps_browser import open_app, upload, voila  # noqa: F401, F811  (voila: the Voilà server fixture)

from battlab.cycling.curves import DischargeCurves, curves_from_cell, load_severson_subset
from battlab.cycling.models import CycleLifeModel, fit_cycle_life
from battlab.cycling.read import read_cycler_file
from battlab.widgets.cycle_life import CycleLifePredictor, cell_contributions, read_cycler_upload

NEEDS = "the model predicts from the first 100 cycles and needs cycles 2, 10, 91-100; the cell has"
#: The app's own default model (feature set ``full_discharge``, the cycle-life benchmark's choice) needs every cycle.
NEEDS_DEFAULT = "the model predicts from the first 100 cycles and needs cycles 2-100; the cell has"
#: The real cycler files (beep's test files): none holds the 100 cycles the model needs.
REAL_FILES = ("FastCharge_000025_CH8.csv", "2017-05-09_test-TC-contact_CH33.csv",
              "PredictionDiagnostics_000151_test.052", "test_loopsnewoutput_MB_CE1_short10k.csv",
              "test_Nova_Form-CH01-01_short.csv")


@pytest.fixture(scope="module")
def subset() -> DischargeCurves:
    return load_severson_subset()


@pytest.fixture(scope="module")
def model_dir(subset: DischargeCurves, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cycle_life_model")
    fit_cycle_life(subset, models=("ridge",), n_trials=3, progress=False).save(folder)
    return folder


@pytest.fixture(scope="module")
def model(model_dir: Path) -> CycleLifeModel:
    return CycleLifeModel.load(model_dir)


@pytest.fixture
def app(model_dir: Path, subset: DischargeCurves) -> CycleLifePredictor:
    return CycleLifePredictor(model_dir, dataset=subset)


def payload(name: str, content: bytes) -> tuple[dict, ...]:
    """What ipywidgets 8's FileUpload holds after a browser upload."""
    return ({"name": name, "type": "", "size": len(content), "last_modified": datetime.now(),
             "content": memoryview(content)},)


DISCHARGE = ((3.5, 0.0), (3.3, 0.15), (3.2, 0.5), (3.1, 0.8), (3.0, 0.9), (2.5, 0.97), (2.0, 1.0))


def cell_csv(subset: DischargeCurves, cell: str, last_cycle: int = 100,
             discharge: tuple[tuple[float, float], ...] = DISCHARGE) -> bytes:
    """A plain CSV export of one Severson cell's cycles 2..``last_cycle``: a charge, then a discharge (voltage,
    fraction of the capacity) whose counter reaches the cell's measured discharge capacity of that cycle."""
    i = int(np.flatnonzero(subset.cells["cell"] == cell)[0])
    rows, t = [], 0.0
    for c, q in zip(subset.capacity_cycles, subset.capacity[i], strict=True):
        if c > last_cycle:
            break
        for v in (3.4, 3.6):
            rows.append({"cycle": int(c), "time_s": t, "current_A": 4.4, "voltage_V": v, "discharge_capacity_Ah": 0.0})
            t += 600
        for v, frac in discharge:
            rows.append({"cycle": int(c), "time_s": t, "current_A": -4.4, "voltage_V": v,
                         "discharge_capacity_Ah": float(q) * frac})
            t += 600
    return pd.DataFrame(rows).to_csv(index=False).encode()


# --------------------------------------------------------------------------- uploads


def test_upload_of_a_cell_with_100_cycles_is_predicted_with_its_interval(app, model, subset, tmp_path):
    content = cell_csv(subset, "test1_cell5")
    app.upload.value = payload("my_cell.csv", content)
    assert app.state == "SUCCESS", app.message
    assert app.upload.value == ()  # cleared: the same file can be uploaded again
    # the same as battlab.cycling's own path from the file (what `battlab cycling predict` does)
    (tmp_path / "my_cell.csv").write_bytes(content)
    direct = model.predict(curves_from_cell(read_cycler_file(tmp_path / "my_cell.csv"), model.voltages))
    pd.testing.assert_frame_equal(app.prediction, direct)
    row = app.prediction.iloc[0]
    assert row["interval_low"] < row["predicted_cycle_life"] < row["interval_high"]
    assert f"{row['predicted_cycle_life']:,.0f} cycles" in app.result.value
    assert f"90% interval {row['interval_low']:,.0f} – {row['interval_high']:,.0f}" in app.result.value
    assert app.cell.name == "my_cell" and app.cell.usable_cycles == list(range(2, 101))
    assert "my_cell (csv): 891 points, 99 cycles, 99 usable" in app.cell_info.value
    for image in (app.fade_plot, app.dq_plot):
        assert bytes(image.value).startswith(b"\x89PNG") and image.layout.display is None
    # the drivers add up to the prediction (log10 cycles), every feature is there, largest first
    c = app.contributions
    assert sorted(c["feature"]) == sorted(model.features)
    # (before the domain's bound on the life: a prediction beyond the training lives, widened, is held there)
    raw = 10 ** (app.base_value + c["shap"].sum())
    assert np.isclose(np.clip(raw, *model.domain.life_bounds()), row["predicted_cycle_life"])
    assert bool(row["bounded"]) == (not np.isclose(raw, row["predicted_cycle_life"]))
    assert (np.diff(c["shap"].abs().to_numpy()) <= 1e-12).all()
    assert c["feature"].iloc[0] in app.drivers.value and "factor" in app.drivers.value


def test_a_cell_cut_short_says_which_cycles_it_needs_and_still_draws_its_fade(app, subset):
    app.upload.value = payload("short.csv", cell_csv(subset, "test1_cell5", last_cycle=60))
    assert app.state == "FAIL"
    assert app.message == f"short: {NEEDS} 59 cycles with a usable discharge (2-60)"
    assert app.prediction is None and app.contributions is None and app.result.value == ""
    assert bytes(app.fade_plot.value).startswith(b"\x89PNG")  # its capacity fade over the training cells is shown
    assert bytes(app.dq_plot.value).startswith(b"\x89PNG")  # the training cells' dQ(V) (this cell has no cycle 100)
    assert app.pick("test2_cell3")["cell"] == "test2_cell3"  # and the widget still answers
    assert app.state == "SUCCESS"


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_cycler_files_say_how_many_cycles_they_have(app, shared_datasets, name):
    path = shared_datasets / "cycler_files" / name
    usable = read_cycler_file(path).usable_cycles  # what battlab.cycling itself finds in the file
    assert len(usable) < 100
    app.load_file(path)
    assert app.state == "FAIL"
    assert app.message.startswith(f"{path.stem}: {NEEDS} {len(usable)} cycles with a usable discharge ("), app.message
    assert app.cell is not None and app.cell.format in {"arbin", "maccor", "biologic", "novonix"}
    assert f"{path.stem} ({app.cell.format}): " in app.cell_info.value  # what the file holds, unusable cycles listed
    if len(app.cell.unusable):
        assert "battlab-cycle-unusable" in app.cell_info.value
        assert str(app.cell.unusable["reason"].iloc[0]).split(" (")[0] in app.cell_info.value
    assert app.pick("test1_cell1") is not None and app.state == "SUCCESS"  # the kernel survives


def test_a_cell_outside_the_training_voltage_window_is_predicted_with_a_warning(app, subset):
    nmc = ((4.2, 0.0), (4.0, 0.2), (3.8, 0.5), (3.6, 0.8), (3.3, 0.95), (3.0, 1.0))  # another chemistry's window
    app.upload.value = payload("nmc.csv", cell_csv(subset, "test1_cell5", discharge=nmc))
    assert app.state == "SUCCESS"
    assert "the training cells discharge from 3.6 V to 2.0 V, this cell between 4.20 V and 3.00 V" in app.message
    app.upload.value = payload("lfp.csv", cell_csv(subset, "test1_cell5"))
    assert app.state == "SUCCESS" and app.message == "lfp: predicted"


def test_real_file_uploaded_as_bytes_reads_as_from_disk(shared_datasets):
    path = shared_datasets / "cycler_files" / "PredictionDiagnostics_000151_test.052"
    up = read_cycler_upload(path.name, path.read_bytes())
    disk = read_cycler_file(path)
    pd.testing.assert_frame_equal(up.data, disk.data)
    assert up.format == "maccor" and up.source == path.name


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("broken.csv", bytes(range(256)) * 20, "broken.csv: "),
    ("notes.txt", b"hello\nworld\n", "notes.txt: unknown cycler file format"),
    ("novolt.csv", b"cycle,time_s,current_A\n1,0,1.0\n1,10,-1.0\n", "novolt.csv: "),
    ("../../etc/empty.csv", b"", "empty.csv: "),
])
def test_bad_files_show_one_line_naming_the_upload(app, name, content, expected):
    app.upload.value = payload(name, content)
    assert app.state == "FAIL"
    assert app.message.startswith(expected), app.message
    assert "battlab-upload-" not in app.message and "\n" not in app.message  # no temporary path, one line
    assert "battlab-msg-error" in app.status.value
    assert app.prediction is None and app.cell is None
    assert app.pick("test2_cell1") is not None  # the kernel and the widget keep working


def test_missing_voltage_column_is_named(app):
    app.load_bytes("novolt.csv", b"cycle,time_s,current_A\n1,0,1.0\n1,10,-1.0\n")
    assert "voltage" in app.message


def test_missing_file_on_disk(app, tmp_path):
    app.load_file(tmp_path / "nothing.csv")
    assert app.state == "FAIL" and app.message.startswith("nothing.csv: cannot open the file")


# --------------------------------------------------------------------------- dataset cells and the model


def test_pick_a_dataset_cell(app, model, subset):
    assert len(app.picker.options) == len(subset) == 124
    assert app.picker.value.startswith("test")  # a test cell first: its prediction is an honest one
    row = app.pick("test2_cell7")
    expected = model.predict(subset.select(subset.cells["cell"] == "test2_cell7"))
    pd.testing.assert_frame_equal(app.prediction, expected)
    assert row["cycle_life"] == subset.cells.set_index("cell").loc["test2_cell7", "cycle_life"]
    assert f"observed <b>{row['cycle_life']:,.0f}</b>" in app.result.value
    assert "not used for any choice of the model" in app.result.value
    app.picker.value = "train_cell2"
    app.predict_button.click()
    assert app.prediction["cell"].iloc[0] == "train_cell2" and "the model has seen it" in app.result.value
    assert app.pick("no_such_cell") is None and app.state == "FAIL" and "no cell 'no_such_cell'" in app.message


def test_contributions_refer_to_the_training_cells(model, subset):
    """The linear model's SHAP values are coef x (x - mean): the mean over the training cells and the cell, so two
    cells' values differ by coef x their difference, whatever else is explained."""
    a = subset.select(subset.cells["cell"] == "test1_cell2")
    b = subset.select(subset.cells["cell"] == "test1_cell9")
    ta, base_a, kind = cell_contributions(model, a)
    tb, base_b, _ = cell_contributions(model, b)
    assert kind.startswith("linear SHAP")
    for table, curves in ((ta, a), (tb, b)):
        log_pred = np.log10(model.predict(curves)["predicted_cycle_life"].iloc[0])
        base = base_a if table is ta else base_b
        assert np.isclose(base + table["shap"].sum(), log_pred)
    train = model.train_table[model.features]
    assert np.allclose(ta.set_index("feature")["training_median"], train.median()[ta["feature"]].to_numpy())


def test_upload_before_the_model_is_loaded_is_predicted_when_it_arrives(model_dir, subset):
    app = CycleLifePredictor(dataset=subset)  # as in the app: drawn at once, the model comes later
    assert app.state == "INIT" and app.predict_button.disabled
    app.upload.value = payload("early.csv", cell_csv(subset, "test2_cell2"))
    assert app.prediction is None and "comes when the model is loaded" in app.message
    app.model_dir = str(model_dir)
    assert app.state == "SUCCESS" and app.prediction["cell"].iloc[0] == "early"


def test_a_missing_model_is_shown_not_raised(tmp_path):
    app = CycleLifePredictor(tmp_path / "nowhere")
    assert app.state == "FAIL" and "no cycle-life model there" in app.message
    assert app.model is None and app.predict_button.disabled


def test_a_dataset_on_another_voltage_grid_is_not_offered(model_dir, subset):
    coarse = DischargeCurves(subset.Q[:, :, ::2], subset.voltages[::2], subset.cycles, subset.cells, subset.capacity,
                             subset.capacity_cycles)
    app = CycleLifePredictor(model_dir, dataset=coarse)
    assert app.state == "READY" and app.picker.options == () and app.predict_button.disabled
    assert "No dataset cells to pick from" in app.model_info.value and "50 voltages" in app.model_info.value
    app.upload.value = payload("c.csv", cell_csv(subset, "test1_cell5"))
    assert app.state == "SUCCESS"  # uploads still work, without the training cells' plots: the cell's fade alone
    assert app.dq_plot.layout.display == "none" and app.fade_plot.layout.display is None


def test_state_is_shown_as_a_css_class(app):
    assert app.state == "READY" and "battlab-cycle-life-ready" in app._dom_classes
    app.load_bytes("notes.txt", b"hello\n")
    assert "battlab-cycle-life-fail" in app._dom_classes and "battlab-cycle-life-ready" not in app._dom_classes


def test_a_model_on_the_full_curves_offers_the_full_dataset(data_cache, tmp_path):
    """notebook 06 run on ``severson2019`` (1000 voltages): the shipped subset does not fit, the full curves do."""
    from battlab.cycling.curves import SEVERSON_VOLTAGES, load_severson

    full = load_severson()
    fit_cycle_life(full, models=("ridge",), n_trials=2, progress=False).save(tmp_path / "full")
    app = CycleLifePredictor(tmp_path / "full")
    assert app.state == "READY" and len(app.dataset.voltages) == 1000
    assert np.allclose(app.dataset.voltages, SEVERSON_VOLTAGES) and not app.dataset.notes.get("subset")
    assert len(app.picker.options) == 124 and "Cells to pick: 124" in app.model_info.value
    assert app.pick("test1_cell4")["cell"] == "test1_cell4" and app.state == "SUCCESS"


def test_widget_is_in_the_lazy_registry():
    import battlab.widgets

    assert battlab.widgets.CycleLifePredictor is CycleLifePredictor
    assert "CycleLifePredictor" in battlab.widgets.__all__


def test_default_model_is_built_once_then_reused_or_taken_from_the_pipeline(tmp_path, monkeypatch, subset):
    import battlab.apps as apps

    monkeypatch.setattr(apps, "RUNS_DIR", tmp_path / "runs")
    heard: list[tuple[float, str]] = []
    folder, source = apps.default_cycle_life_model(progress=lambda f, text: heard.append((f, text)))
    assert folder == tmp_path / "runs" / "app-default" / "cycle_life"
    assert source.startswith("small default cycle-life model built now") and "41 training cells" in source
    assert [f for f, _ in heard] == sorted(f for f, _ in heard) and heard[-1][0] == 1.0
    assert [p.name for p in folder.parent.iterdir()] == ["cycle_life"]  # no private build folder left behind
    model = CycleLifeModel.load(folder)
    assert model.card["cycle_life"]["train_cells"] == 41 and model.n_cycles == 100
    assert model.card["cycle_life"]["feature_set"] == "relative"  # the benchmark's choice
    assert model.required_cycles() == list(range(2, 101))
    # no fade-curve model (the subset's capacities stop at cycle 100): the app draws the life on the 0.88 Ah line
    from battlab.cycling.forecast import life_threshold, load_trajectory

    trajectory, why = load_trajectory(folder)
    assert trajectory is None and "capacities stop at cycle 100" in why
    assert life_threshold(model) == (0.88, "80 % of the nominal 1.1 Ah")
    pred = model.predict(subset.select(subset.cells["split"] == "test2"))
    assert len(pred) == 40 and (pred["interval_low"] < pred["interval_high"]).all()
    heard.clear()
    again, source = apps.default_cycle_life_model(progress=lambda f, text: heard.append((f, text)))
    assert again == folder and source.startswith("small default cycle-life model built earlier") and not heard
    latest = tmp_path / "runs" / "latest" / "06_cycle_life"
    model.save(latest)  # what notebook 06 leaves in runs/latest
    found, source = apps.default_cycle_life_model()
    assert found == latest and source.startswith("cycle-life model from the last pipeline run")


# --------------------------------------------------------------------------- the app in a browser


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty ``runs/`` (used by the ``voila`` fixture): the app builds its default model from the shipped
    subset, as on a fresh clone without ``make run``."""
    return tmp_path_factory.mktemp("runs")


@pytest.mark.browser
def test_app_upload_of_a_real_cycler_file_says_how_many_cycles_it_has(browser, voila, shared_datasets):  # noqa: F811
    page = open_app(browser, voila, "cycle_life")
    assert "Model:" in page.inner_text(".battlab-app-status")
    upload(page, shared_datasets / "cycler_files" / "PredictionDiagnostics_000151_test.052")
    page.wait_for_selector(".battlab-cycle-life.battlab-cycle-life-fail", timeout=60_000)
    text = page.inner_text(".battlab-cycle-life-message")
    assert f"PredictionDiagnostics_000151_test: {NEEDS_DEFAULT} 1 cycles with a usable discharge (37)" in text
    assert "maccor" in page.inner_text(".battlab-cycle-life-cell")
    assert page.locator(ERRORS).count() == 0
    shot(page, "cycle_life_short_file")
    page.close()


@pytest.mark.browser
def test_app_pick_a_dataset_cell_shows_prediction_interval_and_drivers(browser, voila):  # noqa: F811
    page = open_app(browser, voila, "cycle_life")
    picker = ".battlab-cycle-cell-picker select"
    page.select_option(picker, index=50)
    chosen = page.eval_on_selector(picker, "s => s.options[s.selectedIndex].text").replace("\xa0", " ").split(" (")[0]
    page.click(".battlab-cycle-predict-cell")
    page.wait_for_selector(".battlab-cycle-life.battlab-cycle-life-success", timeout=60_000)
    text = page.inner_text(".battlab-cycle-life-prediction")
    assert text.startswith(f"{chosen}: predicted cycle life") and "interval" in text and "observed" in text
    page.wait_for_function("[...document.querySelectorAll('.battlab-cycle-life-plots img')].filter("
                           "e => e.naturalWidth > 0).length === 2", timeout=30_000)
    assert "What drove it" in page.inner_text(".battlab-cycle-life-drivers")
    assert page.locator(ERRORS).count() == 0
    shot(page, "cycle_life")
    page.close()


def test_a_cell_the_model_knows_nothing_about_is_refused_not_predicted(app):
    """An 18 Ah cell for a model of 1.1 Ah cells (issue 22 item 7): a clear refusal, no number."""
    from battlab.cycling.synthetic import synthetic_cycles

    table = synthetic_cycles(300, 100, nominal_Ah=18.0)
    content = table.drop(columns=["step", "charge_capacity_Ah"]).to_csv(index=False).encode()
    app.upload.value = payload("big.csv", content)
    assert app.state == "FAIL" and app.prediction is None
    assert app.message.startswith("big: no prediction, the cell is outside what the model knows")
    assert "initial capacity 18 Ah far outside" in app.message


# --------------------------------------------------------------------------- fade curves (issue 22 item 6)


@pytest.fixture(scope="module")
def own_cells(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pd.DataFrame]:
    """Synthetic cycler files with known lives and a model folder fitted on them (with its fade-curve model)."""
    from battlab.cycling.owncells import fit_cycle_life_cells
    from battlab.cycling.synthetic import write_example_cells

    cells = tmp_path_factory.mktemp("own_cells")
    truth = write_example_cells(cells, n_cells=12, seed=0)
    folder = tmp_path_factory.mktemp("own_model")
    fit_cycle_life_cells(cells, nominal_Ah=1.1, models=("ridge",), n_trials=2).save(folder)
    assert (folder / "trajectory.joblib").is_file()
    return cells, folder, truth


def test_upload_to_a_model_with_a_fade_curve_draws_the_curve_and_its_band(own_cells, subset):
    cells, folder, truth = own_cells
    app = CycleLifePredictor(folder, dataset=subset)  # the subset is on another grid: uploads only
    assert app.state == "READY" and "Fade curve: forecast from the first 100 cycles" in app.model_info.value
    app.upload.value = payload("cell_03.csv", (cells / "cell_03.csv").read_bytes())
    assert app.state == "SUCCESS" and app.fade_mode == "curve"
    curve = app.forecast
    assert list(curve.columns) == ["cell", "cycle", "predicted_capacity_Ah", "low", "high"]
    assert curve["cycle"].min() == 101 and (curve["low"] <= curve["high"]).all()
    life = float(truth.set_index("cell").loc["cell_03", "true_life"])
    assert abs(float(app.forecast_life["predicted_life"].iloc[0]) - life) < 0.1 * life
    assert "fade forecast from the first 100 cycles" in app.forecast_info.value
    assert "life read off the curve" in app.forecast_info.value
    assert bytes(app.fade_plot.value).startswith(b"\x89PNG") and app.fade_plot.layout.display is None
    # a new upload clears the last forecast first
    app.load_bytes("notes.txt", b"hello")
    assert app.state == "FAIL" and app.forecast is None and app.fade_mode == "" and app.forecast_info.value == ""


def test_a_model_without_a_fade_curve_draws_the_life_on_the_threshold_line_and_says_why(own_cells, subset, tmp_path):
    import shutil

    cells, folder, _ = own_cells
    bare = tmp_path / "no_trajectory"
    shutil.copytree(folder, bare)
    (bare / "trajectory.joblib").unlink()
    app = CycleLifePredictor(bare, dataset=subset)
    assert "No fade-curve forecast" in app.model_info.value and "threshold line" in app.model_info.value
    row = app.load_file(cells / "cell_05.csv") or app.prediction.iloc[0]
    assert app.state == "SUCCESS" and app.fade_mode == "threshold" and app.forecast is None
    assert np.isfinite(row["predicted_cycle_life"])
    text = app.forecast_info.value
    assert "no fade-curve forecast with this model" in text and "on the end-of-life threshold line" in text
    assert bytes(app.fade_plot.value).startswith(b"\x89PNG")


def test_a_severson_model_says_it_has_no_fade_curve(app, subset):
    app.pick("test1_cell3")
    assert app.state == "SUCCESS" and app.fade_mode == "threshold" and app.forecast is None
    assert "no fade-curve forecast with this model" in app.forecast_info.value
    assert "capacities stop at cycle 100" in app.model_info.value


def test_a_refused_cell_gets_no_fade_curve(own_cells, subset):
    from battlab.cycling.synthetic import synthetic_cycles

    _, folder, _ = own_cells
    app = CycleLifePredictor(folder, dataset=subset)
    table = synthetic_cycles(300, 110, nominal_Ah=3.0)  # a 3 Ah cell for a model of 1.1 Ah cells
    app.upload.value = payload("big.csv", table.drop(columns=["step", "charge_capacity_Ah"]).to_csv(index=False)
                               .encode())
    assert app.state == "FAIL" and "outside what the model knows" in app.message
    assert app.forecast is None and app.fade_mode == ""
