"""Adamax (Kingma & Ba 2015, section 7.1): Adam with the infinity norm."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ._base import ADAM_CHECKS, RuleOptimizer, decay, fresh_state, hyperparameters


class Adamax(RuleOptimizer):
    r"""Adamax: the second moment replaced by an exponentially weighted infinity norm.

    .. math::
        g_t &\leftarrow g_t + \lambda\theta_{t-1} \quad\text{(L2)} \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t \\
        u_t &= \max(\beta_2 u_{t-1},\ |g_t| + \epsilon) \\
        \theta_t &= \theta_{t-1} - \frac{\alpha}{1-\beta_1^t}\,\frac{m_t}{u_t}

    Reference: Kingma & Ba, *Adam: A Method for Stochastic Optimization* (ICLR 2015, section 7.1,
    Algorithm 2); numerics exactly as ``torch.optim.Adamax``:
    ``eps`` is added to :math:`|g_t|` inside the max (the paper has no eps), weight decay is L2 only.
    Defaults ``lr=2e-3`` as the paper and torch. State: ``step``, ``exp_avg``, ``exp_inf``.
    """

    _checks = dict(ADAM_CHECKS)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        engine: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), engine=engine)

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, torch.Tensor]:
        return fresh_state(p, "exp_avg", "exp_inf")

    @staticmethod
    def _rule(p: torch.Tensor, g: torch.Tensor, s: dict[str, torch.Tensor], h: Any, group: dict[str, Any]) -> None:
        g = decay(p, g, h, decoupled=False)
        m, u = s["exp_avg"], s["exp_inf"]
        m.mul_(h.beta1).add_(g * (1 - h.beta1))
        torch.maximum(u.mul_(h.beta2), g.abs() + h.eps, out=u)
        p.sub_(m / u * (h.lr / (1 - h.beta1 ** s["step"])))
