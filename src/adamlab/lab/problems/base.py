"""The problem protocol: what the runner needs from a problem to train and score it.

A *problem* is a named, self-describing unit (data, model, loss, metrics, budget, target). The
runner only ever does this with one::

    problem = get_problem("logreg-digits", batch_size=64)   # options are the problem's fields
    trial = problem.build(seed)                             # everything, deterministic in seed
    opt = adamlab.create(name, trial.parameters(), **hyperparameters)
    for t in range(1, steps + 1):
        step_metrics = trial.step(opt, t)                   # {"loss": ..., maybe more}
        ...
    final = trial.evaluate()                                # {"test_accuracy": ..., ...}

So a problem provides:

``name``, ``description``
    The registry name and a one-line description (shown by ``adamlab list problems``).
``default_steps``, ``default_batch_size``
    The budget a sweep uses when it sets none, and the minibatch size (``None`` for full-batch or
    online problems).
``target``
    A :class:`Target` (metric name, value, direction) for time-to-target scoring, or ``None``.
``default_hyperparameters``
    Hyperparameters used when the sweep does not set them (``{"lr": 0.1}`` for Reddi's problem),
    each only for optimizers that take that keyword; the problem's suggestion, never forced over
    the sweep's.
``options()``
    The options that define this instance (part of each job's id, so changing one re-runs jobs).
``check()`` (optional)
    Raises ``LabError`` when the problem cannot run here (a dataset file missing); called when a
    sweep is expanded, so such errors stop the sweep before anything runs or is stored.
``build(seed) -> Trial``
    Builds data, model and state for one seed. Two builds with the same seed and options must
    train identically (the runner runs each job single-threaded to make that hold bit for bit).

A :class:`Trial` provides ``parameters()`` (what the optimizer gets), ``step(optimizer, t)``
(one training step at 1-based step ``t``: zero grads, forward, backward, ``optimizer.step()``, and
whatever the problem defines around it, such as a projection or a step-size schedule; returns
``{"loss": float, ...}``: every value is stored as a step-wise metric), and ``evaluate()``
(a dict of metrics of the current parameters; the runner calls it every ``eval_every`` steps and
at the end).

Built-in problems subclass :class:`Problem` as dataclasses whose fields are their options. A user
problem (named ``"package.module:factory"`` in a spec) may subclass it too, or be any object with
these attributes.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch


@dataclass(frozen=True)
class Target:
    """A value of a metric that counts as solved: ``metric <= value`` (``mode="min"``) or ``>=`` (``"max"``)."""

    metric: str
    value: float
    mode: str = "min"

    def __post_init__(self) -> None:
        if self.mode not in ("min", "max"):
            raise ValueError(f"Target.mode must be 'min' or 'max', got {self.mode!r}")

    def reached(self, value: float | None) -> bool:
        if value is None or not math.isfinite(value):
            return False
        return value <= self.value if self.mode == "min" else value >= self.value

    def describe(self) -> str:
        return f"{self.metric} {'<=' if self.mode == 'min' else '>='} {self.value:g}"


class Trial(ABC):
    """One problem built for one seed: parameters, a training step, an evaluation."""

    @abstractmethod
    def parameters(self) -> Iterable[torch.Tensor] | Iterable[dict[str, Any]]:
        """What the optimizer is built over (tensors, or torch-style param groups)."""

    @abstractmethod
    def step(self, optimizer: torch.optim.Optimizer, t: int) -> dict[str, float]:
        """One training step at 1-based step ``t``; returns at least ``{"loss": ...}``."""

    @abstractmethod
    def evaluate(self) -> dict[str, float]:
        """Metrics of the current parameters (no parameter changes, no randomness consumed)."""


class Problem(ABC):
    """Base class of the built-in problems; subclasses are dataclasses whose fields are the options."""

    name: ClassVar[str]
    description: ClassVar[str]
    default_steps: ClassVar[int]
    default_batch_size: ClassVar[int | None] = None
    target: ClassVar[Target | None] = None
    default_hyperparameters: ClassVar[dict[str, Any]] = {}

    def options(self) -> dict[str, Any]:
        """The fields that define this instance (all of them, defaults included)."""
        if dataclasses.is_dataclass(self):
            return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {}

    def check(self) -> None:
        """Raise :class:`~adamlab.lab.errors.LabError` if the problem cannot run here (a dataset file
        missing...). Called once per problem when a sweep is expanded, before any job runs; optional
        for user problems."""

    @abstractmethod
    def build(self, seed: int) -> Trial:
        """Data, model and state for ``seed``, deterministic in ``seed`` and the options."""


REQUIRED = ("name", "description", "default_steps", "build")


def check_problem(obj: Any, where: str) -> None:
    """Raise TypeError unless ``obj`` has what the runner uses (for user problems)."""
    missing = [a for a in REQUIRED if not hasattr(obj, a)]
    if missing:
        raise TypeError(f"{where} returned {type(obj).__name__}, which lacks {', '.join(missing)} of the problem protocol")
    if not callable(obj.build):
        raise TypeError(f"{where}: build must be a method build(seed) -> trial")


def require_positive(problem: Any, *keys: str) -> None:
    """Raise ValueError naming the first option among ``keys`` that is below 1."""
    for key in keys:
        if getattr(problem, key) < 1:
            raise ValueError(f"{key} must be >= 1, got {getattr(problem, key)!r}")


def seeded_generator(seed: int, stream: int = 0) -> torch.Generator:
    """A torch generator for ``seed``; different ``stream`` numbers give independent streams of one seed."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + stream)


class Batches:
    """Minibatch indices: a fresh permutation of ``range(n)`` each epoch from ``generator``, the last
    incomplete batch of an epoch dropped (so every step sees ``batch_size`` examples)."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        self.n = n
        self.batch_size = min(batch_size, n)
        self.generator = generator
        self._perm = torch.empty(0, dtype=torch.int64)
        self._pos = 0

    def next(self) -> torch.Tensor:
        if self._pos + self.batch_size > len(self._perm):
            self._perm = torch.randperm(self.n, generator=self.generator)
            self._pos = 0
        out = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return out
