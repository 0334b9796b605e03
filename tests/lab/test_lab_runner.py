"""The runner end to end: the CLI commands, resume after Ctrl-C or a killed worker, errors, Ray."""

from __future__ import annotations

import json
import shutil
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from lab_helpers import MINIMAL_SPEC, cli, subprocess_env

from adamlab.lab.cli import problem_lines
from adamlab.lab.runner import execute_job
from adamlab.lab.spec import load_spec
from adamlab.lab.store import Store


def runs_by_id(db):
    with Store.open(db, create=False) as store:
        return {r["id"]: r for r in store.runs()}


def test_minimal_spec_stores_eight_runs_and_a_rerun_adds_nothing(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(MINIMAL_SPEC)
    db = tmp_path / "results.sqlite"
    assert cli("run", str(spec), "--db", str(db), "--workers", "2", "--progress", "plain") == 0
    out = capsys.readouterr().out
    assert "8 jobs: 0 already finished, 8 to run on 2 local worker processes" in out
    assert "8 run (8 finished, 0 failed)" in out

    assert cli("show", "--db", str(db), "--json") == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 8
    assert {(r["optimizer"], r["hyperparameters"]["lr"], r["seed"]) for r in records} == {
        (o, lr, s) for o in ("adam", "madam") for lr in (1e-3, 3e-3) for s in (0, 1)
    }
    for r in records:
        assert r["status"] == "finished" and r["config"]["steps"] == 200 and r["config"]["problem"] == "logreg-digits"
        # MAdam (RAdam update: no adaptive step before rho_t > 5) at lr 1e-3 reaches 0.84 in 200 steps
        assert 0.8 < r["final_metrics"]["test_accuracy"] <= 1.0 and r["final_metrics"]["steps_run"] == 200

    before = runs_by_id(db)
    t0 = time.perf_counter()
    assert cli("run", str(spec), "--db", str(db), "--workers", "2", "--progress", "plain") == 0
    rerun_seconds = time.perf_counter() - t0
    assert "8 jobs: all 8 already finished, nothing to run" in capsys.readouterr().out
    assert runs_by_id(db) == before  # nothing rewritten
    assert rerun_seconds < 3.0, f"a rerun with nothing to do took {rerun_seconds:.1f}s"
    # in a fresh process, the rerun sees from the store's record of the sweep that all 8 jobs are
    # done, without expanding the sweep: torch is never imported
    code = f"import sys; from adamlab.lab.runner import run_sweep; s = run_sweep({str(spec)!r}, {str(db)!r}, progress='none'); "
    code += "print(s.total, s.skipped, 'torch' in sys.modules)"
    fresh = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert fresh.stdout.split() == ["8", "8", "False"], fresh.stderr
    # a changed sweep is expanded (with torch) and runs only its new jobs (in a copy of the store)
    changed, copy = tmp_path / "changed.toml", tmp_path / "copy.sqlite"
    changed.write_text(MINIMAL_SPEC.replace("seeds = [0, 1]", "seeds = [0, 1, 2]"))
    shutil.copy(db, copy)
    code = code.replace(str(spec), str(changed)).replace(str(db), str(copy)).replace("s.skipped,", "s.skipped, s.ran,")
    fresh = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert fresh.stdout.split() == ["12", "8", "4", "True"], fresh.stderr

    # a job run in a pool worker and the same job run here give the same metrics, bit for bit
    job = load_spec(spec).jobs()[5]
    again = execute_job(job.config, job_id=job.id)
    assert again["final_metrics"] == before[job.id]["final_metrics"]
    with Store.open(db, create=False) as store:
        assert [tuple(r) for r in again["metrics"]] != []
        assert sorted(store.metrics(job.id)) == sorted((k, s, n, v) for k, s, n, v in again["metrics"])

    assert cli("show", "--db", str(db)) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["id", "problem", "optimizer", "hyperparameters"] and len(table) == 9


SLOW_SPEC = """\
[sweep]
problems = ["lab_helpers:slow"]
optimizers = ["adam"]
seeds = [{seeds}]
steps = 10
[sweep.problem."lab_helpers:slow"]
delay = {delay}
kill_marker = "{marker}"
"""


def start_run(spec, db, workers=2):
    cmd = [
        sys.executable,
        "-m",
        "adamlab.lab.cli",
        "run",
        str(spec),
        "--db",
        str(db),
        "--workers",
        str(workers),
        "--progress",
        "plain",
    ]
    # its own process group, so a test can send SIGINT to the run and its workers as Ctrl-C at a terminal does
    return subprocess.Popen(
        cmd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def finished_count(db):
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'finished'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def test_ctrl_c_midway_keeps_finished_runs_and_a_rerun_completes_exactly_the_rest(tmp_path):
    spec = tmp_path / "slow.toml"
    spec.write_text(SLOW_SPEC.format(seeds=", ".join(map(str, range(10))), delay=0.05, marker=""))  # 10 jobs of ~0.5 s
    db = tmp_path / "r.sqlite"
    proc = start_run(spec, db)
    deadline = time.monotonic() + 90
    while finished_count(db) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the run process and its workers all get SIGINT
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "interrupted: finished jobs are stored" in err

    with Store.open(db, create=False) as store:
        assert store.integrity() == "ok"
        kept = {r["id"]: r for r in store.runs()}
        for run_id in kept:
            assert len(store.series(run_id, "loss")[0]) == 10  # each stored run is whole
    assert 2 <= len(kept) < 10 and all(r["status"] == "finished" for r in kept.values())

    proc = start_run(spec, db)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (out, err)
    assert f"10 jobs: {len(kept)} already finished, {10 - len(kept)} to run" in out
    assert f"{10 - len(kept)} run ({10 - len(kept)} finished, 0 failed)" in out
    after = runs_by_id(db)
    assert len(after) == 10
    assert all(after[i] == kept[i] for i in kept)  # the runs stored before the interrupt are untouched


def test_a_killed_worker_is_detected_and_a_rerun_completes_the_rest(tmp_path):
    marker = tmp_path / "killed-once"
    spec = tmp_path / "kill.toml"
    spec.write_text(SLOW_SPEC.format(seeds="0, 1, 2, 3, 4, 5", delay=0.02, marker=marker))
    db = tmp_path / "r.sqlite"
    proc = start_run(spec, db)
    out, err = proc.communicate(timeout=120)
    assert marker.exists()  # a worker SIGKILLed itself
    assert proc.returncode == 1, (out, err)
    assert "a worker process died" in err and "run the same command again" in err
    with Store.open(db, create=False) as store:
        assert store.integrity() == "ok"
        done = store.count("finished")
        assert done < 6 and store.count() == done

    proc = start_run(spec, db)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (out, err)
    assert f"6 jobs: {done} already finished, {6 - done} to run" in out
    assert len(runs_by_id(db)) == 6


def test_a_failing_job_is_recorded_as_failed_and_retried(tmp_path, capsys):
    spec = tmp_path / "fail.toml"
    spec.write_text(
        '[sweep]\nproblems = ["lab_helpers:slow"]\noptimizers = ["adam"]\n[sweep.problem."lab_helpers:slow"]\nfail = true\n'
    )
    db = tmp_path / "r.sqlite"
    assert cli("run", str(spec), "--db", str(db), "--workers", "0", "--progress", "plain") == 1
    assert "1 run (0 finished, 1 failed)" in capsys.readouterr().out
    (run,) = runs_by_id(db).values()
    assert run["status"] == "failed" and "RuntimeError: this test problem always fails" in run["error"]
    assert cli("run", str(spec), "--db", str(db), "--workers", "0", "--progress", "plain") == 1
    assert "1 jobs: 0 already finished, 1 to run" in capsys.readouterr().out


def error_line(capsys, *argv):
    assert cli(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_user_errors_are_one_line_and_exit_2_with_the_store_untouched(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    spec = tmp_path / "s.toml"
    spec.write_text('[sweep]\nproblems = ["reddi"\noptimizers = ["adam"]\n')
    assert "line 3" in error_line(capsys, "run", str(spec), "--db", str(db))
    spec.write_text('[sweep]\nproblems = ["mnist-mlp"]\noptimizers = ["adam"]\n')
    assert "unknown problem 'mnist-mlp'" in error_line(capsys, "run", str(spec), "--db", str(db))
    spec.write_text('[sweep]\nproblems = ["reddi"]\noptimizers = ["madam2"]\n')
    assert "Available: adabelief, adabound, adagrad, adam," in error_line(capsys, "run", str(spec), "--db", str(db))
    spec.write_text('[sweep]\nproblems = ["reddi"]\noptimizers = ["adam"]\n[sweep.grid]\nbeta3 = [0.9]\n')
    assert "unknown keyword 'beta3' for optimizer 'adam'" in error_line(capsys, "run", str(spec), "--db", str(db))
    spec.write_text(
        '[sweep]\nproblems = ["mlp-digits"]\noptimizers = ["adam"]\n[sweep.problem.mlp-digits]\nmnist_dir = "mnist"\n'
    )
    msg = error_line(capsys, "run", str(spec), "--db", str(db))
    assert f"MNIST directory '{tmp_path / 'mnist'}' does not exist" in msg and "train-images-idx3-ubyte" in msg
    assert not db.exists()  # no error above created the store

    spec.write_text('[sweep]\nproblems = ["reddi"]\noptimizers = ["adam"]\nsteps = 5\n')
    foreign = tmp_path / "foreign.sqlite"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = foreign.read_bytes()
    assert "not an adamlab result store" in error_line(capsys, "run", str(spec), "--db", str(foreign))
    assert "not an adamlab result store" in error_line(capsys, "show", "--db", str(foreign))
    assert foreign.read_bytes() == before
    assert "does not exist" in error_line(capsys, "run", str(spec), "--db", str(tmp_path / "no" / "r.sqlite"))
    assert "no result store at" in error_line(capsys, "show", "--db", str(db))


def test_problem_listing():
    lines = problem_lines()
    assert len(lines) == 10
    assert lines[0].startswith("beale ") and "Beale's function" in lines[0]
    assert any(line.startswith("reddi ") and "regret" in line for line in lines)


def test_module_entry_point_lists_problems():
    out = subprocess.run(
        [sys.executable, "-m", "adamlab.lab.cli", "problems"], env=subprocess_env(), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 10


@pytest.mark.skipif(os.environ.get("ADAMLAB_TEST_RAY") == "0", reason="ADAMLAB_TEST_RAY=0")
def test_ray_executor_runs_a_small_sweep(tmp_path, capsys):
    pytest.importorskip("ray")
    spec = tmp_path / "ray.toml"
    spec.write_text(
        '[sweep]\nproblems = ["reddi"]\noptimizers = ["adam", "amsgrad"]\nsteps = 300\n[sweep.grid]\nbetas = [[0.0, 0.1]]\n'
    )
    db = tmp_path / "r.sqlite"
    assert cli("run", str(spec), "--db", str(db), "--executor", "ray", "--workers", "1", "--progress", "plain") == 0
    assert "on a local Ray cluster" in capsys.readouterr().out
    runs = runs_by_id(db)
    assert len(runs) == 2
    for job in load_spec(spec).jobs():
        assert execute_job(job.config, job_id=job.id)["final_metrics"] == runs[job.id]["final_metrics"]


def test_rich_progress_display(tmp_path):
    pytest.importorskip("rich")
    import io

    from adamlab.lab.progress import RichProgress, make_progress
    from adamlab.lab.runner import run_sweep

    out = io.StringIO()
    display = make_progress("rich", out)
    assert isinstance(display, RichProgress)
    sweep = {"problems": ["reddi"], "optimizers": ["adam", "amsgrad"], "steps": 3000}
    summary = run_sweep(sweep, tmp_path / "r.sqlite", workers=0, progress=display)
    text = out.getvalue()
    assert summary.finished == 2 and "2 jobs: 0 already finished, 2 to run in this process" in text
    assert "reddi amsgrad lr=0.1 seed=0: finished" in text and "2 run (2 finished, 0 failed)" in text
    assert isinstance(make_progress("auto", io.StringIO()), type(make_progress("plain", io.StringIO())))  # not a TTY: plain


def test_bad_executor_settings_fail_before_the_store_is_created(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('[sweep]\nproblems = ["reddi"]\noptimizers = ["adam"]\nsteps = 5\n')
    db = tmp_path / "r.sqlite"
    assert "--address is for --executor ray" in error_line(capsys, "run", str(spec), "--db", str(db), "--address", "auto")
    assert "--workers must be >= 0" in error_line(capsys, "run", str(spec), "--db", str(db), "--workers", "-1")
    assert not db.exists()
