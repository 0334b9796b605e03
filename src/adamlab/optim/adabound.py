"""AdaBound and AMSBound (Luo et al. 2019): Adam whose per-coordinate step size is clipped into bounds that close on SGD's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from . import _checks
from ._base import ADAM_CHECKS, RuleOptimizer, decay, fresh_state, hyperparameters


class AdaBound(RuleOptimizer):
    r"""AdaBound (and AMSBound with ``amsbound=True``), as the authors' package ``adabound`` 0.0.5 computes it.

    .. math::
        g_t &\leftarrow g_t + \lambda\theta_{t-1} \quad\text{(L2)} \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \text{ if amsbound else } v_t \\
        \alpha^*_t &= \alpha^*\,\alpha_t / \alpha_0 \quad\text{(final\_lr follows the lr schedule)} \\
        \eta_t &= \operatorname{clip}\!\left(\frac{\alpha_t\sqrt{1-\beta_2^t}}{(1-\beta_1^t)(\sqrt{\hat v_t} + \epsilon)},\;
            \alpha^*_t\Big(1 - \frac{1}{\gamma t + 1}\Big),\; \alpha^*_t\Big(1 + \frac{1}{\gamma t}\Big)\right) \\
        \theta_t &= \theta_{t-1} - \eta_t \odot m_t

    Reference: Luo et al., *Adaptive Gradient Methods with Dynamic Bound of Learning Rate* (ICLR
    2019), Algorithms 2 and 3; numerics exactly as the authors' package ``adabound==0.0.5``
    (``adabound.AdaBound``), checked against it in float64:

    * ``eps`` is added to the *un*-corrected :math:`\sqrt{\hat v_t}`; the bias corrections are
      folded into the step size before clipping, so the bounds clip the bias-corrected step size.
    * The clip is elementwise. AMSBound keeps the max over the raw :math:`v`.
    * :math:`\alpha_0` is the group's learning rate when the group was created: the package keeps
      it as ``base_lrs`` so that an lr schedule scales ``final_lr`` as well. We keep it in the param
      group as ``base_lr``, so it is part of the state_dict and a reloaded optimizer continues
      identically (the package loses it and takes the new constructor's lr). A group may set its
      own ``base_lr``. If :math:`\alpha_0 = 0`, ``final_lr`` is used unscaled (the package divides
      by zero).
    * Weight decay is L2 only, as the package. Defaults are the package's: ``lr=1e-3``,
      ``final_lr=0.1``, ``gamma=1e-3``, ``eps=1e-8``; ``gamma`` in [0, 1) as the package checks.
      ``gamma = 0`` means no bounds (lower 0, upper :math:`+\infty`; the package divides by zero).

    Deviations from the package: ``maximize`` is added; the decay does not go through the
    deprecated ``Tensor.add(Number, Tensor)`` overloads the package uses (same numbers).

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq`` and, with ``amsbound``,
    ``max_exp_avg_sq``: the package's names.

    Args:
        params: iterable of tensors or param-group dicts.
        lr: Adam learning rate :math:`\alpha` (>= 0).
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        final_lr: the SGD learning rate :math:`\alpha^*` both bounds converge to (>= 0).
        gamma: convergence speed :math:`\gamma` of the bounds, in [0, 1).
        eps: :math:`\epsilon` >= 0.
        weight_decay: L2 coefficient :math:`\lambda` >= 0.
        amsbound: use the running max of :math:`v` (AMSBound).
        maximize: ascend instead of descend.
    """

    _checks = {
        **ADAM_CHECKS,
        "final_lr": _checks.NONNEGATIVE,
        "gamma": _checks.real(0.0, 1.0),
        "amsbound": _checks.flag,
        "base_lr": _checks.NONNEGATIVE,
    }

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        final_lr: float = 0.1,
        gamma: float = 1e-3,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsbound: bool = False,
        *,
        maximize: bool = False,
        engine: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), engine=engine)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        _set_base_lr(self.param_groups[-1])

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # a state_dict from before base_lr existed: start from its lr
            _set_base_lr(group)

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, torch.Tensor]:
        slots = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if group["amsbound"] else ("exp_avg", "exp_avg_sq")
        return fresh_state(p, *slots)

    @staticmethod
    def _rule(p: torch.Tensor, g: torch.Tensor, s: dict[str, torch.Tensor], h: Any, group: dict[str, Any]) -> None:
        g = decay(p, g, h, decoupled=False)
        m, v, step = s["exp_avg"], s["exp_avg_sq"], s["step"]
        m.mul_(h.beta1).add_(g * (1 - h.beta1))
        v.mul_(h.beta2).add_(g * g * (1 - h.beta2))
        if group["amsbound"]:
            v = torch.maximum(s["max_exp_avg_sq"], v, out=s["max_exp_avg_sq"])
        step_size = h.lr * (1 - h.beta2**step) ** 0.5 / (1 - h.beta1**step)
        final_lr = h.final_lr * torch.where(h.base_lr > 0, h.lr / h.base_lr, 1.0)
        gamma_t = h.gamma * step
        lower = final_lr * (1 - 1 / (gamma_t + 1))
        upper = torch.where(gamma_t > 0, final_lr * (1 + 1 / gamma_t), torch.inf)
        eta = torch.minimum(torch.maximum(step_size / (v.sqrt() + h.eps), lower), upper)
        p.sub_(eta * m)


def _set_base_lr(group: dict[str, Any]) -> None:
    """Record the group's learning rate at creation as ``base_lr`` (a copy, if it is a tensor), unless already set."""
    if "base_lr" not in group:
        lr = group["lr"]
        group["base_lr"] = lr.clone() if isinstance(lr, torch.Tensor) else lr
