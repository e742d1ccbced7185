"""The app widgets in plain Python: fake upload payloads, button clicks, threads joined (no sleep)."""

from __future__ import annotations

import base64
import io
import types
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import traitlets as tl

from battlab.widgets.data import CurationReport, DataUploader, example_path
from battlab.widgets.features import FeatureExplorer
from battlab.widgets.predictor import Predictor, local_contributions
from battlab.widgets.tuning import TuningMonitor

METALS = ["Co", "Ni", "Mn", "Fe", "Ti", "V", "Cr", "Cu", "Al", "Mg"]


def payload(name: str, content: bytes) -> tuple[dict, ...]:
    """What ipywidgets 8's FileUpload puts in ``value`` after a browser upload."""
    return ({"name": name, "type": "text/csv", "size": len(content), "last_modified": datetime.now(),
             "content": memoryview(content)},)


def formula_table(n: int = 80, seed: int = 0) -> pd.DataFrame:
    """Formulas over many chemical systems (grouped CV needs several) and a numeric feature."""
    rng = np.random.default_rng(seed)
    formulas = [f"Li{i % 3 + 1}{METALS[i % 10]}O{(i // 10) % 4 + 1}" for i in range(n)]
    x = rng.normal(size=n)
    return pd.DataFrame({"formula": formulas, "x": x, "y": 2 * x + rng.normal(scale=0.1, size=n)})


# --------------------------------------------------------------------------- DataUploader / CurationReport

def test_example_curation_shows_report_and_quarantine() -> None:
    up = DataUploader()
    assert up.state == "INIT" and up.curate_button.disabled
    up.load_example()
    assert up.state == "READY", up.message
    assert (up.formula_column, up.target_dropdown.value) == ("formula", "capacity (mAh/g)")
    assert "voltage (V)" in up.target_dropdown.options and "source" not in up.target_dropdown.options
    up.curate_button.click()
    assert up.state == "SUCCESS", up.message
    r = up.result.report
    assert (r["n_input"], r["n_kept"], r["n_merged"], r["n_quarantined"]) == (15, 10, 1, 4)
    assert set(r["quarantine_reasons"]) == {"formula", "out_of_bounds", "wrong_unit", "missing_target"}
    assert r["n_censored"] == 1  # ">250"
    assert up.curated is up.result.curated and len(up.curated) == 10
    assert 165.0 in up.curated["capacity (mAh/g)"].tolist()  # "0.165 Ah/g" converted
    assert up.report.count.value == "4 rows quarantined"
    assert "battlab-quarantine-count" in up.report.count._dom_classes
    html_table = up.report.quarantine_table.value
    assert "LiFePQ4" in html_table and "unknown element" in html_table and "-12" in html_table
    assert up.report.figure.value[:4] == b"\x89PNG"


def test_upload_payload_and_dlinked_report() -> None:
    up, report = DataUploader(target="cap"), CurationReport(plot=False)
    tl.dlink((up, "result"), (report, "result"))
    csv = b"material;cap;note\nLiCoO2;140;a\nLiCoO2;142;b\nXx2O;100;c\nLiFePO4;160 mAh/g;d\n"
    up.upload.value = payload("mine.csv", csv)
    assert up.state == "READY" and up.filename == "mine.csv"
    assert up.formula_dropdown.value == "material" and up.target_dropdown.value == "cap"
    assert up.upload.value == ()  # cleared: the same file can be uploaded again
    up.run_curation()
    assert up.state == "SUCCESS"
    assert report.result is up.result and report.count.value == "1 row quarantined"
    assert "mine.csv" in up.message and "mine.csv" in report.quarantine_table.value


def test_excel_upload(tmp_path: Path) -> None:
    buf = io.BytesIO()
    pd.DataFrame({"formula": ["LiCoO2", "LiNiO2"], "capacity": [140, 190]}).to_excel(buf, index=False)
    up = DataUploader()
    up.upload.value = payload("cells.xlsx", buf.getvalue())
    up.run_curation()
    assert up.state == "SUCCESS" and up.result.report["n_kept"] == 2


