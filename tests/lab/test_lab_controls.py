"""Run controls (schedules, normalized weight decay, diagnostics) as the runner applies them."""

from __future__ import annotations

import math

import pytest
import torch

from adamlab.lab import LabError
from adamlab.lab.controls import Controller, resolve
from adamlab.lab.runner import execute_job
from adamlab.lab.spec import Sweep


def one_job(optimizer="adam", problem="logreg-digits", steps=30, eval_every=10, **grid):
    jobs = Sweep(
        problems=[problem], optimizers=[optimizer], steps=steps, eval_every=eval_every, grid={"lr": [1e-2], **grid}
    ).jobs()
    assert len(jobs) == 1
    result = execute_job(jobs[0].config, job_id=jobs[0].id)
    assert result["status"] == "finished", result["error"]
    return result


def lrs_seen(schedule_grid, steps=12):
    """The lr of the optimizer at each of ``steps`` steps under a schedule, read inside the step."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.5)
    controller = Controller(opt, schedule_grid, steps, eval_every=steps)
    seen = []
    for t in range(1, steps + 1):
        controller.before_step(t)
        seen.append(opt.param_groups[0]["lr"])
    return seen


def test_schedules_give_the_documented_learning_rates():
    assert lrs_seen({}) == [0.5] * 12
    assert lrs_seen({"schedule": "inv-sqrt"}) == pytest.approx([0.5 / math.sqrt(t) for t in range(1, 13)], rel=1e-15)
    cosine = lrs_seen({"schedule": "cosine"})
    assert (
        cosine[0] == 0.5
        and cosine[6] == pytest.approx(0.25)
        and cosine[-1] == pytest.approx(0.5 * 0.5 * (1 + math.cos(math.pi * 11 / 12)))
    )
    # periods 2, 4 (T_mult 2): the lr is back to 0.5 at steps 1, 3, 7
    restarts = lrs_seen({"schedule": "cosine-restarts", "restart_period": 2})
    assert [t + 1 for t, lr in enumerate(restarts) if lr == 0.5] == [1, 3, 7]
    assert restarts[1] == pytest.approx(0.25) and restarts[4] == pytest.approx(0.25)


def test_partial_decay_moves_padams_exponent_to_its_floor():
    p = torch.zeros(3, requires_grad=True)
    import adamlab

    opt = adamlab.create("padam", [p], lr=0.1, partial=0.5)
    controller = Controller(opt, {"schedule": "partial-decay", "partial_end": 0.25}, 11, 11)
    seen = []
    for t in range(1, 12):
        controller.before_step(t)
        seen.append(opt.param_groups[0]["partial"])
    assert seen == pytest.approx([0.5 - 0.025 * (t - 1) for t in range(1, 12)], abs=1e-15)


def test_weight_decay_norm_is_seed_001s_normalization_divided_by_lr():
    hp = resolve({"lr": 0.01}, {"weight_decay_norm": 0.05}, steps=400)
    assert hp["weight_decay"] == pytest.approx(0.05 * math.sqrt(1 / 400) / 0.01, rel=1e-15)  # 0.25
    result = one_job("adamw", weight_decay_norm=[0.05])
    assert result["config"]["hyperparameters"] == {"lr": 0.01, "weight_decay_norm": 0.05}


def test_diagnostics_are_stored_as_metrics_and_artifacts():
    result = one_job("amsgrad", steps=30, eval_every=10, diagnostics=[["amsgrad-swaps", "effective-step", "update-ratio"]])
    final, artifacts = result["final_metrics"], result["artifacts"]
    counts = artifacts["amsgrad_swaps/0"]
    assert counts.shape == (3, 10, 64)  # intervals of eval_every steps x the weight's shape
    # every coordinate with a nonzero gradient at step 1 swaps then (v_1 > 0 = max_0)
    assert counts.sum() / (30 * (640 + 10)) == pytest.approx(final["swap_fraction"], rel=0, abs=0.02)
    evals = {(step, name): v for kind, step, name, v in result["metrics"] if kind == "eval"}
    assert 0 < evals[30, "swap_fraction"] <= evals[10, "swap_fraction"] <= 1
    assert 0 < final["max_step_ratio_to_bound"] <= 1.0 + 1e-6  # Kingma & Ba's bound on Adam's step
    assert evals[30, "update_ratio"] > 0 and evals[30, "median_step"] > 0


def test_swats_switch_steps_are_recorded():
    result = one_job("swats", problem="quadratic", steps=200, eval_every=50, diagnostics=[["swats-switches"]])
    steps = result["artifacts"]["swats_switch_steps"]
    assert steps.shape == (1,)
    assert result["final_metrics"]["switched_fraction"] == (1.0 if steps[0] >= 0 else 0.0)
    assert result["final_metrics"]["first_switch_step"] == (int(steps[0]) if steps[0] >= 0 else None)


@pytest.mark.parametrize(
    "grid, message",
    [
        ({"schedule": ["linear"]}, "schedule must be one of"),
        ({"restart_period": [10]}, "restart_period is a parameter of schedule 'cosine-restarts'"),
        ({"schedule": ["cosine-restarts"], "restart_period": [0]}, "restart_period must be an integer >= 1"),
        ({"weight_decay_norm": [-1.0]}, "weight_decay_norm must be a number >= 0"),
        ({"weight_decay_norm": [0.1], "weight_decay": [0.1]}, "weight_decay or weight_decay_norm, not both"),
        ({"diagnostics": [["swaps"]]}, "diagnostics must be a list of names among amsgrad-swaps"),
        ({"schedule": ["partial-decay"]}, "needs an optimizer with a 'partial' exponent"),
    ],
)
def test_bad_controls_fail_when_the_sweep_is_expanded(grid, message):
    with pytest.raises(LabError, match=message):
        Sweep(problems=["quadratic"], optimizers=["adam"], grid=grid).jobs()


def test_beta3_rescale_sets_madams_beta3_from_the_learning_rate(monkeypatch):
    from adamlab.schedules import madam_beta3

    assert resolve({"lr": 3e-3}, {"beta3_rescale": True}, steps=10)["beta3"] == pytest.approx(5.4)  # the MAdam paper, Figure 1
    assert resolve({"lr": 1e-4}, {"beta3_rescale": True}, steps=10) == {"lr": 1e-4, "beta3": pytest.approx(0.18)}
    assert resolve({}, {"beta3_rescale": True}, steps=10) == {"beta3": 0.9}  # the default lr 1e-3 keeps the default beta3
    # a beta3 given beside the control is the value at lr 1e-3
    assert resolve({"lr": 1e-2, "beta3": 0.5}, {"beta3_rescale": True}, steps=10)["beta3"] == madam_beta3(1e-2, beta3=0.5) == 10.0
    assert resolve({"lr": 1e-2, "beta3": 0.5}, {"beta3_rescale": False}, steps=10)["beta3"] == 0.5

    jobs = Sweep(
        problems=["quadratic"],
        optimizers=["adam", "madam"],
        steps=5,
        grid={"lr": [1e-2]},
        optimizer={"madam": {"beta3_rescale": [True, False]}},
    ).jobs()
    assert [j.config["hyperparameters"] for j in jobs] == [
        {"lr": 1e-2},
        {"beta3_rescale": True, "lr": 1e-2},
        {"beta3_rescale": False, "lr": 1e-2},
    ]
    assert len({j.id for j in jobs}) == 3
    # the runner builds MAdam with the rescaled beta3 (2 * 10 * 0.9 at lr 1e-2)
    import adamlab
    from adamlab.optim import registry

    built = []

    def create(name, params, **kw):
        built.append(registry.create(name, params, **kw))
        return built[-1]

    monkeypatch.setattr(adamlab, "create", create)
    assert execute_job(jobs[1].config, job_id=jobs[1].id)["status"] == "finished"
    assert built[0].param_groups[0]["beta3"] == pytest.approx(18.0)


@pytest.mark.parametrize(
    "grid, message",
    [
        ({"beta3_rescale": ["yes"]}, "beta3_rescale must be true or false"),
        ({"beta3_rescale": [1]}, "beta3_rescale must be true or false"),
        ({"beta3_rescale": [True]}, "beta3_rescale needs an optimizer with a 'beta3'"),
    ],
)
def test_bad_beta3_rescale_fails_when_the_sweep_is_expanded(grid, message):
    with pytest.raises(LabError, match=message):
        Sweep(problems=["quadratic"], optimizers=["adam"], grid=grid).jobs()


def test_grad_scale_multiplies_the_gradient_before_each_step():
    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.5)
    controller = Controller(opt, {"grad_scale": 100.0}, steps=1, eval_every=1)
    controller.before_step(1)
    p.grad = torch.tensor([0.25, 0.5], dtype=torch.float64)
    opt.step()
    assert p.tolist() == [1.0 - 0.5 * 25.0, -2.0 - 0.5 * 50.0]
    controller.final()  # removes the hook
    p.grad = torch.tensor([1.0, 1.0], dtype=torch.float64)
    opt.step()
    assert p.tolist() == [-12.0, -27.5]
    with pytest.raises(LabError, match="grad_scale must be a number > 0"):
        Sweep(problems=["quadratic"], optimizers=["adam"], grid={"grad_scale": [0.0]}).jobs()
