"""Studies swats and ndadam (studies/generalization.py): the quick studies end to end, and the verdict rules."""

from __future__ import annotations

import json

from adamlab.cli import main
from adamlab.lab.store import Store
from adamlab.lab.studies.generalization import make_verdict
from test_lab_studies import check_verdict

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


def _runs(name, candidate, adam, sgd, lr, noise=(0.0, 0.0, 0.0), **kw):
    """Three seeds of the candidate (at ``lr``), Adam and SGD, each optimizer's accuracy shifted by -0.001, 0, +0.001
    (the seed's split, shared: paired differences are exact), the candidate's also by ``noise[seed]``."""
    return [
        run
        for seed, offset in enumerate((-0.001, 0.0, 0.001))
        for run in (
            _run(name, candidate + offset + noise[seed], seed, lr=lr, **kw),
            _run("adam", adam + offset, seed),
            _run("sgd", sgd + offset, seed, lr=0.1),
        )
    ]


def swats_runs(swats, adam, sgd, first_switch=100, noise=(0.0, 0.0, 0.0)):
    return _runs("swats", swats, adam, sgd, 1e-3, noise, first_switch=first_switch)


def ndadam_runs(ndadam, adam, sgd):
    return _runs("ndadam", ndadam, adam, sgd, 0.03)


def test_swats_study_quick(tmp_path):
    db, out = tmp_path / "s.sqlite", tmp_path / "report"
    assert main(["study", "swats", "--quick", "--db", str(db), "--out", str(out), "--progress", "none"]) == 0
    result = json.loads((out / "verdict.json").read_text())
    assert result["runs"] == 6 and result["outcome"].startswith("inconclusive")  # one seed: no interval
    check_verdict(result)
    assert "switches over the grid: eps=0.0001:" in result["because"] and "SGD minus Adam" in result["because"]
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


def outcomes(verdict):
    return [c.outcome for c in verdict.comparisons]


def test_swats_verdict_rule():
    # SGD 2.5 points above Adam on every seed: a gap; SWATS 2.2 above Adam and 0.3 below SGD (within 0.5)
    closes = swats_verdict(None, swats_runs(0.972, 0.95, 0.975))
    assert closes.outcome == "holds" and outcomes(closes) == ["holds", "holds", "holds"], closes.because
    assert "SWATS minus SGD, final test accuracy: -0.3 points" in closes.because and "swats (lr=0.001) 0.9720" in closes.because
    assert swats_verdict(None, swats_runs(0.945, 0.95, 0.975)).outcome == "does not hold"  # below Adam
    assert outcomes(swats_verdict(None, swats_runs(0.955, 0.95, 0.975))) == ["holds", "holds", "does not hold"]  # 2 below SGD
    # noisy: SWATS's seeds spread by a point, the intervals reach both sides
    noisy = swats_verdict(None, swats_runs(0.972, 0.95, 0.975, noise=(-0.01, 0.0, 0.01)))
    assert noisy.outcome == "inconclusive" and outcomes(noisy)[1:] == ["inconclusive", "inconclusive"]
    # no run switched: untestable, not refuted
    never = swats_verdict(None, swats_runs(0.97, 0.95, 0.975, first_switch=-1))
    assert never.outcome == "inconclusive: the setup cannot test this" and "no switch happened" in never.because
    # the best SWATS configuration did not switch but another did: the one that switched decides
    other = [_run("swats", 0.9, seed, lr=1e-4, first_switch=30) for seed in range(3)]
    result = swats_verdict(None, swats_runs(0.97, 0.95, 0.975, first_switch=-1) + other)
    assert result.outcome == "does not hold" and "swats (lr=0.0001) 0.9000" in result.because
    assert "eps=1e-09: 3/6 runs switched (median first switch step 30)" in result.because
    # Adam as accurate as SGD: no gap to close, whatever SWATS does
    no_gap = swats_verdict(None, swats_runs(0.94, 0.97, 0.97))
    assert no_gap.outcome == "inconclusive: the setup cannot test this" and "no gap to close" in no_gap.because
    assert outcomes(no_gap)[0] == "inconclusive" and not no_gap.comparisons[0].decides


def test_swats_verdict_with_missing_failed_or_divergedswats_runs():
    runs = swats_runs(0.97, 0.95, 0.975)
    missing = swats_verdict(None, [r for r in runs if r["optimizer"] != "sgd"])
    assert missing.outcome == "inconclusive" and "sgd" in missing.because
    assert (
        swats_verdict(None, [dict(r, status="failed") if r["optimizer"] == "adam" else r for r in runs]).outcome == "inconclusive"
    )
    diverged = [_run("adam", None, r["seed"], diverged=True) if r["optimizer"] == "adam" else r for r in runs]
    result = swats_verdict(None, diverged)
    assert result.outcome == "inconclusive: the setup cannot test this" and "no gap to close" in result.because
    assert result.comparisons[0].low != result.comparisons[0].low  # NaN: no interval for a diverged side
    assert swats_verdict(None, []).outcome == "inconclusive"


def test_ndadam_study_quick(tmp_path):
    db, out = tmp_path / "n.sqlite", tmp_path / "report"
    assert main(["study", "ndadam", "--quick", "--db", str(db), "--out", str(out), "--progress", "none"]) == 0
    result = json.loads((out / "verdict.json").read_text())
    assert result["runs"] == 6 and result["outcome"].startswith("inconclusive")  # one seed: no interval
    check_verdict(result)
    assert "ndadam (lr=" in result["because"] and [c["n"] for c in result["comparisons"]] == [1, 1, 1]
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
    assert closes.outcome == "holds" and "ndadam (lr=0.03) 0.9750" in closes.because
    assert outcomes(ndadam_verdict(None, ndadam_runs(0.95, 0.95, 0.975))) == ["holds", "inconclusive", "does not hold"]
    assert ndadam_verdict(None, ndadam_runs(0.96, 0.95, 0.975)).outcome == "does not hold"  # 1.5 points below SGD
    no_gap = ndadam_verdict(None, ndadam_runs(0.969, 0.97, 0.97))
    assert no_gap.outcome == "inconclusive: the setup cannot test this"
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
    assert result.outcome == "holds" and "SGD minus Adam, final test accuracy (the gap to close): +1 points" in result.because
    shifted = [dict(r, seed=r["seed"] + 10) if r["optimizer"] == "sgd" else r for r in runs]
    unpaired = ndadam_verdict(None, shifted)
    assert unpaired.comparisons[0].n == 0 and unpaired.outcome == "inconclusive: the setup cannot test this"
