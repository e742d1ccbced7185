"""Inputs from outside (dataset names, uploaded files and names, cached downloads, CLI paths) are never
executed, never written outside their folder, and never trusted without a check."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from battlab import datasets
from battlab.cli import main
from battlab.errors import DatasetError

TRAVERSAL_NAMES = ["../x", "..", "a/b", "a\\b", "/etc/passwd", "/tmp/x", "~/x", "..\\..\\x",
                   "obelix/../obelix", "obelix/", "x\x00y", "", " obelix", "obelix\n", "1abc", None, 3]


# --------------------------------------------------------------------------- (a) dataset names

@pytest.mark.parametrize("name", TRAVERSAL_NAMES)
def test_dataset_names_with_paths_are_rejected(name: object) -> None:
    for call in (lambda: datasets.load_dataset(name), lambda: datasets.dataset_card(name),
                 lambda: datasets.fetch(name, "all.csv")):
        with pytest.raises(DatasetError):
            call()


def test_fetch_rejects_file_names_outside_the_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATTLAB_DATA", str(tmp_path / "cache"))
    (tmp_path / "secret.csv").write_text("a\n1\n")
    name = next(n for n, files in datasets._FILES.items() if files)
    for filename in ("../../secret.csv", str(tmp_path / "secret.csv"), "../" + name, "."):
        with pytest.raises(DatasetError):
            datasets.fetch(name, filename)


# --------------------------------------------------------------------------- (b) uploaded file names

UPLOAD_NAMES = ["../../evil.csv", "../evil.csv", "/etc/passwd", "..\\..\\evil.csv",
                "..", ".", "", "...",
                "/tmp/evil.csv", "sub/dir/evil.csv", "C:\\Windows\\evil.csv", "evil.csv\x00.txt",
                "~/evil.csv", "%2e%2e%2fevil.csv", "…/evil.csv"]


def _tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize("name", UPLOAD_NAMES)
def test_upload_names_never_write_outside_a_temp_folder(name: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from battlab.widgets.data import DataUploader

    work = tmp_path / "a" / "b" / "cwd"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    before = _tree(tmp_path)
    passwd = Path("/etc/passwd").read_bytes() if Path("/etc/passwd").is_file() else None
    up = DataUploader()
    up.load_bytes(name, b"formula,capacity\nLiCoO2,140\nLiFePO4,160\n")
    assert _tree(tmp_path) == before, "the upload created a file under the working folder's parents"
    for target in (tmp_path / "a" / "evil.csv", tmp_path / "evil.csv", Path("/tmp/evil.csv")):
        assert not target.exists() or target.read_bytes() != b"formula,capacity\nLiCoO2,140\nLiFePO4,160\n"
    if passwd is not None:
        assert Path("/etc/passwd").read_bytes() == passwd
    assert "/" not in up.filename and "\\" not in up.filename and up.filename not in ("..", ".")
    assert up.state.lower() in ("ready", "fail")  # read, or a message: never an exception


# --------------------------------------------------------------------------- (c) checksums

def test_cached_file_with_wrong_checksum_is_refused_and_left_untouched(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATTLAB_DATA", str(tmp_path))
    monkeypatch.setenv("BATTLAB_OFFLINE", "1")
    name, files = next((n, f) for n, f in datasets._FILES.items() if f)
    filename, remote = next(iter(files.items()))
    bad = b"formula,y\nLiCoO2,1\n"  # a plausible but wrong file
    assert hashlib.sha256(bad).hexdigest() != remote.sha256
    path = tmp_path / name / filename
    path.parent.mkdir(parents=True)
    path.write_bytes(bad)
    with pytest.raises(DatasetError, match="sha256"):
        datasets.fetch(name, filename)
    assert path.read_bytes() == bad  # refused, never replaced or deleted
    with pytest.raises(DatasetError):
        datasets.load_dataset(name)


def test_truncated_cached_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATTLAB_DATA", str(tmp_path))
    monkeypatch.setenv("BATTLAB_OFFLINE", "1")
    name, files = next((n, f) for n, f in datasets._FILES.items() if f)
    filename = next(iter(files))
    path = tmp_path / name / filename
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    with pytest.raises(DatasetError, match="sha256"):
        datasets.fetch(name, filename)


# --------------------------------------------------------------------------- (d) no unpickling of uploads

class _Marker:
    """Unpickling this creates the marker file: proof that an upload was executed."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trusted model folder (explicitly chosen): a linear model on one magpie feature."""
    import joblib
    from sklearn.linear_model import LinearRegression

    folder = tmp_path_factory.mktemp("model")
    feature = "MagpieData mean Number"
    X = pd.DataFrame({feature: np.arange(10.0)})
    joblib.dump(LinearRegression().fit(X, 2 * X[feature]), folder / "model.joblib")
    (folder / "model_card.json").write_text(json.dumps(
        {"features": {"names": [feature]}, "data": {"target": "y"}, "model": {"name": "ridge"}}))
    return folder


