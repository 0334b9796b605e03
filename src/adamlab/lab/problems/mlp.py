"""The multilayer perceptron of Kingma & Ba's Adam paper (section 6.2): two hidden layers of 1000 ReLU units, minibatch 128.

On scikit-learn's digits by default (64 inputs), on full MNIST (784 inputs, 60,000 / 10,000) when
``mnist_dir`` names a folder of MNIST IDX files. Weights start from torch's default ``nn.Linear``
initialization drawn from the seed (the global RNG is left as it was); dropout, when ``dropout >
0``, draws its masks from the trial's own generator, so a run is deterministic in its seed.
Step-wise metric: ``loss``, the minibatch cross-entropy before the step. ``evaluate()``:
``train_loss`` (on the first ``eval_train_examples`` train examples, to keep evaluation cheap on
MNIST), ``test_loss``, ``test_accuracy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .. import data
from .base import Batches, Problem, Target, Trial, require_positive, seeded_generator


@dataclass
class MLPDigits(Problem):
    """Options: ``batch_size``, ``hidden`` (units per layer), ``layers``, ``dropout``, ``test_fraction``,
    ``mnist_dir``, ``eval_train_examples``."""

    batch_size: int = 128
    hidden: int = 1000
    layers: int = 2
    dropout: float = 0.0
    test_fraction: float = 0.3
    mnist_dir: str | None = None
    eval_train_examples: int = 10000

    name: ClassVar[str] = "mlp-digits"
    description: ClassVar[str] = (
        "MLP with two hidden layers of 1000 ReLU units (dropout optional), batch 128, on digits, or on MNIST with "
        "mnist_dir; metrics: train/test loss, test accuracy"
    )
    default_steps: ClassVar[int] = 300
    default_batch_size: ClassVar[int | None] = 128
    target: ClassVar[Target | None] = Target("test_accuracy", 0.95, "max")
    default_hyperparameters: ClassVar[dict[str, Any]] = {}

    def __post_init__(self) -> None:
        require_positive(self, "batch_size", "hidden", "layers", "eval_train_examples")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction!r}")

    def check(self) -> None:
        if self.mnist_dir:
            data.mnist_paths(self.mnist_dir)

    def build(self, seed: int) -> MLPTrial:
        split = data.load_mnist_split(self.mnist_dir) if self.mnist_dir else data.load_digits_split(seed, self.test_fraction)
        sizes = [split.x_train.shape[1]] + [self.hidden] * self.layers + [split.num_classes]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        return MLPTrial(self, split, linears, seeded_generator(seed, 1), seeded_generator(seed, 2))


class MLPTrial(Trial):
    def __init__(
        self,
        problem: MLPDigits,
        split: data.Split,
        linears: nn.ModuleList,
        batch_generator: torch.Generator,
        dropout_generator: torch.Generator,
    ) -> None:
        self.problem = problem
        self.split = split
        self.linears = linears
        self.batches = Batches(len(split.y_train), problem.batch_size, batch_generator)
        self.dropout_generator = dropout_generator

    def parameters(self) -> list[torch.Tensor]:
        return list(self.linears.parameters())

    def forward(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        p = self.problem.dropout
        for i, linear in enumerate(self.linears):
            x = linear(x)
            if i < len(self.linears) - 1:
                x = F.relu(x)
                if train and p > 0:
                    keep = torch.rand(x.shape, generator=self.dropout_generator) >= p
                    x = x * keep / (1 - p)
        return x

    def step(self, optimizer: torch.optim.Optimizer, t: int) -> dict[str, float]:
        idx = self.batches.next()
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.forward(self.split.x_train[idx], train=True), self.split.y_train[idx])
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        s = self.split
        n = self.problem.eval_train_examples
        test_logits = self.forward(s.x_test, train=False)
        return {
            "train_loss": F.cross_entropy(self.forward(s.x_train[:n], train=False), s.y_train[:n]).item(),
            "test_loss": F.cross_entropy(test_logits, s.y_test).item(),
            "test_accuracy": (test_logits.argmax(1) == s.y_test).double().mean().item(),
        }
