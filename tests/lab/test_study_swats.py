"""Study swats (seed 001): the quick study end to end (switch steps stored and drawn), and the verdict rule."""

from __future__ import annotations

import json

from adamlab.cli import main
from adamlab.lab.store import Store
from adamlab.lab.studies.generalization import make_verdict

verdict = make_verdict("swats")


def test_swats_study_quick(tmp_path):
    db, out = tmp_path / "s.sqlite", tmp_path / "report"
    assert main(["study", "swats", "--quick", "--db", str(db), "--out", str(out), "--progress", "none"]) == 0
    result = json.loads((out / "verdict.json").read_text())
    assert result["runs"] == 6 and result["outcome"] in ("holds", "does not hold", "inconclusive")
    assert "SWATS's first switch at step" in result["because"] and "SGD - Adam" in result["because"]
    for stem in ("curves", "lr-sensitivity", "swats-switch-steps"):
        assert (out / f"{stem}.png").stat().st_size > 10_000 and (out / f"{stem}.svg").exists()
    assert "Keskar" in (out / "index.html").read_text()
    with Store.open(db, create=False) as store:
        runs = store.runs(optimizer="swats")
        assert len(runs) == 2 and all(r["status"] == "finished" for r in runs)
        for run in runs:
            switch = store.artifact(run["id"], "swats_switch_steps")
            assert switch.shape == (6,)  # 3 linear layers: weight and bias each
            first = run["final_metrics"]["first_switch_step"]
            assert first == (min(s for s in switch if s > 0) if (switch > 0).any() else None)
            assert run["final_metrics"]["switched_fraction"] == (switch > 0).mean()
        steps, accuracy = store.series(runs[0]["id"], "test_accuracy", kind="eval")
        assert steps == list(range(0, 101, 10)) and accuracy[-1] > 0.8


def _run(optimizer, accuracy, seed, lr=1e-3, first_switch=-1, diverged=False):
    metrics = {"test_accuracy": accuracy, "diverged": diverged}
    if optimizer == "swats":
        metrics.update(first_switch_step=first_switch, switched_fraction=0.5 if first_switch > 0 else 0.0)
    return {
        "problem": "mlp-digits",
        "optimizer": optimizer,
        "hyperparameters": {"lr": lr},
        "seed": seed,
        "status": "finished",
        "final_metrics": metrics,
    }


def _runs(swats, adam, sgd, first_switch=100):
    return [
        run
        for seed, offset in enumerate((-0.001, 0.0, 0.001))
        for run in (
            _run("swats", swats + offset, seed, first_switch=first_switch),
            _run("adam", adam + offset, seed),
            _run("sgd", sgd + offset, seed, lr=0.1),
        )
    ]


def test_swats_verdict_rule():
    closes = verdict(None, _runs(0.97, 0.95, 0.975))
    assert (
        closes.outcome == "holds"
        and "closes 80% of Adam's gap" in closes.because
        and "first switch at step 100, 100, 100" in closes.because
    )
    assert verdict(None, _runs(0.945, 0.95, 0.975)).outcome == "does not hold"
    assert verdict(None, _runs(0.955, 0.95, 0.975)).outcome == "inconclusive"  # 20% of the gap
    never = verdict(None, _runs(0.97, 0.95, 0.975, first_switch=-1))
    assert never.outcome == "does not hold" and "No SWATS run switched" in never.because
    # the best SWATS configuration did not switch but another did: the gap rule decides, the switches are reported
    other = [_run("swats", 0.9, seed, lr=1e-4, first_switch=30) for seed in range(3)]
    result = verdict(None, _runs(0.97, 0.95, 0.975, first_switch=-1) + other)
    assert result.outcome == "holds" and "first switch at step never, never, never" in result.because
    assert "eps=1e-09: 3/6 runs switched (median first switch step 30)" in result.because
    no_gap = verdict(None, _runs(0.972, 0.97, 0.971))
    assert no_gap.outcome == "inconclusive" and "no generalization gap" in no_gap.because
    worse = verdict(None, _runs(0.94, 0.97, 0.971))
    assert worse.outcome == "does not hold" and "generalizes worse than SGD" in worse.because


def test_swats_verdict_with_missing_failed_or_diverged_runs():
    runs = _runs(0.97, 0.95, 0.975)
    missing = verdict(None, [r for r in runs if r["optimizer"] != "sgd"])
    assert missing.outcome == "inconclusive" and "sgd" in missing.because
    assert verdict(None, [dict(r, status="failed") if r["optimizer"] == "adam" else r for r in runs]).outcome == "inconclusive"
    diverged = [_run("adam", None, r["seed"], diverged=True) if r["optimizer"] == "adam" else r for r in runs]
    result = verdict(None, diverged)
    assert result.outcome == "inconclusive" and "diverged" in result.because and "adam" in result.because
    assert verdict(None, []).outcome == "inconclusive"
