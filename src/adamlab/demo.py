"""``adamlab demo``: the lab's ``logreg-digits`` problem trained with every optimizer, one table.

Offline and CPU-sized (about 5 s for all optimizers on 2 cores): multinomial logistic regression on
scikit-learn's bundled 8x8 digits (standardized, 70/30 split), ``steps`` mini-batch steps of 128
with each optimizer at one fixed learning rate (listed in the table; untuned: the lab's sweeps are
the place for tuning). The same seed gives every optimizer the same initial weights and batches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .optim.registry import available, create

# One untuned learning rate per optimizer; plain SGD-like methods need larger ones.
DEMO_LR = {"sgd": 0.1, "adagrad": 0.1}
DEFAULT_LR = 1e-2


@dataclass
class DemoResult:
    name: str
    lr: float
    train_loss: float
    test_accuracy: float
    seconds: float


def train_one(name: str, steps: int = 300, seed: int = 0) -> DemoResult:
    from .lab.problems import get_problem

    torch.manual_seed(seed)
    trial = get_problem("logreg-digits").build(seed)
    lr = DEMO_LR.get(name, DEFAULT_LR)
    opt = create(name, trial.parameters(), lr=lr)
    start = time.perf_counter()
    for t in range(1, steps + 1):
        trial.step(opt, t)
    seconds = time.perf_counter() - start
    metrics = trial.evaluate()
    return DemoResult(name, lr, metrics["train_loss"], metrics["test_accuracy"], seconds)


def run_demo(steps: int = 300, names: list[str] | None = None) -> list[DemoResult]:
    return [train_one(name, steps=steps) for name in (names or available())]


def format_table(results: list[DemoResult], steps: int) -> str:
    lines = [
        f"logistic regression on digits (lab problem logreg-digits), {steps} steps of batch 128, untuned lr",
        f"{'optimizer':<10} {'lr':>7} {'train loss':>11} {'test acc':>9} {'time (s)':>9}",
    ]
    for r in sorted(results, key=lambda r: r.train_loss):
        lines.append(f"{r.name:<10} {r.lr:>7g} {r.train_loss:>11.4f} {r.test_accuracy:>9.3f} {r.seconds:>9.2f}")
    return "\n".join(lines)
