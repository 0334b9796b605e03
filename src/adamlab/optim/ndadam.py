"""ND-Adam (Zhang et al. 2017): normalized direction-preserving Adam on the rows of weight tensors.

The rule's per-row reductions go through segment sums (:mod:`adamlab.optim._segments`), so the same
rule runs tensor by tensor on the reference engine and on whole flat buffers of rows on the packed one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from ._base import ADAM_CHECKS, RuleOptimizer, fresh_state, hyperparameters, new_pass
from ._segments import segment_zeros

_ND_CHECKS = {k: ADAM_CHECKS[k] for k in ("lr", "betas", "eps", "maximize")}


class NDAdam(RuleOptimizer):
    r"""ND-Adam: Adam on unit-norm weight vectors, with one second moment per vector.

    A tensor with ``ndim >= 2`` is read as ``shape[0]`` weight vectors, the rows
    :math:`w_i` of ``p.reshape(shape[0], -1)`` (a linear layer's ``(out, in)`` weight: one vector
    per output unit; a convolution's ``(out, in, kh, kw)`` kernel: one vector per output channel).
    For each row, at step :math:`t`:

    .. math::
        g_{i,t} &\leftarrow \bar g_{i,t} - (\bar g_{i,t}^\top w_{i,t-1})\, w_{i,t-1}
            \quad\text{(projection on the tangent space of the unit sphere)} \\
        m_{i,t} &= \beta_1 m_{i,t-1} + (1-\beta_1) g_{i,t} \\
        v_{i,t} &= \beta_2 v_{i,t-1} + (1-\beta_2) \lVert g_{i,t}\rVert_2^2 \quad\text{(a scalar per row)} \\
        \bar w_{i,t} &= w_{i,t-1} - \alpha\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,
            \frac{m_{i,t}}{\sqrt{v_{i,t}} + \epsilon},
        \qquad w_{i,t} = \bar w_{i,t} / \lVert \bar w_{i,t} \rVert_2

    Tensors with ``ndim < 2`` (biases, normalization gains, scalars) get the plain Adam step with the
    same numerics (elementwise :math:`v`, the same step size and eps placement, no projection, no
    normalization).

    Reference: Zhang, Ma, Li & Wu, *Normalized Direction-preserving Adam* (arXiv:1709.04546, 2017);
    numerics of the authors' PyTorch code (github.com/zj10/ND-Adam, ``pytorch/ndadam.py`` with
    ``vec_axes=[1, 2, 3]`` for conv kernels, i.e. all axes but the first):

    - the step size is :math:`\alpha\sqrt{1-\beta_2^t}/(1-\beta_1^t)` and ``eps`` is added to the
      *un*-corrected :math:`\sqrt{v}`. (The authors' TensorFlow code and the paper add eps to the
      corrected :math:`\sqrt{\hat v}`; the two differ only in the size of eps, by
      :math:`\sqrt{1-\beta_2^t}`.)
    - the projection uses the current row as it is: it is the exact tangent projection once rows
      have unit norm. The initial weights are **not** normalized before the first step (neither
      implementation does); rows have unit norm after every step. Initialize rows to unit norm
      for the paper's method from step 1.
    - one learning rate for all tensors; the authors' TensorFlow code uses 50x the rate for the
      vectors; use two param groups for that.
    - the authors' weight decay (L2, applied to their non-vector group only) is not offered: on unit
      vectors it has no effect, and the public keywords are ``lr, betas, eps``.
    - a row that becomes exactly zero divides by zero (as in the authors' code).

    Complex parameters are refused (``ValueError``).

    State per parameter: ``step``, ``exp_avg`` (shaped like the parameter) and ``exp_avg_sq``: shape
    ``(shape[0], 1)`` for a tensor of weight vectors (one :math:`v` per row, broadcasting against
    the ``(shape[0], -1)`` view), shaped like the parameter for ``ndim < 2``.

    Computation: the three row reductions are the only reductions; the rule makes them through
    ``seg`` (:mod:`adamlab.optim._segments`), so on the packed engine they are segment sums over the
    flat buffer of all weight matrices' rows. The step is computed as :math:`\bar w_i = w_i - r_i m_i`
    with the per-row factor :math:`r_i = \alpha\sqrt{1-\beta_2^t}/(1-\beta_1^t)/(\sqrt{v_i}+\epsilon)`,
    and the renormalization as :math:`\bar w_i \cdot (1/\lVert \bar w_i \rVert_2)`: the same values
    up to rounding as dividing every element, without a division per element. On the packed engine,
    rows of float32 or float64 on the CPU run one C++ kernel (``ndadam_rows`` in
    :mod:`adamlab.optim._native`, built once per machine; the first step waits for the build instead
    of compiling): each row in one visit while it is in cache, the three row sums and every
    elementwise op the rule makes, in the same order and precision (the sums add in another order
    than torch's), reading the rows, gradients and first moment once and writing the rows and first
    moment once. The rows (of all tensors whose rows have one length, together) are split among the
    threads, so fewer rows than threads leave threads idle. Elsewhere (other devices and dtypes, no
    C++ compiler, ``ADAMLAB_NATIVE=0``) the rule is compiled in three kernels (``new_pass``): the
    first two row sums and the first moment; the per-row second moment and step factor; the third
    row sum and the renormalized rows, written in place. Step times: ``docs/performance.md``.

    Distributed: a DTensor parameter (FSDP2, tensor parallel; see docs/distributed.md) keeps its
    rows as the whole tensor's rows. Under ``Shard(0)`` (FSDP2, ``ColwiseParallel``) each rank holds
    whole rows: the row sums are local and ``exp_avg_sq`` is sharded like the rows (``Shard(0)``).
    Under ``Shard(1)`` (``RowwiseParallel``) each row's columns are split across ranks: each row sum
    is all-reduced (three all-reduces of ``(rows, 1)`` per step) and ``exp_avg_sq`` is replicated.
    Either way every rank computes what the unsharded run computes for its part of the rows.

    Args:
        params: iterable of tensors or param-group dicts.
        lr: learning rate :math:`\alpha` >= 0.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon` >= 0.
        maximize: ascend instead of descend.
    """

    _checks = _ND_CHECKS
    # (a tensor with no rows, shape (0, ...), has nothing to normalize: the plain, empty, Adam step)
    _reduction = staticmethod(lambda p: "rows" if p.dim() >= 2 and p.shape[0] > 0 else None)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        *,
        maximize: bool = False,
        engine: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), engine=engine)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        complex_params = [p for p in self.param_groups[-1]["params"] if p.is_complex()]
        if complex_params:
            self.param_groups.pop()
            p = complex_params[0]
            raise ValueError(f"NDAdam does not support complex parameters (got a {p.dtype} parameter of shape {tuple(p.shape)})")

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, torch.Tensor]:
        if self._reduction(p) is None:
            return fresh_state(p, "exp_avg", "exp_avg_sq")
        state = fresh_state(p, "exp_avg")
        state["exp_avg_sq"] = segment_zeros("rows", p, p.dtype)
        return state

    @staticmethod
    def _rule(p: torch.Tensor, g: torch.Tensor, s: dict[str, torch.Tensor], h: Any, group: dict[str, Any], seg: Any) -> None:
        m, v, step = s["exp_avg"], s["exp_avg_sq"], s["step"]
        step_size = h.lr * (1 - h.beta2**step) ** 0.5 / (1 - h.beta1**step)
        if seg is None:  # structural: plain Adam for biases and scalars (ndim < 2)
            m.mul_(h.beta1).add_(g * (1 - h.beta1))
            v.mul_(h.beta2).add_(g * g * (1 - h.beta2))
            p.sub_(m / (v.sqrt() + h.eps) * step_size)
            return
        w, g = seg.view(p), seg.view(g)  # rows
        g = g - seg.sum(g * w) * w  # row reduction 1: tangent projection
        m.mul_(h.beta1).add_(g.reshape(m.shape) * (1 - h.beta1))
        g_norm_sq = seg.sum(g * g)  # row reduction 2: ||g_i||^2
        # Compiled, each part between new_pass() calls is a kernel (adamlab.optim._base.new_pass) that
        # inductor runs row by row, every loop over a row while the row is in cache, as long as the
        # kernel writes nothing per row alone: the per-row v and the step's per-row factor get a
        # kernel of their own in between. No full-size value may live across kernels (it would be a
        # temporary written and read every step), so the moved rows are computed twice, the same
        # numbers both times; per-row factors multiply rather than divide (no division per element).
        new_pass()
        v.mul_(h.beta2).add_(g_norm_sq * (1 - h.beta2))
        rate = step_size / (v.sqrt() + h.eps)
        new_pass()

        def moved() -> torch.Tensor:  # the rows after the Adam step, before renormalizing
            return w - seg.view(m) * rate

        inverse_norm = 1 / seg.sum(torch.square(moved())).sqrt()  # row reduction 3
        p.copy_((moved() * inverse_norm).reshape(p.shape))  # renormalize

    @staticmethod
    def _native_rule(native: Any, p: torch.Tensor, g: torch.Tensor, s: dict[str, torch.Tensor], step: float, h: dict[str, float], group: dict[str, Any]) -> None:
        # the packed engine's rows on the CPU: adamlab.optim._native's ndadam_rows, each row in one visit
        step_size = h["lr"] * math.sqrt(1 - h["beta2"] ** step) / (1 - h["beta1"] ** step)
        native.ndadam_rows(
            *(x.data_ptr() for x in (p, g, s["exp_avg"], s["exp_avg_sq"])),
            *p.shape,
            p.dtype == torch.float64,
            h["beta1"],
            h["beta2"],
            step_size,
            h["eps"],
            group["maximize"],
        )
