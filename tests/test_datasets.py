"""Tests of battlab.datasets: registry, cards, loaders, cache, offline and failure modes."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import socket
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from battlab import datasets as ds
from battlab.datasets import (
    DataCard,
    data_dir,
    dataset_card,
    fetch,
    list_datasets,
    load_dataset,
    matbench_folds,
)
from battlab.errors import DatasetError

FILE_DATASETS = [
    "obelix", "matbench_expt_gap", "matbench_steels", "artistic_coating_heterogeneity",
    "artistic_calendering", "artistic_hybrid_mesostructures", "tbsi_sunwoda", "pulsebat",
]
ARTISTIC = [n for n in FILE_DATASETS if n.startswith("artistic_")]
UNREACHABLE = "http://127.0.0.1:9/x.csv"


# --------------------------------------------------------------------------- registry


def test_list_datasets_contents() -> None:
    table = list_datasets()
    assert list(table.columns) == [
        "name", "description", "target", "licence", "needs_network", "commercial_use"]
    assert set(table["name"]) == {"exp_formation_enthalpy", "mp_insertion_electrodes", "severson2019",
                                  *FILE_DATASETS}
    row = table.set_index("name")
    assert row.loc["obelix", "target"] == "Ionic conductivity (S cm-1)"
    assert row.loc["matbench_steels", "target"] == "yield strength"
    assert not row.loc["exp_formation_enthalpy", "needs_network"]
    assert row.drop("exp_formation_enthalpy")["needs_network"].all()
    assert set(row.index[~row["commercial_use"].astype(bool)]) == set(ARTISTIC)
    assert ds.DEFAULT_DATASET == "exp_formation_enthalpy"


def test_card_fields_and_display() -> None:
    card = dataset_card("obelix")
    assert isinstance(card, DataCard)
    assert card.split_column == "split" and card.formula_column == "Reduced Composition"
    assert "arXiv:2502.14234" in card.citation and card.licence == "CC BY 4.0"
    assert "4eaac889809dd489e3bae468c45d5c0e02b9147a" in card.source
    d = card.to_dict()
    assert d["units"]["a"] == "angstrom" and d["units"]["Ionic conductivity (S cm-1)"] == "S/cm"
    md = card._repr_markdown_()
    assert md.startswith("### Dataset `obelix`") and "CC BY 4.0" in md
    assert "| `alpha` | degree |" in md
    assert "non-commercial" in dataset_card("artistic_calendering")._repr_markdown_()
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize("name", ARTISTIC)
def test_artistic_cards_are_non_commercial(name: str) -> None:
    card = dataset_card(name)
    assert card.commercial_use is False
    assert card.licence == "CC BY-NC-SA 4.0"
    assert "NON-COMMERCIAL" in card.description and "commercial" in card.notes
    assert card.formula_column is None


@pytest.mark.parametrize("bad", ["../etc", "a/b", "obelix/../x", "", "..", "a b", "/etc"])
def test_bad_names_rejected(bad: str) -> None:
    with pytest.raises(DatasetError, match="not a valid dataset name"):
        load_dataset(bad)
    with pytest.raises(DatasetError):
        fetch(bad, "all.csv")
    with pytest.raises(DatasetError):
        dataset_card(bad)


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(DatasetError, match="unknown dataset 'nope'") as err:
        load_dataset("nope")
    assert "obelix" in str(err.value) and "exp_formation_enthalpy" in str(err.value)


def test_unknown_file_and_option_rejected() -> None:
    with pytest.raises(DatasetError, match="no file '../../x'"):
        fetch("obelix", "../../x")
    with pytest.raises(DatasetError, match="unknown option"):
        load_dataset("obelix", working_ion="Li")


def test_data_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BATTLAB_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv("BATTLAB_DATA")
    assert data_dir().name.lower() == "battlab" or "battlab" in str(data_dir()).lower()


# --------------------------------------------------------------------------- embedded default


def test_default_dataset_offline_with_empty_cache(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("BATTLAB_DATA", str(tmp_path))
    monkeypatch.setenv("BATTLAB_OFFLINE", "1")
    import pooch

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the embedded dataset must not download anything")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    df, card = load_dataset()
    assert card.name == "exp_formation_enthalpy" and card.needs_network is False
    assert len(df) == 2135
    assert list(df.columns) == list(card.units)
    np.testing.assert_allclose(df["formation_enthalpy_per_atom"],
                               df["formation_enthalpy_per_fu"] / df["n_atoms"])
    row = df.set_index("formula").loc["Ag2O"]
    assert row["n_atoms"] == 3
    assert row["formation_enthalpy_per_fu"] == pytest.approx(-0.32233, abs=1e-4)  # -31.1 kJ/mol
    assert row["mpid"] == "mp-353"
    assert df["uncertainty_per_atom"].isna().sum() > 0
    assert df["mpid"].isna().sum() == 555
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("name", FILE_DATASETS)
def test_units_cover_every_column(name: str, data_cache: Path) -> None:
    df, card = load_dataset(name)
    assert set(df.columns) == set(card.units), name
    assert card.target in df.columns
    assert card.formula_column is None or card.formula_column in df.columns
    assert card.split_column is None or card.split_column in df.columns
    assert all(isinstance(u, str) for u in card.units.values())


def test_obelix(data_cache: Path) -> None:
    df, card = load_dataset("obelix")
    assert df.shape == (599, 29)
    assert df["split"].value_counts().to_dict() == {"train": 478, "test": 121}
    target = df[card.target]
    assert target.map(type).eq(str).all()
    assert (target == "<1E-10").sum() == 36
    first = df.iloc[0]
    assert first["ID"] == "jqc" and first["Reduced Composition"] == "Li7BiO6"
    assert first[card.target] == "1.58489e-06" and first["a"] == "5.5071"
    test_ids = pd.read_csv(data_cache / "obelix" / "test_idx.csv")["ID"]
    assert set(df.loc[df["split"] == "test", "ID"]) == set(test_ids)


@pytest.mark.parametrize(("name", "n", "target", "first", "value"), [
    ("matbench_expt_gap", 4604, "gap expt", "mb-expt-gap-0001", 0.0),
    ("matbench_steels", 312, "yield strength", "mb-steels-001", 2411.5),
])
def test_matbench(name: str, n: int, target: str, first: str, value: float,
                  data_cache: Path) -> None:
    df, card = load_dataset(name)
    assert list(df.columns) == ["mbid", "composition", target]
    assert len(df) == n and df["mbid"].is_monotonic_increasing and df["mbid"].is_unique
    assert df["mbid"].iloc[0] == first and df[target].iloc[0] == value
    assert "18012019" in card.notes and card.units[target] in {"eV", "MPa"}


def test_matbench_folds_reproduce_leaderboard_dummy(data_cache: Path) -> None:
    # The public matbench v0.1 leaderboard: train-mean dummy MAE (mean, std over folds).
    for name, target, mean, std in [("matbench_expt_gap", "gap expt", 1.1435, 0.0310),
                                    ("matbench_steels", "yield strength", 229.7445, 9.6958)]:
        df, _ = load_dataset(name)
        y = df[target].to_numpy()
        folds = matbench_folds(len(df))
        assert len(folds) == 5
        tests = np.concatenate([te for _, te in folds])
        assert sorted(tests.tolist()) == list(range(len(df)))  # a partition
        for train, test in folds:
            assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(df)
        maes = [np.abs(y[te] - y[tr].mean()).mean() for tr, te in folds]
        assert np.mean(maes) == pytest.approx(mean, abs=1e-4)
        assert np.std(maes) == pytest.approx(std, abs=1e-4)


def test_artistic_loaders(data_cache: Path) -> None:
    het, _ = load_dataset("artistic_coating_heterogeneity")
    assert het.shape == (144, 17)
    assert sorted(het["Comma Gap [μm]"].unique()) == [50, 75, 100, 200, 300, 400]
    cal, card = load_dataset("artistic_calendering")
    assert list(cal.columns) == ["X.NMC", "S.to.L", "calender.gap.um", "porosite_before",
                                 "thickness_before", "porosity", "sd"]
    assert len(cal) == 14 and cal["porosity"].iloc[0] == pytest.approx(0.255591158)
    hyb, card = load_dataset("artistic_hybrid_mesostructures")
    assert hyb.shape == (880, 8)
    assert list(hyb.columns[:3]) == ["comma_gap", "active_material_pct", "porosity_pct"]
    assert hyb["tortuosity_liquid"].iloc[0] == pytest.approx(6.982)
    assert "X1 -> comma_gap" in card.notes and "Y5 -> active_surface" in card.notes


# --------------------------------------------------------------------------- failure modes


def test_tbsi_sunwoda_capacity_table(data_cache: Path) -> None:
    df, card = load_dataset("tbsi_sunwoda")
    assert list(df.columns) == ["cell", "temperature_C", "cycle", "discharge_capacity_Ah"]
    assert df["cell"].nunique() == 32 and df["cell"].iloc[0] == "B1T25"
    per_cell = df.groupby("cell", sort=False).agg(t=("temperature_C", "first"), n=("cycle", "size"),
                                                 first=("cycle", "min"), last=("cycle", "max"))
    assert per_cell.groupby("t").size().to_dict() == {25.0: 9, 35.0: 9, 45.0: 7, 55.0: 7}
    assert per_cell.groupby("t")["n"].unique().map(list).to_dict() == {25.0: [1299], 35.0: [1299],
                                                                       45.0: [1099], 55.0: [899]}
    assert (per_cell["first"] == 1).all() and (per_cell["last"] == per_cell["n"]).all()
    assert df.loc[0, "discharge_capacity_Ah"] == pytest.approx(1.0812)  # the sheet whose header is 'Capacity '
    life = df[df["discharge_capacity_Ah"] < 0.88].groupby("cell")["cycle"].min()
    assert len(life) == 32 and (life.min(), life.max()) == (481, 1025) and round(life.mean()) == 776
    assert "10.1039/d4ee03839h" in card.citation and card.licence == "MIT"
    assert card.units["discharge_capacity_Ah"] == "Ah" and card.units["temperature_C"] == "degC"


@pytest.mark.parametrize(("sheets", "message"), [
    ({"Cell1": [1.0, 0.9]}, "sheet 'Cell1' .* not named B<cell>T<temperature>"),
    ({"B1T25": [1.0, "x"]}, "sheet 'B1T25' .* row 3: 'Capacity' is not a number"),
])
def test_tbsi_sunwoda_bad_sheets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                 sheets: dict, message: str) -> None:
    path = tmp_path / "Labels.xlsx"
    with pd.ExcelWriter(path) as writer:
        for name, values in sheets.items():
            pd.DataFrame({"Capacity": values}).to_excel(writer, sheet_name=name, index=False)
    monkeypatch.setattr(ds, "fetch", lambda name, filename: path)
    with pytest.raises(DatasetError, match=message):
        load_dataset("tbsi_sunwoda")


def test_offline_empty_cache_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BATTLAB_DATA", str(tmp_path))
    monkeypatch.setenv("BATTLAB_OFFLINE", "1")
    with pytest.raises(DatasetError) as err:
        load_dataset("obelix")
    msg = str(err.value)
    assert ds._FILES["obelix"]["all.csv"].url in msg
    assert "BATTLAB_DATA" in msg and "'obelix'" in msg
    assert str(tmp_path / "obelix" / "all.csv") in msg
    assert not (tmp_path / "obelix").exists()


CALENDERING = ("artistic_calendering", "Dataset_Experimental_fitting.csv")


def _point_at(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str) -> tuple[str, str]:
    """An empty cache, downloads allowed, and one registered file's URL replaced by ``url``."""
    monkeypatch.setenv("BATTLAB_DATA", str(tmp_path))
    monkeypatch.delenv("BATTLAB_OFFLINE", raising=False)
    name, filename = CALENDERING
    remote = ds._FILES[name][filename]
    monkeypatch.setitem(ds._FILES[name], filename, ds._Remote(url, remote.sha256))
    return name, filename