@pytest.mark.parametrize("name, content, expected", [
    ("bad.csv", b"\x00\x01\x02binary", "bad.csv: looks like a binary file"),
    ("empty.csv", b"", "empty.csv: the file is empty"),
    ("broken.xlsx", b"PK not really a zip", "broken.xlsx: cannot read as xlsx"),
    ("nums.csv", b"1,2\n3,4\n", "no header row"),
    ("words.csv", b"formula,comment\nLiCoO2,good\n", "no numeric column"),
])
def test_bad_files_show_a_message(name: str, content: bytes, expected: str) -> None:
    up = DataUploader()
    up.upload.value = payload(name, content)  # must not raise
    assert up.state == "FAIL"
    assert expected in up.message and "/tmp" not in up.message  # the file's name, not the temp path
    assert "battlab-msg-error" in up.status.value
    assert up.result is None and up.curated is None and up.curate_button.disabled


def test_unexpected_error_is_shown_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    import battlab.widgets.data as data

    def boom(*args, **kwargs):
        raise RuntimeError("kaput")

    up = DataUploader()
    up.load_example()
    monkeypatch.setattr(data, "curate", boom)
    up.curate_button.click()
    assert up.state == "FAIL" and "RuntimeError: kaput" in up.message
    assert not up.curate_button.disabled  # the user can try again
    up.formula_dropdown.value = up.target_dropdown.value = "voltage (V)"
    assert up.run_curation() is None and "same column" in up.message
    up.load_file("/nonexistent/x.csv")
    assert up.state == "FAIL" and "cannot open" in up.message


def test_example_csv_ships_with_the_package() -> None:
    assert example_path().is_file() and example_path().read_text().startswith("formula,")


# --------------------------------------------------------------------------- FeatureExplorer

def test_feature_explorer_follows_the_uploader() -> None:
    up, fx = DataUploader(), FeatureExplorer(preset="magpie")
    for name in ("target", "log_target", "curated"):
        tl.dlink((up, name), (fx, name))
    up.load_example()
    up.run_curation()
    assert fx.state == "SUCCESS", fx.message
    assert len(fx.table) == 10 and len(fx.info) == 132 and "kept" in fx.info
    assert fx.model_target == "capacity (mAh/g)"
    assert fx.family_dropdown.options[1:] == ("element property",)
    fx.feature = "MagpieData mean Electronegativity"
    assert fx.feature_dropdown.value == "MagpieData mean Electronegativity"
    assert fx.distribution.value[:4] == b"\x89PNG" and fx.correlation.value == b""  # drawn when shown
    fx.tabs.selected_index = 1
    assert fx.correlation.value[:4] == b"\x89PNG"
    assert "Spearman" in fx.ranking.value
    mon = TuningMonitor(models=("ridge",))
    for a, b in (("table", "table"), ("info", "info"), ("model_target", "target")):
        tl.dlink((fx, a), (mon, b))
    assert mon.state == "READY" and mon.target == "capacity (mAh/g)"
    assert mon.features() == fx.info.loc[fx.info["kept"], "feature"].tolist()
    assert "voltage (V)" in mon.target_dropdown.options and "row" not in mon.target_dropdown.options
    fx.log_target = True  # a conductivity would be modelled in log10
    assert fx.model_target == "log10 capacity (mAh/g)" and "log10 capacity (mAh/g)" in fx.table
    assert mon.target == "log10 capacity (mAh/g)" == mon.target_dropdown.value


def test_feature_explorer_with_a_table_and_bad_input() -> None:
    from battlab.featurize import featurize_table

    table, info = featurize_table(formula_table(20), preset="magpie")
    fx = FeatureExplorer(table, info, target="y")
    assert fx.state == "SUCCESS" and fx.model_target == "y" and fx.feature_dropdown.value
    fx.curated = pd.DataFrame({"note": ["a", "b"]})  # no formula, no number: a message, not an exception
    assert fx.state == "FAIL" and "no feature columns" in fx.message and fx.table is None
    fx.curated = pd.DataFrame({"gap": [1.0, 2.0, 3.0], "solids": [0.5, 0.7, 0.6], "y": [1.0, 2.0, 4.0]})
    fx.target = "y"  # a table without formulas: its numeric columns are the features
    assert fx.state == "SUCCESS" and fx.feature_set.features == ["gap", "solids"] and fx.model_target == "y"


