"""Study madam-lr: the quick study end to end, and the verdict rule on synthetic runs."""

from __future__ import annotations

import json

import pytest

from adamlab.cli import main
from adamlab.lab.store import Store
from adamlab.lab.studies import get_study
from adamlab.lab.studies.madam_lr import OPTIMIZERS, verdict
from test_lab_studies import check_verdict


def test_madam_lr_quick_study_writes_report_from_the_store(tmp_path):
    db, out = tmp_path / "m.sqlite", tmp_path / "report"
    assert main(["study", "madam-lr", "--quick", "--db", str(db), "--out", str(out), "--progress", "none"]) == 0
    result = json.loads((out / "verdict.json").read_text())
    assert result["runs"] == 10 and result["outcome"].startswith("inconclusive")  # one seed: no interval
    check_verdict(result)
    assert [c["n"] for c in result["comparisons"]] == [1] * 5
    for stem in ("score-vs-lr", "score-heatmap", "score-curves", "samples"):
        assert (out / f"{stem}.png").stat().st_size > 10_000 and (out / f"{stem}.svg").exists()
    page = (out / "index.html").read_text()
    assert "Inception score (classes covered) per learning rate" in page and "Time to target" in page
    with Store.open(db) as store:
        runs = store.runs(problem="gan-digits")
        assert len(runs) == 10 and {r["optimizer"] for r in runs} == set(OPTIMIZERS)
        madam = [r for r in runs if r["optimizer"] == "madam"]
        assert {r["hyperparameters"]["beta3_rescale"] for r in madam} == {True}
        steps, _ = store.series(madam[0]["id"], "inception_score", kind="eval")
        assert steps == list(range(0, 201, 25))  # 8 evaluations after step 0: two quarters for the plateau check
        assert all(r["config"]["options"]["noise_dim"] == 200 for r in runs)
        scores = [r["final_metrics"]["inception_score"] for r in runs]
        assert all(1.0 <= s <= 10.0 for s in scores)
        samples = store.artifact(runs[0]["id"], "samples")
        assert samples.shape == (64, 8, 8) and 0 <= samples.min() and samples.max() <= 1
    # the verdict quotes the stored numbers
    assert f"{min(scores):.2f}" in result["because"] or "diverged" in result["because"]


class FakeStore:
    """Score curves by run id: 9 evaluations (step 0 to 800) at the run's final score, or rising to it (``rising``)."""

    def __init__(self, runs, rising=()):
        self.curves = {}
        for r in runs:
            score = r["final_metrics"]["inception_score"]
            ramp = (r["optimizer"], r["hyperparameters"]["lr"]) in rising
            self.curves[r["id"]] = [score - (8 - k) * 0.4 if ramp else score for k in range(9)]

    def series(self, run_id, name, kind="train"):
        return list(range(0, 801, 100)), self.curves[run_id]


def _runs(table, seeds=(0, 1, 2), diverged=(), spread=0.1):
    """Finished runs with final inception scores ``table[optimizer][lr]``, shifted by (seed - 1) x ``spread``."""
    return [
        {
            "id": f"{opt}/{lr}/{seed}",
            "optimizer": opt,
            "status": "finished",
            "seed": seed,
            "hyperparameters": {"lr": lr},
            "final_metrics": {"inception_score": score + (seed - 1) * spread, "diverged": (opt, lr) in diverged},
        }
        for opt, by_lr in table.items()
        for lr, score in by_lr.items()
        for seed in seeds
    ]


def _verdict(table, rising=(), **kw):
    runs = _runs(table, **kw)
    return verdict(FakeStore(runs, rising), runs)


WORKS = {1e-4: 5.0, 1e-3: 5.5, 1e-2: 5.2}
FAILS_ONCE = {1e-4: 1.2, 1e-3: 4.5, 1e-2: 5.0}


def _table(**special):
    base = {opt: dict(FAILS_ONCE) for opt in OPTIMIZERS}
    base.update(madam=dict(WORKS), sgd=dict(WORKS))
    base.update(special)
    return base


def test_verdict_holds_when_madam_and_sgd_converge_at_every_lr_and_the_others_do_not():
    result = _verdict(_table())
    assert result.outcome == "holds", result.because
    madam = result.comparisons[2]
    assert madam.name == "madam's worst score over the learning rates minus the target 4" and madam.direction == "greater"
    assert madam.estimate == pytest.approx(1.0) and madam.n == 3
    assert "madam 3 (worst 5.00, spread 0.50)" in result.because and "adam 2 (worst 1.20" in result.because


def test_verdict_does_not_hold_when_madam_fails_at_a_learning_rate_or_a_rival_converges_everywhere():
    assert _verdict(_table(madam=dict(FAILS_ONCE))).outcome == "does not hold"
    rival = _verdict(_table(adabelief=dict(WORKS)))
    assert rival.outcome == "does not hold" and [c.outcome for c in rival.comparisons][1] == "does not hold"


def test_verdict_inconclusive_within_noise_and_untestable_before_a_plateau():
    # MAdam's worst score 4.2 with seeds 1 point apart: the interval straddles the target
    noisy = _verdict(_table(madam={1e-4: 4.2, 1e-3: 5.5, 1e-2: 5.2}), spread=1.0)
    assert noisy.outcome == "inconclusive", noisy.because
    # MAdam still rising at lr 1e-2 at the end: the budget cannot tell slow from failing
    slow = _verdict(_table(), rising={("madam", 1e-2)})
    assert slow.outcome == "inconclusive: the setup cannot test this"
    assert "not at a plateau" in slow.because and "madam at lr=0.01" in slow.because


def test_verdict_untestable_when_no_optimizer_trains_a_gan():
    collapsed = _verdict({opt: {lr: 1.0 for lr in WORKS} for opt in OPTIMIZERS}, spread=0.0)
    assert collapsed.outcome == "inconclusive: the setup cannot test this" and "trains no GAN" in collapsed.because


def test_verdict_counts_diverged_runs_as_failing():
    result = _verdict(_table(), diverged={("madam", 1e-2)})
    assert result.comparisons[2].low != result.comparisons[2].low and result.outcome == "inconclusive"
    assert "madam 2 (worst diverged" in result.because


def test_verdict_with_missing_runs_is_inconclusive():
    runs = _runs(_table())
    store = FakeStore(runs)
    no_sgd = verdict(store, [r for r in runs if r["optimizer"] != "sgd"])
    assert no_sgd.outcome == "inconclusive" and "no finished runs for sgd" in no_sgd.because
    failed = [dict(r, status="failed") if r["optimizer"] == "adam" and r["hyperparameters"]["lr"] == 1e-2 else r for r in runs]
    gap = verdict(store, failed)
    assert gap.outcome == "inconclusive" and "adam at lr=0.01" in gap.because
    assert verdict(store, []).outcome == "inconclusive"


@pytest.mark.parametrize("quick, jobs", [(True, 10), (False, 60)])
def test_sweep_sizes_and_the_papers_hyperparameters(quick, jobs):
    found = get_study("madam-lr").spec(quick=quick).jobs()
    assert len(found) == jobs
    hps = {j.optimizer: j.config["hyperparameters"] for j in found}
    # default betas (not the GAN-usual 0.5), SGD without momentum, MAdam's beta3 rescaled
    assert all(hps[o]["betas"] == [0.9, 0.999] for o in ("adam", "adabelief", "madam", "adabound"))
    assert hps["sgd"] == {"lr": hps["sgd"]["lr"]} and hps["madam"]["beta3_rescale"] is True
