"""Study ``exponent``: the quick study end to end, and the verdict rule on synthetic runs."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from adamlab.cli import main
from adamlab.lab.store import Store
from adamlab.lab.studies import get_study
from adamlab.lab.studies.exponent import ADAM, DECAY, best, variant, verdict
from test_lab_studies import check_verdict


def test_exponent_study_quick(tmp_path):
    """28 MLP jobs of 150 steps: every variant at its best lr, figures, time-to-target table, verdict from the store."""
    db, out = tmp_path / "e.sqlite", tmp_path / "report"
    assert main(["study", "exponent", "--quick", "--db", str(db), "--out", str(out), "--progress", "none"]) == 0
    result = json.loads((out / "verdict.json").read_text())
    assert result["runs"] == 28 and result["outcome"] in ("holds", "does not hold", "inconclusive")
    check_verdict(result)
    assert [c["n"] for c in result["comparisons"]] == [2, 2] and result["also"][0]["comparisons"][0]["n"] == 2
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


def _run(optimizer, lr, accuracy, seed=0, partial=None, schedule=None, diverged=False, loss=0.2):
    hp = {"lr": lr}
    if optimizer == "sgd":
        hp["momentum"] = 0.9
    if partial is not None:
        hp.update(partial=partial, schedule=schedule or "constant")
    final = {"test_accuracy": accuracy, "test_loss": loss, "train_loss": 0.01, "diverged": diverged}
    return {
        "problem": "mlp-digits",
        "optimizer": optimizer,
        "hyperparameters": hp,
        "seed": seed,
        "status": "finished",
        "final_metrics": final,
    }


def _runs(decay, adam=(0.960, 0.962, 0.958), drop=(), decay_loss=(0.15, 0.16, 0.14)):
    """Synthetic runs: ``decay`` and ``adam`` are per-seed accuracies at the best lr; other lrs are worse.
    The decay's test loss is ``decay_loss``, every other run's 0.2."""
    runs = []
    for seed in range(3):
        runs += [_run("adam", 1e-3, adam[seed], seed), _run("adam", 1e-2, 0.90, seed), _run("sgd", 0.03, 0.965, seed)]
        for p in (0.5, 0.25, 0.125):
            runs.append(_run("padam", 0.01, 0.96 + 0.001 * seed + (0.01 if p == 0.25 else 0), seed, p))
            decayed = (decay[seed], decay_loss[seed]) if p == 0.5 else (0.95, 0.2)
            runs.append(_run("padam", 0.01, decayed[0], seed, p, "partial-decay", loss=decayed[1]))
            runs.append(_run("padam", 0.1, 0.5, seed, p, "partial-decay"))
    return [r for r in runs if variant(r) not in drop]


def test_variants_and_best_lr():
    groups = best(_runs((0.97, 0.97, 0.97)))
    assert list(groups)[:2] == [ADAM, "SGD momentum 0.9"] and "Padam p=1/8 (decay)" not in " ".join(groups)
    assert {r["hyperparameters"]["lr"] for r in groups[ADAM]} == {1e-3} and len(groups[DECAY]) == 3


@pytest.mark.parametrize(
    ("decay", "outcome"),
    [
        ((0.980, 0.983, 0.979), "holds"),  # +2.1 points, per-seed differences within 0.2: interval [+1.6, +2.5]
        ((0.975, 0.972, 0.978), "inconclusive"),  # +1.5 points, but its 95% interval [+0.26, +2.7] reaches below 0.5
        ((0.950, 0.955, 0.952), "does not hold"),  # -0.77 points, interval [-1.3, -0.25]: below 0
        ((0.960, 0.962, 0.958), "inconclusive"),  # equal: not refuted either (no effect against the claim)
        ((0.966, 0.955, 0.970), "inconclusive"),
    ],
)
def test_exponent_verdict_rule(decay, outcome):
    result = verdict(None, _runs(decay))
    accuracy, loss = result.comparisons
    assert accuracy.outcome == outcome and loss.outcome == "holds", result.because
    assert result.outcome == outcome and (accuracy.margin, accuracy.n) == (0.005, 3)
    assert accuracy.estimate == pytest.approx(statistics.fmean(decay) - 0.96)
    assert "Decay minus Adam, final test accuracy" in result.because and "Padam p=1/4" in result.because
    # the second claim: p = 1/4 is one point above p = 1/2 on every seed
    (optimal,) = result.also
    assert optimal.claim == "0.5 is not the optimal exponent of v" and optimal.outcome == "holds"
    assert optimal.comparisons[0].name == "Padam p=1/4 minus Padam p=1/2, final test accuracy"


def test_exponent_loss_must_improve_too():
    result = verdict(None, _runs((0.980, 0.983, 0.979), decay_loss=(0.25, 0.26, 0.24)))
    assert [c.outcome for c in result.comparisons] == ["holds", "does not hold"] and result.outcome == "does not hold"


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


def test_per_seed_comparisons_pair_by_seed():
    from adamlab.lab.studies.decision import paired
    from adamlab.lab.studies.plots import per_seed

    a = [_run("adam", 1e-3, acc, seed) for seed, acc in enumerate((0.95, 0.97, 0.96, 0.99))]
    b = [_run("adam", 1e-2, acc, seed) for seed, acc in enumerate((0.94, 0.95, 0.95))]  # no seed 3
    c = paired("a - b", per_seed(a, "test_accuracy"), per_seed(b, "test_accuracy"), "greater", 0.0)
    se = statistics.stdev([0.01, 0.02, 0.01]) / math.sqrt(3)
    assert c.n == 3 and c.estimate == pytest.approx(0.04 / 3) and c.high == pytest.approx(0.04 / 3 + 4.302653 * se)
    b[0]["final_metrics"]["diverged"] = True
    diverged = paired("a - b", per_seed(a, "test_accuracy"), per_seed(b, "test_accuracy"), "greater", 0.0)
    assert math.isnan(diverged.low) and diverged.outcome == "inconclusive"
