"""Plots people read: axis labels in words with units, MAE with its unit and split, plural-aware titles."""

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from battlab.units import error_unit, plural, quantity_label, unit_text


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _labels(fig):
    ax = fig.axes[0]
    return ax.get_xlabel(), ax.get_ylabel(), ax.get_title()


@pytest.mark.parametrize("name, unit, label", [
    ("specific_energy_Wh_kg", None, "Specific energy [Wh/kg]"),
    ("specific_power_W_kg", None, "Specific power [W/kg]"),
    ("capacity_high_mAh_cm2", None, "Capacity high [mAh/cm²]"),
    ("coating_gap_um", None, "Coating gap [µm]"),
    ("line_load_N_per_mm", None, "Line load [N/mm]"),
    ("rate_capability", None, "Rate capability"),
    ("formation_enthalpy_per_atom", "electron_volt / atom", "Formation enthalpy per atom [eV/atom]"),
    ("Ionic conductivity (S cm-1)", "siemens / centimeter", "Ionic conductivity [S cm-1]"),  # the header's own
    ("log10 Ionic conductivity (S cm-1)", None, "log10 Ionic conductivity [S cm-1]"),
    ("y", "text", "y"),
])
def test_quantity_label(name, unit, label):
    assert quantity_label(name, unit) == label


def test_plural_unit_text_and_error_unit():
    assert [plural(n, "campaign") for n in (0, 1, 2)] == ["0 campaigns", "1 campaign", "2 campaigns"]
    assert unit_text("siemens / centimeter") == "S/cm" and unit_text("unspecified") == ""
    assert error_unit("specific_energy_Wh_kg") == " Wh/kg" and error_unit("log10 sigma", "S/cm") == " (log10)"
    assert error_unit("y") == ""


