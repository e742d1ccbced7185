"""`battlab run`: papermill pipeline, parameters, outputs passed between steps, failures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from battlab.cli import main
from battlab.pipeline import (
    STEPS,
    ParameterError,
    Step,
    StepFailed,
    _params_for,
    declared_parameters,
    key_figure,
    resolve_parameters,
    run_pipeline,
    summary_table,
)

BATTLAB = [str(Path(sys.executable).parent / "battlab")]


def battlab(*args, cwd=None):
    return subprocess.run(BATTLAB + list(args), capture_output=True, text=True, cwd=cwd, timeout=1800)


OBELIX_RAW = "Ionic conductivity (S cm-1)"  # the data card's target; 02_featurize models its log10
UNENCRYPTED = "running over TCP without encryption"  # ipykernel's warning, once per kernel started on TCP


@pytest.fixture(scope="module")
def quick_run_proc(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick") / "latest"
    proc = battlab("run", "--quick", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out, proc


@pytest.fixture(scope="module")
def quick_run(quick_run_proc):
    return quick_run_proc[0]


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
    # the 8 demonstration rows notebook 01 appends by default are merged or quarantined: the 2135 compounds stay
    assert step["summary"]["n_demo_rows"] == 8
    assert step["summary"]["n_input"] == 2135 + 8 and step["summary"]["n_kept"] == 2135
    assert step["summary"]["n_merged"] == 5 and step["summary"]["n_quarantined"] == 3
    assert step["summary"]["n_input"] == (step["summary"]["n_kept"] + step["summary"]["n_merged"]
                                          + step["summary"]["n_quarantined"])
    assert Path(step["outputs"]["curated"]).is_file()
    executed = nbformat.read(out / "01_curate.ipynb", as_version=4)
    assert any(c.get("outputs") for c in executed.cells if c.cell_type == "code")
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)


def test_executed_notebooks_hold_their_figures_although_the_tests_export_an_agg_backend(quick_run):
    """MPLBACKEND=Agg (set for the test process) must not reach the kernels: the plots land in the notebooks."""
    assert os.environ.get("MPLBACKEND") == "Agg"
    executed = nbformat.read(quick_run / "06_cycle_life.ipynb", as_version=4)
    images = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) >= 3


def test_run_says_what_each_step_does_as_it_starts_and_ends_then_a_short_table(quick_run_proc):
    out, proc = quick_run_proc
    lines = proc.stdout.splitlines()
    n = len(STEPS)
    assert lines[0].startswith(f"[1/{n}] 01_curate: curate the table")
    for i, step in enumerate(STEPS, 1):
        assert any(line.startswith(f"[{i}/{n}] {step.name}: done in ") for line in lines), step.name
    table = proc.stdout.split("\n\nstep ")[1]
    assert "key figure" in table and "n_kept = 2135" in table and "03_tune" in table
    rows = table.splitlines()[1:1 + n]
    assert [r.split()[0] for r in rows] == [s.name for s in STEPS]
    assert all(" = " in r for r in rows), table  # every step shows its figure, none a blank
    assert "ef_at_30 = " in table
    assert f"executed notebooks (with their figures): {out}" in proc.stdout
    assert f"report of the run (open it in a browser): {(out / 'report.html').resolve()}" in proc.stdout
    assert (out / "report.html").is_file() and (out / "html" / "07_plan.html").is_file()
    assert "writing the report: report.html and each notebook as HTML ..." in lines  # said before the silence


def test_kernels_start_without_the_unencrypted_tcp_warning(quick_run_proc):
    _, proc = quick_run_proc
    assert UNENCRYPTED not in proc.stderr, proc.stderr[-2000:]


def test_parameter_for_one_step_runs_obelix_and_bare_target_keeps_the_log_target(tmp_path, data_cache):
    """OBELiX end to end: -p target RAW reaches 01_curate; 03/04 still model 02's log10 target."""
    out = tmp_path / "run"
    proc = battlab("run", "--quick", "--out", str(out), "-p", "01_curate.dataset", "obelix",
                   "-p", "target", OBELIX_RAW)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    step = summary["steps"]["01_curate"]
    assert step["parameters"]["dataset"] == "obelix" and step["parameters"]["target"] == OBELIX_RAW
    assert step["summary"]["n_input"] == 599
    assert step["summary"]["n_censored"] >= 30
    log_target = f"log10 {OBELIX_RAW}"
    assert summary["steps"]["02_featurize"]["outputs"]["target"] == log_target
    assert summary["steps"]["03_tune"]["parameters"]["target"] == log_target
    assert summary["steps"]["04_explain"]["parameters"]["target"] == log_target
    assert summary["parameters_reach"]["target"] == ["01_curate"]
    assert "-p target reaches 01_curate, not 03_tune, 04_explain" in proc.stderr  # said before it runs
    card = json.loads(Path(summary["steps"]["03_tune"]["outputs"]["model_card"]).read_text())
    assert log_target in json.dumps(card)  # the model was tuned on the log target


