"""Study trajectories: the quick study end to end, and the verdict rule on synthetic paths."""

from __future__ import annotations

import json
import math

from adamlab.cli import main
from adamlab.lab.store import Store
from adamlab.lab.studies.trajectories import PROBLEMS, SCALES, verdict
from test_lab_studies import check_verdict


def test_trajectories_study_quick(tmp_path):
    db, out = tmp_path / "t.sqlite", tmp_path / "report"
    assert main(["study", "trajectories", "--quick", "--db", str(db), "--out", str(out), "--progress", "none"]) == 0
    result = json.loads((out / "verdict.json").read_text())
    # Adam's paths at gradient x 0.01 and x 100 match the unscaled one to 1e-6; SGD's diverge at x 100
    assert result["runs"] == 36 and result["outcome"] == "holds", result["because"]
    check_verdict(result)
    assert [c["name"] for c in result["comparisons"]][0] == "Adam's invariance error on rosenbrock"
    assert all(c["n"] == 1 and c["low"] == c["high"] for c in result["comparisons"])
    assert "SGD with momentum for contrast: rosenbrock inf, beale inf, quadratic inf" in result["because"]
    for stem in ("contours", "gradient-scale"):
        assert (out / f"{stem}.png").stat().st_size > 20_000 and (out / f"{stem}.svg").exists()
    with Store.open(db, create=False) as store:
        adam = [r for r in store.runs(optimizer="adam") if r["problem"] == "quadratic"]
        assert sorted(r["hyperparameters"]["grad_scale"] for r in adam) == [0.01, 1.0, 100.0]
        # Kingma & Ba's bound lr * (1 - b1) / sqrt(1 - b2) = 3.16 lr; Adam's steps reach about lr
        assert all(0.3 < r["final_metrics"]["max_step_ratio_to_bound"] <= 1.0 for r in adam)
        steps, xs = store.series(adam[0]["id"], "x")
        assert steps == list(range(1, 301)) and abs(xs[-1]) < 1e-3


class FakeStore:
    """Paths by run id: ``series(id, "x")`` / ``series(id, "y")``."""

    def __init__(self, paths):
        self.paths = paths

    def series(self, run_id, name, kind="train"):
        path = self.paths[run_id]
        return list(range(1, len(path) + 1)), [p[0] if name == "x" else p[1] for p in path]


def _fake(adam_shift=0.0, ratio=0.3, sgd_diverges=True):
    runs, paths = [], {}
    for problem in PROBLEMS:
        for optimizer in ("adam", "sgd"):
            for scale in SCALES:
                rid = f"{problem}-{optimizer}-{scale}"
                shift = adam_shift if (optimizer == "adam" and scale != 1.0) else 0.0
                diverged = optimizer == "sgd" and scale == 100.0 and sgd_diverges
                paths[rid] = [(1.0 + shift, 2.0), (0.5 + shift, 1.0)] if not diverged else [(1.0, 2.0), (math.inf, 0.0)]
                final = {"diverged": diverged}
                if optimizer == "adam":
                    final["max_step_ratio_to_bound"] = ratio
                runs.append(
                    {
                        "id": rid,
                        "problem": problem,
                        "optimizer": optimizer,
                        "status": "finished",
                        "hyperparameters": {"grad_scale": scale},
                        "final_metrics": final,
                    }
                )
    return FakeStore(paths), runs


def test_trajectories_verdict_rule():
    assert verdict(*_fake()).outcome == "holds"
    assert verdict(*_fake(adam_shift=0.5)).outcome == "does not hold"
    # deterministic: an exact interval is never inconclusive; an error above the margin 0.01 refutes
    assert verdict(*_fake(adam_shift=0.05)).outcome == "does not hold"
    assert verdict(*_fake(adam_shift=0.005)).outcome == "holds"
    broken = verdict(*_fake(ratio=1.2))
    assert broken.outcome == "does not hold" and "1.200 of the paper's bound" in broken.because
    store, runs = _fake()
    missing = verdict(store, [r for r in runs if r["id"] != "beale-adam-100.0"])
    assert missing.outcome == "inconclusive" and "beale/adam/100" in missing.because
