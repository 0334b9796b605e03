"""Study ``weight-decay``: the quick study end to end, and the verdict rule on synthetic runs."""

from __future__ import annotations

import json
import math

import pytest

from adamlab.cli import main
from adamlab.lab.store import Store
from adamlab.lab.studies import get_study
from adamlab.lab.studies.weight_decay import ADAM, ADAMW, ADAMWR, best_decay_per_lr, retuning_loss, verdict
from test_lab_studies import check_verdict


def test_weight_decay_study_quick(tmp_path):
    """27 MLP jobs of 80 steps, one seed: heatmaps, curves, time-to-target table; one seed gives no noise estimate."""
    db, out = tmp_path / "w.sqlite", tmp_path / "report"
    assert main(["study", "weight-decay", "--quick", "--db", str(db), "--out", str(out), "--progress", "none"]) == 0
    result = json.loads((out / "verdict.json").read_text())
    assert result["runs"] == 27 and result["outcome"] == "inconclusive"
    check_verdict(result)
    # one seed: no interval for any comparison
    assert all(c["n"] == 1 and c["low"] is None for v in (result, *result["also"]) for c in v["comparisons"])
    for stem in ("heatmaps", "curves"):
        assert (out / f"{stem}.png").stat().st_size > 20_000 and (out / f"{stem}.svg").stat().st_size > 10_000
    page = (out / "index.html").read_text()
    assert "Time to target (test_accuracy &gt;= 0.95)" in page and "AdamWR (warm restarts)" in page

    with Store.open(db, create=False) as store:
        runs = store.runs()
    assert len(runs) == 27 and all(r["status"] == "finished" for r in runs)
    # the normalized decay is resolved per run: the same fraction lambda_norm / sqrt(steps) removed per step at every lr
    adamw = [r for r in runs if r["optimizer"] == "adamw" and r["hyperparameters"]["weight_decay_norm"] == 0.3]
    assert {r["hyperparameters"]["lr"] for r in adamw} == {1e-3, 3e-3, 1e-2}
    # the verdict quotes the stored numbers: Adam + L2's best cell
    adam = max((r for r in runs if r["optimizer"] == "adam"), key=lambda r: r["final_metrics"]["test_accuracy"])
    assert f"Adam + L2 {100 * adam['final_metrics']['test_accuracy']:.2f}%" in result["because"]
    assert get_study("weight-decay").spec(quick=False).jobs()[0].config["options"]["test_fraction"] == 0.8


def _run(optimizer, lr, decay, accuracy, seed=0, schedule="constant"):
    hp = {"lr": lr}
    if optimizer == "adam":
        hp["weight_decay"] = decay
    else:
        hp.update(weight_decay_norm=decay, schedule=schedule)
    final = {"test_accuracy": accuracy, "test_loss": 0.2, "train_loss": 0.01, "diverged": False}
    return {
        "problem": "mlp-digits",
        "optimizer": optimizer,
        "hyperparameters": hp,
        "seed": seed,
        "steps": 400,
        "status": "finished",
        "final_metrics": final,
    }


LR = [1e-4, 1e-3, 1e-2]
DECAY = [0.0, 0.01, 0.1]


def _runs(adam_best, adamw_best, adam_top=0.95, adamw_top=0.97, noise=(0.0, 0.002, 0.001)):
    """Synthetic grids: at lr index i the best decay index is ``*_best[i]``; that cell scores ``top``, others 0.92.
    AdamW's accuracies move by ``noise[seed]``."""
    runs = []
    for seed, eps in enumerate(noise):
        for i, lr in enumerate(LR):
            for j, d in enumerate(DECAY):
                runs.append(_run("adam", lr, d, adam_top if j == adam_best[i] else 0.92, seed))
                runs.append(_run("adamw", lr, d, (adamw_top if j == adamw_best[i] else 0.92) + eps, seed))
                runs.append(
                    _run("adamw", lr, d, (adamw_top + 0.01 if j == adamw_best[i] else 0.92) + eps, seed, "cosine-restarts")
                )
    return runs


def test_best_decay_and_retuning_loss():
    assert best_decay_per_lr(_runs((2, 1, 0), (1, 1, 1)), ADAM) == {1e-4: 0.1, 1e-3: 0.01, 1e-2: 0.0}
    # Adam + L2 keeps the decay 0.1 (best at lr 1e-4): 3 points lost at the two other lrs, 2 on average; AdamW none
    assert retuning_loss(_runs((2, 1, 0), (1, 1, 1)), ADAM) == pytest.approx({0: 0.02, 1: 0.02, 2: 0.02})
    assert retuning_loss(_runs((2, 1, 0), (1, 1, 1)), ADAMW) == {0: 0.0, 1: 0.0, 2: 0.0}


@pytest.mark.parametrize(
    ("kwargs", "outcomes", "outcome"),
    [
        ({"adam_best": (2, 1, 0), "adamw_best": (1, 1, 1)}, ["holds", "holds"], "holds"),  # diagonal vs axis-aligned, +2 points
        # both diagonal: AdamW loses 5 points off its best decay, Adam + L2 3: AdamW is the more coupled
        ({"adam_best": (2, 1, 0), "adamw_best": (2, 1, 0)}, ["holds", "does not hold"], "does not hold"),
        ({"adam_best": (2, 1, 0), "adamw_best": (2, 1, 0), "adamw_top": 0.95}, ["inconclusive", "inconclusive"], "inconclusive"),
        ({"adam_best": (1, 1, 1), "adamw_best": (2, 1, 0)}, ["holds", "does not hold"], "does not hold"),  # AdamW's diagonal
        ({"adam_best": (2, 1, 0), "adamw_best": (1, 1, 1), "adamw_top": 0.94}, ["does not hold", "holds"], "does not hold"),
        # +0.6 points on average, per-seed 0.1 to 1.1: the interval reaches below the margin
        (
            {"adam_best": (2, 1, 0), "adamw_best": (1, 1, 1), "adamw_top": 0.951, "noise": (0.0, 0.01, 0.005)},
            ["inconclusive", "holds"],
            "inconclusive",
        ),
    ],
)
def test_weight_decay_verdict_rule(kwargs, outcomes, outcome):
    result = verdict(None, _runs(**kwargs))
    assert [c.outcome for c in result.comparisons] == outcomes and result.outcome == outcome, result.because
    assert "retuning loss of Adam + L2 minus AdamW's" in result.because and "Best decay per lr" in result.because
    (restarts,) = result.also
    assert restarts.outcome == "holds" and restarts.comparisons[0].estimate == pytest.approx(0.01)


def test_weight_decay_verdict_missing_or_diverged_runs():
    runs = _runs((2, 1, 0), (1, 1, 1))
    no_restarts = verdict(None, [r for r in runs if r["hyperparameters"].get("schedule") != "cosine-restarts"])
    assert no_restarts.outcome == "inconclusive" and ADAMWR in no_restarts.because
    assert verdict(None, []).outcome == "inconclusive"
    for r in runs:
        if r["optimizer"] == "adamw" and r["seed"] == 1:
            r["final_metrics"].update(diverged=True, test_accuracy=None)
    diverged = verdict(None, runs)
    assert diverged.outcome == "inconclusive" and "diverged" in diverged.because
    one_seed = verdict(None, _runs((2, 1, 0), (1, 1, 1), noise=(0.0,)))
    assert one_seed.outcome == "inconclusive" and "n = 1" in one_seed.because and "95% interval none" in one_seed.because