def _plan_summary(budget, ef):
    """A 07_plan step record as the notebook writes it: the key figure's name carries the budget."""
    return {"status": "ok", "seconds": 12.0,
            "summary": {"dataset": "exp_formation_enthalpy", "n_candidates": 2135, "model": "rf", "n_seeds": 1,
                        "budget": budget, f"ef_at_{budget}": ef, "af_25pct_top5": 3.1, "seconds": 11.0,
                        "kernel_peak_rss_mb": 310.0}}


@pytest.mark.parametrize("budget, ef", [(30, 4.5), (60, 2.75)])  # a quick run's budget, a full run's
def test_final_table_shows_the_plan_figure_of_quick_and_full_runs(budget, ef):
    table = summary_table({"steps": {"07_plan": _plan_summary(budget, ef)}})
    assert f"07_plan  ef_at_{budget} = {ef:.4g}" in table


def test_key_figure_falls_back_to_the_first_number_never_a_timing():
    assert key_figure({"dataset": "x", "seconds": 3.0, "n_kept": 5}, "no_such_figure") == ("n_kept", 5)
    assert key_figure({"kernel_peak_rss_mb": 300.0, "ok": True, "note": "text"}, "") == ("", "")
    assert key_figure({"mae_mean": 0.1, "mae_std": 0.02}, "mae_*") == ("mae_mean", 0.1)
    table = summary_table({"steps": {"x": {"status": "ok", "seconds": 1.0, "summary": {"seconds": 1, "n": 7}}}},
                          steps=[Step("x", key="gone")])
    assert "x     n = 7" in table


# ---------------------------------------------------------------------------------- parameter routing
# resolved against the real notebooks (papermill's inspection), without running them

def _outputs_of_02(target):
    return {"01_curate": {"curated": "c.parquet", "report": "r.json", "target": OBELIX_RAW},
            "02_featurize": {"features": "f.parquet", "feature_info": "fi.csv", "target": target},
            "03_tune": {"model": "m.joblib", "features": "f.parquet", "feature_info": "fi.csv", "target": target}}


def _step(name):
    return next(s for s in STEPS if s.name == name)


def test_bare_target_on_obelix_reaches_curation_not_the_log_target_of_tuning(tmp_path):
    plan = resolve_parameters({"01_curate.dataset": "obelix", "target": OBELIX_RAW})
    assert plan.per_step["01_curate"] == {"dataset": "obelix", "target": OBELIX_RAW}
    assert plan.reaches["target"] == ["01_curate"]
    outputs = _outputs_of_02(f"log10 {OBELIX_RAW}")
    for name in ("03_tune", "04_explain"):
        params = _params_for(_step(name), True, plan.per_step[name], outputs, tmp_path / name)
        assert params["target"] == f"log10 {OBELIX_RAW}", name
    assert len(plan.notes) == 1
    assert "03_tune gets it from 02_featurize:target" in plan.notes[0]
    assert "-p 03_tune.target VALUE" in plan.notes[0]


def test_demo_rows_reach_curation_only():
    """``-p demo_rows false`` curates the default dataset as published (notebook 01 adds its demonstration rows)."""
    plan = resolve_parameters({"demo_rows": False})
    assert plan.reaches["demo_rows"] == ["01_curate"] and plan.per_step["01_curate"] == {"demo_rows": False}
    assert declared_parameters(STEPS[0])["demo_rows"]["default"] == '"auto"'


def test_step_dot_name_overrides_an_input_of_that_step_only(tmp_path):
    plan = resolve_parameters({"03_tune.target": "log10 other", "seed": 3})
    outputs = _outputs_of_02(f"log10 {OBELIX_RAW}")
    tune = _params_for(_step("03_tune"), False, plan.per_step["03_tune"], outputs, tmp_path)
    assert tune["target"] == "log10 other"
    explain = _params_for(_step("04_explain"), False, plan.per_step["04_explain"], outputs, tmp_path)
    assert explain["target"] == f"log10 {OBELIX_RAW}"  # 04 gets 03's output: what 03 was told (here: mocked)
    # a bare name with no producing step reaches every step that declares it, and only those
    declaring = [s.name for s in STEPS if "seed" in declared_parameters(s)]
    assert plan.reaches["seed"] == declaring and "01_curate" not in declaring
    assert all(("seed" in plan.per_step[s.name]) == (s.name in declaring) for s in STEPS)
    assert plan.notes == []


