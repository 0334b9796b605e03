"""Padam (Chen & Gu 2018): AMSGrad with a partial exponent p in (0, 1/2] on the second moment."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from . import _checks
from ._base import ADAM_CHECKS, RuleOptimizer, decay, fresh_state, hyperparameters

PARTIAL = _checks.real(0.0, 0.5, low_open=True, high_open=False)
"""The partial exponent p: a real number in (0, 1/2]."""

_ROOTS = {0.5: 0, 0.25: 1, 0.125: 2}
"""Exponents p whose power 2p is a chain of square roots: p -> how many."""


class Padam(RuleOptimizer):
    r"""Padam: partially adaptive momentum estimation.

    .. math::
        g_t &\leftarrow g_t + \lambda\theta_{t-1} \quad\text{(L2)} \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \\
        \theta_t &= \theta_{t-1} - \alpha\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,
            \frac{m_t}{\left(\sqrt{\hat v_t} + \epsilon\right)^{2p}}

    With ``bias_correction=False`` the factor :math:`\sqrt{1-\beta_2^t}/(1-\beta_1^t)` is dropped:
    :math:`\theta_t = \theta_{t-1} - \alpha\, m_t / (\sqrt{\hat v_t} + \epsilon)^{2p}`. With
    ``eps=0`` this is exactly the paper's Algorithm 1 update
    :math:`\theta_t = \theta_{t-1} - \alpha\, m_t / \hat v_t^{\,p}` (the paper has neither bias
    correction nor eps); ``eps`` sits where the authors' code puts it, so both forms share it.

    Reference: Chen & Gu, *Closing the Generalization Gap of Adaptive Gradient Methods in Training
    Deep Neural Networks* (arXiv:1806.06763, 2018); the default follows the
    authors' code (github.com/uclaml/Padam, ``Padam.py``):

    - the max is kept over the raw :math:`v` (AMSGrad form, the authors' ``amsgrad=True``; there is
      no non-max option, since Padam is defined with the max);
    - ``eps`` is added to :math:`\sqrt{\hat v_t}` *before* the power :math:`2p`;
    - the step size is :math:`\alpha\sqrt{1-\beta_2^t}/(1-\beta_1^t)` with the *square root* of the
      second bias correction whatever :math:`p` is (it is not raised to :math:`2p`), as the code does;
    - ``weight_decay`` is L2 (added to the gradient), as the code does;
    - defaults ``lr=0.1``, ``partial=1/4`` as the authors' class (their CIFAR scripts pass
      ``partial=1/8``), ``betas=(0.9, 0.999)``, ``eps=1e-8``.

    Identities (tested): ``partial=1/2, eps=0`` is ``Adam(amsgrad=True, eps=0)`` in exact arithmetic
    (:math:`\alpha\sqrt{b_2}/b_1 \cdot m/\sqrt{\hat v} = \alpha/b_1 \cdot m/(\sqrt{\hat v}/\sqrt{b_2})`);
    ``partial=1/2, bias_correction=False`` is ``Adam(amsgrad=True, bias_correction=False)`` for any eps.

    ``partial`` is a group hyperparameter read at every step (it enters the rule as a 0-d tensor),
    so a schedule may change it between steps: :class:`adamlab.schedules.PartialExponentDecay`
    implements the decaying exponent of the blog post *Adaptive exponent for ADAM*. For ``partial`` exactly 1/2, 1/4 or 1/8 the power
    :math:`2p` is taken as 0, 1 or 2 square roots (correctly rounded). Any other :math:`p`:

    - the reference engine (and the packed engine's compiled rule, which runs on other devices and
      dtypes) computes :math:`d^{2p} = \exp(2p \log d)` (:math:`d = \sqrt{\hat v_t} + \epsilon`),
      within 3.8e-6 relative of the exact power in float32 and 7.2e-15 in float64 (tested), a form
      inductor compiles to faster code than ``d ** e`` (measured in ``docs/performance.md``);
    - the packed engine on the CPU (float32, float64) runs Padam in one C++ pass for every
      :math:`p` (``padam`` in :mod:`adamlab.optim._native`, built once per machine: the first step
      waits for that build instead of compiling), which multiplies :math:`m_t` by
      :math:`d^{-2p} = 2^{-2p \log_2 d}` from a log2 and an exp2 of its own (a few multiply-adds each,
      the integer parts carried apart): within 1.7e-7 (float32) and 4.0e-16 (float64) of the exact
      power, so the engines agree to the reference's own rounding (float64 trajectories to 1e-12,
      tested). Torch's ``exp`` and ``log`` of every element cost more than the step's memory traffic;
      this power is cheaper but still not free (step times in ``docs/performance.md``).

    Values outside (0, 1/2] raise ``ValueError`` when set through the constructor,
    ``add_param_group`` or ``load_state_dict``.

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (the layout of
    ``torch.optim.Adam(amsgrad=True)``).

    Args:
        params: iterable of tensors or param-group dicts.
        lr: learning rate :math:`\alpha` >= 0.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon` >= 0.
        partial: the exponent :math:`p` in (0, 1/2]; 1/2 is AMSGrad, p -> 0 approaches SGD with momentum.
        weight_decay: L2 coefficient :math:`\lambda` >= 0.
        bias_correction: keep the authors' step-size factor (default); False gives the paper's form.
        maximize: ascend instead of descend.
    """

    _checks = {**ADAM_CHECKS, "partial": PARTIAL, "bias_correction": _checks.flag}

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-1,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        partial: float = 0.25,
        weight_decay: float = 0.0,
        *,
        bias_correction: bool = True,
        maximize: bool = False,
        engine: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), engine=engine)

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, torch.Tensor]:
        return fresh_state(p, "exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def _options(self, group: dict[str, Any]) -> dict[str, Any]:
        # ``roots``: for p = 1/2, 1/4, 1/8, the power 2p is 0, 1 or 2 square roots (else None: pow)
        return {**super()._options(group), "roots": _ROOTS.get(float(group["partial"]))}

    @staticmethod
    def _rule(p: torch.Tensor, g: torch.Tensor, s: dict[str, torch.Tensor], h: Any, group: dict[str, Any]) -> None:
        g = decay(p, g, h, decoupled=False)
        m, v, vmax, step = s["exp_avg"], s["exp_avg_sq"], s["max_exp_avg_sq"], s["step"]
        m.mul_(h.beta1).add_(g * (1 - h.beta1))
        v.mul_(h.beta2).add_(g * g * (1 - h.beta2))
        torch.maximum(vmax, v, out=vmax)
        denom = vmax.sqrt() + h.eps
        if group["roots"] is None:
            denom = torch.exp(torch.log(denom) * (2 * h.partial))
        else:
            for _ in range(group["roots"]):
                denom = denom.sqrt()
        if group["bias_correction"]:
            p.sub_(m / denom * (h.lr * (1 - h.beta2**step) ** 0.5 / (1 - h.beta1**step)))
        else:
            p.sub_(m / denom * h.lr)

    @staticmethod
    def _native_rule(native: Any, p: torch.Tensor, g: torch.Tensor, s: dict[str, torch.Tensor], step: float, h: dict[str, float], group: dict[str, Any]) -> None:
        # the packed engine's buffers on the CPU: adamlab.optim._native's padam, one pass (and its own power)
        factor = h["lr"] * (1 - h["beta2"] ** step) ** 0.5 / (1 - h["beta1"] ** step) if group["bias_correction"] else h["lr"]
        native.padam(
            *(x.data_ptr() for x in (p, g, s["exp_avg"], s["exp_avg_sq"], s["max_exp_avg_sq"])),
            p.numel(),
            0,
            p.dtype == torch.float64,
            h["beta1"],
            h["beta2"],
            h["eps"],
            h["weight_decay"],
            factor,
            2 * h["partial"],
            -1 if group["roots"] is None else group["roots"],
            group["maximize"],
        )
