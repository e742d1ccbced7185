"""The ``design`` app: the ``DesignScreener`` widget driven in plain Python (typed parents, fake CIF uploads, bad
parents), its models (``battlab.apps.DesignSetup``, the voltage model built once), the relax button with and without
the atomistic extra, and the app served by Voilà in headless Chromium (fixtures of ``tests/test_apps_browser.py``)."""

from __future__ import annotations

import base64
import io
import re
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from browser import ERRORS, shot
from test_apps_browser import runs_dir, voila  # noqa: F401  (the Voilà server and its runs/ fixtures)

from battlab import steps
from battlab.apps import DesignSetup
from battlab.cli import main
from battlab.design import generate, prototype
from battlab.design.funnel import screen
from battlab.widgets.design import EXAMPLE_PARENTS, DesignScreener

#: Known average voltages (V vs the metal, rounded Materials Project values) of a few Li and Na electrodes: a toy
#: voltage model and the known results its plan starts from.
VOLTAGES = pd.DataFrame({
    "formula": ["LiFePO4", "LiMnPO4", "LiCoPO4", "LiNiPO4", "LiCoO2", "LiNiO2", "LiMn2O4", "LiTiS2", "LiVPO4F",
                "NaFePO4", "NaCoO2", "NaMnO2", "NaCrO2", "NaVPO4F", "Na2FeP2O7", "NaTiS2", "NaNiO2", "NaFeO2"],
    "average_voltage": [3.4, 4.0, 4.7, 5.1, 3.9, 3.8, 4.0, 2.1, 4.2, 2.9, 2.8, 2.9, 3.0, 3.7, 2.9, 1.6, 3.0, 3.3]})
VOLTAGES["working_ion"] = ["Li"] * 9 + ["Na"] * 9


def toy_model(table: pd.DataFrame, target: str) -> steps.TunedModel:
    return steps.tune(steps.featurize(steps.curate(table, target=target), preset="magpie"), models=("ridge",),
                      n_trials=1, progress=False, storage="sqlite:///:memory:", split="random:3")


@pytest.fixture(scope="module")
def stability() -> tuple[steps.TunedModel, pd.DataFrame]:
    """The apps' kind of default model (formation enthalpy per atom, Magpie), small: 300 rows, ridge."""
    cs = steps.curate(dataset="exp_formation_enthalpy")
    known = cs.table[[cs.formula_column, cs.target]].rename(columns={cs.formula_column: "formula"}).head(300)
    return toy_model(known, cs.target), known


@pytest.fixture(scope="module")
def voltage() -> steps.TunedModel:
    return toy_model(VOLTAGES[["formula", "average_voltage"]], "average_voltage")


@pytest.fixture
def setup(stability, voltage) -> DesignSetup:
    model, known = stability
    return DesignSetup(model, "a small test model", known, voltage, "a toy voltage model", VOLTAGES)


@pytest.fixture
def no_voltage(stability) -> DesignSetup:
    model, known = stability
    return DesignSetup(model, "a small test model", known, None, "no voltage model (test)")


def payload(name: str, content: bytes) -> tuple[dict, ...]:
    """What ipywidgets 8's FileUpload holds after a browser upload."""
    return ({"name": name, "type": "", "size": len(content), "last_modified": datetime.now(),
             "content": memoryview(content)},)


def download_table(app: DesignScreener) -> pd.DataFrame:
    payload_b64 = re.search(r"base64,([^']+)'", app.download.value).group(1)
    return pd.read_csv(io.BytesIO(base64.b64decode(payload_b64)))


# --------------------------------------------------------------------------- the funnel in the widget


