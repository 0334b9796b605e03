"""Study ``exponent`` (seed 003): the quick study end to end, and the verdict rule on synthetic runs."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from adamlab.cli import main
from adamlab.lab.store import Store
from adamlab.lab.studies import get_study
from adamlab.lab.studies.exponent import ADAM, DECAY, best, variant, verdict


def test_exponent_study_quick(tmp_path):
    """28 MLP jobs of 150 steps: every variant at its best lr, figures, time-to-target table, verdict from the store."""
    db, out = tmp_path / "e.sqlite", tmp_path / "report"
    assert main(["study", "exponent", "--quick", "--db", str(db), "--out", str(out), "--progress", "none"]) == 0
    result = json.loads((out / "verdict.json").read_text())
    assert result["runs"] == 28 and result["outcome"] in ("holds", "does not hold", "inconclusive")
    for stem in ("curves", "generalization-gap", "lr-sensitivity"):
        assert (out / f"{stem}.png").stat().st_size > 20_000 and (out / f"{stem}.svg").stat().st_size > 10_000
    page = (out / "index.html").read_text()
    assert "Time to target (test_accuracy &gt;= 0.95)" in page and "Padam p 1/2→1/8 (decay)" in page

    with Store.open(db, create=False) as store:
        runs = [r for r in store.runs() if r["problem"] == "mlp-digits"]
    assert len(runs) == 28 and all(r["status"] == "finished" for r in runs)
    # the decay from 1/8 to 1/8 is the constant exponent 1/8, bit for bit
    by_hp = {
        (r["hyperparameters"]["partial"], r["hyperparameters"]["lr"], r["hyperparameters"].get("schedule"), r["seed"]): r
        for r in runs
        if r["optimizer"] == "padam"
    }
    for (p, lr, schedule, seed), run in by_hp.items():
        if p == 0.125 and schedule == "partial-decay":
            assert run["final_metrics"]["train_loss"] == by_hp[p, lr, "constant", seed]["final_metrics"]["train_loss"]
    # the verdict quotes the stored numbers: Adam's (only lr) mean accuracy over the two seeds
    adam = [r["final_metrics"]["test_accuracy"] for r in runs if r["optimizer"] == "adam"]
    assert f"Adam {100 * statistics.fmean(adam):.2f} ± {100 * statistics.stdev(adam):.2f}%" in result["because"]
    assert get_study("exponent").spec(quick=False).jobs()[0].config["options"]["hidden"] == 256


def _run(optimizer, lr, accuracy, seed=0, partial=None, schedule=None, diverged=False):
    hp = {"lr": lr}
    if optimizer == "sgd":
        hp["momentum"] = 0.9
    if partial is not None:
        hp.update(partial=partial, schedule=schedule or "constant")
    final = {"test_accuracy": accuracy, "test_loss": 0.2, "train_loss": 0.01, "diverged": diverged}
    return {
        "problem": "mlp-digits",
        "optimizer": optimizer,
        "hyperparameters": hp,
        "seed": seed,
        "status": "finished",
        "final_metrics": final,
    }


def _runs(decay, adam=(0.960, 0.962, 0.958), drop=()):
    """Synthetic runs: ``decay`` and ``adam`` are per-seed accuracies at the best lr; other lrs are worse."""
    runs = []
    for seed in range(3):
        runs += [_run("adam", 1e-3, adam[seed], seed), _run("adam", 1e-2, 0.90, seed), _run("sgd", 0.03, 0.965, seed)]
        for p in (0.5, 0.25, 0.125):
            runs.append(_run("padam", 0.01, 0.96, seed, p))
            runs.append(_run("padam", 0.01, decay[seed] if p == 0.5 else 0.95, seed, p, "partial-decay"))
            runs.append(_run("padam", 0.1, 0.5, seed, p, "partial-decay"))
    return [r for r in runs if variant(r) not in drop]


def test_variants_and_best_lr():
    groups = best(_runs((0.97, 0.97, 0.97)))
    assert list(groups)[:2] == [ADAM, "SGD momentum 0.9"] and "Padam p=1/8 (decay)" not in " ".join(groups)
    assert {r["hyperparameters"]["lr"] for r in groups[ADAM]} == {1e-3} and len(groups[DECAY]) == 3


@pytest.mark.parametrize(
    ("decay", "outcome"),
    [
        ((0.975, 0.972, 0.978), "holds"),  # +1.5 points, seed std 0.3
        ((0.950, 0.955, 0.952), "does not hold"),
        ((0.960, 0.960, 0.960), "does not hold"),  # equal: no improvement
        ((0.966, 0.955, 0.970), "inconclusive"),  # +0.37 points, within two standard errors
    ],
)
def test_exponent_verdict_rule(decay, outcome):
    result = verdict(None, _runs(decay))
    assert result.outcome == outcome, result.because
    assert "Decay minus Adam" in result.because and "Padam p=1/4" in result.because


def test_exponent_verdict_missing_or_diverged_runs():
    missing = verdict(None, _runs((0.97, 0.97, 0.97), drop=(DECAY,)))
    assert missing.outcome == "inconclusive" and DECAY in missing.because
    assert verdict(None, []).outcome == "inconclusive"
    runs = _runs((0.97, 0.97, 0.97))
    for r in runs:
        if variant(r) == DECAY:
            r["final_metrics"].update(diverged=True, test_accuracy=None)
    diverged = verdict(None, runs)
    assert diverged.outcome == "inconclusive" and "diverged" in diverged.because
    failed = [dict(r, status="failed") if r["optimizer"] == "adam" else r for r in _runs((0.97, 0.97, 0.97))]
    assert verdict(None, failed).outcome == "inconclusive"


def test_paired_difference_pairs_by_seed():
    from adamlab.lab.studies.plots import paired_difference

    a = [_run("adam", 1e-3, acc, seed) for seed, acc in enumerate((0.95, 0.97, 0.96, 0.99))]
    b = [_run("adam", 1e-2, acc, seed) for seed, acc in enumerate((0.94, 0.95, 0.95))]  # no seed 3
    mean, se, n = paired_difference(a, b, "test_accuracy", "max")
    assert n == 3 and mean == pytest.approx(0.04 / 3) and se == pytest.approx(statistics.stdev([0.01, 0.02, 0.01]) / math.sqrt(3))
    assert math.isnan(paired_difference(a[:1], b, "test_accuracy", "max")[0])
    b[0]["final_metrics"]["diverged"] = True
    assert math.isnan(paired_difference(a, b, "test_accuracy", "max")[1])
