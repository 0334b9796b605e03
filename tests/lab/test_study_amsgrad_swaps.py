"""Study amsgrad-swaps: the quick study end to end, the paper's swaps, the null simulation and the verdicts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from adamlab.cli import main
from adamlab.diagnostics import AMSGradSwaps
from adamlab.lab.store import Store
from adamlab.lab.studies import get_study
from adamlab.lab.studies.amsgrad_swaps import dispersion, null_indices, paper_swaps, verdict, warmup_intervals
from test_lab_studies import check_verdict


def test_amsgrad_swaps_quick_study_writes_report_from_the_store(tmp_path):
    db, out = tmp_path / "a.sqlite", tmp_path / "report"
    assert main(["study", "amsgrad-swaps", "--quick", "--db", str(db), "--out", str(out), "--progress", "none"]) == 0
    result = json.loads((out / "verdict.json").read_text())
    assert result["runs"] == 6
    check_verdict(result)
    entries, timing = result["comparisons"]
    assert entries["name"] == "log(entries index / null's)" and entries["n"] == timing["n"] == 2
    assert entries["margin"] == pytest.approx(math.log(2)) and "warm-up of 100 steps left out" in result["because"]
    assert result["also"][0]["claim"].startswith("AdamAL about 1 point")
    for stem in ("swap-heatmap", "swap-dispersion", "curves"):
        assert (out / f"{stem}.png").stat().st_size > 10_000 and (out / f"{stem}.svg").exists()
    page = (out / "index.html").read_text()
    assert "AMSGrad swap statistics after the warm-up" in page and "Time to target" in page
    with Store.open(db) as store:
        ams = store.runs(optimizer="amsgrad")
        assert len(ams) == 2 and ams[0]["hyperparameters"]["betas"] == [0.9, 0.99]
        counts = store.artifact(ams[0]["id"], "amsgrad_swaps/0")
        assert counts.shape == (20, 128, 64) and counts.max() <= 20  # 20 intervals of 20 steps, W1 is 128 x 64
        assert warmup_intervals(ams[0]) == 5  # 1 / (1 - 0.99) = 100 steps
        assert not store.artifact_names(store.runs(optimizer="adam")[0]["id"])  # diagnostics only on AMSGrad


class FakeStore:
    """The two store methods the verdict reads, over ``{run_id: {name: array}}``."""

    def __init__(self, arrays):
        self.arrays = arrays

    def artifact_names(self, run_id):
        return sorted(self.arrays.get(run_id, {}))

    def artifact(self, run_id, name):
        return self.arrays.get(run_id, {}).get(name)


STEPS, INTERVAL, BETAS = 800, 40, (0.9, 0.99)


def _ams_run(i, accuracy=0.95, optimizer="amsgrad", lr=1e-3):
    return {
        "id": f"r{i}",
        "optimizer": optimizer,
        "status": "finished",
        "seed": i % 3,
        "problem": "mlp-digits",
        "hyperparameters": {"lr": lr, "betas": list(BETAS)},
        "config": {"steps": STEPS, "eval_every": INTERVAL},
        "final_metrics": {"test_accuracy": accuracy, "diverged": False},
    }


def amsgrad_moved(scale, seed=0):
    """The diagnostic's counts (steps where the max moved, per interval) of torch's AMSGrad on gradients
    ``scale[t] * N(0, 1)`` per coordinate, through the real optimizer and :class:`AMSGradSwaps`."""
    torch.manual_seed(seed)
    p = torch.zeros(scale.shape[1], requires_grad=True)
    optimizer = torch.optim.Adam([p], lr=1e-3, betas=BETAS, amsgrad=True)
    observer = AMSGradSwaps(interval=INTERVAL)
    noise = torch.randn(scale.shape)
    for t in range(STEPS):
        p.grad = torch.as_tensor(scale[t], dtype=torch.float32) * noise[t]
        observer.before(optimizer)
        optimizer.step()
        observer.after(optimizer)
    return observer.counts[0].numpy()


def simulated_moved(scale, seed=0):
    """The same counts from AMSGrad's v and max in NumPy (fast, for gradients with structure)."""
    rng = np.random.default_rng(seed)
    v, vmax = np.zeros(scale.shape[1]), np.zeros(scale.shape[1])
    moved = np.zeros((STEPS // INTERVAL, scale.shape[1]), dtype=np.int32)
    for t in range(STEPS):
        g = scale[t] * rng.standard_normal(scale.shape[1])
        v = BETAS[1] * v + (1 - BETAS[1]) * g * g
        moved[t // INTERVAL] += v > vmax
        vmax = np.maximum(vmax, v)
    return moved


def _case(*moved):
    """One AMSGrad run per array of counts, plus Adam and AdamAL runs for the accuracy verdict."""
    arrays = {f"r{i}": {"amsgrad_swaps/0": m} for i, m in enumerate(moved)}
    runs = [_ams_run(i) for i in range(len(moved))]
    runs += [_ams_run(10 + s, 0.95, "adam") | {"seed": s} for s in range(3)]
    runs += [_ams_run(20 + s, 0.96, "adamal") | {"seed": s} for s in range(3)]
    return FakeStore(arrays), runs


def test_the_papers_swaps_are_the_complement_after_the_warm_up():
    moved = np.array([[5, 0, 1], [2, 0, 4], [1, 0, 40]])
    # the coordinate whose max never moved (a zero gradient) is left out; from interval 1 on
    assert paper_swaps(moved, 40, 1).tolist() == [[38, 36], [39, 0]]
    assert warmup_intervals(_ams_run(0)) == 3  # 100 steps: intervals starting at 0, 40, 80


def test_iid_gradients_are_not_significant():
    """The null of the issue: identical, stationary i.i.d. gradients for every coordinate through the real optimizer.
    The indices match the simulated null's: neither swap comparison holds."""
    runs = [amsgrad_moved(np.ones((STEPS, 1000)), seed) for seed in range(3)]
    result = verdict(*_case(*runs))
    assert [c.outcome for c in result.comparisons] != ["holds", "holds"] and result.outcome != "holds", result.because
    for c in result.comparisons:
        assert abs(c.estimate) < 0.2 and c.low < math.log(2), c  # within 20% of the null; the interval below the margin
    # the null itself is far from 1: the max is persistent, so swaps cluster by entry and in time for i.i.d. gradients too
    entries, timing = null_indices(STEPS, INTERVAL, BETAS[1], 3)
    assert entries > 1.5 and timing > 2, (entries, timing)


def test_entry_specific_and_bursty_gradients_hold():
    """Coordinates whose gradient scale rises and falls, each with its own period and phase: swaps differ by entry
    and cluster in time far beyond the null."""
    rng = np.random.default_rng(1)
    t = np.arange(STEPS)[:, None]
    period, phase = rng.uniform(100, 600, 1500), rng.uniform(0, 2 * np.pi, 1500)
    scale = np.exp(2 * np.sin(2 * np.pi * t / period + phase))
    result = verdict(*_case(*(simulated_moved(scale, seed) for seed in range(3))))
    assert result.outcome == "holds", result.because
    (accuracy,) = result.also
    # AdamAL 1 point above Adam on every seed, AMSGrad equal to Adam: the first holds, the second is not shown either way
    assert [c.outcome for c in accuracy.comparisons] == ["holds", "inconclusive"] and accuracy.outcome == "inconclusive"


def test_a_max_that_stops_moving_after_the_warm_up_does_not_hold():
    """Shrinking gradients: the max moves only during the warm-up, then every entry swaps at every step (the paper's
    swaps): no dispersion at all, less than the null's; the claim does not hold."""
    moved = np.zeros((STEPS // INTERVAL, 500), dtype=np.int32)
    moved[:3] = 30
    assert dispersion([paper_swaps(moved, INTERVAL, 3)], INTERVAL) == (1.0, 1.0, 500)
    result = verdict(*_case(moved, moved + 0, moved * 1))
    assert result.outcome == "does not hold", result.because
    entries, timing = null_indices(STEPS, INTERVAL, BETAS[1], 3)
    assert result.comparisons[0].estimate == pytest.approx(-math.log(entries))
    assert result.comparisons[1].estimate == pytest.approx(-math.log(timing))


def test_budget_within_the_warm_up_cannot_test_the_claim():
    store, runs = _case(np.full((10, 50), 30))
    for r in runs:
        r["hyperparameters"]["betas"] = [0.9, 0.999]  # a warm-up of 1000 steps in a 400-step run
        r["config"]["steps"] = 400
    result = verdict(store, runs)
    assert result.outcome == "inconclusive: the setup cannot test this" and "warm-up" in result.because


def test_verdict_with_missing_runs_or_no_swaps_is_inconclusive():
    store, runs = _case(np.full((30, 100), 3))
    assert verdict(store, [dict(runs[0], status="failed")]).outcome == "inconclusive"
    assert verdict(store, [dict(runs[0], optimizer="adam")]).outcome == "inconclusive"
    assert verdict(FakeStore({}), runs).outcome == "inconclusive"
    never = verdict(*_case(np.zeros((30, 100), dtype=np.int32)))
    assert never.outcome == "inconclusive" and "no coordinate ever swapped" in never.because
    assert dispersion([np.zeros((0, 10))], 40)[2] == 0


def test_sweep_size_and_swap_diagnostics_only_on_amsgrad():
    jobs = get_study("amsgrad-swaps").spec(quick=False).jobs()
    assert len(jobs) == 27 and {j.config["steps"] for j in jobs} == {3000}
    assert {j.optimizer for j in jobs if "diagnostics" in j.config["hyperparameters"]} == {"amsgrad"}