def test_parents_are_screened_ranked_by_energy_and_planned_as_battlab_design_does(setup, stability, voltage):
    app = DesignScreener(setup)
    assert app.state == "READY" and not app.run_button.disabled
    app.parents.value = "LiFePO4, olivine"
    app.ion.value, app.top.value, app.batch_size.value = "Na", 4, 2
    app.run()
    assert app.state == "SUCCESS", app.message
    cands = generate(["LiFePO4", "olivine"], ion="Na", top=4)
    pd.testing.assert_frame_equal(app.candidates.table, cands.table)
    known_na = VOLTAGES.loc[VOLTAGES["working_ion"] == "Na", ["formula", "average_voltage"]].reset_index(drop=True)
    direct = screen(cands, voltage, rank_by="energy", working_ion="Na", done=known_na, target="average_voltage",
                    batch_size=2, plan_top=30, stability=stability[0])
    pd.testing.assert_frame_equal(app.ranked, direct.ranked)
    pd.testing.assert_frame_equal(app.suggestions, direct.suggestions)
    ranked = app.ranked.dropna(subset=["rank"])
    assert ranked["energy_Wh_kg"].is_monotonic_decreasing and len(app.suggestions) == 2
    # the stability proxy beside the ranking: the stability model's own predictions and intervals
    alone = steps.predict(stability[0], app.ranked[["formula"]])
    np.testing.assert_allclose(app.ranked["stability"], alone["prediction"])
    assert (app.ranked["stability_low"] <= app.ranked["stability"]).all()
    shown = app.shown_table()
    for header in ("predicted average_voltage", "average_voltage low", "average_voltage high",
                   "redox-limited capacity (mAh/g)", "redox couples", "capacity note",
                   "energy proxy (Wh/kg of active material)",
                   "formation_enthalpy_per_atom (stability proxy)", "parent", "substitution"):
        assert header in shown.columns, header
    as_csv = pd.read_csv(io.StringIO(shown.to_csv(index=False)))  # what the download holds, read back
    pd.testing.assert_frame_equal(download_table(app), as_csv)
    assert app.plot.layout.display is None and app.plot.value[:4] == b"\x89PNG"
    assert "Compute next" in app.next_html.value and app.progress.value == app.progress.max
    assert app.message == direct.summary()


def test_without_a_voltage_model_candidates_are_ranked_by_the_stability_proxy(no_voltage, stability):
    app = DesignScreener(no_voltage)
    assert "no voltage model (test)" in app.models_info.value
    app.parents.value = "LiCoO2"
    app.ion.value, app.top.value = "Li", 5
    app.run()
    assert app.state == "SUCCESS", app.message
    ranked = app.ranked.dropna(subset=["rank"])
    assert ranked["prediction"].is_monotonic_increasing  # lower formation enthalpy: more stable, first
    shown = app.shown_table()
    assert "predicted formation_enthalpy_per_atom (stability proxy)" in shown.columns
    assert not any("energy proxy" in c for c in shown.columns)  # no voltage: no energy proxy
    assert app.suggestions is not None and len(app.suggestions) == app.batch_size.value


def test_the_prototypes_button_and_an_uploaded_cif_are_parents(setup, tmp_path):
    app = DesignScreener(setup)
    app.use_example()
    assert app.parent_list() == EXAMPLE_PARENTS.split(", ")
    app.parents.value = "layered"
    cif = prototype("olivine").to(fmt="cif").encode()
    app.upload.value = payload("my olivine.cif", cif)
    assert app.upload.value == () and "my olivine.cif" in app.cif_list.value
    app.top.value = 3
    app.run()
    assert app.state == "SUCCESS", app.message
    assert set(app.candidates.table["parent"]) == {"layered", "my olivine.cif"}
    assert app.candidates.table["has_structure"].all()


@pytest.mark.parametrize(("parents", "cif", "bad", "reason"), [
    ("LiFePO4, LiXxO2", None, "LiXxO2", "unknown element 'Xx'"),
    ("LiFePO4, FePO4", None, "FePO4", "no working ion"),
    ("LiFePO4", b"data_broken\n_cell_length_a oops\nloop_\n", "broken.cif", "not a readable structure file"),
])
def test_an_unusable_parent_is_one_line_and_listed_aside_while_the_rest_is_screened(setup, parents, cif, bad,
                                                                                   reason):
    app = DesignScreener(setup)
    app.parents.value = parents
    if cif is not None:
        app.add_cif("broken.cif", cif)
    app.top.value = 3
    app.run()
    assert app.state == "SUCCESS", app.message
    assert "\n" not in app.message and bad in app.message and reason in app.message
    aside = app.set_aside[app.set_aside["stage"] == "parents"]
    assert aside["parent"].tolist() == [bad] and reason in aside["reason"].iloc[0]
    assert bad in app.aside_html.value
    assert set(app.candidates.table["parent"]) == {"LiFePO4"} and app.ranked["rank"].notna().all()


