"""Study adam-paper (seed 004): the quick study end to end, and the verdict rule on synthetic runs."""

from __future__ import annotations

import json

from adamlab.cli import main
from adamlab.lab.store import Store
from adamlab.lab.studies.adam_paper import OPTIMIZERS, PROBLEMS, verdict


def test_adam_paper_study_quick(tmp_path):
    db, out = tmp_path / "a.sqlite", tmp_path / "report"
    assert main(["study", "adam-paper", "--quick", "--db", str(db), "--out", str(out), "--progress", "none"]) == 0
    result = json.loads((out / "verdict.json").read_text())
    assert result["runs"] == 24 and result["outcome"] in ("holds", "does not hold", "inconclusive")
    assert "median steps to the target" in result["because"] and "mlp-digits: adam" in result["because"]
    for stem in ("train-loss", "test-accuracy", "lr-sensitivity", "performance-profile"):
        assert (out / f"{stem}.png").stat().st_size > 10_000 and (out / f"{stem}.svg").exists()
    page = (out / "index.html").read_text()
    assert "Time to target (logreg-digits: test accuracy &gt;= 0.9" in page and "Adam most Fast" in page
    with Store.open(db, create=False) as store:
        runs = store.runs(problem="mlp-digits", optimizer="adam")
        assert len(runs) == 2 and all(r["status"] == "finished" for r in runs)
        # every run is evaluated every 10 steps, and the quick MLP trains well below its initial loss
        steps, losses = store.series(runs[0]["id"], "train_loss", kind="eval")
        assert steps == list(range(0, 61, 10)) and min(losses) < 0.5 * losses[0]


def _run(problem, optimizer, lr, seed, steps_to_target, train_loss=0.1, diverged=False):
    return {
        "problem": problem,
        "optimizer": optimizer,
        "hyperparameters": {"lr": lr},
        "seed": seed,
        "status": "finished",
        "config": {"eval_every": 10},
        "final_metrics": {"train_loss": train_loss, "steps_to_target": steps_to_target, "diverged": diverged},
    }


def _runs(steps):
    """Two seeds of one lr per (problem, optimizer); ``steps[optimizer]`` the steps to target on every problem
    (or a dict per problem)."""
    out = []
    for p in PROBLEMS:
        for o in OPTIMIZERS:
            s = steps[o][p] if isinstance(steps[o], dict) else steps[o]
            out += [_run(p, o, 1e-3, seed, s) for seed in (0, 1)]
    return out


def test_adam_paper_verdict_rule():
    fast = verdict(None, _runs({"adam": 20, "sgd": 40, "adagrad": 30, "rmsprop": 20}))
    assert fast.outcome == "holds" and "mlp-digits: adam 20 (0.1), sgd 40 (0.1)" in fast.because
    # within one evaluation interval (10 steps) of the fastest still counts as as fast
    assert verdict(None, _runs({"adam": 30, "sgd": 40, "adagrad": 20, "rmsprop": 20})).outcome == "holds"
    slow = verdict(
        None,
        _runs({"adam": {"logreg-digits": 100, "logreg-sparse": 20, "mlp-digits": 20}, "sgd": 40, "adagrad": 20, "rmsprop": 20}),
    )
    assert slow.outcome == "does not hold" and "logreg-digits (Adam 100 vs adagrad 20)" in slow.because
    never = verdict(
        None,
        _runs({"adam": {"logreg-digits": None, "logreg-sparse": 20, "mlp-digits": 20}, "sgd": 40, "adagrad": 20, "rmsprop": 20}),
    )
    assert never.outcome == "does not hold" and "Adam never" in never.because
    between = verdict(None, _runs({"adam": 50, "sgd": 30, "adagrad": 80, "rmsprop": 90}))
    assert between.outcome == "inconclusive" and "less than twice" in between.because
    nobody = verdict(None, _runs({"adam": None, "sgd": None, "adagrad": None, "rmsprop": None}))
    assert nobody.outcome == "inconclusive" and "no optimizer reached" in nobody.because


def test_adam_paper_verdict_with_missing_failed_or_diverged_runs():
    runs = _runs({"adam": 20, "sgd": 40, "adagrad": 30, "rmsprop": 20})
    missing = verdict(None, [r for r in runs if not (r["optimizer"] == "rmsprop" and r["problem"] == "logreg-sparse")])
    assert missing.outcome == "inconclusive" and "rmsprop on logreg-sparse" in missing.because
    failed = [dict(r, status="failed") if r["optimizer"] == "sgd" else r for r in runs]
    assert verdict(None, failed).outcome == "inconclusive"
    diverged = [
        _run(r["problem"], r["optimizer"], 1e-3, r["seed"], None, None, True) if r["optimizer"] == "adagrad" else r for r in runs
    ]
    result = verdict(None, diverged)
    assert result.outcome == "inconclusive" and "diverged" in result.because and "adagrad on logreg-digits" in result.because
    assert verdict(None, []).outcome == "inconclusive"
