"""Sweep specs: expansion, stable ids, grids, overrides, and the errors a user sees."""

from __future__ import annotations

import pytest
from lab_helpers import MINIMAL_SPEC

from adamlab.lab import LabError
from adamlab.lab.spec import Sweep, expand_values, load_spec


def write(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_minimal_spec_expands_to_eight_jobs_with_stable_ids(tmp_path):
    jobs = load_spec(write(tmp_path, MINIMAL_SPEC)).jobs()
    assert len(jobs) == 8
    assert [(j.optimizer, j.config["hyperparameters"]["lr"], j.seed) for j in jobs] == [
        (o, lr, s) for o in ("adam", "madam") for lr in (1e-3, 3e-3) for s in (0, 1)
    ]
    assert all(j.config["steps"] == 200 and j.config["eval_every"] == 20 for j in jobs)
    assert len({j.id for j in jobs}) == 8
    # the same spec read again (even from another file) gives the same ids; a changed value changes them
    again = load_spec(write(tmp_path, MINIMAL_SPEC, "other.toml")).jobs()
    assert [j.id for j in again] == [j.id for j in jobs]
    changed = load_spec(write(tmp_path, MINIMAL_SPEC.replace("steps = 200", "steps = 201"), "c.toml")).jobs()
    assert not {j.id for j in changed} & {j.id for j in jobs}


def test_log_and_linear_ranges():
    assert expand_values("lr", {"log": [1e-4, 1e-1], "num": 4}, "grid") == [1e-4, 1e-3, 1e-2, 1e-1]
    assert expand_values("w", {"lin": [0.0, 1.0], "num": 5}, "grid") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert expand_values("eps", 1e-8, "grid") == [1e-8]
    assert expand_values("betas", [[0.9, 0.999], [0.0, 0.1]], "grid") == [[0.9, 0.999], [0.0, 0.1]]


def test_overrides_per_optimizer_and_per_problem(tmp_path):
    spec = write(
        tmp_path,
        """
[sweep]
problems = ["quadratic", "reddi"]
optimizers = ["adam", "sgd"]
seeds = [3]
[sweep.grid]
lr = {log = [1e-3, 1e-1], num = 3}
[sweep.optimizer.sgd]
momentum = [0.0, 0.9]
lr = [0.01]
[sweep.problem.reddi]
steps = 30
C = 4.0
[sweep.problem.quadratic]
condition = 10.0
""",
    )
    jobs = load_spec(spec).jobs()
    by = {}
    for j in jobs:
        by.setdefault((j.problem, j.optimizer), []).append(j.config)
    assert [c["hyperparameters"] for c in by["quadratic", "adam"]] == [{"lr": 1e-3}, {"lr": 1e-2}, {"lr": 1e-1}]
    assert [c["hyperparameters"] for c in by["quadratic", "sgd"]] == [
        {"lr": 0.01, "momentum": 0.0},
        {"lr": 0.01, "momentum": 0.9},
    ]
    assert {c["steps"] for c in by["reddi", "adam"]} == {30}
    assert by["reddi", "adam"][0]["options"]["C"] == 4.0
    assert {c["steps"] for c in by["quadratic", "adam"]} == {2000}  # the problem's default budget
    assert by["quadratic", "adam"][0]["options"]["condition"] == 10.0
    assert len(jobs) == 2 * (3 + 2)


def test_problem_suggested_hyperparameters_fill_only_unset_keys():
    jobs = Sweep(problems=["reddi"], optimizers=["adam", "amsgrad"], grid={"betas": [[0.0, 0.1]]}, steps=5).jobs()
    assert [j.config["hyperparameters"] for j in jobs] == [{"betas": [0.0, 0.1], "lr": 0.1}] * 2
    jobs = Sweep(problems=["reddi"], optimizers=["adam"], grid={"lr": [0.5]}, steps=5).jobs()
    assert jobs[0].config["hyperparameters"] == {"lr": 0.5}


def test_suggested_hyperparameters_go_only_to_optimizers_that_take_them():
    jobs = Sweep(problems=["gan-digits"], optimizers=["adam", "sgd"], steps=5).jobs()
    assert [j.config["hyperparameters"] for j in jobs] == [{"betas": [0.5, 0.999], "lr": 1e-3}, {"lr": 1e-3}]


def test_user_problem_by_module_and_factory():
    jobs = Sweep(problems=["lab_helpers:slow"], optimizers=["adam"], problem={"lab_helpers:slow": {"delay": 0.5}}).jobs()
    assert jobs[0].config["options"] == {"delay": 0.5, "kill_marker": "", "fail": False}
    assert jobs[0].config["steps"] == 10


def lab_error(tmp_path, text) -> str:
    with pytest.raises(LabError) as info:
        load_spec(write(tmp_path, text)).jobs()
    return str(info.value)


def test_malformed_toml_names_the_line(tmp_path):
    msg = lab_error(tmp_path, '[sweep]\nproblems = ["reddi"]\noptimizers = ["adam"\nseeds = [0]\n')
    assert "malformed TOML" in msg and "line 4" in msg and "spec.toml" in msg


def test_unknown_names_list_the_valid_ones(tmp_path):
    msg = lab_error(tmp_path, '[sweep]\nproblems = ["logreg-digit"]\noptimizers = ["adam"]\n')
    assert "unknown problem 'logreg-digit'" in msg and "Did you mean 'logreg-digits'" in msg and "rosenbrock" in msg
    msg = lab_error(tmp_path, '[sweep]\nproblems = ["reddi"]\noptimizers = ["madamx", "adam"]\n')
    assert "unknown optimizer 'madamx'" in msg and "adam, adamal, adamax" in msg
    msg = lab_error(tmp_path, '[sweep]\nproblems = ["reddi"]\noptimizers = ["adam"]\n[sweep.grid]\nmomentum = [0.9]\n')
    assert "unknown keyword 'momentum'" in msg and "Accepted: lr, betas" in msg
    msg = lab_error(tmp_path, '[sweep]\nproblems = ["reddi"]\noptimizers = ["adam"]\n[sweep.grid]\nlr = [-1.0]\n')
    assert "invalid lr=-1.0" in msg
    msg = lab_error(tmp_path, '[sweep]\nproblems = ["reddi"]\noptimizers = ["adam"]\nseed = [1]\n')
    assert "unknown key 'seed'" in msg and "Did you mean 'seeds'" in msg
    msg = lab_error(tmp_path, '[sweep]\nproblems = ["reddi"]\noptimizers = ["adam"]\n[sweep.problem.reddi]\nc = 3\n')
    assert "unknown option 'c' for problem 'reddi'" in msg and "Accepted: C, x0, lr_schedule" in msg
    msg = lab_error(tmp_path, '[sweep]\nproblems = ["reddi"]\noptimizers = ["adam"]\n[sweep.optimizer.sgd]\nmomentum = [0.9]\n')
    assert "'sgd' is not in sweep.optimizers" in msg
    msg = lab_error(
        tmp_path, '[sweep]\nproblems = ["reddi"]\noptimizers = ["adam"]\n[sweep.grid]\nlr = {log = [0, 1], num = 3}\n'
    )
    assert "both bounds must be > 0" in msg
    msg = lab_error(tmp_path, '[sweep]\nproblems = ["lab_helpers:not_a_problem"]\noptimizers = ["adam"]\n')
    assert "lacks name, description, default_steps, build" in msg
    msg = lab_error(tmp_path, '[sweep]\nproblems = ["no_such_module_xyz:f"]\noptimizers = ["adam"]\n')
    assert "cannot import 'no_such_module_xyz'" in msg


def test_missing_spec_file(tmp_path):
    with pytest.raises(LabError, match="sweep spec .*nope.toml' not found"):
        load_spec(tmp_path / "nope.toml")