def test_no_usable_parent_fails_in_one_line_and_keeps_the_reasons(setup):
    app = DesignScreener(setup)
    app.parents.value = "LiXxO2, FePO4"
    app.run()
    assert app.state == "FAIL" and app.message == "no candidate made (LiXxO2: unknown element 'Xx')"
    assert app.set_aside["parent"].tolist() == ["LiXxO2", "FePO4"]
    assert app.ranked is None and "FePO4" in app.aside_html.value
    app.parents.value = " , "
    app.run()
    assert app.state == "FAIL" and app.message.startswith("no parent:")


def test_before_the_models_come_nothing_runs():
    app = DesignScreener()
    assert app.state == "INIT" and app.run_button.disabled
    app.run()
    assert app.state == "FAIL" and "not loaded" in app.message


# --------------------------------------------------------------------------- relaxation (optional extra)


def test_relax_button_says_how_to_install_the_extra_when_it_is_missing(setup, monkeypatch):
    import battlab.design.relax as relax

    def missing(package: str) -> None:
        raise relax.AtomisticNotInstalled(f"the universal potentials need the optional extra ({package} is not "
                                          f"installed): {relax.INSTALL_HINT}")

    monkeypatch.setattr(relax, "_require", missing)
    app = DesignScreener(setup)
    app.parents.value = "olivine"
    app.top.value = 2
    app.run()
    assert app.state == "SUCCESS" and app.relax_button.disabled
    assert 'pip install -e ".[atomistic]"' in app.relax_message.value.replace("&quot;", '"')
    assert app.relax() is None and app.relaxed is None


def test_relax_button_relaxes_the_best_ranked_structures_when_the_extra_is_there(setup, monkeypatch):
    import battlab.design.relax as relax

    calls = {}

    def fake_relax(structures, steps, progress):  # the potential itself is tested in test_design_relax.py
        calls.update(names=list(structures), steps=steps)
        return pd.DataFrame({"name": list(structures), "status": "ok", "reason": ""})

    monkeypatch.setattr(relax, "_require", lambda package: None)
    monkeypatch.setattr(relax, "relax_structures", fake_relax)
    app = DesignScreener(setup, relax_top=2, relax_steps=7)
    app.parents.value = "LiFePO4, olivine"
    app.top.value = 4
    app.run()
    assert not app.relax_button.disabled
    with_structure = [c for c in app.ranked.dropna(subset=["rank"])["candidate_id"] if c in app.candidates.structures]
    app.relax_button.click()
    assert calls == {"names": with_structure[:2], "steps": 7}
    assert app.relaxed["name"].tolist() == with_structure[:2] and app.state == "SUCCESS"


def test_missing_extra_matches_what_a_relaxation_raises():
    from battlab.design.relax import AtomisticNotInstalled, _require, missing_extra

    try:
        _require("chgnet")
    except AtomisticNotInstalled as exc:
        assert missing_extra("chgnet") == str(exc) and "pip install" in str(exc)
    else:
        assert missing_extra("chgnet") == ""


# --------------------------------------------------------------------------- registry and default models


def test_widget_is_in_the_lazy_registry_and_the_app_is_listed(capsys) -> None:
    import battlab.widgets
    from battlab.apps import APPS, app_path

    assert battlab.widgets.DesignScreener is DesignScreener
    assert "design" in APPS and app_path("design").is_file()
    assert main(["app", "--list"]) == 0
    assert "design" in capsys.readouterr().out


