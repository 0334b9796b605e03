"""Study madam-lr (seed 000): the quick study end to end, and the verdict rule on synthetic runs."""

from __future__ import annotations

import json

import pytest

from adamlab.cli import main
from adamlab.lab.store import Store
from adamlab.lab.studies import get_study
from adamlab.lab.studies.madam_lr import OPTIMIZERS, verdict

LRS = (1e-4, 1e-3, 1e-2)


def test_madam_lr_quick_study_writes_report_from_the_store(tmp_path):
    db, out = tmp_path / "m.sqlite", tmp_path / "report"
    assert main(["study", "madam-lr", "--quick", "--db", str(db), "--out", str(out), "--progress", "none"]) == 0
    result = json.loads((out / "verdict.json").read_text())
    assert result["runs"] == 10 and result["outcome"] in ("holds", "does not hold", "inconclusive")
    for stem in ("score-vs-lr", "score-heatmap", "score-curves", "samples"):
        assert (out / f"{stem}.png").stat().st_size > 10_000 and (out / f"{stem}.svg").exists()
    page = (out / "index.html").read_text()
    assert "Inception score (classes covered) per learning rate" in page and "Time to target" in page
    with Store.open(db) as store:
        runs = store.runs(problem="gan-digits")
        assert len(runs) == 10 and {r["optimizer"] for r in runs} == set(OPTIMIZERS)
        madam = [r for r in runs if r["optimizer"] == "madam"]
        assert {r["hyperparameters"]["beta3_rescale"] for r in madam} == {True}
        assert all(r["config"]["options"]["noise_dim"] == 200 for r in runs)
        scores = [r["final_metrics"]["inception_score"] for r in runs]
        assert all(1.0 <= s <= 10.0 for s in scores)
        samples = store.artifact(runs[0]["id"], "samples")
        assert samples.shape == (64, 8, 8) and 0 <= samples.min() and samples.max() <= 1
    # the verdict quotes the stored numbers
    assert f"{min(scores):.2f}" in result["because"] or "diverged" in result["because"]


def _runs(table, seeds=(0, 1), diverged=()):
    """Finished runs with final inception scores ``table[optimizer][lr]`` for every seed."""
    return [
        {
            "optimizer": opt,
            "status": "finished",
            "seed": seed,
            "hyperparameters": {"lr": lr},
            "final_metrics": {"inception_score": score, "diverged": (opt, lr) in diverged},
        }
        for opt, by_lr in table.items()
        for lr, score in by_lr.items()
        for seed in seeds
    ]


def _table(**special):
    base = {opt: {1e-4: 1.2, 1e-3: 4.5, 1e-2: 1.5} for opt in OPTIMIZERS}
    base.update(special)
    return base


def test_verdict_holds_when_madam_works_at_the_most_learning_rates():
    result = verdict(None, _runs(_table(madam={1e-4: 4.1, 1e-3: 5.0, 1e-2: 4.8})))
    assert result.outcome == "holds"
    assert "madam 3 (worst 4.10, spread 0.90)" in result.because and "adam 1 (worst 1.20" in result.because


def test_verdict_does_not_hold_when_a_rival_works_more_widely():
    result = verdict(None, _runs(_table(madam={1e-4: 1.0, 1e-3: 2.0, 1e-2: 4.2}, sgd={1e-4: 4.0, 1e-3: 4.2, 1e-2: 1.0})))
    assert result.outcome == "does not hold" and "sgd work(s) at more learning rates" in result.because


def test_verdict_ties_and_nothing_working_are_inconclusive():
    assert verdict(None, _runs(_table())).outcome == "inconclusive"  # everyone works at one lr
    nothing = verdict(None, _runs({opt: {lr: 1.1 for lr in LRS} for opt in OPTIMIZERS}))
    assert nothing.outcome == "inconclusive" and "No optimizer reaches the target" in nothing.because


def test_verdict_counts_diverged_runs_as_not_working():
    table = _table(madam={1e-4: 4.1, 1e-3: 5.0, 1e-2: 4.8})
    result = verdict(None, _runs(table, diverged={("madam", 1e-2), ("madam", 1e-4)}))
    assert result.outcome == "inconclusive" and "madam 1 (worst diverged" in result.because


def test_verdict_with_missing_runs_is_inconclusive():
    runs = _runs(_table(madam={1e-4: 4.1, 1e-3: 5.0, 1e-2: 4.8}))
    no_sgd = verdict(None, [r for r in runs if r["optimizer"] != "sgd"])
    assert no_sgd.outcome == "inconclusive" and "no finished runs for sgd" in no_sgd.because
    failed = [dict(r, status="failed") if r["optimizer"] == "adam" and r["hyperparameters"]["lr"] == 1e-2 else r for r in runs]
    gap = verdict(None, failed)
    assert gap.outcome == "inconclusive" and "adam at lr=0.01" in gap.because
    assert verdict(None, []).outcome == "inconclusive"


@pytest.mark.parametrize("quick, jobs", [(True, 10), (False, 40)])
def test_sweep_sizes_and_madams_rescaled_beta3(quick, jobs):
    assert len(get_study("madam-lr").spec(quick=quick).jobs()) == jobs
