"""NAdam (Dozat 2016): Adam with Nesterov momentum and a momentum-decay schedule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from . import _checks
from ._base import ADAM_CHECKS, RuleOptimizer, decay, fresh_state, hyperparameters, scalar_dtype


class NAdam(RuleOptimizer):
    r"""NAdam: Nesterov-accelerated Adam with the momentum schedule of Dozat (2016).

    .. math::
        \mu_t &= \beta_1\left(1 - \tfrac12\, 0.96^{t\psi}\right), \quad \psi = \text{momentum\_decay} \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
        \theta_t &= \theta_{t-1} - \alpha\left[\frac{(1-\mu_t)\, g_t}{1 - \prod_{i\le t}\mu_i}
            + \frac{\mu_{t+1}\, m_t}{1 - \prod_{i\le t+1}\mu_i}\right]
            \Big/ \left(\sqrt{v_t / (1-\beta_2^t)} + \epsilon\right)

    Reference: Dozat, *Incorporating Nesterov Momentum into Adam* (ICLR 2016 workshop); numerics exactly as
    ``torch.optim.NAdam``: ``momentum_decay=4e-3``, the running product :math:`\prod\mu_i` kept in
    state as ``mu_product`` (a 0-d tensor of torch's step dtype), ``eps`` added after
    bias-correcting :math:`v`. ``weight_decay`` is L2, or decoupled with ``decoupled_weight_decay``
    (the NAdamW form). State: ``step``, ``mu_product``, ``exp_avg``, ``exp_avg_sq``.
    """

    _checks = {**ADAM_CHECKS, "momentum_decay": _checks.NONNEGATIVE, "decoupled_weight_decay": _checks.flag}

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
        engine: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), engine=engine)

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {**fresh_state(p, "exp_avg", "exp_avg_sq"), "mu_product": torch.ones((), dtype=scalar_dtype())}

    @staticmethod
    def _rule(p: torch.Tensor, g: torch.Tensor, s: dict[str, torch.Tensor], h: Any, group: dict[str, Any]) -> None:
        g = decay(p, g, h, group["decoupled_weight_decay"])
        m, v, step, mu_product = s["exp_avg"], s["exp_avg_sq"], s["step"], s["mu_product"]
        mu = h.beta1 * (1 - 0.5 * 0.96 ** (step * h.momentum_decay))
        mu_next = h.beta1 * (1 - 0.5 * 0.96 ** ((step + 1) * h.momentum_decay))
        # the product lives (and is multiplied) in torch's step dtype; torch reads it as a Python float
        prod = mu_product.mul_(mu.to(mu_product.dtype)).double()
        m.mul_(h.beta1).add_(g * (1 - h.beta1))
        v.mul_(h.beta2).add_(g * g * (1 - h.beta2))
        denom = (v / (1 - h.beta2**step)).sqrt().add_(h.eps)
        p.sub_(g / denom * (h.lr * (1 - mu) / (1 - prod)))
        p.sub_(m / denom * (h.lr * mu_next / (1 - prod * mu_next)))
