"""Studies swats and ndadam (seed 001, studies/generalization.py): the quick studies end to end, and the verdict rules."""

from __future__ import annotations

import json

from adamlab.cli import main
from adamlab.lab.store import Store
from adamlab.lab.studies.generalization import make_verdict

swats_verdict = make_verdict("swats")
ndadam_verdict = make_verdict("ndadam")


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


def _runs(name, candidate, adam, sgd, lr, **kw):
    """Three seeds of the candidate (at ``lr``), Adam and SGD, each optimizer's accuracy shifted by -0.001, 0, +0.001."""
    return [
        run
        for seed, offset in enumerate((-0.001, 0.0, 0.001))
        for run in (
            _run(name, candidate + offset, seed, lr=lr, **kw),
            _run("adam", adam + offset, seed),
            _run("sgd", sgd + offset, seed, lr=0.1),
        )
    ]


def swats_runs(swats, adam, sgd, first_switch=100):
    return _runs("swats", swats, adam, sgd, 1e-3, first_switch=first_switch)


def ndadam_runs(ndadam, adam, sgd):
    return _runs("ndadam", ndadam, adam, sgd, 0.03)


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


def test_swats_verdict_rule():
    closes = swats_verdict(None, swats_runs(0.97, 0.95, 0.975))
    assert (
        closes.outcome == "holds"
        and "closes 80% of Adam's gap" in closes.because
        and "first switch at step 100, 100, 100" in closes.because
    )
    assert swats_verdict(None, swats_runs(0.945, 0.95, 0.975)).outcome == "does not hold"
    assert swats_verdict(None, swats_runs(0.955, 0.95, 0.975)).outcome == "inconclusive"  # 20% of the gap
    never = swats_verdict(None, swats_runs(0.97, 0.95, 0.975, first_switch=-1))
    assert never.outcome == "does not hold" and "No SWATS run switched" in never.because
    # the best SWATS configuration did not switch but another did: the gap rule decides, the switches are reported
    other = [_run("swats", 0.9, seed, lr=1e-4, first_switch=30) for seed in range(3)]
    result = swats_verdict(None, swats_runs(0.97, 0.95, 0.975, first_switch=-1) + other)
    assert result.outcome == "holds" and "first switch at step never, never, never" in result.because
    assert "eps=1e-09: 3/6 runs switched (median first switch step 30)" in result.because
    no_gap = swats_verdict(None, swats_runs(0.972, 0.97, 0.971))
    assert no_gap.outcome == "inconclusive" and "no generalization gap" in no_gap.because
    worse = swats_verdict(None, swats_runs(0.94, 0.97, 0.971))
    assert worse.outcome == "does not hold" and "generalizes worse than SGD" in worse.because


def test_swats_verdict_with_missing_failed_or_divergedswats_runs():
    runs = swats_runs(0.97, 0.95, 0.975)
    missing = swats_verdict(None, [r for r in runs if r["optimizer"] != "sgd"])
    assert missing.outcome == "inconclusive" and "sgd" in missing.because
    assert (
        swats_verdict(None, [dict(r, status="failed") if r["optimizer"] == "adam" else r for r in runs]).outcome == "inconclusive"
    )
    diverged = [_run("adam", None, r["seed"], diverged=True) if r["optimizer"] == "adam" else r for r in runs]
    result = swats_verdict(None, diverged)
    assert result.outcome == "inconclusive" and "diverged" in result.because and "adam" in result.because
    assert swats_verdict(None, []).outcome == "inconclusive"


def test_ndadam_study_quick(tmp_path):
    db, out = tmp_path / "n.sqlite", tmp_path / "report"
    assert main(["study", "ndadam", "--quick", "--db", str(db), "--out", str(out), "--progress", "none"]) == 0
    result = json.loads((out / "verdict.json").read_text())
    assert result["runs"] == 6 and result["outcome"] in ("holds", "does not hold", "inconclusive")
    assert "ndadam (lr=" in result["because"] and "SGD - Adam" in result["because"]
    for stem in ("curves", "lr-sensitivity"):
        assert (out / f"{stem}.png").stat().st_size > 10_000 and (out / f"{stem}.svg").exists()
    assert not (out / "swats-switch-steps.png").exists() and "Zhang" in (out / "index.html").read_text()
    with Store.open(db, create=False) as store:
        runs = store.runs(optimizer="ndadam")
        assert len(runs) == 2 and all(r["status"] == "finished" for r in runs)
        steps, accuracy = store.series(runs[0]["id"], "test_accuracy", kind="eval")
        assert steps == list(range(0, 101, 10)) and 0 <= accuracy[-1] <= 1


def test_ndadam_verdict_rule():
    closes = ndadam_verdict(None, ndadam_runs(0.975, 0.95, 0.975))
    assert (
        closes.outcome == "holds"
        and "closes 100% of Adam's gap" in closes.because
        and "ndadam (lr=0.03) 0.9750" in closes.because
    )
    assert ndadam_verdict(None, ndadam_runs(0.95, 0.95, 0.975)).outcome == "does not hold"
    assert ndadam_verdict(None, ndadam_runs(0.96, 0.95, 0.975)).outcome == "inconclusive"
    no_gap = ndadam_verdict(None, ndadam_runs(0.969, 0.97, 0.971))
    assert no_gap.outcome == "inconclusive" and "no generalization gap" in no_gap.because
    worse = ndadam_verdict(None, ndadam_runs(0.93, 0.97, 0.971))
    assert worse.outcome == "does not hold" and "generalizes worse than SGD" in worse.because
    # the best learning rate is the one of highest mean accuracy
    runs = ndadam_runs(0.975, 0.95, 0.975) + [_run("ndadam", 0.5, s, lr=0.3) for s in range(3)]
    assert ndadam_verdict(None, runs).outcome == "holds"


def test_ndadam_verdict_with_missing_or_failedndadam_runs():
    runs = ndadam_runs(0.975, 0.95, 0.975)
    missing = ndadam_verdict(None, [r for r in runs if r["optimizer"] != "ndadam"])
    assert missing.outcome == "inconclusive" and "ndadam" in missing.because
    assert ndadam_verdict(None, [dict(r, status="failed") for r in runs]).outcome == "inconclusive"


def test_ndadam_verdict_pairs_seeds():
    """Seed-to-seed spread (the data split) is large, but SGD beats Adam by 0.01 on every seed: a gap beyond noise."""
    runs = []
    for seed, base in enumerate((0.93, 0.95, 0.97)):
        runs += [_run("adam", base, seed), _run("sgd", base + 0.01, seed, lr=0.1), _run("ndadam", base + 0.008, seed, lr=0.03)]
    result = ndadam_verdict(None, runs)
    assert result.outcome == "holds" and "SGD - Adam = +0.0100 over paired seeds (noise level 0.0050)" in result.because
    shifted = [dict(r, seed=r["seed"] + 10) if r["optimizer"] == "sgd" else r for r in runs]
    assert "share no seed" in ndadam_verdict(None, shifted).because
