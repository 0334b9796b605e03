"""Segment reductions: how a rule that sums over a whole tensor or over its rows sees its data.

Most rules are elementwise. A few reduce over *segments* of a param: SWATS over the whole tensor
(``"tensor"``: its dot products), ND-Adam over the rows of ``reshape(shape[0], -1)`` (``"rows"``:
its projections and norms). Such a rule takes one more argument, ``seg``, and reduces only through
``seg.sum(x)``, the sum of each segment of ``x``, in a shape that broadcasts back against ``x``
(0-d for a whole tensor, ``(rows, 1)`` for rows); per-segment state has that shape too (SWATS's 0-d
``sgd_lr``, ND-Adam's ``(rows, 1)`` ``exp_avg_sq``). A rule over rows reads its element tensors
through ``seg.view(x)``, the ``(rows, cols)`` view.

The reference engine passes :class:`WholeTensor` or :class:`Rows` of one param. The packed engine
packs params whose segments have the same length together and calls the rule once per pack, with
the segments of all its params as the rows of ``(count, length)`` views of the flat buffers and
:class:`Rows` of that view as ``seg``; a whole tensor is then one row, and its 0-d state one
``(1, 1)`` entry. Both engines run the same rule on the same numbers; only the order of
additions inside a sum may differ.
"""

from __future__ import annotations

import math

import torch


class WholeTensor:
    """The reference engine's segment of a param whose rule reduces over the whole tensor."""

    @staticmethod
    def sum(x: torch.Tensor) -> torch.Tensor:
        return x.sum()


class Rows:
    """Segments that are the rows of ``reshape(shape[0], -1)``: a param's with ndim >= 2 on the
    reference engine, a pack of equal-length segments (viewed ``(count, length)``) on the packed one."""

    def __init__(self, p: torch.Tensor) -> None:
        self.rows = p.shape[0]

    def view(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(self.rows, -1)

    @staticmethod
    def sum(x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=1, keepdim=True)


def reference_segments(kind: str | None, p: torch.Tensor) -> WholeTensor | Rows | None:
    """The ``seg`` the reference engine passes for a param whose rule reduces over ``kind`` (None: elementwise)."""
    if kind is None:
        return None
    return WholeTensor() if kind == "tensor" else Rows(p)


def segment_count(kind: str, p: torch.Tensor) -> int:
    """How many segments of ``kind`` param ``p`` holds, each :func:`segment_length` contiguous elements."""
    return 1 if kind == "tensor" else p.shape[0]


def segment_length(kind: str, p: torch.Tensor) -> int:
    """How many elements each segment of ``kind`` of param ``p`` holds."""
    return p.numel() if kind == "tensor" else math.prod(p.shape[1:])