# --------------------------------------------------------------------------- TuningMonitor

def test_tuning_monitor_runs_in_a_thread(tmp_path: Path) -> None:
    mon = TuningMonitor(formula_table(), features=["x"], target="y", models=("ridge",), n_trials=3,
                        out_dir=tmp_path / "tune")
    assert mon.state == "READY" and not mon.start_button.disabled
    assert mon.target_dropdown.options == ("y",)
    seen = []
    mon.observe(lambda ch: seen.append(ch["new"]), names="n_trials_done")
    assert mon.start()
    assert mon.state in ("ACTIVE", "SUCCESS")
    assert mon.join(timeout=60), "tuning did not finish"
    assert mon.state == "SUCCESS", mon.message
    assert seen == [1, 2, 3] and mon.n_trials_done == 3 and mon.progress.value == 3
    assert mon.result.best_name == "ridge" and mon.best_value == pytest.approx(min(
        t.value for t in mon.result.study.trials))
    assert not mon.stopped and mon.plot.value[:4] == b"\x89PNG" and "CV MAE" in mon.result_view.value
    assert {"model.joblib", "intervals.joblib", "model_card.json", "study.db"} <= {
        p.name for p in Path(mon.model_dir).iterdir()}


def test_tuning_monitor_stop() -> None:
    mon = TuningMonitor(formula_table(), features=["x"], target="y", models=("ridge",), n_trials=500,
                        intervals=False)
    mon.observe(lambda ch: mon.stop() if ch["new"] >= 2 else None, names="n_trials_done")
    mon.start_button.click()
    assert mon.join(timeout=60), "stop did not end the study"
    assert mon.state == "SUCCESS", mon.message
    assert mon.stopped and mon.n_trials_done == 2 and len(mon.result.study.trials) == 2
    assert mon.message.startswith("stopped after 2 trials")


def test_tuning_monitor_errors_are_shown() -> None:
    mon = TuningMonitor()
    assert mon.state == "INIT" and mon.start_button.disabled
    assert not mon.start() and mon.state == "FAIL" and "no feature table" in mon.message
    mon = TuningMonitor(formula_table(), features=["x"], target="y", models=("nonexistent",), n_trials=2)
    assert mon.start() and mon.join(timeout=30)
    assert mon.state == "FAIL" and "unknown model" in mon.message and mon.result is None


# --------------------------------------------------------------------------- Predictor

