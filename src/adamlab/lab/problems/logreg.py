"""Logistic regression (Kingma & Ba, Adam paper, section 6.1): multinomial on digits/MNIST, binary on sparse bag-of-words.

Both are convex; parameters start at zero, so the seed changes only the data split (digits) or the
generated data (sparse) and the order of minibatches. Step-wise metric: ``loss``, the minibatch
loss before the step. ``evaluate()``: ``train_loss``, ``test_loss`` (mean cross-entropy over the
whole set) and ``test_accuracy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from .. import data
from .base import Batches, Problem, Target, Trial, require_positive, seeded_generator


@dataclass
class LogRegDigits(Problem):
    """Options: ``batch_size``; ``test_fraction`` (digits split); ``mnist_dir`` (a folder of MNIST IDX files to use instead of digits)."""

    batch_size: int = 128
    test_fraction: float = 0.3
    mnist_dir: str | None = None

    name: ClassVar[str] = "logreg-digits"
    description: ClassVar[str] = (
        "multinomial logistic regression on scikit-learn's digits (8x8, standardized, split by seed), or on MNIST "
        "with mnist_dir; metrics: train/test loss, test accuracy"
    )
    default_steps: ClassVar[int] = 300
    default_batch_size: ClassVar[int | None] = 128
    target: ClassVar[Target | None] = Target("test_accuracy", 0.9, "max")
    default_hyperparameters: ClassVar[dict[str, Any]] = {}

    def __post_init__(self) -> None:
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction!r}")
        require_positive(self, "batch_size")

    def check(self) -> None:
        if self.mnist_dir:
            data.mnist_paths(self.mnist_dir)

    def build(self, seed: int) -> LinearTrial:
        split = data.load_mnist_split(self.mnist_dir) if self.mnist_dir else data.load_digits_split(seed, self.test_fraction)
        return LinearTrial(split, self.batch_size, seeded_generator(seed, 1))


class LinearTrial(Trial):
    def __init__(self, split: data.Split, batch_size: int, generator: torch.Generator) -> None:
        self.split = split
        d, k = split.x_train.shape[1], split.num_classes
        self.weight = torch.zeros(k, d, requires_grad=True)
        self.bias = torch.zeros(k, requires_grad=True)
        self.batches = Batches(len(split.y_train), batch_size, generator)

    def parameters(self) -> list[torch.Tensor]:
        return [self.weight, self.bias]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def step(self, optimizer: torch.optim.Optimizer, t: int) -> dict[str, float]:
        idx = self.batches.next()
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.logits(self.split.x_train[idx]), self.split.y_train[idx])
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        s = self.split
        test_logits = self.logits(s.x_test)
        return {
            "train_loss": F.cross_entropy(self.logits(s.x_train), s.y_train).item(),
            "test_loss": F.cross_entropy(test_logits, s.y_test).item(),
            "test_accuracy": (test_logits.argmax(1) == s.y_test).double().mean().item(),
        }


@dataclass
class LogRegSparse(Problem):
    """Options: ``batch_size``; the generated data's ``n_train``, ``n_test``, ``dim``, ``doc_length``,
    ``zipf_exponent``, ``planted``; or ``train_file`` (and optionally ``test_file``): svmlight/libsvm
    bag-of-words files such as IMDB's ``labeledBow.feat``, of which the first ``dim`` features are kept."""

    batch_size: int = 128
    n_train: int = 5000
    n_test: int = 1000
    dim: int = 10000
    doc_length: int = 120
    zipf_exponent: float = 1.1
    planted: int = 500
    train_file: str | None = None
    test_file: str | None = None

    name: ClassVar[str] = "logreg-sparse"
    description: ClassVar[str] = (
        "binary logistic regression on sparse 10k-dim bag-of-words (generated Zipf word counts, planted sparse "
        "labeller; or an svmlight file such as IMDB's with train_file); metrics: train/test loss, test accuracy"
    )
    default_steps: ClassVar[int] = 300
    default_batch_size: ClassVar[int | None] = 128
    target: ClassVar[Target | None] = Target("test_accuracy", 0.8, "max")
    default_hyperparameters: ClassVar[dict[str, Any]] = {}

    def __post_init__(self) -> None:
        require_positive(self, "batch_size", "n_train", "n_test", "dim", "doc_length", "planted")
        if self.planted > self.dim and not self.train_file:
            raise ValueError(f"planted must be <= dim ({self.dim}), got {self.planted!r}")
        if not self.zipf_exponent > 0:
            raise ValueError(f"zipf_exponent must be > 0, got {self.zipf_exponent!r}")

    def check(self) -> None:
        for path in (self.train_file, self.test_file):
            if path:
                data.check_svmlight_file(path)

    def build(self, seed: int) -> SparseTrial:
        if self.train_file:
            split = data.load_svmlight_split(self.train_file, self.test_file, self.dim, seed)
        else:
            split = data.zipf_bag_of_words(
                seed, self.n_train, self.n_test, self.dim, self.doc_length, self.zipf_exponent, self.planted
            )
        return SparseTrial(split, self.dim, self.batch_size, seeded_generator(seed, 1))


class SparseTrial(Trial):
    """Minibatches are densified (``batch_size x dim``); full-set evaluation multiplies the CSR matrix."""

    def __init__(self, split: data.SparseSplit, dim: int, batch_size: int, generator: torch.Generator) -> None:
        self.split = split
        self.weight = torch.zeros(dim, requires_grad=True)
        self.bias = torch.zeros(1, requires_grad=True)
        self.batches = Batches(len(split.y_train), batch_size, generator)

    def parameters(self) -> list[torch.Tensor]:
        return [self.weight, self.bias]

    def step(self, optimizer: torch.optim.Optimizer, t: int) -> dict[str, float]:
        idx = self.batches.next()
        xb = torch.from_numpy(self.split.x_train[idx.numpy()].toarray())
        optimizer.zero_grad(set_to_none=True)
        loss = F.binary_cross_entropy_with_logits(xb @ self.weight + self.bias, self.split.y_train[idx])
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        w = self.weight.detach().numpy().astype(np.float64)
        b = float(self.bias.item())

        def logits(x: Any) -> torch.Tensor:
            return torch.as_tensor(np.asarray(x @ w, dtype=np.float64) + b)

        s = self.split
        test_logits = logits(s.x_test)
        return {
            "train_loss": F.binary_cross_entropy_with_logits(logits(s.x_train), s.y_train.double()).item(),
            "test_loss": F.binary_cross_entropy_with_logits(test_logits, s.y_test.double()).item(),
            "test_accuracy": ((test_logits > 0).double() == s.y_test.double()).double().mean().item(),
        }