@pytest.mark.parametrize("parameters, message", [
    ({"n_trails": 5}, "-p n_trails: no step declares it; did you mean n_trials (03_tune"),
    ({"03_tune.n_trails": 5}, "03_tune does not declare n_trails; did you mean n_trials?"),
    ({"3_tune.n_trials": 5}, "no step 3_tune; did you mean 03_tune?"),
    ({"features": "x.parquet"}, "-p features: reaches no step (03_tune gets it from 02_featurize:features"),
    ({"out_dir": "/tmp/x"}, "out_dir is set by the pipeline"),
])
def test_unknown_parameters_fail_before_anything_runs(parameters, message, tmp_path):
    with pytest.raises(ParameterError) as err:
        run_pipeline(tmp_path / "run", parameters=parameters)
    assert message in str(err.value)
    assert not (tmp_path / "run").exists()  # nothing ran, nothing written


def _declares(step):
    return ", ".join(sorted(set(declared_parameters(step)) - {"out_dir"}))


def test_unknown_parameter_lists_what_the_steps_declare():
    with pytest.raises(ParameterError) as err:  # no close match: every step's parameters are listed
        resolve_parameters({"zzqqxx": 1})
    for step in STEPS:
        assert f"{step.name}: {_declares(step)}" in str(err.value)
    with pytest.raises(ParameterError) as err:  # a name another step has: what this one declares
        resolve_parameters({"01_curate.n_trials": 5})
    assert f"01_curate does not declare n_trials (01_curate declares: {_declares(STEPS[0])})" in str(err.value)


def test_every_bad_parameter_is_reported_at_once():
    with pytest.raises(ParameterError) as err:
        resolve_parameters({"n_trails": 5, "01_curate.datset": "obelix", "seed": 1})
    lines = str(err.value).splitlines()
    assert len(lines) == 2 and lines[0].startswith("-p n_trails") and lines[1].startswith("-p 01_curate.datset")