def _oof(n=40, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.normal(-1, 1, n)
    p = y + rng.normal(0, 0.1, n)
    return pd.DataFrame({"y": y, "oof_pred": p, "interval_low": p - 0.2, "interval_high": p + 0.2})


def test_parity_plot_has_units_on_both_axes_and_the_mae_with_its_unit_and_split():
    from battlab.plots import plot_parity

    metrics = {"mae_mean": 0.1234, "mae_std": 0.011, "r2_mean": 0.987}
    split = "grouped by chemical system, 5 folds"
    x, y, title = _labels(plot_parity(_oof(), "formation_enthalpy_per_atom", split, metrics, "electron_volt / atom"))
    assert x == "measured: Formation enthalpy per atom [eV/atom]"
    assert y == "predicted (out of fold): Formation enthalpy per atom [eV/atom]"
    assert title.startswith("CV MAE 0.123 ± 0.011 eV/atom, R² 0.987") and f"split: {split}" in title
    x, _, title = _labels(plot_parity(_oof(), "log10 Ionic conductivity (S cm-1)", "random", metrics))
    assert x == "measured: log10 Ionic conductivity [S cm-1]" and "CV MAE 0.123 ± 0.011 (log10)" in title


def test_model_comparison_and_tuning_history_name_the_mae_unit():
    import optuna

    from battlab.plots import plot_model_comparison, plot_tuning_history

    comparison = pd.DataFrame({"model": ["ridge", "knn"], "best_cv_mae": [0.2, 0.3], "fold_mae_std": [0.01, 0.02],
                               "split": ["chemical system", "chemical system"]})
    x, _, _ = _labels(plot_model_comparison(comparison, 0.8, "formation_enthalpy_per_atom", "eV/atom"))
    assert x == "best CV MAE [eV/atom], split: chemical system"
    study = optuna.create_study()
    dist = {"model": optuna.distributions.CategoricalDistribution(["ridge"])}
    for value in (0.3, 0.2):
        study.add_trial(optuna.trial.create_trial(params={"model": "ridge"}, distributions=dist, value=value))
    x, y, _ = _labels(plot_tuning_history(study, "formation_enthalpy_per_atom", "eV/atom"))
    assert y == "CV MAE [eV/atom]" and x == "trial (0 pruned trials, not shown)"


def test_curation_plot_labels_the_target_with_its_unit_and_counts_rows():
    from battlab.curate import curate
    from battlab.plots import plot_curation

    result = curate(pd.DataFrame({"formula": ["LiCoO2", "LiFePO4", "Xx"], "capacity (mAh/g)": [140, 160, 1]}),
                    target="capacity (mAh/g)")
    fig = plot_curation(result)
    assert fig.axes[0].get_xlabel() == "capacity [mAh/g]"
    assert fig.axes[1].get_title() == "3 input rows"


def test_cycle_life_parity_gives_each_split_its_mae_in_cycles():
    from battlab.cycling.plots import plot_predicted_vs_observed

    pred = pd.DataFrame({"split": ["train", "train", "test"], "cycle_life": [500.0, 800.0, 600.0],
                         "predicted_cycle_life": [520.0, 760.0, 700.0]})
    fig = plot_predicted_vs_observed(pred)
    x, y, _ = _labels(fig)
    assert x == "observed cycle life [cycles]" and y == "predicted cycle life [cycles]"
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["test: MAE 100 cycles (1 cell)", "train: MAE 30 cycles (2 cells)"]


def test_electrode_plots_show_words_and_units_not_column_names():
    from battlab.electrode.plots import plot_closed_loop, plot_discharge_curves, plot_pareto, plot_pso_convergence

    q = np.linspace(0, 3, 5)
    sim = {"specific_energy_Wh_kg": 334.26, "rate_capability": 0.8512,
           "curves": {0.5: (q, 4.2 - 0.3 * q), 2.0: (q * 0.85, 4.1 - 0.35 * q)}}
    x, y, title = _labels(plot_discharge_curves(sim, "specific_energy_Wh_kg"))
    assert title == "Specific energy 334.3 Wh/kg, rate capability 0.85"
    assert (x, y) == ("Capacity [mAh/cm²]", "Voltage [V]")
    table = pd.DataFrame({"specific_energy_Wh_kg": [300.0, 320.0], "rate_capability": [0.9, 0.8]})
    x, y, _ = _labels(plot_pareto(table, table.iloc[:1]))
    assert (x, y) == ("Specific energy [Wh/kg]", "Rate capability")
    history = pd.DataFrame({"round": [0], "best_observed": [300.0], "proposal_observed": [300.0]})
    _, y, title = _labels(plot_closed_loop(history, "energy_density_Wh_L"))
    assert y == "Energy density [Wh/L]" and title == "Closed loop: 1 round"
    _, y, _ = _labels(plot_pso_convergence(pd.DataFrame({"n_evals": [30, 60], "best_score": [1.0, 2.0]}),
                                           "specific_power_W_kg", kappa=1.0))
    assert y.startswith("best score: Specific power [W/kg]")
    for fig in map(plt.figure, plt.get_fignums()):
        for ax in fig.axes:
            assert "_Wh_kg" not in ax.get_xlabel() + ax.get_ylabel() + ax.get_title()


@pytest.mark.parametrize("n_seeds, title", [(1, "toy: 1 campaign per strategy"), (3, "toy: 3 campaigns per strategy")])
def test_discovery_curves_title_counts_campaigns_in_words(n_seeds, title):
    from battlab.plan.plots import plot_discovery
    from battlab.plan.screening import ScreeningResult

    top = np.array([True, False, False, False])
    res = ScreeningResult("rf", list(range(n_seeds)), [np.array([1, 0, 2, 3])] * n_seeds, n=4, n_top=1, af={},
                          experiments={}, reached={}, ef={}, seconds=0.0, top=top)
    fig = plot_discovery({"rf": res}, budget=4, dataset="toy", labels={"rf": "rf (ucb)"})
    assert fig.axes[0].get_title() == title
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["rf (ucb)", "random search (expected)"]


def test_model_importance_title_is_plural_aware():
    from battlab.plan.plots import plot_model_importance

    fig = plot_model_importance([0.5], ["MagpieData mean Number"], target="average_voltage")
    assert fig.axes[0].get_title() == "Top 1 feature of the campaign's model for Average voltage"


def test_predictor_table_and_model_line_show_the_unit(tmp_path):
    """A tuned model records its target's unit (save/load); the predictor shows it in the header and the MAE."""
    from battlab.steps import FeatureSet, TunedModel, tune
    from battlab.widgets.predictor import Predictor

    rng = np.random.default_rng(0)
    t = pd.DataFrame({"x": rng.normal(size=40), "z": rng.normal(size=40)})
    t["formation_enthalpy_per_atom"] = 2 * t["x"] + rng.normal(0, 0.1, 40)
    fs = FeatureSet.from_columns(t, ["x", "z"], target="formation_enthalpy_per_atom")
    fs = dataclasses.replace(fs, units={"formation_enthalpy_per_atom": "electron_volt / atom"})
    assert fs.target_unit == "eV/atom"
    fs.save(tmp_path / "fs")
    assert FeatureSet.load(tmp_path / "fs").units == fs.units
    tuned = tune(fs, models=("ridge",), n_trials=2, storage="sqlite:///:memory:", progress=False)
    assert tuned.target_unit == "eV/atom"
    tuned.save(tmp_path / "m")
    assert TunedModel.load(tmp_path / "m").target_unit == "eV/atom"
    p = Predictor(tmp_path / "m")
    assert p.unit == "eV/atom", p.message
    assert "predicts <b>Formation enthalpy per atom [eV/atom]</b>" in p.model_info.value
    assert " eV/atom (" in p.model_info.value  # the CV MAE's unit, before the split
    p.predict_table(pd.DataFrame({"x": [0.5], "z": [0.0]}))
    assert "predicted Formation enthalpy per atom [eV/atom]" in p.table.value and "low [eV/atom]" in p.table.value


def test_shap_importance_names_the_target_in_words():
    from sklearn.linear_model import Ridge

    from battlab.explain import explain, plot_importance

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=30), "b": rng.normal(size=30)})
    model = Ridge().fit(X, 2 * X["a"] + X["b"])
    ex = explain(model, X, target="specific_energy_Wh_kg")
    fig = plot_importance(ex, by="feature")
    assert fig.axes[0].get_xlabel() == "mean |SHAP value| (Specific energy [Wh/kg])"
