"""Adam (Kingma & Ba 2015), AMSGrad (Reddi, Kale & Kumar 2018), AdamW (Loshchilov & Hutter 2019)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from . import _checks
from ._base import ADAM_CHECKS, RuleOptimizer, decay, fresh_state, hyperparameters


def adam_step(p: torch.Tensor, m: torch.Tensor, v: torch.Tensor, step: torch.Tensor, h: Any, bias_correction: bool = True) -> None:
    r"""The Adam update from the moments, with torch.optim.Adam's rounding; shared by Adam, AdamAL, MAdam.

    :math:`p \leftarrow p - \frac{\alpha}{1-\beta_1^t} \frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon}`, or without
    bias correction :math:`p \leftarrow p - \alpha\, m / (\sqrt{v} + \epsilon)`.
    """
    if bias_correction:
        denom = (v.sqrt() / (1 - h.beta2**step) ** 0.5).add_(h.eps)
        p.sub_(m / denom * (h.lr / (1 - h.beta1**step)))
    else:
        p.sub_(m / (v.sqrt() + h.eps) * h.lr)


class Adam(RuleOptimizer):
    r"""Adam, with the AMSGrad, decoupled-weight-decay and no-bias-correction options.

    .. math::
        g_t &\leftarrow \nabla f(\theta_{t-1}) \;(\times -1 \text{ if maximize}) \\
        g_t &\leftarrow g_t + \lambda\theta_{t-1} \quad\text{(L2), or }
            \theta_{t-1} \leftarrow \theta_{t-1}(1 - \alpha\lambda) \text{ (decoupled)} \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \text{ if amsgrad else } v_t \\
        \theta_t &= \theta_{t-1} - \frac{\alpha}{1-\beta_1^t}\,
            \frac{m_t}{\sqrt{\hat v_t}/\sqrt{1-\beta_2^t} + \epsilon}

    With ``bias_correction=False`` the last line is the paper's un-corrected form
    :math:`\theta_t = \theta_{t-1} - \alpha\, m_t / (\sqrt{\hat v_t} + \epsilon)`.

    Reference: Kingma & Ba, *Adam: A Method for Stochastic Optimization* (ICLR 2015, Algorithm 1);
    numerics exactly as ``torch.optim.Adam`` (single-tensor path): ``eps`` is added after
    bias-correcting :math:`\sqrt{v}` (the paper adds it to :math:`\sqrt{\hat v}`, the same thing);
    AMSGrad keeps the max over the raw :math:`v` and bias-corrects the max; decoupled decay is
    ``p *= 1 - lr * weight_decay``. The EMAs are written :math:`\beta m + (1-\beta) g` where torch
    uses ``lerp``; the two agree to rounding (checked to 1e-12 in float64 against torch).

    State per parameter (torch's layout): ``step`` (0-d float tensor), ``exp_avg``, ``exp_avg_sq``
    and, with ``amsgrad``, ``max_exp_avg_sq``. A state_dict loads into ``torch.optim.Adam`` and back.

    Args:
        params: iterable of tensors or param-group dicts.
        lr: learning rate :math:`\alpha` (>= 0; a float or 0-d tensor).
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon` >= 0.
        weight_decay: :math:`\lambda` >= 0, L2 unless ``decoupled_weight_decay``.
        amsgrad: use the running max of :math:`v` (Reddi, Kale & Kumar, *On the Convergence of Adam and
            Beyond*, ICLR 2018).
        bias_correction: divide by :math:`1-\beta^t` (default); False gives the un-corrected form.
        maximize: ascend instead of descend.
        decoupled_weight_decay: AdamW-style decay.
    """

    _checks = {**ADAM_CHECKS, "amsgrad": _checks.flag, "bias_correction": _checks.flag, "decoupled_weight_decay": _checks.flag}

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        bias_correction: bool = True,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        engine: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), engine=engine)

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, torch.Tensor]:
        slots = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if group["amsgrad"] else ("exp_avg", "exp_avg_sq")
        return fresh_state(p, *slots)

    @staticmethod
    def _rule(p: torch.Tensor, g: torch.Tensor, s: dict[str, torch.Tensor], h: Any, group: dict[str, Any]) -> None:
        g = decay(p, g, h, group["decoupled_weight_decay"])
        m, v, step = s["exp_avg"], s["exp_avg_sq"], s["step"]
        m.mul_(h.beta1).add_(g * (1 - h.beta1))
        v.mul_(h.beta2).add_(g * g * (1 - h.beta2))
        if group["amsgrad"]:
            v = torch.maximum(s["max_exp_avg_sq"], v, out=s["max_exp_avg_sq"])
        adam_step(p, m, v, step, h, group["bias_correction"])


class AdamW(Adam):
    r"""AdamW: :class:`Adam` with decoupled weight decay, ``weight_decay=1e-2`` by default.

    .. math::
        \theta_{t-1} \leftarrow \theta_{t-1}(1 - \alpha\lambda), \text{ then the Adam step.}

    Reference: Loshchilov & Hutter, *Decoupled Weight Decay Regularization* (ICLR 2019); numerics as
    ``torch.optim.AdamW`` (decay multiplies by ``1 - lr * weight_decay``, i.e. the decay is scaled by
    the learning rate, including any schedule applied to ``lr``). For the paper's normalized weight
    decay and warm restarts, drive ``lr`` and ``weight_decay`` with schedules.
    A state_dict loads into ``torch.optim.AdamW`` and back.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        bias_correction: bool = True,
        maximize: bool = False,
        engine: str = "auto",
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            bias_correction=bias_correction,
            maximize=maximize,
            decoupled_weight_decay=True,
            engine=engine,
        )
