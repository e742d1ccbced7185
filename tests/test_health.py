"""Tests of battlab.health: the pulsebat dataset, PulseFeatures, fit_soh / SohModel, the `battlab health` CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from battlab.cli import main
from battlab.datasets import load_dataset
from battlab.errors import BattlabError
from battlab.health.pulse import PulseFeatures, pulse_voltage_names
from battlab.health.soh import SohModel, evaluate_soh, fit_soh, mape

U = pulse_voltage_names(3)


def pulse_table(n_cells: int = 12, socs=(5, 10, 15, 20, 25, 30, 35, 40, 45, 50), seed: int = 0,
                nominal: float = 2.0) -> pd.DataFrame:
    """A pulse test in PulseBat's layout whose resistance grows as the SOH falls (known ground truth)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_cells):
        soh = 0.65 + 0.3 * c / max(n_cells - 1, 1)
        r0, rp = 0.010 * (1 + 2.5 * (1 - soh)), 0.008 * (1 + 3.0 * (1 - soh))  # Ohm at 2 Ah
        for soc in socs:
            ocv = 3.3 + 0.012 * soc / soh
            v, u = ocv, [ocv]
            for k, amp in enumerate((0.5, 1.0, 1.5)):
                i = amp * nominal
                block = [v + i * r0, v + i * (r0 + rp), v + i * rp * 0.6, v + i * rp * 0.1]
                u += block
                if k < 2:
                    base = block[-1]
                    u += [base - i * r0, base - i * (r0 + rp), base - i * rp * 0.6, base - i * rp * 0.1]
                    v = u[-1]
            u = np.asarray(u) + rng.normal(scale=2e-4, size=len(u))
            rows.append({"cell_id": f"cell{c}", "SOC": float(soc), "SOH": soh, "nominal_capacity_Ah": nominal,
                         **dict(zip(U, u, strict=True))})
    return pd.DataFrame(rows)


LAB_NAMES = {u: f"v{i:02d} [V]" for i, u in enumerate(U)}


def lab_table(**kwargs) -> pd.DataFrame:
    """The same test as a lab writes it: its own column names, no nominal-capacity column."""
    t = pulse_table(**kwargs)
    return t.rename(columns={**LAB_NAMES, "cell_id": "cell", "SOC": "soc_pct", "SOH": "soh"}).drop(
        columns="nominal_capacity_Ah")


# --------------------------------------------------------------------------- dataset


def test_pulsebat_table(data_cache: Path) -> None:
    df, card = load_dataset("pulsebat")
    assert len(df) == 2700 and set(card.units) == set(df.columns) and card.target == "SOH"
    per_kind = df.groupby("cell_kind").agg(rows=("SOH", "size"), cells=("cell_id", "nunique"),
                                           samples=("sample_id", "nunique"))
    assert per_kind.to_dict("index") == {
        "NMC 2.1Ah": {"rows": 670, "cells": 12, "samples": 67}, "LMO 10Ah": {"rows": 950, "cells": 95, "samples": 95},
        "NMC 21Ah": {"rows": 520, "cells": 52, "samples": 52}, "LFP 35Ah": {"rows": 560, "cells": 56, "samples": 56}}
    assert sorted(df["SOC"].unique()) == list(range(5, 55, 5))
    np.testing.assert_allclose(df["SOH"], df["capacity_Ah"] / df["nominal_capacity_Ah"], rtol=1e-6)
    nmc = df[df["cell_kind"] == "NMC 2.1Ah"]
    assert set(nmc.loc[nmc["cell_id"] == "NMC_2.1Ah_D3", "sample_id"]) == {f"NMC_2.1Ah_D3-{k}00" for k in range(1, 7)}
    # ages of one physical cell: SOH falls from checkpoint 100 to 600
    d3 = nmc[(nmc["cell_id"] == "NMC_2.1Ah_D3") & (nmc["SOC"] == 5)].sort_values("sample_id")
    assert d3["SOH"].is_monotonic_decreasing
    assert "10.1038/s41467-024-54454-0" in card.citation and card.licence == "MIT"
    assert "SOE" not in df.columns and card.units["U1"] == "V" and card.units["SOC"] == "%"


def test_pulsebat_bad_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from battlab import datasets as ds

    path = tmp_path / "bad.xlsx"
    frame = pd.DataFrame({"ID": ["a"], "Qn": [2.1], "Q": [2.0], "SOH": [0.95], "Pt": [5], "SOC": [5],
                          **{u: [3.5] for u in U}})
    frame = frame.astype({"U7": object})
    frame.loc[0, "U7"] = "n/a"
    frame.to_excel(path, sheet_name="SOC ALL", index=False)
    monkeypatch.setattr(ds, "fetch", lambda name, filename: path)
    with pytest.raises(BattlabError, match=r"row 2, column 'U7': not a number"):
        load_dataset("pulsebat")


# --------------------------------------------------------------------------- features


