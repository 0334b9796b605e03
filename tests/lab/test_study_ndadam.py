"""Study ndadam (seed 001): the quick study end to end, and the verdict rule."""

from __future__ import annotations

import json

from adamlab.cli import main
from adamlab.lab.store import Store
from adamlab.lab.studies.generalization import make_verdict

verdict = make_verdict("ndadam")


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


def _run(optimizer, accuracy, seed, lr=1e-3, diverged=False):
    return {
        "problem": "mlp-digits",
        "optimizer": optimizer,
        "hyperparameters": {"lr": lr},
        "seed": seed,
        "status": "finished",
        "final_metrics": {"test_accuracy": accuracy, "diverged": diverged},
    }


def _runs(ndadam, adam, sgd):
    return [
        run
        for seed, offset in enumerate((-0.001, 0.0, 0.001))
        for run in (
            _run("ndadam", ndadam + offset, seed, lr=0.03),
            _run("adam", adam + offset, seed),
            _run("sgd", sgd + offset, seed, lr=0.1),
        )
    ]


def test_ndadam_verdict_rule():
    closes = verdict(None, _runs(0.975, 0.95, 0.975))
    assert (
        closes.outcome == "holds"
        and "closes 100% of Adam's gap" in closes.because
        and "ndadam (lr=0.03) 0.9750" in closes.because
    )
    assert verdict(None, _runs(0.95, 0.95, 0.975)).outcome == "does not hold"
    assert verdict(None, _runs(0.96, 0.95, 0.975)).outcome == "inconclusive"
    no_gap = verdict(None, _runs(0.969, 0.97, 0.971))
    assert no_gap.outcome == "inconclusive" and "no generalization gap" in no_gap.because
    worse = verdict(None, _runs(0.93, 0.97, 0.971))
    assert worse.outcome == "does not hold" and "generalizes worse than SGD" in worse.because
    # the best learning rate is the one of highest mean accuracy
    runs = _runs(0.975, 0.95, 0.975) + [_run("ndadam", 0.5, s, lr=0.3) for s in range(3)]
    assert verdict(None, runs).outcome == "holds"


def test_ndadam_verdict_with_missing_or_failed_runs():
    runs = _runs(0.975, 0.95, 0.975)
    missing = verdict(None, [r for r in runs if r["optimizer"] != "ndadam"])
    assert missing.outcome == "inconclusive" and "ndadam" in missing.because
    assert verdict(None, [dict(r, status="failed") for r in runs]).outcome == "inconclusive"


def test_ndadam_verdict_pairs_seeds():
    """Seed-to-seed spread (the data split) is large, but SGD beats Adam by 0.01 on every seed: a gap beyond noise."""
    runs = []
    for seed, base in enumerate((0.93, 0.95, 0.97)):
        runs += [_run("adam", base, seed), _run("sgd", base + 0.01, seed, lr=0.1), _run("ndadam", base + 0.008, seed, lr=0.03)]
    result = verdict(None, runs)
    assert result.outcome == "holds" and "SGD - Adam = +0.0100 over paired seeds (noise level 0.0050)" in result.because
    shifted = [dict(r, seed=r["seed"] + 10) if r["optimizer"] == "sgd" else r for r in runs]
    assert "share no seed" in verdict(None, shifted).because
