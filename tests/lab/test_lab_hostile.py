"""Hostile inputs to the lab, as tables: each is one line ``error: ...`` naming what is wrong, exit
status 2 and an untouched store, or, where the input is a fine number in another type, the same
jobs as its plain Python value. (Process faults: test_lab_faults.py.)"""

from __future__ import annotations

import re
import sys
import time

import numpy as np
import pytest
import torch
from lab_helpers import cli

from adamlab.lab.errors import LabError
from adamlab.lab.report import make_folder
from adamlab.lab.spec import Sweep, hyperparameter_labels
from adamlab.lab.store import Store


def _error(capsys, *argv) -> str:
    assert cli(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def _spec(tmp_path, body: str, optimizers: str = '["adam"]', problems: str = '["quadratic"]'):
    spec = tmp_path / "s.toml"
    spec.write_text(f"[sweep]\nproblems = {problems}\noptimizers = {optimizers}\nsteps = 2\n{body}")
    return spec


BAD_GRIDS = [
    ('["adamw"]', "weight_decay = [0.5, \"0.5\"]", r"invalid weight_decay='0.5'"),  # was: run, stored, both labelled 0.5
    ('["adam"]', 'lr = "0.1"', r"invalid lr='0.1'"),
    ('["adam"]', 'eps = ["1e-8"]', r"invalid eps='1e-8'"),
    ('["adam"]', 'betas = [["0.9", 0.999]]', r"invalid betas\[0\]='0.9'"),
    ('["madam"]', 'beta3 = "0.9"', r"invalid beta3='0.9'"),
    ('["padam"]', 'partial = "0.25"', r"invalid partial='0.25'"),
    ('["adabound"]', 'final_lr = "0.1"', r"invalid final_lr='0.1'"),
    ('["adam"]', "amsgrad = [1]", r"invalid amsgrad=1"),
    ('["sgd"]', 'lr = "0.1"', r"SGD: invalid lr='0.1': expected a real number \(got a str\)"),
    ('["rmsprop"]', "centered = [1]", r"RMSprop: invalid centered=1: expected True or False"),
    ('["sgd"]', 'diagnostics = [["amsgrad-swaps"]]', r"diagnostic 'amsgrad-swaps' reads AMSGrad's running max"),
    ('["adam"]', 'diagnostics = [["amsgrad-swaps"]]', r"'adam' does not keep here"),
    ('["adam"]', 'diagnostics = [["swats-switches"]]', r"diagnostic 'swats-switches' reads SWATS's switch"),
]


@pytest.mark.parametrize(("optimizers", "grid", "match"), BAD_GRIDS, ids=[g for _, g, _ in BAD_GRIDS])
def test_a_bad_grid_value_is_a_one_line_error_and_nothing_is_stored(tmp_path, capsys, optimizers, grid, match):
    db = tmp_path / "r.sqlite"
    err = _error(capsys, "run", str(_spec(tmp_path, f"[sweep.grid]\n{grid}\n", optimizers)), "--db", str(db))
    assert re.search(match, err), err
    assert not db.exists()


def test_diagnostics_that_apply_are_accepted():
    sweep = Sweep(problems=["quadratic"], optimizers=["amsgrad", "swats"], steps=2)
    sweep.optimizer = {"amsgrad": {"diagnostics": [["amsgrad-swaps"]]}, "swats": {"diagnostics": [["swats-switches"]]}}
    assert len(sweep.jobs()) == 2


BAD_OPTIONS = [
    ('["mlp-digits"]', '[sweep.problem.mlp-digits]\nbatch_size = "128"', r"option batch_size='128': expected an integer"),
    ('["rosenbrock"]', '[sweep.problem.rosenbrock]\nstart = "abc"', r"option start='abc': expected a list of 2 numbers"),
    ('["rosenbrock"]', '[sweep.problem.rosenbrock]\nstart = [1, "x"]', r"option start=\[1, 'x'\]"),
    ('["quadratic"]', '[sweep.problem.quadratic]\ncondition = "100"', r"option condition='100': expected a number"),
    ('["logreg-digits"]', "[sweep.problem.logreg-digits]\nmnist_dir = 3", r"option mnist_dir=3: expected a string or none"),
]


@pytest.mark.parametrize(("problems", "table", "match"), BAD_OPTIONS, ids=[t.split("\n")[1] for _, t, _ in BAD_OPTIONS])
def test_a_wrong_type_problem_option_is_named(tmp_path, capsys, problems, table, match):
    err = _error(capsys, "run", str(_spec(tmp_path, table + "\n", problems=problems)), "--db", str(tmp_path / "r.sqlite"))
    assert re.search(match, err), err


USER_MODULES = [
    (
        "raise RuntimeError('no GPU here')\n",
        r"importing 'hostile_mod_\d' raised RuntimeError: no GPU here \(hostile_mod_\d.py, line 1\)",
    ),
    ("def broken(:\n", r"importing 'hostile_mod_\d' raised SyntaxError: .* line 1\)"),
    (
        "def make(**o):\n    raise RuntimeError('factory failed')\n",
        r"make\(...\) raised RuntimeError: factory failed \(hostile_mod_\d.py, line 2\)",
    ),
    ("import no_such_module_anywhere\n", r"cannot import 'hostile_mod_\d' \(No module named 'no_such_module_anywhere'\)"),
]


@pytest.mark.parametrize(("i", "source", "match"), [(i, s, m) for i, (s, m) in enumerate(USER_MODULES)])
def test_a_failing_user_problem_is_one_line(tmp_path, capsys, monkeypatch, i, source, match):
    (tmp_path / f"hostile_mod_{i}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = _spec(tmp_path, "", problems=f'["hostile_mod_{i}:make"]')
    err = _error(capsys, "run", str(spec), "--db", str(tmp_path / "r.sqlite"))
    assert re.search(match, err), err
    sys.modules.pop(f"hostile_mod_{i}", None)


def test_a_huge_grid_is_refused_before_it_is_expanded(tmp_path, capsys):
    grid = "[sweep.grid]\nlr = {log = [1e-5, 1e-1], num = 1000}\neps = {log = [1e-10, 1e-6], num = 1000}\n"
    t0 = time.perf_counter()
    err = _error(capsys, "run", str(_spec(tmp_path, grid)), "--db", str(tmp_path / "r.sqlite"))
    assert time.perf_counter() - t0 < 10
    assert "the sweep has 1,000,000 jobs, more than 1,000; narrow the grid, or pass --yes to run them all" in err
    assert Sweep(problems=["quadratic"], optimizers=["adam", "sgd"], seeds=[0, 1], grid={"lr": [1, 2, 3]}).job_count() == 12


def test_the_limit_is_the_clis_and_the_python_api_expands_any_sweep(tmp_path, capsys):
    spec = _spec(tmp_path, "[sweep.grid]\nlr = {lin = [0.001, 0.1], num = 1001}\n", problems='["quadratic"]')
    assert "1,001 jobs" in _error(capsys, "run", str(spec), "--db", str(tmp_path / "r.sqlite"))
    assert len(Sweep(problems=["quadratic"], optimizers=["adam"], grid={"lr": {"lin": [0.001, 0.1], "num": 1001}}).jobs()) == 1001


@pytest.mark.parametrize("command", ["study", "report"])
def test_an_output_folder_that_is_a_file_is_a_one_line_error(tmp_path, capsys, command):
    target = tmp_path / "report.html"
    target.write_text("x")
    if command == "study":
        err = _error(capsys, "study", "reddi", "--quick", "--db", str(tmp_path / "r.sqlite"), "--out", str(target))
        assert not (tmp_path / "r.sqlite").exists()  # refused before the sweep
    else:
        with pytest.raises(LabError, match="is a file; give a folder") as info:
            make_folder(str(target), "report folder")
        err = str(info.value)
    assert f"report folder '{target}' is a file; give a folder" in err
    with pytest.raises(LabError, match=r"cannot create the report folder .*: Not a directory"):
        make_folder(str(target / "sub"), "report folder")


def test_an_unreachable_ray_address_is_a_one_line_error_within_seconds(tmp_path, capsys):
    pytest.importorskip("ray")
    t0 = time.perf_counter()
    ray_args = ("--executor", "ray", "--address", "127.0.0.1:1")
    err = _error(capsys, "run", str(_spec(tmp_path, "")), "--db", str(tmp_path / "r.sqlite"), *ray_args)
    assert time.perf_counter() - t0 < 30
    assert "cannot reach the Ray cluster at '127.0.0.1:1' (Connection refused)" in err
    assert not (tmp_path / "r.sqlite").exists()


# -- NumPy and torch values in the Python API ---------------------------------------------------------------


@pytest.mark.parametrize(
    "lr",
    [np.float64(0.25), np.array([0.25]), torch.tensor([0.25], dtype=torch.float64), [np.float32(0.25)], np.array(0.25)],
    ids=["np.float64", "ndarray", "tensor", "list of np.float32", "0-d ndarray"],
)
def test_numpy_and_tensor_grid_values_give_the_plain_jobs(lr):
    plain = Sweep(problems=["quadratic"], optimizers=["adam"], seeds=[0, 1], grid={"lr": [0.25]}).jobs()
    given = Sweep(problems=["quadratic"], optimizers=["adam"], seeds=np.arange(2), grid={"lr": lr}).jobs()
    assert [j.id for j in given] == [j.id for j in plain]
    assert type(given[0].config["hyperparameters"]["lr"]) is float and type(given[0].config["seed"]) is int


# -- labels and stores -----------------------------------------------------------------------------------------


def test_show_never_gives_two_runs_the_same_label(tmp_path, capsys):
    spec = _spec(tmp_path, "[sweep.grid]\nlr = [0.001, 0.0010001, 1, 1.0]\n")
    db = tmp_path / "r.sqlite"
    assert cli("run", str(spec), "--db", str(db), "--workers", "0", "--progress", "none") == 0
    capsys.readouterr()
    assert cli("show", "--db", str(db)) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    labels = [row.split("  adam  ")[1].split("  0  ")[0].strip() for row in rows]
    assert sorted(labels) == ["lr=0.001", "lr=0.0010001", "lr=1", "lr=1.0"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("r.sqlite")) == ["r.sqlite"]  # no -wal, -shm left


def test_labels_add_what_differs_when_the_hyperparameters_agree():
    def run(i, steps, lr=0.1):
        hp, config = {"lr": lr}, {"steps": steps}
        return {"id": i, "problem": "p", "optimizer": "adam", "seed": 0, "hyperparameters": hp, "config": config}

    runs = [run("a", 5), run("b", 6), run("c", 5, 0.3), run("d", 5, 0.30000001), run("e", 5, 0.5), run("f", 5, "0.5")]
    labels = ["lr=0.1 steps=5", "lr=0.1 steps=6", "lr=0.3", "lr=0.30000001", "lr=0.5", "lr='0.5'"]  # ('0.5': an old store's)
    assert hyperparameter_labels(runs) == labels
    assert hyperparameter_labels([run("g", 5), run("h", 5)]) == ["lr=0.1 (run g)", "lr=0.1 (run h)"]


def test_a_read_only_store_leaves_no_wal_files(tmp_path):
    db = tmp_path / "r.sqlite"
    Store.open(db, create=True).close()
    with Store.open(db, create=False) as store:
        assert store.runs() == []
        with pytest.raises(Exception, match="readonly|query_only|attempt to write"):
            store.conn.execute("CREATE TABLE x (y)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.sqlite"]