def test_pulse_features_values_and_api() -> None:
    t = pulse_table(n_cells=3, socs=(20,))
    f = PulseFeatures()
    X = f.fit_transform(t)
    assert list(X.columns) == f.feature_labels() and len(X) == 3
    assert set(f.feature_info()["feature"]) == set(X.columns) and f.citations() and f.implementors()
    # the generator's ohmic resistance: 10 mOhm x (1 + 2.5 (1 - SOH)) at every amplitude and direction
    expected = 10 * (1 + 2.5 * (1 - t["SOH"]))
    for col in ("R0_chg_0.5C_mOhm", "R0_dis_1C_mOhm", "R0_chg_1.5C_mOhm"):
        np.testing.assert_allclose(X[col], expected, rtol=0.05)
    np.testing.assert_allclose(X["r0_chg_1C_VperC"], expected / 1000 * 2.0, rtol=0.05)  # Ohm x Ah
    assert (X["Rp_chg_1C_mOhm"] > 0).all() and (X["relax_chg_1C_V"] > 0).all()
    np.testing.assert_allclose(X["dU5s_dC_chg_V"], X["r5s_chg_1C_VperC"], rtol=0.05)  # linear cell: slope = r
    assert clone(f).get_params() == f.get_params()


def test_pulse_features_column_mapping_matches_canonical() -> None:
    t = pulse_table(n_cells=2, socs=(10, 30))
    lab = t.rename(columns=LAB_NAMES)
    canonical = PulseFeatures(nominal_capacity=2.0).fit_transform(t)
    mapped = PulseFeatures(columns=LAB_NAMES, nominal_capacity=2.0).fit_transform(lab)
    pd.testing.assert_frame_equal(canonical, mapped)


def test_pulse_features_own_amplitudes_and_capacity() -> None:
    """A lab's test: two complete amplitudes (1 C, 2 C) on a 5 Ah cell with 4 mOhm, its own column names."""
    names = {f"U{i}": f"volt_{i}" for i in range(1, 18)}
    v = [3.7]
    for amp in (1.0, 2.0):
        i = 5 * amp
        base = v[-1]
        v += [base + 0.004 * i, base + 0.006 * i, base + 0.001 * i, base]
        v += [base - 0.004 * i, base - 0.006 * i, base - 0.001 * i, base]
    row = pd.DataFrame([{names[f"U{k}"]: x for k, x in enumerate(v, start=1)}])
    f = PulseFeatures(columns=names, amplitudes_C=(1.0, 2.0), last_complete=True, nominal_capacity=5.0, raw=False)
    X = f.fit_transform(row)
    for col in ("R0_chg_1C_mOhm", "R0_dis_1C_mOhm", "R0_chg_2C_mOhm", "R0_dis_2C_mOhm"):
        assert X.loc[0, col] == pytest.approx(4.0)
    assert X.loc[0, "R5s_dis_2C_mOhm"] == pytest.approx(6.0) and X.loc[0, "Rp_chg_1C_mOhm"] == pytest.approx(2.0)
    assert X.loc[0, "r5s_nonlinearity_chg_VperC"] == pytest.approx(0.0, abs=1e-12)


def test_pulse_features_bad_input() -> None:
    t = pulse_table(n_cells=2, socs=(10,))
    with pytest.raises(BattlabError, match=r"no column\(s\) \['U9'\]"):
        PulseFeatures().fit_transform(t.drop(columns="U9"))
    bad = t.astype({"U12": object})
    bad.loc[1, "U12"] = "3,41"
    with pytest.raises(BattlabError, match=r"row 1, column 'U12': '3,41' is not a voltage"):
        PulseFeatures().fit_transform(bad)
    with pytest.raises(BattlabError, match="unknown voltage"):
        PulseFeatures(columns={"U40": "x"}).fit_transform(t)
    with pytest.raises(BattlabError, match="positive C-rates"):
        PulseFeatures(amplitudes_C=(0.5, -1)).fit_transform(t)


# --------------------------------------------------------------------------- model


@pytest.fixture(scope="module")
def soh_model() -> SohModel:
    return fit_soh(pulse_table(n_cells=10), models=("ridge",), n_trials=1)


def test_fit_soh_recovers_soh_and_round_trips(soh_model: SohModel, tmp_path: Path) -> None:
    test = pulse_table(n_cells=7, seed=1)  # other cells (other SOH values), other noise
    pred = soh_model.predict(test)
    assert mape(test["SOH"], pred["SOH_pred"]) < 2.0
    assert (pred["SOH_low"] <= pred["SOH_pred"]).all() and (pred["SOH_pred"] <= pred["SOH_high"]).all()
    assert not pred["soc_extrapolation"].any() and soh_model.soc_range == (5.0, 50.0)
    assert soh_model.comparison["feature_set"].tolist()[0] == soh_model.feature_set
    loaded = SohModel.load(soh_model.save(tmp_path / "m"))
    pd.testing.assert_frame_equal(loaded.predict(test), pred)
    assert (tmp_path / "m" / "model_card.json").is_file()