def test_unreachable_url_fails_at_once_with_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # port 9 on loopback: nothing listens, the connection is refused, nothing is retried
    name, filename = _point_at(monkeypatch, tmp_path, UNREACHABLE)
    with pytest.raises(DatasetError) as err:
        load_dataset(name)
    msg = str(err.value)
    assert UNREACHABLE in msg and "BATTLAB_DATA" in msg and "could not be downloaded" in msg
    assert "ConnectionError" in msg
    assert not (tmp_path / name / filename).exists()


def test_download_passes_the_configured_timeouts_and_tries_once(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    """A host that never answers cannot hang a user: requests gets the connect and read timeouts."""
    import requests

    url = "http://battlab.invalid/x.csv"
    name, filename = _point_at(monkeypatch, tmp_path, url)
    calls = []

    def no_answer(url: str, **kwargs: object) -> None:
        calls.append((url, kwargs.get("timeout")))
        raise requests.exceptions.ConnectTimeout(f"simulated: no answer from {url}")

    monkeypatch.setattr(requests, "get", no_answer)
    with pytest.raises(DatasetError) as err:
        load_dataset(name)
    assert calls == [(url, ds._TIMEOUT)]  # one attempt, with battlab's timeouts
    connect, read = ds._TIMEOUT
    assert 0 < connect <= 30 and 0 < read <= 120  # never None (requests would wait for ever)
    msg = str(err.value)
    assert url in msg and "ConnectTimeout" in msg and "could not be downloaded" in msg
    assert not (tmp_path / name / filename).exists()


def test_server_that_accepts_but_never_answers_ends_in_a_read_timeout(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    """A real socket that takes the connection and stays silent: the read timeout ends the wait."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)  # the kernel completes the handshake; nobody ever reads or writes
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/x.csv"
        name, filename = _point_at(monkeypatch, tmp_path, url)
        monkeypatch.setattr(ds, "_TIMEOUT", (2, 1))
        # if the read timeout were not applied, closing the socket would end the wait with another error
        guard = threading.Timer(120, silent.close)
        guard.start()
        try:
            with pytest.raises(DatasetError) as err:
                load_dataset(name)
        finally:
            guard.cancel()
    msg = str(err.value)
    assert url in msg and "ReadTimeout" in msg and "could not be downloaded" in msg
    assert not (tmp_path / name / filename).exists()


def test_checksum_mismatch_refused_and_file_kept(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path, data_cache: Path) -> None:
    shutil.copytree(data_cache / "obelix", tmp_path / "obelix")
    bad = tmp_path / "obelix" / "all.csv"
    bad.write_bytes(bad.read_bytes()[:-100])  # truncated
    before = bad.read_bytes()
    actual = hashlib.sha256(before).hexdigest()
    monkeypatch.setenv("BATTLAB_DATA", str(tmp_path))
    monkeypatch.delenv("BATTLAB_OFFLINE", raising=False)  # even when allowed to download
    remote = ds._FILES["obelix"]["all.csv"]
    monkeypatch.setitem(ds._FILES["obelix"], "all.csv", ds._Remote(UNREACHABLE, remote.sha256))
    with pytest.raises(DatasetError) as err:
        load_dataset("obelix")
    msg = str(err.value)
    assert remote.sha256 in msg and actual in msg and str(bad) in msg
    assert bad.read_bytes() == before


def test_fetch_returns_verified_cached_path(data_cache: Path) -> None:
    path = fetch("matbench_steels", "matbench_steels.json.bz2")
    assert path == data_cache / "matbench_steels" / "matbench_steels.json.bz2"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == (
        ds._FILES["matbench_steels"]["matbench_steels.json.bz2"].sha256)


def test_registry_urls_are_pinned() -> None:
    for name, files in ds._FILES.items():
        for filename, remote in files.items():
            assert remote.url.startswith("https://raw.githubusercontent.com/"), name
            # severson2019 caches data/{split}/cellN.csv as {split}_cellN.csv (the basenames repeat across splits)
            assert filename in (remote.url.rsplit("/", 1)[1], "_".join(remote.url.rsplit("/", 2)[1:])), filename
            assert len(remote.sha256) == 64 and " " not in remote.url


# --------------------------------------------------------------------------- Materials Project


class _FakeElectrodes:
    def __init__(self, calls: list[dict]) -> None:
        self.calls = calls

    def search(self, **kwargs: object) -> list[object]:
        self.calls.append(kwargs)
        doc = {
            "battery_id": "mp-1_Li", "battery_formula": "Li0-1CoO2", "working_ion": "Li",
            "formula_charge": "CoO2", "formula_discharge": "LiCoO2", "average_voltage": 3.9,
            "capacity_grav": 274.0, "capacity_vol": 1380.0, "energy_grav": 1070.0,
            "energy_vol": 5390.0, "max_delta_volume": 0.05, "stability_charge": 0.02,
            "stability_discharge": 0.0,
        }
        as_object = types.SimpleNamespace(**{**doc, "battery_id": "mp-0_Li",
                                             "working_ion": types.SimpleNamespace(value="Li")})
        return [doc, as_object]


def _install_fake_mp(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    record: dict[str, list] = {"keys": [], "calls": []}

    class FakeMPRester:
        def __init__(self, api_key: str | None = None) -> None:
            record["keys"].append(api_key)
            self.materials = types.SimpleNamespace(
                insertion_electrodes=_FakeElectrodes(record["calls"]))

        def __enter__(self) -> object:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    pkg, client = types.ModuleType("mp_api"), types.ModuleType("mp_api.client")
    client.MPRester = FakeMPRester  # type: ignore[attr-defined]
    pkg.client = client  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mp_api", pkg)
    monkeypatch.setitem(sys.modules, "mp_api.client", client)
    return record


def test_mp_query_and_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BATTLAB_DATA", str(tmp_path))
    monkeypatch.delenv("BATTLAB_OFFLINE", raising=False)
    monkeypatch.setenv("MP_API_KEY", "secret-key")
    record = _install_fake_mp(monkeypatch)
    df, card = load_dataset("mp_insertion_electrodes", working_ion="Li")
    assert record["keys"] == ["secret-key"]
    (call,) = record["calls"]
    assert call["working_ion"] == "Li" and set(call["fields"]) == set(card.units)
    assert set(df.columns) == set(card.units)
    assert list(df["battery_id"]) == ["mp-0_Li", "mp-1_Li"]
    assert list(df["working_ion"]) == ["Li", "Li"]
    assert df["average_voltage"].tolist() == [3.9, 3.9]
    assert card.units["capacity_grav"] == "mAh/g" and card.units["energy_vol"] == "Wh/L"
    cache = tmp_path / "mp_insertion_electrodes" / "Li.parquet"
    assert cache.is_file()
    # Later calls read the cache: no key, and no client call.
    monkeypatch.delenv("MP_API_KEY")
    monkeypatch.setenv("BATTLAB_OFFLINE", "1")
    again, _ = load_dataset("mp_insertion_electrodes", working_ion="Li")
    pd.testing.assert_frame_equal(again, df)
    assert len(record["calls"]) == 1


def test_mp_without_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BATTLAB_DATA", str(tmp_path))
    monkeypatch.delenv("MP_API_KEY", raising=False)
    record = _install_fake_mp(monkeypatch)
    with pytest.raises(DatasetError, match="MP_API_KEY") as err:
        load_dataset("mp_insertion_electrodes", working_ion="Na")
    assert "materialsproject.org" in str(err.value)
    assert record["keys"] == [] and record["calls"] == []


def test_mp_bad_working_ion(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="element symbol"):
        load_dataset("mp_insertion_electrodes", working_ion="../x", api_key="k")
