"""Two-dimensional test functions with known minima, for trajectories: Rosenbrock, Beale, an ill-conditioned quadratic.

Each problem optimizes one float64 parameter ``(x, y)`` from a fixed start, full-batch, no noise.
Step-wise metrics: ``loss`` (the value at the point before the step, the one whose gradient is
used), and ``x``, ``y`` (the iterate after the step), so the stored ``x``/``y`` series is the
trajectory. ``evaluate()`` gives ``loss``, ``distance_to_optimum`` (Euclidean), ``x`` and ``y``.

Options shared by all three: ``start`` (the initial point) and ``jitter``: the start is
``start + jitter * N(0, I)`` drawn from the seed, so with ``jitter = 0`` (the default) the seed
does not matter and every seed follows the same trajectory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from .base import Problem, Target, Trial, seeded_generator


class Surface(Problem):
    """A 2-D function ``value(x, y)`` with a known minimizer ``optimum``."""

    optimum: ClassVar[tuple[float, float]]
    default_steps: ClassVar[int] = 2000
    default_batch_size: ClassVar[int | None] = None
    default_hyperparameters: ClassVar[dict[str, Any]] = {"lr": 0.05}
    start: tuple[float, float]
    jitter: float

    def value(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _check(self) -> None:
        self.start = tuple(float(v) for v in self.start)  # type: ignore[assignment]
        if len(self.start) != 2:
            raise ValueError(f"start must be a pair (x, y), got {self.start!r}")
        if not self.jitter >= 0:
            raise ValueError(f"jitter must be >= 0, got {self.jitter!r}")

    def build(self, seed: int) -> SurfaceTrial:
        start = torch.tensor(self.start, dtype=torch.float64)
        if self.jitter > 0:
            start = start + self.jitter * torch.randn(2, generator=seeded_generator(seed), dtype=torch.float64)
        return SurfaceTrial(self, start)


class SurfaceTrial(Trial):
    def __init__(self, problem: Surface, start: torch.Tensor) -> None:
        self.problem = problem
        self.xy = start.clone().requires_grad_(True)

    def parameters(self) -> list[torch.Tensor]:
        return [self.xy]

    def step(self, optimizer: torch.optim.Optimizer, t: int) -> dict[str, float]:
        optimizer.zero_grad(set_to_none=True)
        loss = self.problem.value(self.xy[0], self.xy[1])
        loss.backward()
        optimizer.step()
        x, y = self.xy.tolist()
        return {"loss": loss.item(), "x": x, "y": y}

    def evaluate(self) -> dict[str, float]:
        with torch.no_grad():
            loss = self.problem.value(self.xy[0], self.xy[1]).item()
        x, y = self.xy.tolist()
        ox, oy = self.problem.optimum
        return {"loss": loss, "distance_to_optimum": math.hypot(x - ox, y - oy), "x": x, "y": y}


@dataclass
class Rosenbrock(Surface):
    """``(a - x)^2 + b (y - x^2)^2`` with ``a = 1``, ``b = 100``; minimum 0 at ``(1, 1)``, start ``(-1.2, 1)``."""

    start: tuple[float, float] = (-1.2, 1.0)
    jitter: float = 0.0

    name: ClassVar[str] = "rosenbrock"
    description: ClassVar[str] = (
        "Rosenbrock's banana (a=1, b=100) from (-1.2, 1); 2-D trajectory; metrics: loss, distance to (1, 1)"
    )
    optimum: ClassVar[tuple[float, float]] = (1.0, 1.0)
    target: ClassVar[Target | None] = Target("loss", 1e-3, "min")

    def __post_init__(self) -> None:
        self._check()

    def value(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


@dataclass
class Beale(Surface):
    """``(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2``; minimum 0 at ``(3, 0.5)``, start ``(1, 1.5)``."""

    start: tuple[float, float] = (1.0, 1.5)
    jitter: float = 0.0

    name: ClassVar[str] = "beale"
    description: ClassVar[str] = "Beale's function from (1, 1.5); 2-D trajectory; metrics: loss, distance to (3, 0.5)"
    optimum: ClassVar[tuple[float, float]] = (3.0, 0.5)
    target: ClassVar[Target | None] = Target("loss", 1e-3, "min")

    def __post_init__(self) -> None:
        self._check()

    def value(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


@dataclass
class Quadratic(Surface):
    """``0.5 (u^2 + condition * w^2)`` where ``(u, w)`` is ``(x, y)`` rotated by ``rotation`` degrees;
    minimum 0 at the origin, Hessian eigenvalues 1 and ``condition``, start ``(-3, 1)``.

    With ``rotation = 0`` the axes are the eigenvectors (a diagonal preconditioner such as Adam's
    can fix the conditioning); a rotation of 45 degrees makes the Hessian non-diagonal.
    """

    condition: float = 100.0
    rotation: float = 0.0
    start: tuple[float, float] = (-3.0, 1.0)
    jitter: float = 0.0

    name: ClassVar[str] = "quadratic"
    description: ClassVar[str] = (
        "ill-conditioned quadratic 0.5(x^2 + 100 y^2) (condition and rotation are options); 2-D trajectory; "
        "metrics: loss, distance to (0, 0)"
    )
    optimum: ClassVar[tuple[float, float]] = (0.0, 0.0)
    target: ClassVar[Target | None] = Target("loss", 1e-4, "min")

    def __post_init__(self) -> None:
        self._check()
        if not self.condition >= 1:
            raise ValueError(f"condition must be >= 1, got {self.condition!r}")

    def value(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        a = math.radians(self.rotation)
        u = math.cos(a) * x + math.sin(a) * y
        w = -math.sin(a) * x + math.cos(a) * y
        return 0.5 * (u**2 + self.condition * w**2)
