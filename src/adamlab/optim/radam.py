"""RAdam (Liu et al. 2019): Adam with the variance of the adaptive learning rate rectified."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from . import _checks
from ._base import ADAM_CHECKS, RuleOptimizer, decay, fresh_state, hyperparameters


def radam_direction(m: torch.Tensor, v: torch.Tensor, step: torch.Tensor, h: Any) -> torch.Tensor:
    r"""The RAdam step direction (to be scaled by ``lr``), given the raw moments ``m`` and ``v``.

    With :math:`\rho_\infty = 2/(1-\beta_2) - 1` and
    :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)`: when :math:`\rho_t > 5` it is
    :math:`r_t\,\hat m_t\,\sqrt{1-\beta_2^t}/(\sqrt{v_t}+\epsilon)` with the rectifier
    :math:`r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}`;
    otherwise the un-adapted momentum :math:`\hat m_t = m_t/(1-\beta_1^t)`. The choice is a
    ``torch.where`` on a 0-d tensor, not a Python branch. Shared by RAdam and MAdam.
    """
    bc2 = 1 - h.beta2**step
    m_hat = m / (1 - h.beta1**step)
    rho_inf = 2 / (1 - h.beta2) - 1
    rho_t = rho_inf - 2 * step * h.beta2**step / bc2
    rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
    adaptive = bc2**0.5 / (v.sqrt() + h.eps)
    return torch.where(rho_t > 5, m_hat * adaptive * rect, m_hat)


class RAdam(RuleOptimizer):
    r"""RAdam: rectified Adam.

    .. math::
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
        \theta_t &= \theta_{t-1} - \alpha \cdot
            \begin{cases} r_t\, \hat m_t \sqrt{1-\beta_2^t} / (\sqrt{v_t} + \epsilon) & \rho_t > 5 \\
            \hat m_t & \text{otherwise} \end{cases}

    (:func:`radam_direction` defines :math:`\rho_t` and :math:`r_t`.)

    Reference: Liu et al., *On the Variance of the Adaptive Learning Rate and Beyond* (ICLR 2020);
    numerics exactly as ``torch.optim.RAdam``: rectify when :math:`\rho_t > 5`, ``eps`` added to
    the *un*-corrected :math:`\sqrt{v_t}`, weight decay L2 or decoupled. State: ``step``,
    ``exp_avg``, ``exp_avg_sq``.
    """

    _checks = {**ADAM_CHECKS, "decoupled_weight_decay": _checks.flag}

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
        engine: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), engine=engine)

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, torch.Tensor]:
        return fresh_state(p, "exp_avg", "exp_avg_sq")

    @staticmethod
    def _rule(p: torch.Tensor, g: torch.Tensor, s: dict[str, torch.Tensor], h: Any, group: dict[str, Any]) -> None:
        g = decay(p, g, h, group["decoupled_weight_decay"])
        m, v = s["exp_avg"], s["exp_avg_sq"]
        m.mul_(h.beta1).add_(g * (1 - h.beta1))
        v.mul_(h.beta2).add_(g * g * (1 - h.beta2))
        p.sub_(radam_direction(m, v, s["step"], h) * h.lr)
