"""adamlab.diagnostics: each observer against numbers computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

import adamlab
from adamlab.diagnostics import AMSGradSwaps, EffectiveStepSize, SWATSSwitches, UpdateRatio, adam_step_bound, attach


def test_adam_step_bound_is_seed_004s():
    assert adam_step_bound(1e-3, 0.9, 0.999) == pytest.approx(1e-3 * 0.1 / math.sqrt(0.001))
    assert adam_step_bound(1e-3, 0.99, 0.999) == 1e-3  # (1 - b1) <= sqrt(1 - b2): the bound is lr


def test_effective_step_of_adams_first_step_is_lr():
    """With eps = 0, Adam's first step is lr * sign(g) in every coordinate: ratio to the bound sqrt(1e-3)/0.1."""
    p = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    opt = adamlab.Adam([p], lr=0.01, eps=0.0)
    steps = EffectiveStepSize()
    attach(opt, steps)
    p.grad = torch.tensor([0.5, -4.0, 1e-3])
    opt.step()
    assert steps.max_step == [pytest.approx(0.01, rel=1e-6)] and steps.median_step == [pytest.approx(0.01, rel=1e-6)]
    assert steps.max_ratio_to_bound == pytest.approx(math.sqrt(0.001) / 0.1, rel=1e-6)
    assert steps.histogram == {0: 3}


def test_adam_approaches_but_never_exceeds_its_bound():
    """Kingma & Ba's worst case: a large gradient after many tiny ones gives a step near lr(1-b1)/sqrt(1-b2)."""
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(20, generator=gen, requires_grad=True)
    opt = adamlab.Adam([p], lr=0.01, eps=0.0)
    steps = EffectiveStepSize()
    attach(opt, steps)
    for t in range(3000):
        p.grad = torch.randn(20, generator=gen) * (1e-6 if t < 2999 else 10.0)
        opt.step()
    # at t = 3000 the bias corrections leave sqrt(1 - 0.999^3000) / (1 - 0.9^3000) = 0.975 of the bound
    assert 0.95 < steps.max_ratio_to_bound <= 1.0
    assert steps.max_step[-1] == pytest.approx(steps.max_ratio_to_bound * adam_step_bound(0.01, 0.9, 0.999))


def test_update_ratio_of_an_sgd_step():
    p = torch.tensor([3.0, 4.0], requires_grad=True)
    q = torch.ones(2, requires_grad=True)
    opt = torch.optim.SGD([p, q], lr=0.1)
    ratio = UpdateRatio()
    attach(opt, ratio)
    p.grad = torch.tensor([1.0, 0.0])
    opt.step()
    assert ratio.ratios == [{0: pytest.approx(0.1 / 5.0)}]  # q had no grad: not observed


def test_amsgrad_swaps_counted_per_coordinate_and_interval():
    """v_t = 0.5 v + 0.5 g^2 with g = 1, 0.1, 3, 0: v = 0.5, 0.255, 4.6275, 2.31 -> the max moves at steps 1 and 3."""
    p = torch.zeros(1, requires_grad=True)
    opt = adamlab.Adam([p], lr=0.1, betas=(0.0, 0.5), amsgrad=True)
    swaps = AMSGradSwaps(interval=2)
    handle = attach(opt, swaps)
    for g in (1.0, 0.1, 3.0, 0.0):
        p.grad = torch.tensor([g])
        opt.step()
    assert swaps.fraction == [1.0, 0.0, 1.0, 0.0]
    assert swaps.counts[0].tolist() == [[1], [1]]
    handle.remove()
    assert not opt._optimizer_step_pre_hooks and not opt._optimizer_step_post_hooks  # off: nothing runs


def test_swats_switch_is_recorded():
    """A constant gradient makes the projected rate constant, so SWATS switches early (per tensor)."""
    p = torch.zeros(4, requires_grad=True)
    opt = adamlab.SWATS([p], lr=1e-3)
    switches = SWATSSwitches()
    attach(opt, switches)
    for _ in range(10):
        p.grad = torch.full((4,), 0.5)
        opt.step()
    assert switches.switch_step == {0: int(opt.state[p]["switch_step"])} and switches.switch_step[0] > 0
    assert switches.sgd_lr[0] == pytest.approx(float(opt.state[p]["sgd_lr"])) and switches.sgd_lr[0] > 0