def test_default_voltage_model_is_built_once_then_reused_and_absent_without_data(tmp_path, monkeypatch) -> None:
    import battlab.apps as apps
    from battlab.errors import DatasetError

    monkeypatch.setattr(apps, "RUNS_DIR", tmp_path / "runs")

    def no_data(ions=("Li", "Na", "K")):
        raise DatasetError("mp_insertion_electrodes (Li) is not cached (/x/Li.parquet) and needs a Materials "
                           "Project API key: set the environment variable MP_API_KEY or pass api_key=...")

    monkeypatch.setattr(apps, "voltage_known", no_data)
    folder, source = apps.default_voltage_model()
    assert folder is None and source.startswith("no voltage model (mp_insertion_electrodes (Li) is not cached")
    assert "MP_API_KEY" in source and not (tmp_path / "runs").exists()
    monkeypatch.setattr(apps, "voltage_known", lambda ions=("Li", "Na", "K"): VOLTAGES)
    heard: list[float] = []
    folder, source = apps.default_voltage_model(n_trials=1, progress=lambda f, text: heard.append(f))
    assert folder == tmp_path / "runs" / "app-default" / "voltage" and source.startswith("voltage model built now")
    assert heard == sorted(heard) and heard[-1] == 1.0
    assert [p.name for p in folder.parent.iterdir()] == ["voltage"]  # no private build folder left behind
    model = steps.TunedModel.load(folder)
    assert model.model_target == "average_voltage" and len(model.features)
    again, source = apps.default_voltage_model()
    assert again == folder and source.startswith("voltage model built earlier")


def test_default_design_setup_takes_the_pipeline_model_and_its_curated_table(tmp_path, monkeypatch,
                                                                           stability) -> None:
    import battlab.apps as apps
    from battlab.errors import DatasetError

    monkeypatch.setattr(apps, "RUNS_DIR", tmp_path / "runs")

    def no_data(ions=("Li", "Na", "K")):
        raise DatasetError("mp_insertion_electrodes (Li) is not cached and BATTLAB_OFFLINE is set")

    monkeypatch.setattr(apps, "voltage_known", no_data)
    latest = tmp_path / "runs" / "latest"
    stability[0].save(latest / "03_tune")  # what make run leaves
    curated = steps.curate(stability[1], target="formation_enthalpy_per_atom")
    curated.save(latest / "01_curate")
    setup = apps.default_design_setup()
    assert setup.stability_source.startswith("model from the last pipeline run")
    assert setup.stability_known["formula"].tolist() == curated.table[curated.formula_column].tolist()
    assert setup.voltage is None and setup.voltage_source.startswith("no voltage model")
    assert setup.describe().splitlines() == [f"stability proxy: formation_enthalpy_per_atom ({setup.stability_source})",
                                             setup.voltage_source]


# --------------------------------------------------------------------------- the app in a browser


@pytest.mark.browser
def test_app_screens_the_prototypes_and_shows_the_ranking(browser, voila):  # noqa: F811
    # open_app's wait, with room for a cold start that builds the voltage model (about a minute on 2 cores)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(f"{voila}/voila/render/design.ipynb", wait_until="commit", timeout=60_000)
    try:
        page.wait_for_selector(".battlab-app-status", state="visible", timeout=120_000)
        page.wait_for_selector(".battlab-app-ready", timeout=300_000)
        page.wait_for_selector(".battlab-design.battlab-design-ready", timeout=600_000)
        page.wait_for_selector(".battlab-status-ready", timeout=60_000)
    except Exception:
        shot(page, "design-not-ready")
        raise
    assert "Models:" in page.inner_text(".battlab-app-status")
    page.click(".battlab-design-example")
    page.click(".battlab-design-run")
    page.wait_for_selector(".battlab-design.battlab-design-success", timeout=300_000)
    assert "olivine" in page.inner_text(".battlab-design-table")
    page.wait_for_function("[...document.querySelectorAll('.battlab-design-plot')].filter("
                           "e => e.naturalWidth > 0).length === 1", timeout=30_000)
    assert page.locator(".battlab-design-download a").count() == 1
    assert page.locator(ERRORS).count() == 0
    shot(page, "design")
    page.close()

