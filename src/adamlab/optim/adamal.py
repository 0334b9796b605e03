"""AdamAL: Adam whose second moment never decreases, without skipping gradients as AMSGrad does.

From *A New Perspective in Understanding of Adam-Type Algorithms and Beyond* (anonymous authors, 2019).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from . import _checks
from ._base import ADAM_CHECKS, RuleOptimizer, decay, fresh_state, hyperparameters
from .adam import adam_step


class AdamAL(RuleOptimizer):
    r"""AdamAL: the second-moment EMA is fed :math:`\max(g_t^2, v_{t-1})`, so :math:`v_t \ge v_{t-1}`.

    .. math::
        g_t &\leftarrow g_t + \lambda\theta_{t-1} \quad\text{(L2), or }
            \theta_{t-1} \leftarrow \theta_{t-1}(1 - \alpha\lambda) \text{ (decoupled)} \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t \\
        \hat g_t &= \max(g_t^2, v_{t-1}) \\
        v_t &= \beta_2 v_{t-1} + (1-\beta_2) \hat g_t \\
        \theta_t &= \theta_{t-1} - \frac{\alpha}{1-\beta_1^t}\,
            \frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon}

    With ``bias_correction=False`` the last line is
    :math:`\theta_t = \theta_{t-1} - \alpha\, m_t / (\sqrt{v_t} + \epsilon)`, the paper's
    Algorithm 1 (which has no :math:`\epsilon`; ``eps=0`` reproduces it literally).

    Reference: *A New Perspective in Understanding of Adam-Type Algorithms and Beyond* (anonymous
    authors, under double-blind review, 2019; Section 3.3, Algorithm 1). Unlike AMSGrad, the max enters the EMA's input instead of replacing
    its output, so every gradient still enters :math:`v` (the paper's "alignment").

    Numeric choices:

    * The paper's Algorithm 1, line 7 writes :math:`v_t = \beta_1 v_{t-1} + (1-\beta_1)\hat g_t`;
      its derivation just above (:math:`v_t - v_{t-1} = (1-\beta_2)(g_t^2 - v_{t-1})`) and Eq. 18 use
      :math:`\beta_2`. We follow :math:`\beta_2`: line 7 is taken to be a typo.
    * The update is the Adam update with ``torch.optim.Adam``'s numerics (``eps`` after
      bias-correcting :math:`\sqrt{v}`), bias correction on by default as adamlab's Adam; the
      paper's Algorithm 1 is ``bias_correction=False`` (the projection :math:`P_\mathcal{X}` is the
      identity for unconstrained parameters; project yourself after ``step()`` otherwise).
    * :math:`v` is updated as :math:`v_{t-1} + (1-\beta_2)(\hat g_t - v_{t-1})`, algebraically the
      same EMA, written so that :math:`v_t \ge v_{t-1}` holds exactly in floating point, not only up
      to rounding: the rounded difference :math:`\hat g_t - v_{t-1}` is never negative, and adding a
      non-negative number never lowers :math:`v`.
    * Weight decay (the paper has none) is L2 by default, decoupled with ``decoupled_weight_decay``,
      as adamlab's Adam.

    State per parameter: ``step``, ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`v`).

    Args:
        params: iterable of tensors or param-group dicts.
        lr: learning rate :math:`\alpha` (>= 0).
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon` >= 0.
        weight_decay: :math:`\lambda` >= 0, L2 unless ``decoupled_weight_decay``.
        bias_correction: divide by :math:`1-\beta^t` (default); False gives the paper's Algorithm 1.
        maximize: ascend instead of descend.
        decoupled_weight_decay: AdamW-style decay.
    """

    _checks = {**ADAM_CHECKS, "bias_correction": _checks.flag, "decoupled_weight_decay": _checks.flag}

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        bias_correction: bool = True,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        engine: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), engine=engine)

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, torch.Tensor]:
        return fresh_state(p, "exp_avg", "exp_avg_sq")

    @staticmethod
    def _rule(p: torch.Tensor, g: torch.Tensor, s: dict[str, torch.Tensor], h: Any, group: dict[str, Any]) -> None:
        g = decay(p, g, h, group["decoupled_weight_decay"])
        m, v, step = s["exp_avg"], s["exp_avg_sq"], s["step"]
        m.mul_(h.beta1).add_(g * (1 - h.beta1))
        v.add_((torch.maximum(g * g, v) - v) * (1 - h.beta2))
        adam_step(p, m, v, step, h, group["bias_correction"])
