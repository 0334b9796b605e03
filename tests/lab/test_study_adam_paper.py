"""Study adam-paper: the quick study end to end, and the verdict rule on synthetic training-loss curves."""

from __future__ import annotations

import json

import pytest

from adamlab.cli import main
from adamlab.lab.store import Store
from adamlab.lab.studies.adam_paper import OPTIMIZERS, PROBLEMS, STAND_IN, verdict
from test_lab_studies import check_verdict


def test_adam_paper_study_quick(tmp_path):
    db, out = tmp_path / "a.sqlite", tmp_path / "report"
    assert main(["study", "adam-paper", "--quick", "--db", str(db), "--out", str(out), "--progress", "none"]) == 0
    result = json.loads((out / "verdict.json").read_text())
    assert result["runs"] == 24 and result["outcome"] == "inconclusive"  # one seed: no interval
    check_verdict(result)
    assert result["claim"] == "the MLP (Experiment 2): Adam most fast" and len(result["comparisons"]) == 3
    logistic = result["also"][0]["comparisons"]
    assert [c["outcome"] for c in logistic[3:]] == ["inconclusive: the setup cannot test this"] * 3
    assert logistic[3]["untestable"] == STAND_IN and result["also"][0]["outcome"] == "inconclusive: the setup cannot test this"
    assert "Targets (training loss): logreg-digits" in result["because"]
    for stem in ("train-loss", "test-accuracy", "lr-sensitivity", "performance-profile"):
        assert (out / f"{stem}.png").stat().st_size > 10_000 and (out / f"{stem}.svg").exists()
    page = (out / "index.html").read_text()
    assert "Steps to the training-loss target" in page and "Adam most Fast" in page and "Paraphrase (ours)" in page
    with Store.open(db, create=False) as store:
        runs = store.runs(problem="mlp-digits", optimizer="adam")
        assert len(runs) == 2 and all(r["status"] == "finished" for r in runs)
        # every run is evaluated every 10 steps, and the quick MLP trains well below its initial loss
        steps, losses = store.series(runs[0]["id"], "train_loss", kind="eval")
        assert steps == list(range(0, 61, 10)) and min(losses) < 0.5 * losses[0]


class FakeStore:
    """Training-loss curves by run id: 1.0 until the run's step ``reach``, then 0.05 (the target)."""

    def __init__(self, reach):
        self.reach = reach

    def series(self, run_id, name, kind="train"):
        steps = list(range(0, 201, 10))
        reach = self.reach[run_id]
        return steps, [0.05 if reach is not None and s >= reach else 1.0 for s in steps]


def _synthetic(steps, noise=(0, 0, 0)):
    """Three seeds of one lr per (problem, optimizer): ``steps[optimizer]`` to the target on every problem (or a dict
    per problem; None: never), Adam's shifted by ``noise[seed]``."""
    runs, reach = [], {}
    for p in PROBLEMS:
        for o in OPTIMIZERS:
            for seed in range(3):
                s = steps[o][p] if isinstance(steps[o], dict) else steps[o]
                rid = f"{p}/{o}/{seed}"
                reach[rid] = None if s is None else s + (noise[seed] if o == "adam" else 0)
                final = {"train_loss": 0.05 if s is not None else 1.0, "diverged": False}
                config = {"eval_every": 10, "options": {}}
                runs.append(
                    {"id": rid, "problem": p, "optimizer": o, "hyperparameters": {"lr": 1e-3}, "seed": seed, "steps": 200}
                    | {"status": "finished", "config": config, "final_metrics": final}
                )
    return FakeStore(reach), runs


def test_adam_paper_verdict_rule():
    fast = verdict(*_synthetic({"adam": 20, "sgd": 40, "adagrad": 30, "rmsprop": 20}))
    assert fast.outcome == "holds" and "mlp-digits: adam 20 (lr 0.001), sgd 40" in fast.because
    assert fast.comparisons[0].name == "mlp-digits: Adam's steps to the target minus SGD + Nesterov 0.9's"
    assert (fast.comparisons[0].estimate, fast.comparisons[0].margin, fast.comparisons[0].direction) == (-20, -10, "less")
    # the sparse stand-in cannot test the claim: logistic regression is untestable, not refuted
    (logistic,) = fast.also
    assert logistic.outcome == "inconclusive: the setup cannot test this"
    # a tie counts as as fast; one evaluation later (30 vs 20: +10) is at the margin, not within it
    assert verdict(*_synthetic({"adam": 15, "sgd": 40, "adagrad": 20, "rmsprop": 20})).outcome == "holds"
    assert verdict(*_synthetic({"adam": 25, "sgd": 40, "adagrad": 20, "rmsprop": 20})).outcome == "inconclusive"
    slow = verdict(*_synthetic({"adam": {"logreg-digits": 20, "logreg-sparse": 20, "mlp-digits": 100}, "sgd": 40, "adagrad": 20, "rmsprop": 20}))
    assert slow.outcome == "does not hold" and [c.outcome for c in slow.comparisons] == ["does not hold"] * 3
    # Adam never reaches the target on the MLP: it counts as the budget plus one interval (210 steps)
    never = verdict(*_synthetic({"adam": {"logreg-digits": 20, "logreg-sparse": 20, "mlp-digits": None}, "sgd": 40, "adagrad": 20, "rmsprop": 20}))
    assert never.outcome == "does not hold" and never.comparisons[0].estimate == 170
    # Adam's seeds spread by 60 steps: the interval covers both sides of the margin
    noisy = verdict(*_synthetic({"adam": 30, "sgd": 40, "adagrad": 20, "rmsprop": 20}, noise=(-10, 0, 60)))
    assert noisy.outcome == "inconclusive" and noisy.comparisons[1].n == 3


def test_adam_paper_verdict_with_missing_failed_or_diverged_runs():
    store, runs = _synthetic({"adam": 20, "sgd": 40, "adagrad": 30, "rmsprop": 20})
    missing = verdict(store, [r for r in runs if not (r["optimizer"] == "rmsprop" and r["problem"] == "logreg-sparse")])
    assert missing.outcome == "inconclusive" and "rmsprop on logreg-sparse" in missing.because
    failed = [dict(r, status="failed") if r["optimizer"] == "sgd" else r for r in runs]
    assert verdict(store, failed).outcome == "inconclusive"
    for r in runs:
        if r["optimizer"] == "adagrad":
            r["final_metrics"] = {"train_loss": None, "diverged": True}
    # a diverged optimizer never reaches the target: Adam is faster than it
    result = verdict(store, runs)
    assert result.outcome == "holds" and result.comparisons[1].estimate == pytest.approx(20 - 210)
    assert verdict(store, []).outcome == "inconclusive"
