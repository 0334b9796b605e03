"""Segment reductions: how a rule that sums over a whole tensor or over its rows sees its data.

Most rules are elementwise. A few (SWATS: per-tensor dot products; ND-Adam: per-row norms) reduce
over *segments* of a param: the whole tensor (``"tensor"``) or the rows of
``reshape(shape[0], -1)`` (``"rows"``). Such a rule takes one more argument, ``seg``, and touches
its segments only through it:

- ``seg.view(x)``: an element tensor (the param, its grad, a state slot shaped like it) in the
  layout whose last dimension runs along a segment;
- ``seg.sum(x)``: the sum of each segment of ``seg.view``-shaped ``x``: *segment space*, the space
  in which the rule's per-segment state lives (SWATS's 0-d ``proj_lr_avg``, ND-Adam's per-row
  ``exp_avg_sq``);
- ``seg.expand(y)``: a segment-space value made to broadcast against element tensors.

The reference engine gives one param at a time: for ``"tensor"`` segment space is 0-d
(``sum`` is ``x.sum()``), for ``"rows"`` it is ``(rows, 1)`` (``sum`` is
``x.sum(dim=1, keepdim=True)`` on the ``(rows, cols)`` view); ``expand`` is the identity, since
broadcasting does it. The packed engine gives a flat buffer holding the segments of many params
back to back (:class:`FlatSegments`): segment space is one entry per segment, ``sum`` reduces
each run of equal-length segments with one reshape, and ``expand`` gathers per element.
"""

from __future__ import annotations

import torch

KINDS = ("tensor", "rows")


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class WholeTensor:
    """The reference engine's segments of a param whose rule reduces over the whole tensor."""

    view = staticmethod(_identity)
    expand = staticmethod(_identity)

    @staticmethod
    def sum(x: torch.Tensor) -> torch.Tensor:
        return x.sum()


class Rows:
    """The reference engine's segments of a param with ndim >= 2: the rows of ``reshape(shape[0], -1)``."""

    expand = staticmethod(_identity)

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
    """How many segments of ``kind`` param ``p`` holds (each is a contiguous run of ``p.numel() // count`` elements)."""
    return 1 if kind == "tensor" else p.shape[0]


class FlatSegments:
    """The packed engine's segments: a flat buffer of segments, back to back, sorted so that equal lengths are adjacent.

    ``ids`` maps every element to its segment; ``runs`` is the static layout, ``(count, length)``
    per run of equal-length segments, in buffer order. Segment-space floating values are cast to
    the buffer's ``dtype`` when expanded, as a 0-d value is when it meets a tensor in the reference
    engine.
    """

    view = staticmethod(_identity)

    def __init__(self, ids: torch.Tensor, runs: tuple[tuple[int, int], ...], dtype: torch.dtype) -> None:
        self.ids, self.runs, self.dtype = ids, runs, dtype

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        sums, start = [], 0
        for count, length in self.runs:
            end = start + count * length
            sums.append(x[start:end].view(count, length).sum(dim=1))
            start = end
        return sums[0] if len(sums) == 1 else torch.cat(sums)

    def expand(self, y: torch.Tensor) -> torch.Tensor:
        if y.dim() == 0:  # one value for every segment (a hyperparameter, a uniform step)
            return y
        if y.is_floating_point():
            y = y.to(self.dtype)
        return y[self.ids]