@pytest.mark.parametrize("upload", ["list.pkl", "list.joblib", "list.csv", "list.parquet", "list.xlsx", "list"])
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_predictor_upload_never_unpickles(upload: str, protocol: int, tiny_model_dir: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from battlab.widgets.predictor import Predictor

    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    payload = pickle.dumps(_Marker(marker), protocol=protocol)
    p = Predictor(tiny_model_dir)
    assert p.model is not None, p.message
    out = p.load_list(upload, payload)
    assert not marker.exists(), "an uploaded pickle was executed"
    # An error is reported: either the file is refused, or (text pickles read as a CSV) every "formula"
    # from it is an unparsable string with an error of its own; never a prediction from the payload.
    assert p.state.upper() == "FAIL" or (len(out) and (out["error"].astype(str) != "").all()), (p.state, p.message, out)


def test_joblib_upload_via_data_uploader_is_not_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import joblib

    from battlab.widgets.data import DataUploader

    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    joblib.dump(_Marker(marker), tmp_path / "m.joblib")
    up = DataUploader()
    for name in ("model.joblib", "model.pkl", "model.csv", "model.parquet"):
        up.load_bytes(name, (tmp_path / "m.joblib").read_bytes())
        assert not marker.exists()
        assert up.state.lower() == "fail", (name, up.state)


# --------------------------------------------------------------------------- (e) CLI inputs

def test_cli_curate_output_path_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.csv"
    src.write_text("formula,capacity (mAh/g)\nLiCoO2,140\nLiFePO4,160\nXx,1\n")
    assert main(["curate", str(src), "--out", str(tmp_path / "out"), "--target", "capacity (mAh/g)"]) == 0
    assert (tmp_path / "out" / "curated.parquet").is_file()


@pytest.mark.parametrize("kind", ["directory", "devnull", "fifo", "missing", "unreadable"])
def test_cli_curate_bad_input_paths_exit_2(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    if kind == "directory":
        src = tmp_path / "dir.csv"
        src.mkdir()
    elif kind == "devnull":
        src = Path(os.devnull)
    elif kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        src = tmp_path / "pipe.csv"
        os.mkfifo(src)
    elif kind == "missing":
        src = tmp_path / "nope.csv"
    else:
        src = tmp_path / "locked.csv"
        src.write_text("formula,y\nLiCoO2,1\n")
        src.chmod(0)
        if os.geteuid() == 0:  # root reads anything: make the read fail as it would for a user
            real = Path.read_bytes

            def denied(self: Path) -> bytes:
                if self.name == "locked.csv":
                    raise PermissionError(13, "Permission denied", str(self))
                return real(self)

            monkeypatch.setattr(Path, "read_bytes", denied)
    code = main(["curate", str(src), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "error" in err
    assert not (tmp_path / "out" / "curated.parquet").exists()
