"""``adamlab demo``: multinomial logistic regression on scikit-learn's bundled digits, every optimizer.

Offline and CPU-sized (about 10 s for all optimizers on 2 cores): 1,437 training and 360 test
images of 8x8 digits, standardized; a linear model trained for ``steps`` mini-batch steps of 128
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


def digits_split(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Standardized digits as float32 tensors: (x_train, y_train, x_test, y_test), 80/20 by ``seed``."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the install
        raise SystemExit("adamlab demo needs scikit-learn: pip install 'adamlab[lab]'") from err
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_train = int(0.8 * len(x))
    train, test = order[:n_train], order[n_train:]
    mean, std = x[train].mean(0), x[train].std(0).clamp_min(1e-6)
    x = (x - mean) / std
    return x[train], y[train], x[test], y[test]


def train_one(name: str, data, steps: int = 300, batch: int = 128, seed: int = 0) -> DemoResult:
    x_train, y_train, x_test, y_test = data
    torch.manual_seed(seed)
    model = torch.nn.Linear(x_train.shape[1], 10)
    lr = DEMO_LR.get(name, DEFAULT_LR)
    opt = create(name, model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(len(x_train), (batch,), generator=gen)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx]).backward()
        opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model(x_train), y_train).item()
        acc = (model(x_test).argmax(1) == y_test).float().mean().item()
    return DemoResult(name, lr, loss, acc, seconds)


def run_demo(steps: int = 300, names: list[str] | None = None) -> list[DemoResult]:
    data = digits_split()
    return [train_one(name, data, steps=steps) for name in (names or available())]


def format_table(results: list[DemoResult], steps: int) -> str:
    lines = [
        f"logistic regression on digits (1437 train / 360 test), {steps} steps of batch 128, untuned lr",
        f"{'optimizer':<10} {'lr':>7} {'train loss':>11} {'test acc':>9} {'time (s)':>9}",
    ]
    for r in sorted(results, key=lambda r: r.train_loss):
        lines.append(f"{r.name:<10} {r.lr:>7g} {r.train_loss:>11.4f} {r.test_accuracy:>9.3f} {r.seconds:>9.2f}")
    return "\n".join(lines)
