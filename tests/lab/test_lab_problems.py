"""Every built-in problem trains briefly through the runner's job function, and a real quantity is checked."""

from __future__ import annotations

import math

import pytest

from adamlab.lab import LabError
from adamlab.lab.problems import available_problems, describe_problems, get_problem
from adamlab.lab.runner import execute_job
from adamlab.lab.spec import Sweep


def run(problem, optimizer, steps, seed=0, options=None, **hp):
    job = Sweep(
        problems=[problem],
        optimizers=[optimizer],
        seeds=[seed],
        steps=steps,
        grid={k: [v] for k, v in hp.items()},
        problem={problem: options or {}},
    ).jobs()[0]
    result = execute_job(job.config, job_id=job.id)
    assert result["status"] == "finished", result["error"]
    first = {name: value for kind, step, name, value in result["metrics"] if kind == "eval" and step == 0}
    return first, result["final_metrics"], result


def test_registry_lists_every_problem_with_a_description():
    assert available_problems() == [
        "beale",
        "cnn-cifar10",
        "gan-digits",
        "logreg-digits",
        "logreg-sparse",
        "mlp-digits",
        "quadratic",
        "reddi",
        "rosenbrock",
        "vae-digits",
    ]
    assert all(len(d) > 20 for _, d in describe_problems())
    with pytest.raises(LabError, match="must be > 2"):
        get_problem("reddi", C=1.0)


def test_reddi_adam_goes_to_the_wrong_end_and_amsgrad_does_not():
    # beta1 = 0, beta2 = 0.1, lr 0.1/sqrt(t): Adam's x ends at +1 (the worst point), AMSGrad's near x* = -1
    _, adam, result = run("reddi", "adam", 1500, betas=(0.0, 0.1))
    _, ams, _ = run("reddi", "amsgrad", 1500, betas=(0.0, 0.1))
    assert adam["x"] == 1.0
    assert ams["x"] < -0.9
    assert adam["average_regret"] > 0.6 > 0.2 > ams["average_regret"]
    xs = [v for kind, _, name, v in result["metrics"] if kind == "train" and name == "x"]
    assert len(xs) == 1500 and all(-1.0 <= x <= 1.0 for x in xs)  # every iterate recorded, projected


@pytest.mark.parametrize(
    ("problem", "start_loss"),
    [("rosenbrock", 24.2), ("beale", 41.25), ("quadratic", 54.5)],
)
def test_surfaces_reach_their_minimum(problem, start_loss):
    first, final, result = run(problem, "adam", 2000, lr=0.05)
    assert first["loss"] == pytest.approx(start_loss)
    assert final["loss"] < 1e-6 * start_loss
    assert final["distance_to_optimum"] < 1e-2
    assert final["steps_to_target"] is not None
    trajectory = [(s, name) for kind, s, name, _ in result["metrics"] if kind == "train" and name in ("x", "y")]
    assert len(trajectory) == 2 * 2000


def test_quadratic_condition_number_slows_sgd():
    # SGD at lr 1e-3: along the eigenvalue-1 axis the error shrinks by (1 - 1e-3) per step, 100x faster along the other
    _, final, _ = run("quadratic", "sgd", 1000, lr=1e-3)
    assert final["x"] == pytest.approx(-3.0 * (1 - 1e-3) ** 1000, rel=1e-9)
    assert abs(final["y"]) < 1e-40


def test_logreg_digits_learns():
    first, final, _ = run("logreg-digits", "adam", 100, lr=1e-2)
    assert first["train_loss"] == pytest.approx(math.log(10))
    assert final["train_loss"] < 0.1 * first["train_loss"]
    assert final["test_accuracy"] >= 0.93


def test_logreg_sparse_learns_the_planted_labeller():
    first, final, _ = run("logreg-sparse", "adam", 200, lr=1e-2)
    assert first["train_loss"] == pytest.approx(math.log(2))
    assert final["train_loss"] < 0.25 * first["train_loss"]
    assert final["test_accuracy"] >= 0.78


def test_mlp_digits_learns():
    first, final, _ = run("mlp-digits", "adam", 40, lr=1e-3)
    assert first["test_accuracy"] < 0.2
    assert final["train_loss"] < 0.1 * first["train_loss"]
    assert final["test_accuracy"] >= 0.93


def test_same_config_same_metrics_and_seeds_differ():
    options = {"hidden": 32, "dropout": 0.5}  # dropout draws random masks: they must come from the seed too
    _, a, ra = run("mlp-digits", "adam", 15, seed=4, options=options, lr=1e-3)
    _, b, rb = run("mlp-digits", "adam", 15, seed=4, options=options, lr=1e-3)
    assert a == b and ra["metrics"] == rb["metrics"]
    _, c, _ = run("mlp-digits", "adam", 15, seed=5, options=options, lr=1e-3)
    assert c["test_loss"] != a["test_loss"]


def test_a_diverging_run_stops_and_says_so():
    _, final, _ = run("quadratic", "sgd", 500, lr=3.0)  # lr * 100 > 2: the y coordinate blows up
    assert final["diverged"] is True
    assert final["steps_run"] < 500


def test_vae_digits_learns():
    first, final, _ = run("vae-digits", "adam", 300, lr=1e-3)
    assert first["test_loss"] > 44.0  # about 64 log 2 nats of reconstruction at the start
    assert final["test_loss"] < 0.6 * first["test_loss"]
    assert final["test_reconstruction"] < final["test_loss"]


def test_gan_digits_learns_several_digits():
    # one optimizer over both networks (Adam, the problem's suggested lr 1e-3 and betas (0.5, 0.999))
    first, final, result = run("gan-digits", "adam", 1000)
    assert result["config"]["hyperparameters"] == {"betas": [0.5, 0.999], "lr": 1e-3}
    assert first["inception_score"] < 1.1 and first["classes_covered"] == 1
    assert final["inception_score"] > 1.8 and final["classes_covered"] >= 4
    names = {name for kind, _, name, _ in result["metrics"] if kind == "train"}
    assert names == {"loss", "d_loss", "g_loss"}
