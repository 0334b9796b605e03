"""Reddi et al.'s online convex counterexample (Reddi et al. 2018, also discussed in the AdamAL paper): Adam can converge to the worst point.

The online sequence on the feasible set ``X = [-1, 1]``, for ``t = 1, 2, ...``::

    f_t(x) = C x   if t mod 3 == 1
    f_t(x) = -x    otherwise

with ``C = 3`` by default. Over each period of three steps the sum is ``(C - 2) x``, so for ``C > 2``
the best fixed point in hindsight is ``x* = -1``. With ``beta1 = 0`` and a small ``beta2`` (the
optimizer's choice, e.g. ``adam`` with ``betas=(0, 0.1)``) Adam's second moment forgets the rare
large gradient ``C`` quickly, the two ``-1`` gradients then take larger steps than the ``C`` one,
and ``x`` drifts to ``+1``; AMSGrad's running max of ``v`` keeps the steps of the ``-1`` gradients
small and ``x`` goes to ``-1``.

How the problem runs a step (part of the problem's definition, as in the seeds):

- *step size schedule* ``alpha_t = alpha / sqrt(t)``: before step ``t`` the problem sets every
  param group's ``lr`` to ``base_lr / sqrt(t)``, where ``base_lr`` is the group's ``lr`` when the
  trial first sees the optimizer (the sweep's ``lr``; 0.1 when the sweep sets none). Option
  ``lr_schedule="constant"`` leaves ``lr`` alone.
- *projection*: after ``optimizer.step()`` the iterate is clamped to ``[-1, 1]`` (the Euclidean
  projection; Reddi et al. project in the ``sqrt(v)``-weighted norm, which in one dimension is the
  same clamp).

Step-wise metrics: ``loss`` = ``f_t(x_t)``, the loss of the point played at step ``t``, and ``x`` =
``x_{t+1}``, the iterate after the step. ``evaluate()`` gives ``x``, ``regret`` =
``sum_t f_t(x_t) - min_{x in X} sum_t f_t(x)`` and ``average_regret`` = regret / T, and
``distance_to_optimum`` = ``|x - x*|``. The problem has no randomness: the seed is accepted and
ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from .base import Problem, Target, Trial


@dataclass
class Reddi(Problem):
    """Options: ``C`` (the rare gradient, > 2), ``x0`` (start, in [-1, 1]), ``lr_schedule`` ("inverse_sqrt" | "constant")."""

    C: float = 3.0
    x0: float = 0.0
    lr_schedule: str = "inverse_sqrt"

    name: ClassVar[str] = "reddi"
    description: ClassVar[str] = (
        "Reddi et al.'s online convex counterexample f_t(x) = 3x (t mod 3 = 1) else -x on [-1, 1], lr/sqrt(t); "
        "metrics: final x, average regret"
    )
    default_steps: ClassVar[int] = 3000
    default_batch_size: ClassVar[int | None] = None
    target: ClassVar[Target | None] = Target("average_regret", 0.1, "min")
    default_hyperparameters: ClassVar[dict[str, Any]] = {"lr": 0.1}

    def __post_init__(self) -> None:
        if not self.C > 2:
            raise ValueError(f"C must be > 2 (so that x* = -1), got {self.C!r}")
        if not -1 <= self.x0 <= 1:
            raise ValueError(f"x0 must be in [-1, 1], got {self.x0!r}")
        if self.lr_schedule not in ("inverse_sqrt", "constant"):
            raise ValueError(f"lr_schedule must be 'inverse_sqrt' or 'constant', got {self.lr_schedule!r}")

    def build(self, seed: int) -> ReddiTrial:
        return ReddiTrial(self)


class ReddiTrial(Trial):
    def __init__(self, problem: Reddi) -> None:
        self.problem = problem
        self.x = torch.tensor([problem.x0], dtype=torch.float64, requires_grad=True)
        self.t = 0
        self.loss_sum = 0.0  # sum_t f_t(x_t)
        self.coef_sum = 0.0  # sum_t c_t, so that sum_t f_t(x) = coef_sum * x
        self._base_lrs: list[Any] | None = None

    def parameters(self) -> list[torch.Tensor]:
        return [self.x]

    def coefficient(self, t: int) -> float:
        return self.problem.C if t % 3 == 1 else -1.0

    def step(self, optimizer: torch.optim.Optimizer, t: int) -> dict[str, float]:
        if self._base_lrs is None:
            self._base_lrs = [g["lr"] for g in optimizer.param_groups]
        if self.problem.lr_schedule == "inverse_sqrt":
            for group, base in zip(optimizer.param_groups, self._base_lrs):
                group["lr"] = base / math.sqrt(t)
        c = self.coefficient(t)
        optimizer.zero_grad(set_to_none=True)
        loss = c * self.x.sum()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            self.x.clamp_(-1.0, 1.0)
        self.t = t
        self.loss_sum += loss.item()
        self.coef_sum += c
        return {"loss": loss.item(), "x": self.x.item()}

    def evaluate(self) -> dict[str, float]:
        x = self.x.item()
        out = {"x": x, "distance_to_optimum": abs(x + 1.0)}
        if self.t > 0:
            regret = self.loss_sum + abs(self.coef_sum)  # min over [-1, 1] of coef_sum * x is -|coef_sum|
            out["regret"] = regret
            out["average_regret"] = regret / self.t
        return out
