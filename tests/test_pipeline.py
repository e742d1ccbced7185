"""`battlab run`: papermill pipeline, parameters, outputs passed between steps, failures."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from battlab.pipeline import STEPS, Step, StepFailed, run_pipeline

BATTLAB = [str(Path(sys.executable).parent / "battlab")]


def battlab(*args, cwd=None):
    return subprocess.run(BATTLAB + list(args), capture_output=True, text=True, cwd=cwd, timeout=1800)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick") / "latest"
    proc = battlab("run", "--quick", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def _figures(out):
    summary = json.loads((out / "summary.json").read_text())
    return {step: {k: v for k, v in record["summary"].items() if "seconds" not in k and "rss" not in k}
            for step, record in summary["steps"].items()}


def test_run_quick_writes_summary_and_notebooks(quick_run):
    out = quick_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["quick"] is True
    assert list(summary["steps"]) == [s.name for s in STEPS]
    step = summary["steps"]["01_curate"]
    assert step["status"] == "ok"
    assert step["summary"]["n_input"] == 2135
    assert step["summary"]["n_input"] == (step["summary"]["n_kept"] + step["summary"]["n_merged"]
                                          + step["summary"]["n_quarantined"])
    assert Path(step["outputs"]["curated"]).is_file()
    executed = nbformat.read(out / "01_curate.ipynb", as_version=4)
    assert any(c.get("outputs") for c in executed.cells if c.cell_type == "code")
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)


def test_parameter_for_one_step_runs_obelix(tmp_path, data_cache):
    out = tmp_path / "run"
    proc = battlab("run", "--quick", "--out", str(out), "-p", "01_curate.dataset", "obelix")
    assert proc.returncode == 0, proc.stderr
    step = json.loads((out / "summary.json").read_text())["steps"]["01_curate"]
    assert step["parameters"]["dataset"] == "obelix"
    assert step["summary"]["n_input"] == 599
    assert step["summary"]["n_censored"] >= 30


def test_failed_notebook_stops_with_its_error_and_exit_1(tmp_path):
    proc = battlab("run", "--quick", "--out", str(tmp_path / "run"), "-p", "dataset", "no_such_dataset")
    assert proc.returncode == 1
    assert "step 01_curate failed" in proc.stderr
    assert "DatasetError" in proc.stderr and "no_such_dataset" in proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"]["01_curate"]["status"] == "failed"


def _notebook(path, params_src, body_src):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(params_src, metadata={"tags": ["parameters"]})
    nb.cells = [params, nbformat.v4.new_code_cell(body_src)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_outputs_of_one_step_are_inputs_of_the_next(tmp_path):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    _notebook(nbdir / "a.ipynb", "out_dir = ''\nvalue = 1",
              "from pathlib import Path\nfrom battlab.pipeline import save_step\n"
              "p = Path(out_dir) / 'v.txt'; Path(out_dir).mkdir(parents=True, exist_ok=True)\n"
              "p.write_text(str(value * 10))\nsave_step(out_dir, {'value': value}, {'file': p})")
    _notebook(nbdir / "b.ipynb", "out_dir = ''\nsource = ''",
              "from pathlib import Path\nfrom battlab.pipeline import save_step\n"
              "save_step(out_dir, {'read': int(Path(source).read_text())}, {})")
    steps = [Step("a", parameters={"value": 2}, quick={"value": 3}), Step("b", inputs={"source": "a:file"})]
    summary = run_pipeline(tmp_path / "run", steps=steps, notebooks_dir=nbdir)
    assert summary["steps"]["b"]["summary"]["read"] == 20
    summary = run_pipeline(tmp_path / "run", steps=steps, notebooks_dir=nbdir, quick=True,
                           parameters={"b.unused": 0})
    assert summary["steps"]["a"]["summary"]["value"] == 3
    assert summary["steps"]["b"]["summary"]["read"] == 30


def test_step_failure_raises_with_cell(tmp_path):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    _notebook(nbdir / "bad.ipynb", "out_dir = ''", "raise ValueError('porosity above one')")
    with pytest.raises(StepFailed, match="porosity above one"):
        run_pipeline(tmp_path / "run", steps=[Step("bad")], notebooks_dir=nbdir)
    assert (tmp_path / "run" / "bad.ipynb").is_file()  # the executed notebook is kept for reading


def test_failed_step_keeps_earlier_outputs_and_resume_starts_there(tmp_path):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    runs_log = tmp_path / "a_runs.txt"
    _notebook(nbdir / "a.ipynb", f"out_dir = ''\nlog = {str(runs_log)!r}",
              "from pathlib import Path\nfrom battlab.pipeline import save_step\n"
              "Path(out_dir).mkdir(parents=True, exist_ok=True); (Path(out_dir) / 'a.txt').write_text('7')\n"
              "open(log, 'a').write('run\\n')\nsave_step(out_dir, {'a': 7}, {'file': Path(out_dir) / 'a.txt'})")
    _notebook(nbdir / "b.ipynb", "out_dir = ''\nsource = ''\nfail = False",
              "from pathlib import Path\nfrom battlab.pipeline import save_step\n"
              "assert not fail, 'injected fault'\n"
              "save_step(out_dir, {'b': int(Path(source).read_text()) + 1}, {})")
    steps = [Step("a"), Step("b", inputs={"source": "a:file"})]
    with pytest.raises(StepFailed, match="injected fault"):
        run_pipeline(tmp_path / "run", steps=steps, notebooks_dir=nbdir, parameters={"b.fail": True})
    assert (tmp_path / "run" / "a" / "a.txt").read_text() == "7"  # the earlier step's outputs are intact
    summary = run_pipeline(tmp_path / "run", steps=steps, notebooks_dir=nbdir, resume=True)
    assert summary["steps"]["a"].get("resumed") is True
    assert summary["steps"]["b"]["summary"]["b"] == 8
    assert summary["steps"]["b"]["summary"]["kernel_peak_rss_mb"] > 10
    assert runs_log.read_text().count("run") == 1  # step a ran once, before the fault
    again = run_pipeline(tmp_path / "run", steps=steps, notebooks_dir=nbdir, resume=True)
    assert again["steps"]["b"].get("resumed") is True  # nothing left to do


def test_quick_run_is_reproducible(quick_run, tmp_path):
    """The same parameters and seed give identical figures (timings aside)."""
    proc = battlab("run", "--quick", "--out", str(tmp_path / "again"))
    assert proc.returncode == 0, proc.stderr
    first, second = _figures(quick_run), _figures(tmp_path / "again")
    assert first == second
    assert len(first) == len(STEPS)
