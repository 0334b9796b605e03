"""Segment reductions: how a rule that sums over a whole tensor or over its rows sees its data.

Most rules are elementwise. A few reduce over *segments* of a param: SWATS over the whole tensor
(``"tensor"``: its dot products), ND-Adam over the rows of ``reshape(shape[0], -1)`` (``"rows"``:
its projections and norms). Such a rule takes one more argument, ``seg``, and reduces only through
``seg.sum(x)``, the sum of each segment of ``x``, in a shape that broadcasts back against ``x``
(0-d for a whole tensor, ``(rows, 1)`` for rows); per-segment state has that shape too (SWATS's 0-d
``sgd_lr``, ND-Adam's ``(rows, 1)`` ``exp_avg_sq``). A rule over rows reads its element tensors
through ``seg.view(x)``, the ``(rows, cols)`` view.

The reference engine passes :class:`WholeTensor` or :class:`Rows` of one param (for a DTensor param,
:class:`MeshWholeTensor` or :class:`MeshRows`: see below). The packed engine
packs params whose segments have the same length together and calls the rule once per pack, with
the segments of all its params as the rows of ``(count, length)`` views of the flat buffers and
:class:`Rows` of that view as ``seg``; a whole tensor is then one row, and its 0-d state one
``(1, 1)`` entry. Both engines run the same rule on the same numbers; only the order of
additions inside a sum may differ.

**DTensor params** (FSDP2's ``fully_shard``, tensor parallel's ``parallelize_module``) are updated
by the reference engine, on the DTensors themselves, so every op runs on the local shards. A sum
over sharded elements is then, on each rank, the sum of its own shard: a DTensor whose placement is
``Partial`` on each mesh dimension the summed dims are sharded over. :class:`MeshWholeTensor` and
:class:`MeshRows` all-reduce such sums at once (``redistribute`` to ``Replicate``), so each rank
holds the global sum of the segment, as the unsharded run does, before the rule reads it; left
Partial, DTensor would all-reduce it again at every later use. Per-segment state
(:func:`segment_zeros`) lives on the param's mesh: a whole tensor's 0-d state is replicated; a
row's state (``(rows, 1)``) is sharded over the mesh dimensions whose placement shards the rows
(the param's ``Shard(0)``: each rank keeps the state of its own rows) and replicated over all the
others (``Shard(1)``, which splits each row's columns, and ``Replicate``), so it always lines up with
the rows of the local shard. Only the order of additions differs from an unsharded run.
"""

from __future__ import annotations

import math
import sys

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


def is_dtensor(t: torch.Tensor) -> bool:
    """Whether ``t`` is a DTensor, without importing :mod:`torch.distributed.tensor` (no DTensor
    exists before that module is imported)."""
    module = sys.modules.get("torch.distributed.tensor")
    return module is not None and isinstance(t, module.DTensor)


def global_sum(total: torch.Tensor) -> torch.Tensor:
    """A sum of a DTensor, all-reduced where it is ``Partial`` (each rank: its shard's sum) so that
    every rank holds the global value (``Replicate``); its other placements are kept."""
    from torch.distributed.tensor import Replicate

    placements = total.placements
    if not any(pl.is_partial() for pl in placements):
        return total
    return total.redistribute(placements=[Replicate() if pl.is_partial() else pl for pl in placements])


class MeshWholeTensor(WholeTensor):
    """:class:`WholeTensor` of a DTensor param: the sum over the whole (global) tensor, on every rank."""

    @staticmethod
    def sum(x: torch.Tensor) -> torch.Tensor:
        return global_sum(x.sum())


class MeshRows(Rows):
    """:class:`Rows` of a DTensor param: each row's sum over all its (global) columns, laid out like the rows."""

    @staticmethod
    def sum(x: torch.Tensor) -> torch.Tensor:
        return global_sum(x.sum(dim=1, keepdim=True))


def reference_segments(kind: str | None, p: torch.Tensor) -> WholeTensor | Rows | None:
    """The ``seg`` the reference engine passes for a param whose rule reduces over ``kind`` (None: elementwise)."""
    if kind is None:
        return None
    if is_dtensor(p):
        return MeshWholeTensor() if kind == "tensor" else MeshRows(p)
    return WholeTensor() if kind == "tensor" else Rows(p)


def segment_zeros(kind: str, p: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Per-segment state of param ``p`` filled with zeros: 0-d for ``"tensor"``, ``(rows, 1)`` for
    ``"rows"``, on the param's device. For a DTensor param, a DTensor on its mesh, laid out as the
    module docstring says (replicated; for rows, sharded where the param's rows are)."""
    shape = () if kind == "tensor" else (p.shape[0], 1)
    if not is_dtensor(p):
        return torch.zeros(shape, dtype=dtype, device=p.device)
    from torch.distributed.tensor import DTensor, Replicate

    placements = [pl if kind == "rows" and pl.is_shard(0) else Replicate() for pl in p.placements]
    local_rows = p.to_local().shape[0] if any(pl.is_shard(0) for pl in placements) else p.shape[0]
    local = torch.zeros(() if kind == "tensor" else (local_rows, 1), dtype=dtype, device=p.to_local().device)
    return DTensor.from_local(local, p.device_mesh, placements, run_check=False, shape=torch.Size(shape), stride=(1,) * len(shape))


def segment_count(kind: str, p: torch.Tensor) -> int:
    """How many segments of ``kind`` param ``p`` holds, each :func:`segment_length` contiguous elements."""
    return 1 if kind == "tensor" else p.shape[0]


def segment_length(kind: str, p: torch.Tensor) -> int:
    """How many elements each segment of ``kind`` of param ``p`` holds."""
    return p.numel() if kind == "tensor" else math.prod(p.shape[1:])