def test_explain_says_which_pulse_carries_the_soh(soh_model: SohModel) -> None:
    test = pulse_table(n_cells=4, socs=(10, 40), seed=3)
    explanation = soh_model.explain(test)
    assert list(explanation.values.columns) == soh_model.features and len(explanation.values) == len(test)
    families = set(soh_model.feature_info()["family"])
    assert families <= {"pulse", "condition"}
    np.testing.assert_allclose(explanation.predictions, soh_model.predict(test)["SOH_pred"], atol=1e-6)


def test_soc_outside_trained_range_is_flagged(soh_model: SohModel) -> None:
    test = pulse_table(n_cells=3, socs=(50, 70))
    pred = soh_model.predict(test)
    assert pred["soc_extrapolation"].tolist() == [False, True] * 3
    assert pred.loc[pred["soc_extrapolation"], "note"].str.contains("SOC 70 % outside the trained 5-50 %").all()
    assert pred["SOH_pred"].notna().all() and len(pred) == len(test)  # nothing lost


def test_predict_bad_input(soh_model: SohModel) -> None:
    test = pulse_table(n_cells=2, socs=(20,))
    with pytest.raises(BattlabError, match=r"no column\(s\) \['U3', 'U17'\]"):
        soh_model.predict(test.drop(columns=["U3", "U17"]))
    with pytest.raises(BattlabError, match="no SOC column 'SOC'"):
        soh_model.predict(test.drop(columns="SOC"))
    bad = test.astype({"SOC": object})
    bad.loc[0, "SOC"] = "half"
    with pytest.raises(BattlabError, match=r"row 0, column 'SOC': 'half' is not a state of charge"):
        soh_model.predict(bad)
    with pytest.raises(BattlabError, match="no SOH model"):
        SohModel.load("/nonexistent/model")


def test_fit_soh_needs_cells_and_columns() -> None:
    with pytest.raises(BattlabError, match=r"no column\(s\) \['cell_id'\]"):
        fit_soh(pulse_table(n_cells=3).drop(columns="cell_id"))
    with pytest.raises(BattlabError, match="at least 3 cells"):
        fit_soh(pulse_table(n_cells=2), models=("ridge",), n_trials=1)


def test_evaluate_soh_interpolation_tests_unseen_soc_only() -> None:
    t = pulse_table(n_cells=8).assign(cell_kind="toy")
    pred = evaluate_soh(t, "soc_interpolation", models=("ridge",), n_trials=1, feature_sets=("pulse+soc",))
    assert sorted(pred["SOC"].unique()) == [10, 20, 30, 40, 45]
    assert mape(pred["SOH"], pred["SOH_pred"]) < 3.0
    with pytest.raises(BattlabError, match="unknown split"):
        evaluate_soh(t, "random")


# --------------------------------------------------------------------------- CLI


def test_cli_lab_table_fit_and_predict(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    train, new = tmp_path / "lab_pulses.csv", tmp_path / "new cells.csv"
    lab_table(n_cells=8).to_csv(train, index=False)
    lab_table(n_cells=4, seed=2, socs=(20, 60)).drop(columns="soh").to_csv(new, index=False)
    mapping = ",".join(f"{k}={v}" for k, v in LAB_NAMES.items())
    code = main(["health", "fit", str(train), "--out", str(tmp_path / "model"), "--map", mapping, "--nominal", "2",
                 "--soc-column", "soc_pct", "--target", "soh", "--group-column", "cell", "--models", "ridge",
                 "--n-trials", "1"])
    assert code == 0, capsys.readouterr().err
    code = main(["health", "predict", str(new), "--model", str(tmp_path / "model"), "--out", str(tmp_path / "p.csv")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "4 row(s) at a SOC outside the trained 5-50 %" in captured.err
    out = pd.read_csv(tmp_path / "p.csv")
    assert len(out) == 8 and out["soc_extrapolation"].sum() == 4 and out["SOH_pred"].between(0.5, 1.1).all()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.drop(columns="v05 [V]"), r"no column\(s\) \['v05 \[V\]'\]"),
    (lambda t: t.astype({"v10 [V]": object}).assign(**{"v10 [V]": ["3.4"] * 2 + ["oops"] + ["3.4"] * (len(t) - 3)}),
     r"row 4, column 'v10 \[V\]': 'oops' is not a voltage"),
])
def test_cli_bad_pulse_table_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, edit,
                                                   message: str) -> None:
    import re

    path = tmp_path / "lab.csv"
    edit(lab_table(n_cells=4)).to_csv(path, index=False)
    mapping = ",".join(f"{k}={v}" for k, v in LAB_NAMES.items())
    code = main(["health", "fit", str(path), "--out", str(tmp_path / "m"), "--map", mapping, "--nominal", "2",
                 "--soc-column", "soc_pct", "--target", "soh", "--group-column", "cell", "--models", "ridge"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and re.search(message, err), err