@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two real tiny models on magpie features: LightGBM, and ridge that also used a structure feature."""
    from battlab.featurize import composition_features
    from battlab.tune import tune

    base = formula_table(80)
    feats = ["MagpieData mean Electronegativity", "MagpieData mean AtomicWeight", "MagpieData range Number",
             "MagpieData mean NValence"]
    X = composition_features(base["formula"], preset="magpie")[feats]
    table = pd.concat([base[["formula"]], X], axis=1)
    table["y"] = 3 * table[feats[0]] + 0.01 * table[feats[1]] + np.random.default_rng(1).normal(0, 0.05, 80)
    table["density (g/cm3)"] = np.random.default_rng(2).normal(4, 0.5, 80)
    out = {}
    for name, model, cols in (("lgbm", "lgbm", feats), ("ridge", "ridge", [*feats, "density (g/cm3)"])):
        result = tune(table, cols, "y", models=(model,), n_trials=1, storage="sqlite:///:memory:", progress=False)
        out[name] = tmp_path_factory.mktemp(name)
        result.save(out[name])
    return out


def test_predictor_lgbm_intervals_reasons_and_export(model_dirs: dict[str, Path], tmp_path: Path) -> None:
    p = Predictor(model_dirs["lgbm"])
    assert p.state == "READY", p.message
    assert p.target == "y" and "predicts <b>y</b> with lgbm" in p.model_info.value
    p.text.value = "LiCoO2"
    p.predict_button.click()
    row = p.results.iloc[0]
    assert p.state == "SUCCESS" and row["formula"] == "LiCoO2" and row["error"] == ""
    assert row["low"] <= row["prediction"] <= row["high"]
    assert "MagpieData" in row["reason"] and "(+" in row["reason"] or "(-" in row["reason"]

    rows = p.predict("LiFePO4, LiMn2O4; Xx2O\nLiNiO2)")
    assert len(rows) == 4 and len(p.results) == 5  # appended
    bad = rows.set_index("formula")
    assert "unknown element" in bad.loc["Xx2O", "error"] and np.isnan(bad.loc["Xx2O", "prediction"])
    assert bad.loc["LiNiO2)", "error"] and bad.loc["LiMn2O4", "error"] == ""
    good = p.results[p.results["error"] == ""]
    assert ((good["low"] <= good["prediction"]) & (good["prediction"] <= good["high"])).all()
    assert "2 not understood" in p.message

    out = tmp_path / "sub" / "pred.csv"
    p.export_button.click()  # no export path: the link only
    assert "data:text/csv;base64," in p.download.value
    text = p.export_csv(out)
    assert out.read_text() == text
    back = pd.read_csv(io.StringIO(text), keep_default_na=False)
    assert list(back.columns) == ["formula", "prediction", "low", "high", "reason", "error"]
    assert back["formula"].tolist() == ["LiCoO2", "LiFePO4", "LiMn2O4", "Xx2O", "LiNiO2)"]
    b64 = p.download.value.split("base64,")[1].split("'")[0]
    assert base64.b64decode(b64).decode() == text and "pred.csv" in p.download.value
    p.clear()
    assert len(p.results) == 0 and p.export_button.disabled


def test_predictor_upload_list_and_formula_only_note(model_dirs: dict[str, Path]) -> None:
    p = Predictor(model_dirs["ridge"])
    assert p.unavailable == ["density (g/cm3)"] and "ignores them" in p.model_info.value
    p.upload.value = payload("list.csv", b"name,formula\na,LiCoO2\nb,NaCoO2\nc,Qq\n")
    assert p.results["formula"].tolist() == ["LiCoO2", "NaCoO2", "Qq"]
    r = p.results.iloc[0]
    assert r["low"] <= r["prediction"] <= r["high"] and "Electronegativity" in r["reason"]
    assert "density" not in r["reason"]  # not computed: never a reason
    p.upload.value = payload("junk.csv", b"\x00\x00\x00")
    assert p.state == "FAIL" and "junk.csv" in p.message and len(p.results) == 3


def test_predictor_reasons_from_battlab_explain(model_dirs: dict[str, Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import battlab.widgets.predictor as predictor

    def fake(model, X):
        return types.SimpleNamespace(values=pd.DataFrame(np.tile(np.arange(X.shape[1], dtype=float), (len(X), 1))))

    monkeypatch.setattr(predictor, "explain", fake)
    p = Predictor(model_dirs["lgbm"])
    reason = p.predict(["LiCoO2"])["reason"].iloc[0]
    assert reason.split("; ")[0].endswith("MagpieData mean NValence (+3)")  # the largest fake SHAP value
    monkeypatch.setattr(predictor, "explain", lambda model, X: 1 / 0)  # explain fails: the local attribution
    assert "MagpieData" in p.predict(["LiNiO2"])["reason"].iloc[0]


def test_predictor_reasons_agree_with_battlab_explain(model_dirs: dict[str, Path]) -> None:
    auto = Predictor(model_dirs["lgbm"], max_reason_rows=2)
    local = Predictor(model_dirs["lgbm"], reasons="local")
    formulas = ["LiCoO2", "LiFePO4", "Li2MnO3"]
    a, b = auto.predict(formulas), local.predict(formulas)
    assert a["reason"].tolist()[:2] == b["reason"].tolist()[:2] and a["reason"].iloc[0]
    assert a["reason"].iloc[2] == "" and "reasons for the first 2 only" in auto.message


def test_predictor_form_for_a_model_without_formulas(tmp_path: Path) -> None:
    from battlab import steps

    rng = np.random.default_rng(3)
    raw = pd.DataFrame({"gap (um)": rng.uniform(50, 200, 80), "solids": rng.uniform(0.5, 0.7, 80)})
    raw["spread"] = 0.001 * raw["gap (um)"] - 0.05 * raw["solids"] + rng.normal(scale=0.005, size=80)
    tuned = steps.tune(steps.featurize(steps.curate(raw, target="spread")), models=("lgbm",), n_trials=1,
                       storage="sqlite:///:memory:", progress=False)
    tuned.save(tmp_path / "m")
    p = Predictor(tmp_path / "m")
    assert p.state == "READY", p.message
    assert p.inputs == ["gap (um)", "solids"] and p.text_row.layout.display == "none"
    assert [f.description for f in p.form.children] == ["gap (um)", "solids"]
    p.fields["gap (um)"].value, p.fields["solids"].value = 120.0, 0.6
    p.predict_button.click()
    row = p.results.iloc[0]
    expected = tuned.predict_interval(pd.DataFrame({"gap (um)": [120.0], "solids": [0.6]})).iloc[0]
    assert row["prediction"] == pytest.approx(expected["prediction"]) and row["low"] <= row["prediction"] <= row["high"]
    assert "gap (um)" in row["reason"] or "solids" in row["reason"]
    p.upload.value = payload("runs.csv", b"gap (um),solids\n100,0.55\n180,x\n")
    assert p.results["gap (um)"].tolist()[-2:] == ["100", "180"]  # as uploaded
    assert p.results["error"].iloc[-1] == "column 'solids': 'x' is not a number"
    assert np.isnan(p.results["prediction"].iloc[-1]) and np.isfinite(p.results["prediction"].iloc[-2])
    assert p.predict(["LiCoO2"]).empty and "form" in p.message


def test_predictor_without_a_model_never_raises(tmp_path: Path) -> None:
    p = Predictor(tmp_path)  # an empty folder
    assert p.state == "FAIL" and "model_card.json" in p.message and p.predict_button.disabled
    assert p.predict(["LiCoO2"]).empty and p.state == "FAIL"
    assert Predictor().state == "INIT"
    (tmp_path / "model.joblib").write_bytes(b"")
    (tmp_path / "model_card.json").write_text('{"features": {"names": ["gap (um)"]}}')
    p.load_model(tmp_path)  # a truncated file: a message
    assert p.state == "FAIL" and "cannot load the model" in p.message and p.model is None


def test_local_contributions_sum_to_the_prediction(model_dirs: dict[str, Path]) -> None:
    import joblib

    from battlab.featurize import composition_features

    for name in ("lgbm", "ridge"):
        model = joblib.load(model_dirs[name] / "model.joblib")
        p = Predictor(model_dirs[name])
        X, _ = p.features_for(["LiCoO2", "LiFePO4", "Li2MnO3"])
        c = local_contributions(model, X)
        assert c is not None and c.shape == X.shape
        if name == "ridge":  # linear: prediction = intercept + sum of contributions
            pred = model.predict(X.to_numpy())
            assert np.allclose(c.sum(axis=1).to_numpy() + model[-1].intercept_, pred)
    assert set(composition_features(["LiCoO2"], preset="magpie").columns) >= set(X.columns[:4])


def test_app_status_runs_a_slow_build_behind_the_app_and_shows_its_failure():
    from battlab.widgets.status import AppStatus

    status = AppStatus("predictor")
    seen = []

    def build(progress):
        progress(0.5, "half way")
        seen.append((status.bar.value, status.message))
        return "folder"

    status.in_background("building", build, on_done=seen.append, done=lambda result: f"model in {result}").join()
    assert seen.pop() == "folder"
    assert seen == [(50, "half way")]
    assert status.state == "READY" and status.message == "model in folder"
    assert status.bar.layout.display == "none"

    broken = AppStatus("predictor")

    def fails(progress):
        raise ValueError("no data")

    broken.in_background("building", fails, on_done=lambda result: None).join()
    assert broken.state == "FAIL"
    assert "building: ValueError: no data" in broken.message
    assert "battlab-status-fail" in broken._dom_classes and "no data" in broken._line.value
