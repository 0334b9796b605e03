"""SWATS (Keskar & Socher 2017): Adam that switches to SGD with momentum, per tensor.

The rule's per-tensor dot products go through segment sums (:mod:`adamlab.optim._segments`), so the
same rule runs tensor by tensor on the reference engine and on whole flat buffers on the packed one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from ._base import ADAM_CHECKS, RuleOptimizer, decay, fresh_state, hyperparameters, new_pass
from ._segments import segment_zeros

_REAL = {torch.complex64: torch.float32, torch.complex128: torch.float64}


def _scalar_slot(p: torch.Tensor) -> torch.Tensor:
    """A 0-d zero on the param's device (for a DTensor, replicated on its mesh) in the param's (real)
    dtype, the dtype torch's load_state_dict casts to."""
    return segment_zeros("tensor", p, _REAL.get(p.dtype, p.dtype))


class SWATS(RuleOptimizer):
    r"""SWATS: start with Adam, switch each tensor to SGD with momentum once its projected rate settles.

    For each parameter tensor, at step :math:`k` (``state["step"]``, counting every step):

    .. math::
        g_k &\leftarrow g_k + \lambda\theta_{k-1} \quad\text{(L2, both phases)} \\[4pt]
        \text{Adam phase:}\quad
        m_k &= \beta_1 m_{k-1} + (1-\beta_1) g_k, \quad a_k = \beta_2 a_{k-1} + (1-\beta_2) g_k^2 \\
        p_k &= -\alpha\,\frac{\sqrt{1-\beta_2^k}}{1-\beta_1^k}\,\frac{m_k}{\sqrt{a_k} + \epsilon},
            \qquad \theta_k = \theta_{k-1} + p_k \\
        \text{if } p_k^\top g_k \ne 0:\quad
        \gamma_k &= \frac{p_k^\top p_k}{-p_k^\top g_k}, \quad
        \lambda_k = \beta_2 \lambda_{k-1} + (1-\beta_2)\gamma_k \quad(\text{else } \lambda_k = \lambda_{k-1}) \\
        \text{switch if } & k > 1 \text{ and } \left|\frac{\lambda_k}{1-\beta_2^k} - \gamma_k\right| < \epsilon:
            \quad \Lambda = \frac{\lambda_k}{1-\beta_2^k},\ v_k = 0 \\[4pt]
        \text{SGD phase (steps after the switch):}\quad
        v_k &= \beta_1 v_{k-1} + g_k, \qquad \theta_k = \theta_{k-1} - (1-\beta_1)\,\Lambda\, v_k

    Reference: Keskar & Socher, *Improving Generalization Performance by Switching from Adam to SGD*
    (arXiv:1712.07628, 2017), Algorithm 1, followed line by line. Choices and deviations:

    - **Per tensor.** Algorithm 1 is written for one vector; here every parameter tensor is its own
      vector: its own :math:`\gamma_k, \lambda_k`, switch test, switch step and :math:`\Lambda`.
      A global switch (the whole model switching when one tensor triggers, as some
      reimplementations describe the paper's experiments) is not offered. The two dot products are
      per-tensor reductions (``seg.sum``; on the packed engine, segment sums over the flat buffer,
      so SWATS runs there like any other rule: :mod:`adamlab.optim._segments`).
    - **One** :math:`\epsilon` (default ``1e-9``, the paper's) serves both as the Adam denominator's
      :math:`\epsilon` (added to the un-corrected :math:`\sqrt{a_k}`, as in the algorithm) and as the
      switching threshold, exactly as Algorithm 1 uses its single :math:`\epsilon`. The test is
      absolute, not relative.
    - :math:`\Lambda` is taken as it is: the paper puts no sign check on it (some third-party
      implementations additionally require :math:`\Lambda > 0`; this one does not).
    - ``weight_decay`` (not in the paper) is L2, added to the gradient before either phase; it is 0
      by default, so the default is the paper's algorithm. A zero ``weight_decay`` skips the decay
      (``_zero_decay_structural``).
    - Speed: on the packed engine, tensors of float32 or float64 on the CPU run one C++ kernel
      (``swats_tensors`` in :mod:`adamlab.optim._native`, built once per machine; the first step waits
      for the build instead of compiling) in one pass: a tensor's param update does not
      depend on this step's sums (a tensor switching now takes its Adam step), so each element is
      read and written once, the sums taken on the way and each tensor's switch decided after; an
      Adam-phase tensor moves params and both moments (Adam's seven streams of memory traffic), an
      SGD-phase one params and momentum (five). Chunks of 16,384 elements are shared among the
      threads and their sums added in chunk order (the same result for any number of threads).
      Elsewhere the rule is compiled. With weight decay the sums read the params, and updating them
      in the same compiled pass would write the new params into a temporary allocated every step,
      so the rule breaks the compiled graph there and updates the params in a second, in-place pass
      from the stored moments (the same numbers; a no-op when not compiling). Step times:
      ``docs/performance.md``.
    - Defaults ``lr=1e-3, betas=(0.9, 0.999), eps=1e-9`` as the paper. After the switch ``lr`` is
      no longer used (the paper's SGD phase runs at :math:`\Lambda`), so a learning-rate schedule
      affects only the Adam phase; :math:`\beta_1` is the SGD momentum.
    - No Python branch on the phase: both updates are computed and ``torch.where`` picks, with the
      phase read from the 0-d state tensor ``switch_step``. In the SGD phase the Adam moments are
      frozen (the algorithm's ``continue``); before the switch the momentum buffer stays zero.

    - Precision: the two sums are the only values whose rounding decides a discrete event, so the
      rule computes the same numbers on every engine. Full-size values are computed in float32 for
      float16/bfloat16 parameters (in the parameter's dtype otherwise), the sums too, and rounded
      only where they are stored; the new moments are used as computed (as the compiled rule uses
      them); :math:`\gamma_k` (from the float32 sums), :math:`\lambda_k`'s update, the rate, the
      switch test and the SGD step's factor are float64 (as the C++ kernel and 0-d float64
      hyperparameters make them for float32/float64). Measured: bfloat16 parameters switch at the
      same steps, with the same numbers, on the reference engine and the packed engine's eager and
      compiled rule (with the sums in bfloat16, 9 of 24 test tensors switched at different steps).
      The price, compiled: with every op in float32, inductor's loop takes 16 elements where it took
      32 with bfloat16 ops: 1.6-2x the time per step (25M bfloat16 params on 2 loaded cores: 116-164
      ms against 56-90 ms).
    - Distributed: for a DTensor parameter (FSDP2, tensor parallel; see docs/distributed.md) the
      dot products are over the whole (global) tensor: each rank sums its shard and the two sums
      are all-reduced, so every rank, and the unsharded run, switch at the same step.

    State per parameter: ``step``; ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`a`),
    ``momentum_buffer`` (:math:`v`), all shaped like the parameter; and 0-d tensors on the
    parameter's device (for a DTensor parameter: replicated on its mesh): ``proj_lr_avg``
    (:math:`\lambda_k`), ``sgd_lr`` (:math:`\Lambda`, 0 until the switch) and ``switch_step`` (the step
    :math:`k` at which the tensor switched; 0 = still in Adam).
    The three 0-d slots have the parameter's (real) dtype, the dtype ``load_state_dict`` casts
    non-``step`` state to, so checkpoints round-trip bit for bit; for float16/bfloat16 parameters the
    recorded ``switch_step`` is rounded to that precision (the phase, ``switch_step > 0``, is exact).

    Args:
        params: iterable of tensors or param-group dicts.
        lr: Adam-phase learning rate :math:`\alpha` >= 0.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1); :math:`\beta_1` is also the SGD momentum.
        eps: :math:`\epsilon` >= 0, the Adam denominator term and the switching threshold.
        weight_decay: L2 coefficient >= 0 (an addition to the paper).
        maximize: ascend instead of descend.
    """

    _checks = dict(ADAM_CHECKS)
    _reduction = staticmethod(lambda p: "tensor")
    _zero_decay_structural = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-9,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        engine: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), engine=engine)

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, torch.Tensor]:
        state = fresh_state(p, "exp_avg", "exp_avg_sq", "momentum_buffer")
        state["proj_lr_avg"] = _scalar_slot(p)
        state["sgd_lr"] = _scalar_slot(p)
        state["switch_step"] = _scalar_slot(p)
        return state

    @staticmethod
    def _rule(p: torch.Tensor, g: torch.Tensor, s: dict[str, torch.Tensor], h: Any, group: dict[str, Any], seg: Any) -> None:
        # Full-size values are computed in `wide`, float32 for float16/bfloat16 params (else their own
        # dtype), and rounded only where they are stored; per-tensor values in float64 (the dtype 0-d
        # ops with the float64 hyperparameters have), and per-tensor factors rounded to `wide` before
        # they scale a full-size value. So every engine and the C++ kernel compute the same numbers
        # up to the order of additions inside the sums, whatever the param's dtype and whether the
        # per-tensor values are 0-d (reference engine) or (count, 1) (packed engine).
        wide = torch.promote_types(p.dtype, torch.float32)
        g = decay(p.to(wide), g.to(wide), h, decoupled=False)
        m, a, buf, step = s["exp_avg"], s["exp_avg_sq"], s["momentum_buffer"], s["step"]
        lam, sgd_lr, switch_step = s["proj_lr_avg"], s["sgd_lr"], s["switch_step"]  # one value per tensor
        sgd = switch_step > 0  # switched at an earlier step
        adam = ~sgd
        # Adam phase: moments move only while in Adam (frozen afterwards, as the algorithm's `continue`);
        # SGD phase: heavy-ball buffer (zero until the switch). This pass goes on with the new values
        # as computed (compiled, inductor does so for the stored ones anyway), a second pass reads them
        # as stored.
        m_now = m.to(wide) * torch.where(sgd, 1.0, h.beta1).to(wide) + g * torch.where(sgd, 0.0, 1 - h.beta1).to(wide)
        a_now = a.to(wide) * torch.where(sgd, 1.0, h.beta2).to(wide) + g * g * torch.where(sgd, 0.0, 1 - h.beta2).to(wide)
        buf_now = torch.where(sgd, buf.to(wide) * h.beta1 + g, buf.to(wide))
        m.copy_(m_now)
        a.copy_(a_now)
        buf.copy_(buf_now)
        bc2 = 1 - h.beta2**step
        # the SGD step's factor (1 - beta1) * Lambda, taken before this step's sums may change Lambda
        # (where a tensor switches now, it takes the Adam step): the update does not wait for the sums
        sgd_factor = (-(1 - h.beta1) * sgd_lr.double()).to(wide)

        def adam_step(m: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
            return m / (a.sqrt() + h.eps) * (-h.lr * bc2**0.5 / (1 - h.beta1**step))

        # Projection of the Adam step on the gradient: two per-tensor reductions.
        step_now = adam_step(m_now, a_now)
        pg = seg.sum(step_now * g)
        pp = seg.sum(step_now * step_now)
        live = adam & (pg != 0)
        gamma = (pp / -pg).double()  # inf/nan when pg == 0: never selected
        lam.copy_(torch.where(live, h.beta2 * lam.double() + (1 - h.beta2) * gamma, lam.double()).to(wide))
        rate = lam.double() / bc2
        switch = live & (step > 1) & ((rate - gamma).abs() < h.eps)
        sgd_lr.copy_(torch.where(switch, rate, sgd_lr.double()).to(wide))
        switch_step.copy_(torch.where(switch, step, switch_step))
        if hasattr(h, "weight_decay"):
            # the sums above read the params (through the decayed gradient): a second pass, see the docstring
            new_pass()
            buf_now = buf.to(wide)
            step_now = adam_step(m.to(wide), a.to(wide))
        p.add_(torch.where(sgd, buf_now * sgd_factor, step_now))

    @staticmethod
    def _native_rule(native: Any, p: torch.Tensor, g: torch.Tensor, s: dict[str, torch.Tensor], step: float, h: dict[str, float], group: dict[str, Any]) -> None:
        # the packed engine's tensors on the CPU: adamlab.optim._native's swats_tensors, one pass
        bc2 = 1 - h["beta2"] ** step
        slots = (s[k] for k in ("exp_avg", "exp_avg_sq", "momentum_buffer", "proj_lr_avg", "sgd_lr", "switch_step"))
        native.swats_tensors(
            *(x.data_ptr() for x in (p, g, *slots)),
            *p.shape,
            p.dtype == torch.float64,
            h["beta1"],
            h["beta2"],
            h["eps"],
            h.get("weight_decay", 0.0),
            -h["lr"] * math.sqrt(bc2) / (1 - h["beta1"] ** step),
            bc2,
            step,
            "weight_decay" in h,
            group["maximize"],
        )