def test_cli_unknown_parameter_exits_2_with_close_matches(tmp_path, capsys):
    assert main(["run", "--quick", "--out", str(tmp_path / "run"), "-p", "n_trails", "5"]) == 2
    err = capsys.readouterr().err
    assert "battlab run: error: -p n_trails: no step declares it; did you mean n_trials (03_tune" in err
    assert main(["run", "--out", str(tmp_path / "run"), "-p", "02_featurize.present", "magpie"]) == 2
    assert "02_featurize does not declare present; did you mean preset?" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_cli_help_says_where_a_parameter_goes(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "every step whose notebook declares NAME, except where an earlier step's output feeds it" in text
    assert "STEP.NAME for one step, overriding its input too" in text


def test_every_step_sets_only_parameters_its_notebook_declares():
    """A Step's own, quick and input parameters reach its notebook: none is a name it does not have."""
    for step in STEPS:
        declared = declared_parameters(step)
        assert "out_dir" in declared, step.name
        unknown = (set(step.parameters) | set(step.quick) | set(step.inputs)) - set(declared)
        assert not unknown, (step.name, unknown)
        for ref in step.inputs.values():
            assert ref.split(":")[0] in [s.name for s in STEPS[:STEPS.index(step)]], (step.name, ref)


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
    summary = run_pipeline(tmp_path / "run", steps=steps, notebooks_dir=nbdir, quick=True)
    assert summary["steps"]["a"]["summary"]["value"] == 3
    assert summary["steps"]["b"]["summary"]["read"] == 30
    # a bare name does not replace what a step receives from an earlier one; STEP.NAME does
    with pytest.raises(ParameterError, match="reaches no step .b gets it from a:file"):
        run_pipeline(tmp_path / "run", steps=steps, notebooks_dir=nbdir, parameters={"source": "elsewhere"})
    with pytest.raises(ParameterError, match="b does not declare unused"):
        run_pipeline(tmp_path / "run", steps=steps, notebooks_dir=nbdir, parameters={"b.unused": 0})
    other = tmp_path / "other.txt"
    other.write_text("5")
    summary = run_pipeline(tmp_path / "run", steps=steps, notebooks_dir=nbdir, parameters={"b.source": str(other)})
    assert summary["steps"]["b"]["parameters"]["source"] == str(other)
    assert summary["steps"]["b"]["summary"]["read"] == 5


def test_pipeline_kernels_do_not_warn_about_unencrypted_tcp(tmp_path, capfd):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    _notebook(nbdir / "a.ipynb", "out_dir = ''",
              "from battlab.pipeline import save_step\nsave_step(out_dir, {'ok': 1}, {})")
    summary = run_pipeline(tmp_path / "run", steps=[Step("a")], notebooks_dir=nbdir)
    assert summary["steps"]["a"]["summary"]["ok"] == 1
    assert UNENCRYPTED not in capfd.readouterr().err  # the kernel's stderr is this process's


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


def test_quick_run_is_reproducible_on_a_loaded_machine(quick_run, tmp_path):
    """The same parameters and seed give identical figures (timings aside), also beside processes that keep every
    core busy: budgets are trials, not seconds (issue 24)."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        proc = battlab("run", "--quick", "--out", str(tmp_path / "again"))
    finally:
        for b in burners:
            b.kill()
            b.wait()
    assert proc.returncode == 0, proc.stderr
    first, second = _figures(quick_run), _figures(tmp_path / "again")
    assert first == second
    assert len(first) == len(STEPS)
    tuned = first["03_tune"]
    assert tuned["n_trials_finished"] == tuned["n_trials_requested"] == 4
    assert tuned["cut_short_by_timeout"] is False


# ---------------------------------------------------------------------------------- the HTML report

def test_run_writes_an_html_report_with_the_table_figures_and_each_notebook(tmp_path):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    _notebook(nbdir / "a.ipynb", "out_dir = ''\nvalue = 1",
              "from pathlib import Path\nimport matplotlib.pyplot as plt\nfrom battlab.pipeline import save_step\n"
              "fig, ax = plt.subplots(); ax.plot([0, 1], [value, 2]); ax.set_title('porosity sweep')\n"
              "Path(out_dir).mkdir(parents=True, exist_ok=True); (Path(out_dir) / 'v.txt').write_text('x')\n"
              "print('printed by a')\n"
              "save_step(out_dir, {'label': 'text', 'n_rows_kept': value * 10, 'mae': 0.123456}, "
              "{'file': Path(out_dir) / 'v.txt'})")
    _notebook(nbdir / "b.ipynb", "out_dir = ''\nfail = False",
              "from battlab.pipeline import save_step\nassert not fail, 'injected fault'\n"
              "save_step(out_dir, {'b': 5}, {})")
    steps = [Step("a", parameters={"value": 4}, title="make a figure", key="n_rows_*"), Step("b", title="second")]
    summary = run_pipeline(tmp_path / "run", steps=steps, notebooks_dir=nbdir)
    report = tmp_path / "run" / "report.html"
    assert summary["report"] == str(report.resolve())
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["report"] == summary["report"]
    text = report.read_text()
    assert "<td>make a figure</td><td class=\"\">n_rows_kept = 40</td>" in text  # the table, key by pattern
    assert "<td>mae</td><td>0.1235</td>" in text  # every figure of the step
    assert '<a href="a/v.txt">a/v.txt</a>' in text  # outputs linked relative to the run
    for name in ("a", "b"):
        assert f'<a href="html/{name}.html">notebook (HTML)</a>' in text
        assert f'<a href="{name}.ipynb">{name}.ipynb</a>' in text
    page = (tmp_path / "run" / "html" / "a.html").read_text()
    assert "printed by a" in page and "data:image/png;base64," in page  # the executed notebook, its figure
    # a failing step: the report is written all the same, with the error, and the CLI says where
    with pytest.raises(StepFailed):
        run_pipeline(tmp_path / "run", steps=steps, notebooks_dir=nbdir, parameters={"b.fail": True})
    text = report.read_text()
    assert '<td class="failed">failed</td>' in text and "injected fault" in text
    assert "AssertionError" in (tmp_path / "run" / "html" / "b.html").read_text()


def test_report_lists_a_notebook_it_cannot_export_with_the_reason(tmp_path):
    from battlab.report import write_report

    (tmp_path / "a.ipynb").write_text("not a notebook")
    summary = {"steps": {"a": {"status": "ok", "seconds": 1.0, "summary": {"n": 3}},
                         "b": {"status": "ok", "seconds": 1.0, "summary": {},
                               "notebook": str(tmp_path / "gone.ipynb")}}}
    text = write_report(tmp_path, summary, steps=[Step("a"), Step("b")]).read_text()
    assert "the notebook could not be exported to HTML (" in text
    assert f"no executed notebook at {tmp_path / 'gone.ipynb'}" in text
    assert "<td>n = 3</td>" not in text and "n = 3" in text
