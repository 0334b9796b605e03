"""A small convolutional network on CIFAR-10 (the CNN experiments of the MAdam paper and of Kingma & Ba, scaled to a CPU).

The papers train ResNet34 / ShuffleNet / MobileNet (MAdam) and a c64-c64-c128-1000 network
(Kingma & Ba) for hundreds of epochs on GPUs; this problem keeps the task and shrinks the model to
run on a laptop CPU: three blocks of 3x3 convolution (``width``, 2 ``width``, 4 ``width``
channels) + ReLU + 2x2 max pooling, then a ``4 width * 4 * 4 -> 256 -> 10`` classifier. The data
is the CIFAR-10 files the user points ``cifar_dir`` at (python or binary version; nothing is
downloaded), normalized per channel by the train set. Optional augmentation: random horizontal
flips and random crops with 4-pixel zero padding, drawn from the trial's generator.

Step-wise metric ``loss`` (minibatch cross-entropy); ``evaluate()``: ``train_loss`` (on the
first ``eval_train_examples`` train images), ``test_loss`` and ``test_accuracy`` (on the first
``eval_test_examples`` test images, all 10,000 by default).
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
class CNNCifar10(Problem):
    """Options: ``cifar_dir`` (required), ``batch_size``, ``width``, ``augment``, ``eval_train_examples``, ``eval_test_examples``."""

    cifar_dir: str | None = None
    batch_size: int = 128
    width: int = 32
    augment: bool = False
    eval_train_examples: int = 5000
    eval_test_examples: int = 10000

    name: ClassVar[str] = "cnn-cifar10"
    description: ClassVar[str] = (
        "small CNN (3 conv blocks + 2 dense layers) on CIFAR-10 from local files (cifar_dir); "
        "metrics: train/test loss, test accuracy"
    )
    default_steps: ClassVar[int] = 2000
    default_batch_size: ClassVar[int | None] = 128
    target: ClassVar[Target | None] = Target("test_accuracy", 0.6, "max")
    default_hyperparameters: ClassVar[dict[str, Any]] = {}

    def __post_init__(self) -> None:
        require_positive(self, "batch_size", "width", "eval_train_examples", "eval_test_examples")

    def check(self) -> None:
        data.cifar10_paths(self.cifar_dir)

    def build(self, seed: int) -> CNNTrial:
        split = data.load_cifar10_split(self.cifar_dir)  # type: ignore[arg-type]
        w = self.width
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = nn.Sequential(
                nn.Conv2d(3, w, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(w, 2 * w, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(2 * w, 4 * w, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(4 * w * 4 * 4, 256),
                nn.ReLU(),
                nn.Linear(256, 10),
            )
        return CNNTrial(self, split, model, seed)


class CNNTrial(Trial):
    def __init__(self, problem: CNNCifar10, split: data.Split, model: nn.Module, seed: int) -> None:
        self.problem = problem
        self.split = split
        self.model = model
        self.batches = Batches(len(split.y_train), problem.batch_size, seeded_generator(seed, 1))
        self.augment_generator = seeded_generator(seed, 2)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.model.parameters())

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        g = self.augment_generator
        n = len(x)
        flip = torch.rand(n, generator=g) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        padded = F.pad(x, (4, 4, 4, 4))
        dx = torch.randint(0, 9, (n,), generator=g)
        dy = torch.randint(0, 9, (n,), generator=g)
        return torch.stack([padded[i, :, dy[i] : dy[i] + 32, dx[i] : dx[i] + 32] for i in range(n)])

    def step(self, optimizer: torch.optim.Optimizer, t: int) -> dict[str, float]:
        idx = self.batches.next()
        x = self.split.x_train[idx]
        if self.problem.augment:
            x = self.augment(x)
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(x), self.split.y_train[idx])
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    @torch.no_grad()
    def _scores(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        loss, correct = 0.0, 0
        for i in range(0, len(y), 1000):
            logits = self.model(x[i : i + 1000])
            loss += F.cross_entropy(logits, y[i : i + 1000], reduction="sum").item()
            correct += int((logits.argmax(1) == y[i : i + 1000]).sum())
        return loss / len(y), correct / len(y)

    def evaluate(self) -> dict[str, float]:
        s, p = self.split, self.problem
        train_loss, _ = self._scores(s.x_train[: p.eval_train_examples], s.y_train[: p.eval_train_examples])
        test_loss, accuracy = self._scores(s.x_test[: p.eval_test_examples], s.y_test[: p.eval_test_examples])
        return {"train_loss": train_loss, "test_loss": test_loss, "test_accuracy": accuracy}
