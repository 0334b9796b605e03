"""Study amsgrad-swaps (seed 002): the quick study end to end, the dispersion indices and the verdict rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adamlab.cli import main
from adamlab.lab.store import Store
from adamlab.lab.studies import get_study
from adamlab.lab.studies.amsgrad_swaps import dispersion, verdict


def test_amsgrad_swaps_quick_study_writes_report_from_the_store(tmp_path):
    db, out = tmp_path / "a.sqlite", tmp_path / "report"
    assert main(["study", "amsgrad-swaps", "--quick", "--db", str(db), "--out", str(out), "--progress", "none"]) == 0
    result = json.loads((out / "verdict.json").read_text())
    # at 200 steps every entry swaps early and rarely later, at entry-specific rates: far from chance
    assert result["runs"] == 6 and result["outcome"] == "holds", result["because"]
    for stem in ("swap-heatmap", "swap-dispersion", "curves"):
        assert (out / f"{stem}.png").stat().st_size > 10_000 and (out / f"{stem}.svg").exists()
    page = (out / "index.html").read_text()
    assert "AMSGrad swap statistics" in page and "Time to target" in page
    with Store.open(db) as store:
        ams = store.runs(optimizer="amsgrad")
        assert len(ams) == 2
        counts = store.artifact(ams[0]["id"], "amsgrad_swaps/0")
        assert counts.shape == (10, 128, 64) and counts.max() <= 20  # 10 intervals of 20 steps, W1 is 128 x 64
        fraction = ams[0]["final_metrics"]["swap_fraction"]
        assert 0 < fraction < 1
        assert not store.artifact_names(store.runs(optimizer="adam")[0]["id"])  # diagnostics only on AMSGrad
    assert f"{100 * np.median([r['final_metrics']['swap_fraction'] for r in ams]):.1f}%" in result["because"]


class FakeStore:
    """The two store methods the verdict reads, over ``{run_id: {name: array}}``."""

    def __init__(self, arrays):
        self.arrays = arrays

    def artifact_names(self, run_id):
        return sorted(self.arrays.get(run_id, {}))

    def artifact(self, run_id, name):
        return self.arrays.get(run_id, {}).get(name)


def _swaps(rates, intervals=10, interval=20, active=None, seed=0):
    """Random swaps: coordinate i swaps with probability rates[i] per step, in the ``active`` intervals only."""
    rng = np.random.default_rng(seed)
    counts = rng.binomial(interval, np.broadcast_to(rates, (intervals, len(rates))))
    if active is not None:
        counts[active:] = 0
    return counts.astype(np.int32)


def _case(*tensors, optimizer="amsgrad", status="finished"):
    run = {"id": "r0", "optimizer": optimizer, "status": status, "seed": 0, "hyperparameters": {"lr": 1e-3}}
    run.update(config={"eval_every": 20}, final_metrics={"swap_fraction": 0.25})
    return FakeStore({"r0": {f"amsgrad_swaps/{i}": t for i, t in enumerate(tensors)}}), [run]


def test_dispersion_is_about_one_for_random_swapping_at_one_rate():
    entries, timing, n = dispersion([_swaps(np.full(4000, 0.3))], 20)
    assert n == 4000 and entries == pytest.approx(1.0, abs=0.1) and timing == pytest.approx(0.9, abs=0.1)


def test_verdict_holds_for_entry_specific_rates_and_early_bursts():
    rates = np.random.default_rng(1).uniform(0.2, 0.9, 3000)
    result = verdict(*_case(_swaps(rates, active=2), _swaps(rates[:50], active=2)))
    assert result.outcome == "holds" and "3050 coordinates" in result.because


def test_verdict_does_not_hold_for_chance_swapping():
    result = verdict(*_case(_swaps(np.full(3000, 0.3))))
    assert result.outcome == "does not hold" and "no more spread than chance" in result.because


def test_verdict_is_inconclusive_for_mildly_different_entries():
    rates = np.where(np.arange(4000) % 2 == 0, 0.3, 0.45)
    result = verdict(*_case(_swaps(rates, active=1)))  # bursty in time, entries 1.5x chance
    assert result.outcome == "inconclusive", result.because


def test_verdict_with_missing_runs_or_no_swaps_is_inconclusive():
    store, runs = _case(_swaps(np.full(100, 0.3)))
    assert verdict(store, [dict(runs[0], status="failed")]).outcome == "inconclusive"
    assert verdict(store, [dict(runs[0], optimizer="adam")]).outcome == "inconclusive"
    assert verdict(FakeStore({}), runs).outcome == "inconclusive"
    never = verdict(*_case(np.zeros((10, 100), dtype=np.int32)))
    assert never.outcome == "inconclusive" and "no coordinate ever swapped" in never.because


def test_sweep_size_and_swap_diagnostics_only_on_amsgrad():
    jobs = get_study("amsgrad-swaps").spec(quick=False).jobs()
    assert len(jobs) == 27
    assert {j.optimizer for j in jobs if "diagnostics" in j.config["hyperparameters"]} == {"amsgrad"}
