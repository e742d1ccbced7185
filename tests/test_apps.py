"""battlab.apps: where each app's model and explanation come from on a cold start."""

from __future__ import annotations

import numpy as np
import pandas as pd

from battlab import apps
from battlab.explain import Explanation


def test_a_cold_shap_explorer_opens_the_shipped_explanation(tmp_path, monkeypatch):
    monkeypatch.setattr(apps, "RUNS_DIR", tmp_path / "runs")  # no runs/latest, nothing built earlier
    folder, source = apps.default_explanation_dir()
    assert folder == apps.SHIPPED_EXPLANATION and "shipped with battlab" in source
    ex = Explanation.load(folder)
    assert ex.model_name == "lgbm" and ex.target == "formation_enthalpy_per_atom" and len(ex.values) == 300
    assert ex.additivity_error < 1e-9  # SHAP values add up to the predictions
    assert not (tmp_path / "runs").exists()  # nothing was built


def test_the_shipped_explanation_is_what_the_default_build_gives_today(tmp_path):
    """Rebuild the small default model and its explanation: the shipped copy must be current (else run
    ``write_default_explanation()``), so the SHAP explorer and the predictor's default model agree."""
    shipped = Explanation.load(apps.SHIPPED_EXPLANATION)
    rebuilt = Explanation.load(apps.write_default_explanation(tmp_path / "explain"))
    assert rebuilt.labels == shipped.labels
    pd.testing.assert_index_equal(rebuilt.values.index, shipped.values.index)  # the same rows
    pd.testing.assert_index_equal(rebuilt.values.columns, shipped.values.columns)
    np.testing.assert_allclose(rebuilt.values.to_numpy(), shipped.values.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(rebuilt.predictions.to_numpy(), shipped.predictions.to_numpy(), atol=1e-6)
    assert abs(rebuilt.base_value - shipped.base_value) < 1e-9


def test_a_pipeline_model_without_explanation_is_explained_not_replaced_by_the_shipped_one(tmp_path, monkeypatch):
    from battlab import steps

    monkeypatch.setattr(apps, "RUNS_DIR", tmp_path / "runs")
    curated = steps.curate(dataset="exp_formation_enthalpy")
    fs = steps.featurize(curated, preset="magpie")
    fs.table = fs.table.iloc[:300]
    fs.save(tmp_path / "runs" / "latest" / "02_featurize")
    tuned = steps.tune(fs, models=("ridge",), n_trials=1, storage="sqlite:///:memory:", progress=False)
    tuned.save(tmp_path / "runs" / "latest" / "03_tune")
    folder, source = apps.default_explanation_dir(max_rows=50)
    assert folder != apps.SHIPPED_EXPLANATION and "explained now" in source
    assert Explanation.load(folder).model_name == "ridge"


def test_stopping_battlab_app_ends_the_server_and_its_kernels(tmp_path):
    """SIGTERM (or Ctrl-C) of `battlab app` leaves no Voila server or kernel behind (issue 25)."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import threading
    import time
    import urllib.request

    import psutil

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "app.log"
    proc = subprocess.Popen([sys.executable, "-m", "battlab", "app", "curation", "--port", str(port)],
                            stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env={**os.environ, "BATTLAB_RUNS": str(tmp_path / "runs")})
    try:
        deadline = time.monotonic() + 90
        while True:  # the server answers
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.3)

        def render() -> None:  # a visitor: Voila starts a kernel for the page
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/voila/render/curation.ipynb", timeout=60).read()
            except OSError:
                pass

        threading.Thread(target=render, daemon=True).start()
        tree = psutil.Process(proc.pid)
        while len(tree.children(recursive=True)) < 2:  # the server and a kernel
            assert time.monotonic() < deadline, (tree.children(recursive=True), log.read_text()[-2000:])
            time.sleep(0.3)
        started = tree.children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        gone, alive = psutil.wait_procs(started, timeout=10)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        if proc.poll() is None:
            proc.kill()
