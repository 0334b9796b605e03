"""Shared test harness: random float64 trajectories and their comparison.

A *trajectory* is the list of all params (flattened, concatenated) after every step of an optimizer
fed the same pseudo-random gradients. Two optimizers agree when their trajectories agree.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import pytest
import torch

SHAPES: tuple[tuple[int, ...], ...] = ((4, 3), (7,), (2, 3, 2), (1,), (5, 1, 2))


def make_params(seed: int = 0, shapes: Sequence[tuple[int, ...]] = SHAPES, dtype=torch.float64) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype).requires_grad_() for s in shapes]


def trajectory(
    make: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    steps: int = 60,
    seed: int = 0,
    shapes: Sequence[tuple[int, ...]] = SHAPES,
    dtype=torch.float64,
    skip: Callable[[int, int], bool] | None = None,
    before_step: Callable[[torch.optim.Optimizer, int], None] | None = None,
    after_step: Callable[[torch.optim.Optimizer, int], None] | None = None,
    grad_scale: float = 1.0,
) -> list[torch.Tensor]:
    """Run ``steps`` steps with N(0, grad_scale^2) gradients (plus 0.1 * param, so the problem has a pull).

    ``skip(step, index)`` True leaves that param's grad None on that step. Returns the params after
    every step as float64 vectors.
    """
    params = make_params(seed, shapes, dtype)
    opt = make(params)
    gen = torch.Generator().manual_seed(seed + 1000)
    out = []
    for t in range(steps):
        for i, p in enumerate(params):
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float64) * grad_scale
            p.grad = None if skip is not None and skip(t, i) else (noise + 0.1 * p.detach().double()).to(dtype)
        if before_step is not None:
            before_step(opt, t)
        opt.step()
        if after_step is not None:
            after_step(opt, t)
        out.append(torch.cat([p.detach().double().flatten() for p in params]))
    return out


def max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    assert len(a) == len(b)
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def assert_trajectories_close(a: list[torch.Tensor], b: list[torch.Tensor], tol: float = 1e-12) -> None:
    d = max_diff(a, b)
    moved = max((x - a[0]).abs().max().item() for x in a)
    assert moved > 1e-3, "the trajectory barely moved: the comparison would prove nothing"
    assert d <= tol, f"trajectories differ by {d:.3e} (tolerance {tol:.0e})"


def assert_load_refused_unchanged(opt: torch.optim.Optimizer, state_dict: dict, match: str) -> None:
    """``opt.load_state_dict(state_dict)`` raises a ValueError matching ``match`` and leaves ``opt`` as it was."""
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(state_dict)
    after = opt.state_dict()
    assert before["param_groups"] == after["param_groups"]
    assert before["state"].keys() == after["state"].keys()
    for i, s in before["state"].items():
        assert s.keys() == after["state"][i].keys()
        assert all(torch.equal(v, after["state"][i][k]) for k, v in s.items())
