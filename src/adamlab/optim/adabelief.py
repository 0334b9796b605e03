"""AdaBelief (Zhuang et al. 2020): Adam whose second moment is the EMA of (g - m)^2, the "belief" in g."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from . import _checks
from ._base import ADAM_CHECKS, RuleOptimizer, decay, fresh_state, hyperparameters


class AdaBelief(RuleOptimizer):
    r"""AdaBelief, as the authors' package ``adabelief-pytorch`` 0.2.1 computes it.

    .. math::
        \theta_{t-1} &\leftarrow \theta_{t-1}(1 - \alpha\lambda) \quad\text{(decoupled, default), or }
            \theta_{t-1}(1 - \lambda) \text{ (fixed\_decay), or }
            g_t \leftarrow g_t + \lambda\theta_{t-1} \text{ (L2)} \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t \\
        s_t &= \beta_2 s_{t-1} + (1-\beta_2)(g_t - m_t)^2 + \epsilon \\
        \hat s_t &= \max(\hat s_{t-1}, s_t) \text{ if amsgrad else } s_t \\
        \theta_t &= \theta_{t-1} - \frac{\alpha}{1-\beta_1^t}\,
            \frac{m_t}{\sqrt{\hat s_t}/\sqrt{1-\beta_2^t} + \epsilon}

    With ``rectify=True`` the last line is the RAdam step on :math:`(m_t, \hat s_t)`: with
    :math:`\rho_\infty = 2/(1-\beta_2) - 1`, :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)`
    and :math:`r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}`,

    .. math::
        \theta_t = \theta_{t-1} - \frac{\alpha}{1-\beta_1^t}\begin{cases}
            r_t\sqrt{1-\beta_2^t}\; m_t / (\sqrt{\hat s_t} + \epsilon) & \rho_t \ge 5 \\
            m_t & \rho_t < 5 \text{ and degenerated\_to\_sgd} \\
            0 & \text{otherwise (no step; the moments and the decay still apply)}
        \end{cases}

    Reference: Zhuang et al., *AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
    Gradients* (NeurIPS 2020), Algorithm 2; numerics exactly as the authors' package
    ``adabelief-pytorch==0.2.1`` (``adabelief_pytorch.AdaBelief``), checked against it in float64:

    * ``eps=1e-16`` enters twice: added to :math:`s_t` *and stored* (so it accumulates in the
      state), then again to the bias-corrected :math:`\sqrt{\hat s_t}`. In rectified steps it is
      added to the *un*-corrected :math:`\sqrt{\hat s_t}`.
    * AMSGrad keeps the max over the stored :math:`s_t` (eps included) and bias-corrects the max.
    * Rectification threshold :math:`\rho_t \ge 5` (torch's RAdam uses :math:`> 5`), and the
      package's ``degenerated_to_sgd=True``: below it, the bias-corrected momentum step.
    * Weight decay: the package's default ``weight_decouple=True`` is our
      ``decoupled_weight_decay=True`` (``p *= 1 - lr * weight_decay`` before the step);
      ``fixed_decay=True`` makes it ``p *= 1 - weight_decay``; ``decoupled_weight_decay=False`` is
      L2 (``g += weight_decay * p``).

    Deviations from the package, each deliberate:

    * ``rectify=False`` by default (the package defaults to ``True``): the DESIGN convention is the
      paper's AdaBelief; ``rectify=True`` gives the package's default behaviour.
    * With ``amsgrad=True`` and ``rectify=True`` we use the max :math:`\hat s_t` in rectified steps;
      the package keeps the max but divides by the current :math:`s_t` there (the option has no
      effect on rectified steps), which we take to be an oversight.
    * The keyword is ``decoupled_weight_decay`` (adamlab's name) instead of ``weight_decouple``;
      ``maximize`` is added; nothing is printed.
    * The L2 form does not write into ``p.grad`` (the package adds the decay to the gradient in
      place). Half-precision params keep their state in their own dtype as torch.optim does (the
      package upcasts float16 params to float32 for the step and keeps float32 state).
    * The rectifier is a pure function of the step, computed each step (the package caches it per
      group in a ``buffer`` list, which also lands in its state_dict; the values are the same).

    State per parameter: ``step``, ``exp_avg`` (:math:`m`), ``exp_avg_var`` (:math:`s`, eps
    included) and, with ``amsgrad``, ``max_exp_avg_var``: the package's names.

    Args:
        params: iterable of tensors or param-group dicts.
        lr: learning rate :math:`\alpha` (>= 0).
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon` >= 0.
        weight_decay: :math:`\lambda` >= 0.
        amsgrad: keep the running max of :math:`s`.
        decoupled_weight_decay: decoupled decay (default) or, False, L2.
        fixed_decay: with decoupled decay, do not scale the decay by ``lr``.
        rectify: RAdam-style rectified update.
        degenerated_to_sgd: in rectify mode, take an SGD-with-momentum step while
            :math:`\rho_t < 5` (default) instead of no step.
        maximize: ascend instead of descend.
    """

    _checks = {
        **ADAM_CHECKS,
        "amsgrad": _checks.flag,
        "decoupled_weight_decay": _checks.flag,
        "fixed_decay": _checks.flag,
        "rectify": _checks.flag,
        "degenerated_to_sgd": _checks.flag,
    }

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-16,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        decoupled_weight_decay: bool = True,
        fixed_decay: bool = False,
        rectify: bool = False,
        degenerated_to_sgd: bool = True,
        maximize: bool = False,
        engine: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), engine=engine)

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, torch.Tensor]:
        slots = ("exp_avg", "exp_avg_var", "max_exp_avg_var") if group["amsgrad"] else ("exp_avg", "exp_avg_var")
        return fresh_state(p, *slots)

    @staticmethod
    def _rule(p: torch.Tensor, g: torch.Tensor, s: dict[str, torch.Tensor], h: Any, group: dict[str, Any]) -> None:
        if group["decoupled_weight_decay"] and group["fixed_decay"]:
            p.mul_(1 - h.weight_decay)
        else:
            g = decay(p, g, h, group["decoupled_weight_decay"])
        m, var, step = s["exp_avg"], s["exp_avg_var"], s["step"]
        m.mul_(h.beta1).add_(g * (1 - h.beta1))
        r = g - m
        var.mul_(h.beta2).add_(r * r * (1 - h.beta2)).add_(h.eps)
        if group["amsgrad"]:
            var = torch.maximum(s["max_exp_avg_var"], var, out=s["max_exp_avg_var"])
        bc1 = 1 - h.beta1**step
        bc2 = 1 - h.beta2**step
        if not group["rectify"]:
            denom = (var.sqrt() / bc2**0.5).add_(h.eps)
            p.sub_(m / denom * (h.lr / bc1))
            return
        rho_inf = 2 / (1 - h.beta2) - 1
        rho_t = rho_inf - 2 * step * h.beta2**step / bc2
        rect = (bc2 * (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
        adaptive = m / (var.sqrt() + h.eps) * (h.lr * rect / bc1)
        fallback = m * (h.lr / bc1) if group["degenerated_to_sgd"] else torch.zeros_like(m)
        p.sub_(torch.where(rho_t >= 5, adaptive, fallback))
