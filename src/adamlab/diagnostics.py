"""Opt-in observers of an optimizer's steps: effective step sizes, update ratios, AMSGrad max swaps, SWATS switches.

Attach them with :func:`attach`, which registers torch.optim step pre/post hooks on any optimizer
(adamlab's or torch's); an optimizer with nothing attached runs no diagnostic code at all, so
diagnostics cost nothing when off. Each observer keeps plain Python numbers, ready for a report::

    steps = EffectiveStepSize()
    handle = attach(opt, steps, UpdateRatio())
    ... training ...
    steps.max_ratio_to_bound    # <= 1 for Adam (Kingma & Ba 2015, section 2.1)
    handle.remove()

The pre-step hook copies what an observer needs before the step (the params, AMSGrad's max); the
post-step hook compares. Copies are made only for the observers attached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch


def adam_step_bound(lr: float, beta1: float, beta2: float) -> float:
    r"""Adam's bound on its per-coordinate step :math:`|\Delta_t|` (eps = 0).

    Reference: Kingma & Ba, *Adam: A Method for Stochastic Optimization* (ICLR 2015), section 2.1.

    :math:`\alpha(1-\beta_1)/\sqrt{1-\beta_2}` when :math:`(1-\beta_1) > \sqrt{1-\beta_2}`, else
    :math:`\alpha`.
    """
    ratio = (1 - beta1) / math.sqrt(1 - beta2)
    return lr * ratio if ratio > 1 else lr


class Observer:
    """Base class: ``before(optimizer)`` runs before each step, ``after(optimizer)`` after it."""

    def before(self, optimizer: torch.optim.Optimizer) -> None:
        """Copy what the observation needs before the step (default: nothing)."""

    def after(self, optimizer: torch.optim.Optimizer) -> None:
        raise NotImplementedError


def _params(optimizer: torch.optim.Optimizer) -> list[tuple[dict[str, Any], torch.Tensor]]:
    return [(group, p) for group in optimizer.param_groups for p in group["params"]]


@dataclass
class _Snapshots(Observer):
    """Shared by the observers that compare params before and after a step."""

    _before: list[torch.Tensor | None] = field(default_factory=list, repr=False)

    def before(self, optimizer: torch.optim.Optimizer) -> None:
        self._before = [p.detach().clone() if p.grad is not None else None for _, p in _params(optimizer)]


@dataclass
class EffectiveStepSize(_Snapshots):
    """Per-coordinate step sizes :math:`|\\Delta\\theta|` of every step, against Adam's bound.

    After each step records, over all coordinates that moved: the largest :math:`|\\Delta\\theta|`,
    its median, and the largest ratio to :func:`adam_step_bound` of the coordinate's group (using the
    group's ``lr`` and ``betas``). ``histogram`` counts steps of each coordinate in decades of
    :math:`|\\Delta\\theta|/\\text{lr}` (keys ``-8 ... 1``: the decade's exponent).
    """

    max_step: list[float] = field(default_factory=list)
    median_step: list[float] = field(default_factory=list)
    max_ratio_to_bound: float = 0.0
    histogram: dict[int, int] = field(default_factory=dict)

    def after(self, optimizer: torch.optim.Optimizer) -> None:
        steps, worst = [], 0.0
        for (group, p), old in zip(_params(optimizer), self._before):
            if old is None:
                continue
            delta = (p.detach() - old).abs().double().flatten()
            steps.append(delta)
            beta1, beta2 = group.get("betas", (0.0, 0.0))[:2]
            bound = adam_step_bound(float(group["lr"]), beta1, beta2)
            if bound > 0:
                worst = max(worst, delta.max().item() / bound)
                # decade k: ratio in [10^k, 10^(k+1)), with 1e-6 of slack for steps rounded just below
                decades = torch.floor(torch.log10(delta[delta > 0] / float(group["lr"])) + 1e-6).clamp(-8, 1).long()
                for decade, count in enumerate(torch.bincount(decades + 8, minlength=10).tolist(), start=-8):
                    if count:
                        self.histogram[decade] = self.histogram.get(decade, 0) + count
        if steps:
            every = torch.cat(steps)
            self.max_step.append(every.max().item())
            self.median_step.append(every.median().item())
            self.max_ratio_to_bound = max(self.max_ratio_to_bound, worst)


@dataclass
class UpdateRatio(_Snapshots):
    """Per step, :math:`\\|\\Delta\\theta\\| / \\|\\theta\\|` of each param tensor (index in param-group order)."""

    ratios: list[dict[int, float]] = field(default_factory=list)

    def after(self, optimizer: torch.optim.Optimizer) -> None:
        row = {}
        for i, ((_, p), old) in enumerate(zip(_params(optimizer), self._before)):
            if old is not None:
                norm = old.double().norm().item()
                row[i] = (p.detach().double() - old.double()).norm().item() / norm if norm > 0 else math.inf
        self.ratios.append(row)


@dataclass
class AMSGradSwaps(Observer):
    """How often AMSGrad's running max :math:`\\hat v` changes hands (the "swap" analysis of *A New
    Perspective in Understanding of Adam-Type Algorithms and Beyond*, 2019).

    A swap at step t for a coordinate is :math:`v_t > \\hat v_{t-1}`: the max is taken over by the
    current estimate. ``counts[i]`` holds, per param tensor i, a tensor with the number of swaps of
    each coordinate in each interval of ``interval`` steps (shape ``(intervals, *param.shape)``);
    ``fraction`` the share of coordinates that swapped at each step. Needs an optimizer with a
    ``max_exp_avg_sq`` state (adamlab or torch Adam/AdamW with ``amsgrad=True``).
    """

    interval: int = 100
    counts: dict[int, torch.Tensor] = field(default_factory=dict)
    fraction: list[float] = field(default_factory=list)
    _max: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)
    _step: int = 0

    def before(self, optimizer: torch.optim.Optimizer) -> None:
        self._max = {}
        for i, (_, p) in enumerate(_params(optimizer)):
            vmax = optimizer.state.get(p, {}).get("max_exp_avg_sq")
            if vmax is not None:
                self._max[i] = vmax.detach().clone()

    def after(self, optimizer: torch.optim.Optimizer) -> None:
        slot = self._step // self.interval
        self._step += 1
        swapped = total = 0
        for i, (_, p) in enumerate(_params(optimizer)):
            state = optimizer.state.get(p, {})
            if "max_exp_avg_sq" not in state or p.grad is None:
                continue
            old = self._max.get(i, torch.zeros_like(state["max_exp_avg_sq"]))
            swaps = state["max_exp_avg_sq"].detach() > old  # the max moved: v_t took it over
            if i not in self.counts or self.counts[i].shape[0] <= slot:
                grown = torch.zeros((slot + 1, *p.shape), dtype=torch.int32)
                if i in self.counts:
                    grown[: self.counts[i].shape[0]] = self.counts[i]
                self.counts[i] = grown
            self.counts[i][slot] += swaps.to(torch.int32).cpu()
            swapped += int(swaps.sum())
            total += swaps.numel()
        self.fraction.append(swapped / total if total else 0.0)


@dataclass
class SWATSSwitches(Observer):
    """The step at which each SWATS param tensor switched to SGD, and its learned SGD rate."""

    switch_step: dict[int, int] = field(default_factory=dict)
    sgd_lr: dict[int, float] = field(default_factory=dict)

    def after(self, optimizer: torch.optim.Optimizer) -> None:
        for i, (_, p) in enumerate(_params(optimizer)):
            state = optimizer.state.get(p, {})
            if i not in self.switch_step and "switch_step" in state and int(state["switch_step"]) > 0:
                self.switch_step[i] = int(state["switch_step"])
                self.sgd_lr[i] = float(state["sgd_lr"])


class Handle:
    """Removes the hooks :func:`attach` registered."""

    def __init__(self, handles: list[Any]) -> None:
        self._handles = handles

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def attach(optimizer: torch.optim.Optimizer, *observers: Observer) -> Handle:
    """Run ``observers`` around every ``optimizer.step()`` until ``Handle.remove()``."""

    def pre(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        with torch.no_grad():
            for obs in observers:
                obs.before(opt)

    def post(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        with torch.no_grad():
            for obs in observers:
                obs.after(opt)

    return Handle([optimizer.register_step_pre_hook(pre), optimizer.register_step_post_hook(post)])
