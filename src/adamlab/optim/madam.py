"""MAdam (Miao 2020): Adam whose second moment tracks the gradient less a share of its momentum."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from . import _checks
from ._base import ADAM_CHECKS, RuleOptimizer, decay, fresh_state, hyperparameters
from .adam import adam_step
from .radam import radam_direction


class MAdam(RuleOptimizer):
    r"""MAdam: the second moment is an EMA of :math:`\tilde g_t^2`, with :math:`\tilde g_t = g_t - (1-\beta_3)m_{t-1}`.

    .. math::
        g_t &\leftarrow g_t + \lambda\theta_{t-1} \quad\text{(L2), or }
            \theta_{t-1} \leftarrow \theta_{t-1}(1 - \alpha\lambda) \text{ (decoupled)} \\
        \tilde g_t &= g_t - (1-\beta_3)\, m_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1-\beta_2) \tilde g_t^2 \\
        \theta_t &= \theta_{t-1} - \alpha\,\psi_t

    where :math:`\psi_t` is the RAdam direction of :math:`(m_t, v_t)` (``rectify=True``, the
    default; see :func:`~adamlab.optim.radam.radam_direction`) or, with ``rectify=False``, the Adam
    direction :math:`\frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}`.

    Reference: Miao, *MAdam: Modify Second Momentum Estimation in Adam* (2020, Algorithm 2).
    The paper writes :math:`\tilde g_t = \beta_3 g_t + (1-\beta_3)(g_t - m_t)/\beta_1` with the
    *updated* :math:`m_t`; substituting :math:`m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t` gives
    :math:`\beta_3 g_t + (1-\beta_3)(\beta_1 g_t - \beta_1 m_{t-1})/\beta_1 = g_t - (1-\beta_3) m_{t-1}`
    (the paper's Eq. 1). We compute that form from :math:`m_{t-1}` before updating :math:`m`: it is
    the same number up to rounding, needs no division, and stays defined at :math:`\beta_1 = 0`
    (where the paper's form divides by zero; there :math:`\tilde g_t = g_t`).

    Numeric choices:

    * ``eps=1e-16``, ``beta3=0.9`` (the paper's defaults). ``beta3`` may be any real >= 0: the paper
      uses values above 1 for large learning rates (Section 2.2); ``beta3 = 1`` is exactly Adam
      (``rectify=False``) or RAdam (``rectify=True``) with the same ``eps``. ``beta3 = 0`` gives
      :math:`\tilde g_t = g_t - m_{t-1}`, which is *not* AdaBelief's :math:`g_t - m_t` (the paper's
      "MAdam becomes AdaBelief" holds only loosely, up to the factor :math:`\beta_1` and AdaBelief's
      extra eps).
    * The RAdam update is ``torch.optim.RAdam``'s: rectify when :math:`\rho_t > 5`, otherwise the
      bias-corrected momentum (SGD) step, ``eps`` added to the *un*-corrected :math:`\sqrt{v_t}`.
      The author's code (forked from adabelief-pytorch) rectifies when :math:`\rho_t \ge 5`; the two
      differ only if :math:`\rho_t` is exactly 5.
    * The Adam update (``rectify=False``) is ``torch.optim.Adam``'s: ``eps`` after bias-correcting
      :math:`\sqrt{v_t}`, as in the paper's Algorithm 1.
    * Weight decay (the paper has none) is L2 by default, as adamlab's Adam and RAdam, so the
      ``beta3 = 1`` identities hold for every option; ``decoupled_weight_decay=True`` gives
      ``p *= 1 - lr * weight_decay`` before the step (the author's code defaults to that form).
    * ``rectify`` selects :math:`\psi` per param group; the paper's :math:`\beta_3` rescaling rule
      for a new learning rate is a schedule, not part of this class.

    State per parameter: ``step``, ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`v`).

    Args:
        params: iterable of tensors or param-group dicts.
        lr: learning rate :math:`\alpha` (>= 0).
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        beta3: :math:`\beta_3` >= 0 (may exceed 1).
        eps: :math:`\epsilon` >= 0.
        weight_decay: :math:`\lambda` >= 0, L2 unless ``decoupled_weight_decay``.
        rectify: RAdam update (default) or, False, Adam update.
        maximize: ascend instead of descend.
        decoupled_weight_decay: AdamW-style decay.
    """

    _checks = {**ADAM_CHECKS, "beta3": _checks.NONNEGATIVE, "rectify": _checks.flag, "decoupled_weight_decay": _checks.flag}

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        beta3: float = 0.9,
        eps: float = 1e-16,
        weight_decay: float = 0.0,
        rectify: bool = True,
        *,
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
        g_tilde = g - m * (1 - h.beta3)  # m is still m_{t-1} here
        m.mul_(h.beta1).add_(g * (1 - h.beta1))
        v.mul_(h.beta2).add_(g_tilde * g_tilde * (1 - h.beta2))
        if group["rectify"]:
            p.sub_(radam_direction(m, v, step, h) * h.lr)
        else:
            adam_step(p, m, v, step, h)
