"""The packed engine: one application of the rule updates a whole param group at once.

Per param group and (device, dtype), a :class:`Pack` keeps the params, their gradients and every
per-element state slot in contiguous flat buffers; each param's ``.data``, ``.grad`` and
``state[p][slot]`` is a view into them, so ``state_dict()``, ``model.state_dict()`` and user code see
ordinary per-parameter tensors laid out as torch.optim lays them out. Per-param scalar state
(``step``, NAdam's ``mu_product``) lives in a ``(num_params,)`` buffer with ``state[p]["step"]`` a
0-d view of it.

Rules that reduce over whole tensors or rows (SWATS, ND-Adam; see :mod:`adamlab.optim._segments`)
run on flat buffers too: params whose segments (tensors for SWATS, rows for ND-Adam) have the same
length share a pack (ND-Adam's biases, which it treats elementwise, form packs of their own), and
the rule sees the pack's buffers as ``(count, length)`` views whose rows are the segments, so its
segment sums are row sums and segment values broadcast along the rows. Per-segment state (SWATS's
0-d ``sgd_lr``..., ND-Adam's ``(rows, 1)`` ``exp_avg_sq``) lives in a flat buffer of one entry per
segment, each param's state a view of its entries in the reference engine's shape. The work per
step grows with the number of distinct segment lengths, not of tensors: one pack when all tensors
(SWATS) or all rows (ND-Adam) of a group have the same length.

The rule runs compiled with ``torch.compile`` (eager, with a one-time warning, where compiling
fails; or as the optimizer's C++ kernel, see :attr:`~adamlab.optim._base.RuleOptimizer._native_rule`), once per *run*: a contiguous range of params that have a gradient this step and equal
per-param scalars (``step``...), on slices of the flat buffers, with one value per scalar. Usually
the whole pack is one run. A param without a gradient is skipped as torch skips it (no update, no
decay, no state change) and keeps a smaller ``step`` from then on, which cuts the pack into runs
around it: the cost is a few more kernel calls, not a slower path. All runs apply the same rule, so
the engines agree.

Gradients: gradients that are not already the views into the flat gradient buffer (fresh tensors
from ``backward()`` after ``zero_grad(set_to_none=True)``, or ones the user assigned) are copied
into it by one ``torch._foreach_copy_``; ``p.grad`` stays the tensor autograd made, unless the same
grad object is found at two steps in a row, which is then replaced by the view (no copies from then
on). A param whose storage moved (``model.to()``, a user assigning ``p.data``) is detected by its
data pointer and the pack is rebuilt. These per-param checks run in C++ once :mod:`~adamlab.optim._native`
is built (in the background, once per machine), in Python until then.
"""

from __future__ import annotations

import array
import math
import operator
import os
import sys
import types
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from ._engine import Scalars, conform_state, reference_update, scalars
from . import _compat, _engine, _native
from ._isa import vec_isa_options
from ._segments import Rows, is_dtensor, segment_count, segment_length

if TYPE_CHECKING:
    from ._base import RuleOptimizer

_KERNELS: dict[tuple, _Kernel] = {}
_WARNED: set[str] = set()

_GRAD = operator.attrgetter("grad")
_DATA_PTR = torch.Tensor.data_ptr

COMPILE_MIN_NUMEL = 1 << 16
"""Packs smaller than this run the rule eagerly: for them compiling costs more than it saves."""

DIRECT_MIN_NUMEL = 1 << 16
"""Params at least this large are *direct*: the kernel reads their gradient where it is, in a call of
its own. Copying a gradient of 65,536 float32 elements into a flat buffer moves 512 KiB, about what
one more kernel call costs; smaller gradients are gathered into the flat gradient buffer and share a call."""


def _kernel_function(rule: Callable[..., None], structure: tuple):
    """The rule applied to flat buffers, as a function of tensors only: ``(p, g, slot_tensors, scalars)``.

    The structure (options, state slot names, hyperparameter names, and for a rule that reduces,
    whether these params have segments) is fixed in the closure, so the compiled function guards
    on tensors alone (cheap to check every step), and each structure gets a code object of its
    own: torch.compile keeps its cache, and its limit of 8 variants, per code object. A pack of
    segments passes its buffers as ``(count, length)`` views, and the rule gets their rows as its
    segments (:class:`~adamlab.optim._segments.Rows`).

    ``slot_tensors`` are the per-element (or per-segment) slots, then the per-param scalar slots as
    columns of one entry per param of the run, all equal: the function increments ``step``, gives
    the rule each column's first entry, and copies what the rule wrote there (NAdam's
    ``mu_product``) to the others, inside the kernel (each a separate small op per step otherwise).
    """
    flags, slots, columns, names, reduces, segmented = structure
    flags = dict(flags)

    def apply(p, g, slot_tensors, scalar_tensors) -> None:
        s = dict(zip(slots, slot_tensors))
        per_param = slot_tensors[len(slots) :]
        for key, column in zip(columns, per_param):  # (step read as column[0] + 1, written after: pure scalar math for the hoist pass)
            s[key] = column[0] + 1 if key == "step" else column[0]
        h = Scalars()
        for name, value in zip(names, scalar_tensors):  # (1-element tensors, see _group_scalars)
            setattr(h, name, value.view(()))
        if flags["maximize"]:
            g = -g
        if not reduces:
            rule(p, g, s, h, flags)
        else:
            rule(p, g, s, h, flags, Rows(p) if segmented else None)
        for key, column in zip(columns, per_param):
            if key == "step":
                column.add_(1)
            else:
                column[1:].copy_(column[0])

    code = apply.__code__.replace(co_name=f"adamlab_{rule.__qualname__.replace('.', '_')}_{len(_KERNELS)}")
    return types.FunctionType(code, apply.__globals__, code.co_name, None, apply.__closure__)


def _compile_wanted(numel: int) -> bool:
    setting = os.environ.get("ADAMLAB_COMPILE", "auto")
    if setting not in ("0", "1", "auto"):
        raise ValueError(f"invalid ADAMLAB_COMPILE={setting!r}: expected 0, 1 or auto")
    return setting == "1" or (setting == "auto" and numel >= COMPILE_MIN_NUMEL)


_HOIST_PASS: Any = None


def _hoist_pass() -> Any:
    """An inductor graph pass that computes the rule's scalar math once per step, not per element.

    A rule's bias corrections and step sizes are 0-d tensors (``1 - beta1**step``...). Inductor
    inlines them into the elementwise loop, where libm calls such as ``pow`` are evaluated again for
    every vector of elements (measured: Adam on 25M floats took 66 ms instead of 21 ms). The pass
    moves the pure scalar math (0-d results computed from the inputs alone) to the front of the graph
    and routes the 0-d values that larger tensors use through one ``aten.cat`` per dtype (each value
    then read back by ``select``). Inductor lowers a CPU concatenation by computing each input into
    its slice of one buffer, so the scalar math runs once, at the start of the same C++ kernel as
    the elementwise loop, which reads the buffer: one kernel to compile and call, and no op to
    dispatch between them (an opaque custom op did this before: a second kernel, 0.75 s more C++
    compile on a cold cache, and a Python dispatch of 75 us per step with cold caches). A 0-d value
    that depends on a larger tensor (a full reduction) gets a concatenation of its own where it is.
    (On CUDA inductor may lower the concatenation pointwise, which inlines the scalar math again:
    the same results, and on a GPU the recomputation is cheap.)
    """
    global _HOIST_PASS
    if _HOIST_PASS is None and (CustomGraphPass := _compat.custom_graph_pass()) is not None:
        aten = torch.ops.aten

        def is_scalar(node: torch.fx.Node) -> bool:
            val = node.meta.get("val")
            return isinstance(val, torch.Tensor) and val.dim() == 0

        def is_larger(node: torch.fx.Node) -> bool:
            val = node.meta.get("val")
            return isinstance(val, torch.Tensor) and val.dim() > 0

        def mutates(node: torch.fx.Node) -> bool:
            schema = getattr(node.target, "_schema", None)
            return schema is not None and schema.is_mutable

        def call(graph: torch.fx.Graph, after: torch.fx.Node, op: Any, args: tuple, val: torch.Tensor) -> torch.fx.Node:
            with graph.inserting_after(after):
                node = graph.call_function(op, args)
            node.meta["val"] = val
            return node

        def route(graph: torch.fx.Graph, after: torch.fx.Node, edges: list[tuple[torch.fx.Node, list[torch.fx.Node]]]) -> None:
            by_kind: dict[tuple[torch.dtype, torch.device], list[tuple[torch.fx.Node, list[torch.fx.Node]]]] = {}
            for node, users in edges:  # (one concatenation per dtype: aten.cat would promote a mix)
                by_kind.setdefault((node.meta["val"].dtype, node.meta["val"].device), []).append((node, users))
            for group in by_kind.values():
                rows = []
                for node, _ in group * (2 if len(group) == 1 else 1):  # (a single input is lowered as a copy, inlined again)
                    after = call(graph, after, aten.unsqueeze.default, (node, 0), node.meta["val"].unsqueeze(0))
                    rows.append(after)
                after = call(graph, after, aten.cat.default, (rows,), torch.cat([row.meta["val"] for row in rows]))
                for i, (node, users) in enumerate(group):
                    item = call(graph, after, aten.select.int, (after, 0, i), node.meta["val"])
                    for user in users:
                        user.replace_input_with(node, item)

        class HoistScalars(CustomGraphPass):
            def __call__(self, graph: torch.fx.Graph) -> None:
                inputs = [n for n in graph.nodes if n.op in ("placeholder", "get_attr")]
                pure: list[torch.fx.Node] = []
                rest: list[torch.fx.Node] = []
                for node in graph.nodes:
                    if node.op != "call_function" or not is_scalar(node) or mutates(node):
                        continue
                    pure_inputs = all(i.op in ("placeholder", "get_attr") or i in pure for i in node.all_input_nodes)
                    (pure if pure_inputs else rest).append(node)
                edges = [(n, users) for n in pure if (users := [u for u in n.users if is_larger(u)])]
                if edges:
                    anchor = ([n for n in inputs if n.op == "placeholder"] or [None])[-1]
                    for node in [*(n for n in inputs if n.op == "get_attr"), *pure]:  # (keeping their order)
                        if anchor is None:
                            next(iter(graph.nodes)).prepend(node)
                        else:
                            anchor.append(node)
                        anchor = node
                    route(graph, anchor, edges)
                for node in rest:
                    users = [u for u in node.users if is_larger(u)]
                    if users:
                        route(graph, node, [(node, users)])

            def uuid(self) -> str:
                return "adamlab-hoist-scalars-cat-1"

        _HOIST_PASS = HoistScalars()
    return _HOIST_PASS


class _Unbindable(Exception):
    """A graph input that :meth:`_Kernel._bind` does not know how to find again."""


def _root(source: Any) -> str | None:
    """The name of the argument that dynamo's ``source`` starts from (``p`` for ``L['p'].size()[0]``)."""
    LocalSource = _compat.dynamo_sources().LocalSource

    while not isinstance(source, LocalSource):
        source = getattr(source, "base", None)
        if source is None:
            return None
    return source.local_name


def _resolve(source: Any, frame: dict[str, Any]) -> Any:
    """The value that dynamo's ``source`` (``L['p']``, ``L['slot_tensors'][2]``, ``L['p'].size()[0]``) names in ``frame``."""
    GetItemSource, LocalSource, TensorProperty, TensorPropertySource = _compat.dynamo_sources()

    if isinstance(source, LocalSource):
        return frame[source.local_name]
    if isinstance(source, GetItemSource) and not source.index_is_slice:
        return _resolve(source.base, frame)[source.index]
    if isinstance(source, TensorPropertySource):
        tensor = _resolve(source.base, frame)
        if source.prop is TensorProperty.STORAGE_OFFSET:
            return tensor.storage_offset()
        return getattr(tensor, source.prop.method_name())(source.idx)
    raise _Unbindable(source)


class _Kernel:
    """``rule`` on flat buffers for one structure (see :func:`_kernel_function`), compiled or eager.

    Called as ``kernel(site, p, g, slot_tensors, values)``, where ``site`` is a dict that the caller
    keeps for one set of buffers (a call of a pack: the same tensors every step, except the
    gradient of a direct param, a new tensor of the same shape at every step; and the
    hyperparameter ``values`` change).

    Compiled, the first call at a site goes through ``torch.compile``. Once dynamo's own guards
    accept the site's arguments for a graph that is the whole function (no graph break), the kernel
    keeps that graph with its inputs in order and calls it directly from then on: going through
    ``torch.compile`` costs about 0.25 ms more per call when the caches are cold, as they are after
    a backward pass or another optimizer (dynamo's frame evaluation, its guards and wrappers;
    measured alternating with torch's fused Adam: 0.44 ms against 0.19 ms), a quarter of a step for
    1M params in 500 tensors. Skipping the guards at later calls is safe because a site passes the
    same tensor objects every step, whose dtype, device, shape and strides cannot change, a gradient
    that is always contiguous with the param's dtype, device and shape (torch checks a ``.grad``
    against its param; :meth:`Pack._direct_grad` makes it contiguous), and hyperparameter values that are always 1-element float64 CPU tensors (:func:`_group_scalars`),
    and dynamo never guards on tensor values (a test checks that schedules do not recompile).
    When compiling or running the compiled kernel fails, the rule runs eagerly from then on, after
    a one-time warning saying why.
    """

    def __init__(self, rule: Callable[..., None], structure: tuple, compiled: bool) -> None:
        self.rule = rule
        self.fn = _kernel_function(rule, structure)
        self.compiled: Callable[..., None] | None = None
        self.graphs: dict[Any, tuple[list[Any], Callable[..., Any]]] = {}  # compile id -> (input sources, graph)
        if compiled:
            self.options = {"post_grad_custom_post_pass": _hoist_pass(), **vec_isa_options()}
            self.compiled = _compat.compile_rule(self.fn, self.options, self._keep_graph)

    def _keep_graph(self, compile_id: Any, sources: list[Any], graph: Callable[..., Any]) -> None:
        """Keep each graph inductor compiled (see :func:`~adamlab.optim._compat.compile_rule`)."""
        self.graphs[compile_id] = (sources, graph)

    def __call__(self, site: dict[Any, Any], p: torch.Tensor, g: torch.Tensor, slot_tensors: list, values: list) -> None:
        if self.compiled is None:
            self.fn(p, g, slot_tensors, values)
            return
        direct = site.get(self)
        try:
            if direct:
                direct(g, values)
                return
            _engine.KERNEL_PASSES = True
            try:
                self.compiled(p, g, slot_tensors, values)
            finally:
                _engine.KERNEL_PASSES = False
        except Exception as err:  # noqa: BLE001 - any compiler failure falls back to the same rule, eager
            self.compiled = None
            if self.rule.__qualname__ not in _WARNED:
                _WARNED.add(self.rule.__qualname__)
                warnings.warn(
                    f"adamlab: torch.compile failed for {self.rule.__qualname__} ({type(err).__name__}: {str(err)[:300]}); "
                    "the packed engine runs it eagerly from now on (same results, slower)",
                    RuntimeWarning,
                    stacklevel=5,
                )
            self.fn(p, g, slot_tensors, values)
            return
        if direct is None:
            site[self] = self._bind(p, g, slot_tensors, values) or False

    def _bind(self, p: torch.Tensor, g: torch.Tensor, slot_tensors: list, values: list) -> Callable[[torch.Tensor, list], None] | None:
        """The graph dynamo ran for these arguments, as a function of the values; None when it
        cannot be called directly (a graph break, an input found other than by indexing the arguments)."""
        code = self.fn.__code__
        frame = dict(zip(code.co_freevars, (cell.cell_contents for cell in self.fn.__closure__ or ())))
        frame.update(zip(code.co_varnames, (p, g, slot_tensors, values)))
        found, sources_known = _compat.guarded_compile_id(code, frame), _compat.dynamo_sources()
        if found is None or sources_known is None:
            return None
        compile_id, names = found
        if compile_id not in self.graphs or sum(n.startswith("__compiled_fn") for n in names) != 1 or any(n.startswith("__resume") for n in names):
            return None
        sources, graph = self.graphs[compile_id]
        GetItemSource, LocalSource = sources_known.GetItemSource, sources_known.LocalSource

        try:
            inputs = [_resolve(source, frame) for source in sources]
        except (_Unbindable, KeyError, IndexError, AttributeError):
            return None
        varying = [
            (i, source.index)
            for i, source in enumerate(sources)
            if isinstance(source, GetItemSource) and isinstance(source.base, LocalSource) and source.base.local_name == code.co_varnames[3]
        ]
        # the gradient (and anything dynamo reads off it) is read at every call: a direct param's
        # gradient is a new tensor at every step
        of_grad = [(i, source) for i, source in enumerate(sources) if _root(source) == code.co_varnames[1]]
        for i, _ in of_grad:  # (holding the first step's gradient would keep it alive for good)
            inputs[i] = None

        def direct(g: torch.Tensor, values: list) -> None:
            args = inputs.copy()
            for i, k in varying:
                args[i] = values[k]
            for i, source in of_grad:
                args[i] = g if isinstance(source, LocalSource) else _resolve(source, {code.co_varnames[1]: g})
            graph(*args)

        return direct


def kernel(rule: Callable[..., None], structure: tuple, numel: int) -> _Kernel:
    """The :class:`_Kernel` of ``rule`` for one structure: compiled when ``ADAMLAB_COMPILE=1``, or by
    default (``auto``) when the pack holds at least :data:`COMPILE_MIN_NUMEL` elements;
    ``ADAMLAB_COMPILE=0`` never compiles."""
    key = (rule, structure, _compile_wanted(numel))
    if key not in _KERNELS:
        _KERNELS[key] = _Kernel(rule, structure, key[2])
    return _KERNELS[key]


def packable(p: torch.Tensor) -> bool:
    """Params the packed engine takes: dense, real floating point, contiguous, on a device, and not a
    DTensor (FSDP2, tensor parallel: updated tensor by tensor on their local shards, see
    :mod:`adamlab.optim._segments`)."""
    return p.is_floating_point() and not p.is_sparse and p.is_contiguous() and p.layout == torch.strided and not is_dtensor(p)


_STAGGER = 9 * 64  # bytes: nine cache lines
_LARGE = 1 << 22  # bytes
_HUGE = 1 << 21  # x86-64 and arm64 Linux transparent huge pages: 2 MiB
_MADV_HUGEPAGE = 14


def flat_buffer(numel: int, dtype: torch.dtype, device: torch.device, index: int) -> torch.Tensor:
    """An uninitialized flat buffer, the ``index``-th of its pack; on CPUs laid out for streaming.

    A step streams every flat buffer of a pack through memory side by side, element ``i`` of each at
    the same time. Large allocations all start at the same offset within a 4 KiB page, so those
    streams would hit the same cache sets and alias each other's addresses modulo 4 KiB (Adam, 25M
    params: 1.05 to 1.19x the time of torch's fused Adam in one process on an AMD EPYC VM); each
    buffer of 4 MiB or more here starts ``index`` times nine cache lines further into its allocation
    (modulo 4 KiB), which puts up to 64 streams on distinct sets (0.91 to 0.94x there). The offset is
    taken from the allocation's own address: an allocation that the C library makes from its heap
    (as it does for sizes it has seen freed) starts anywhere in a page.

    And a step crosses a page of 4 KiB every 1,024 float32 elements of every stream (a TLB miss, a
    page-table walk, and the hardware prefetchers stop at the page's end): where transparent huge
    pages are on "madvise" (the common default), a region gets 2 MiB pages only if asked before it
    is first touched, so on Linux the buffer's whole 2 MiB blocks are advised ``MADV_HUGEPAGE`` (its
    partial blocks at either end keep small pages: nothing is allocated beyond the buffer). On the
    Intel Xeon VM: Adam 0.93-1.05x -> 0.79-0.80x torch's fused Adam, AMSGrad 1.14x -> 1.01-1.02x
    (25M params, one process, three rounds; the first step about 0.3 s slower: the kernel hands out
    and clears 2 MiB pages); on the AMD VM it gained 0-3%
    beside the stagger. Other devices, systems and small buffers get neither; a refused advice
    changes nothing.
    """
    nbytes = numel * dtype.itemsize
    if device.type != "cpu" or nbytes < _LARGE:
        return torch.empty(numel, dtype=dtype, device=device)
    raw = torch.empty(numel + 4096 // dtype.itemsize, dtype=dtype, device=device)
    skip = (index * _STAGGER - raw.data_ptr()) % 4096 // dtype.itemsize  # (allocations are 64-byte aligned)
    out = raw[skip : skip + numel]
    if sys.platform == "linux":
        start = -(-out.data_ptr() // _HUGE) * _HUGE
        length = (out.data_ptr() + nbytes - start) // _HUGE * _HUGE
        if length > 0:
            import ctypes

            ctypes.CDLL(None).madvise(ctypes.c_void_p(start), ctypes.c_size_t(length), _MADV_HUGEPAGE)
    return out


def _cumulative(sizes: list[int]) -> list[int]:
    out = [0]
    for n in sizes:
        out.append(out[-1] + n)
    return out


class Pack:
    """The params of one group with one (device, dtype) and one kind of segments, packed in flat buffers.

    ``reduction`` is what the rule sums over for these params (``"tensor"``, ``"rows"``) or None
    for an elementwise rule; all segments of a pack have the same length, so the rule sees its
    element buffers as ``(count, length)`` views whose rows are the segments, and its per-segment
    buffers as ``(count, 1)``. A pack's *units* are its elements (elementwise) or its segments.

    A param of at least ``direct_min`` elements (:data:`DIRECT_MIN_NUMEL`) is *direct*: the kernel
    reads its gradient where autograd (or the user) left it, one kernel call per such param; smaller
    params have a slice of the flat gradient buffer ``flat_g``, into which their gradients are
    gathered, and consecutive ones share a kernel call. Direct params whose gradients turn out to be
    written in place step after step (``zero_grad(set_to_none=False)``, see :meth:`_persistent`) are
    packed again with every gradient gathered (``direct_min`` infinite): their gradients then become
    views of ``flat_g`` and a step is one call again.
    """

    def __init__(
        self,
        opt: RuleOptimizer,
        group: dict[str, Any],
        params: list[torch.Tensor],
        reduction: str | None = None,
        direct_min: float | None = None,
    ) -> None:
        direct_min = DIRECT_MIN_NUMEL if direct_min is None else direct_min
        self.opt, self.group, self.params, self.reduction, self.direct_min = opt, group, params, reduction, direct_min
        first = params[0]
        dtype, device = first.dtype, first.device
        self.numels = [p.numel() for p in params]
        self.offsets = _cumulative(self.numels)
        self.direct = [n >= direct_min for n in self.numels]
        units = self.numels if reduction is None else [segment_count(reduction, p) for p in params]
        self.unit_offsets = _cumulative(units)
        self.g_offsets = _cumulative([0 if d else n for n, d in zip(self.numels, self.direct)])
        self.g_unit_offsets = _cumulative([0 if d else u for u, d in zip(units, self.direct)])
        total = self.offsets[-1]
        # The params move into their flat buffer first, each freeing its old storage as it goes, and the
        # gradient and state buffers are allocated after: the step that packs needs no more memory
        # than the steps after it.
        self.flat_p = flat_buffer(total, dtype, device, 0)
        for i, p in enumerate(params):
            view = self._slice(self.flat_p, i).view_as(p)
            view.copy_(p.detach())
            p.data = view
        # Per-element and per-segment slots (created on the param's device: meta here) get a flat
        # buffer each, laid out param after param; per-param scalars (``step``, on the CPU) a (num_params,) one.
        templates = [opt._init_state(torch.empty(p.shape, dtype=dtype, device="meta"), group) for p in params]
        self.slot_offsets = {
            k: _cumulative([t[k].numel() for t in templates]) for k, v in templates[0].items() if v.device.type == "meta"
        }
        self.flat_g = flat_buffer(self.g_offsets[-1], dtype, device, 1).zero_()
        self.flat = {k: flat_buffer(offs[-1], dtype, device, 2 + i).zero_() for i, (k, offs) in enumerate(self.slot_offsets.items())}
        self.scalar = {k: torch.zeros(len(params), dtype=v.dtype) for k, v in templates[0].items() if v.device.type != "meta"}
        # what the rule sees: the flat buffers, or for segments their (count, length) / (count, 1) views
        self.views = [self.flat_p, *self.flat.values()]
        self.g_view = self.flat_g
        self.g_shapes = [(n,) for n in self.numels]  # a direct param's gradient as the rule sees it
        if reduction is not None:
            count, length = sum(units), segment_length(reduction, first)
            self.views = [x.view((count, 1) if x.numel() == count and length != 1 else (count, length)) for x in self.views]
            self.g_view = self.flat_g.view(self.g_unit_offsets[-1], length)
            self.g_shapes = [(u, length) for u in units]
        for i, p in enumerate(params):
            old = opt.state.get(p)
            if old:
                conform_state(opt, p, group, old)
                self._adopt(i, old)
        self.ptrs = [p.data_ptr() for p in params]
        self.grad_views = self._grad_views()
        # (0 for a direct param: the C++ check then asks only for a dense, contiguous gradient)
        self.grad_ptrs = [0 if g is None else g.data_ptr() for g in self.grad_views]
        self.ptr_arrays = (array.array("q", self.ptrs), array.array("q", self.grad_ptrs))  # (for _native.check)
        self.gathered = [i for i, d in enumerate(self.direct) if not d]
        self.direct_idx = [i for i, d in enumerate(self.direct) if d]
        self.direct_seen: list[tuple[int, int, int]] | None = None  # see _persistent
        self.persistent = False
        self.seen = [0] * len(params)  # ids of the grads found at the last step
        self.calls: list[Any] | None = None  # see _calls
        self.calls_missing: tuple[int, ...] = ()
        self.kernel: _Kernel | None = None  # the kernel of the last step, for these options and hyperparameter names:
        self.kernel_for: tuple[dict[str, Any], tuple[str, ...]] | None = None
        self.stateful = False  # every param has its state (then new state can only come from a rebuild)
        self.native: Callable[..., None] | None | bool = None  # the rule's C++ kernel for this pack, False: none; None: not decided yet

    def _slice(self, flat: torch.Tensor, i: int, offsets: list[int] | None = None) -> torch.Tensor:
        offsets = self.offsets if offsets is None else offsets
        return flat[offsets[i] : offsets[i + 1]]

    def _grad_views(self) -> list[torch.Tensor | None]:
        """Each gathered param's gradient slice of ``flat_g`` in its param's shape (None for a direct param)."""
        return [None if d else self._slice(self.flat_g, i, self.g_offsets).view_as(p) for i, (p, d) in enumerate(zip(self.params, self.direct))]

    def _adopt(self, i: int, values: dict[str, torch.Tensor]) -> None:
        """Copy param i's state into the buffers and make ``opt.state[p]`` views of them."""
        p = self.params[i]
        state = {}
        for key, value in values.items():
            if key in self.scalar:
                self.scalar[key][i] = value
                state[key] = self.scalar[key][i]
            else:
                view = self._slice(self.flat[key], i, self.slot_offsets[key]).view(value.shape)
                view.copy_(value)
                state[key] = view
        self.opt.state[p] = state

    def _gather_grads(self, stale_known: bool = False) -> tuple[int, ...]:
        """Bring this step's gradients of the gathered (small) params into ``flat_g``; the indices of
        the params that have none.

        The usual cases, in C-speed passes over the params: every gathered ``p.grad`` still reads from
        its place in ``flat_g`` (compared by data pointer, so a grad whose storage was swapped is
        noticed) and every direct param has one, or ``backward()`` after ``zero_grad()`` left fresh
        tensors: one ``torch._foreach_copy_`` copies the gathered ones in, and ``p.grad`` stays the
        tensor autograd made. A gathered grad object that persists from one step to the next
        (``zero_grad(set_to_none=False)``, or accumulation) is replaced by the view once, so later
        steps copy nothing. ``stale_known``: the C++ check already found a gradient out of place (the
        first pass is skipped).
        """
        grads = list(map(_GRAD, self.params))
        try:
            if not stale_known and list(map(_DATA_PTR, grads)) == self.grad_ptrs:
                return ()
        except (TypeError, RuntimeError):  # a grad is None (or sparse)
            pass
        missing = tuple(i for i, g in enumerate(grads) if g is None)
        if any(g.is_sparse for g in grads if g is not None):
            raise RuntimeError(f"{type(self.opt).__name__} does not support sparse gradients")
        stale = [i for i in self.gathered if grads[i] is not None and grads[i].data_ptr() != self.grad_ptrs[i]]
        if stale:
            views = [self.grad_views[i] for i in stale]
            if list(map(_DATA_PTR, views)) != [self.grad_ptrs[i] for i in stale]:  # a view's storage swapped (p.grad.data = ...)
                self.grad_views = self._grad_views()
                views = [self.grad_views[i] for i in stale]
            _compat.foreach_copy_(views, [grads[i] for i in stale])  # (torch guarantees a grad has its param's shape)
            for i, view in zip(stale, views):
                if id(grads[i]) == self.seen[i]:  # (ids, not references: holding last step's grads would keep them alive;
                    self.params[i].grad = view  # an id reused by a new tensor only adopts the view a step early)
        self.seen = list(map(id, grads))
        return missing

    def _persistent(self) -> bool:
        """Whether every direct param's gradient is the tensor it was at the last step, at the same
        address, written in place since (its version counter moved on): gradients kept between steps
        and accumulated into, which a flat gradient buffer serves in one call. A fresh gradient is a
        new tensor whose version starts again, even where it reuses the old one's id and memory."""
        seen = self.direct_seen
        now = []
        for i in self.direct_idx:
            g = self.params[i].grad
            if g is None:
                self.direct_seen = None
                return False
            now.append((id(g), g.data_ptr(), g._version))
        self.direct_seen = now
        return seen is not None and all(a[:2] == b[:2] and a[2] > b[2] for a, b in zip(now, seen))

    def _direct_grad(self, i: int) -> torch.Tensor:
        """Direct param i's gradient, as the rule sees it (flat, or ``(count, length)``)."""
        g = self.params[i].grad
        return (g if g.is_contiguous() else g.contiguous()).view(self.g_shapes[i])

    def step(self, names: tuple[str, ...], values: list[torch.Tensor], flags: dict[str, Any]) -> bool:
        """One step; False (and nothing done) when a param's storage moved and the pack must be
        rebuilt, or (``persistent``) when it is to be rebuilt with every gradient gathered."""
        status = 3 if _native.check is None else _native.check(self.params, *self.ptr_arrays)
        if status == 1 or (status == 3 and list(map(_DATA_PTR, self.params)) != self.ptrs):
            return False
        if self.direct_idx and self._persistent():
            self.persistent = True
            return False
        missing = () if status == 0 else self._gather_grads(stale_known=status == 2)
        if not self.stateful:
            for i, p in enumerate(self.params):
                if p.grad is not None and not self.opt.state.get(p):
                    self._adopt(i, self.opt._init_state(p, self.group))
                    self.calls = None
            self.stateful = all(self.opt.state.get(p) for p in self.params)
        if self.calls is None or missing != self.calls_missing:
            self.calls, self.calls_missing = self._calls(missing), missing
        if self.native is None:  # (decided first: a pack with a C++ kernel never makes a compiled one)
            self.native = self._native_rule() or False
        direct_grad = self._direct_grad
        if self.native:
            h = dict(zip(names, map(float, values)))
            for p, g, slots, (step,), _ in self.calls:
                if g.__class__ is int:
                    g = direct_grad(g)
                self.native(_native.module, p, g, dict(zip(self.flat, slots)), float(step[0]) + 1, h, flags)
                step.add_(1)
            return True
        if self.kernel is None or self.kernel_for != (flags, names):  # (hashing the structure every step costs tens of microseconds)
            cls = type(self.opt)
            structure = (
                tuple(sorted(flags.items())),
                tuple(self.flat),
                tuple(self.scalar),
                names,
                cls._reduction is not None,
                self.reduction is not None,
            )
            self.kernel, self.kernel_for = kernel(cls._rule, structure, self.flat_p.numel()), (flags, names)
        run = self.kernel
        for p, g, slots, columns, site in self.calls:
            if g.__class__ is int:
                g = direct_grad(g)
            run(site, p, g, [*slots, *columns], values)
        return True

    def _native_rule(self) -> Callable[..., None] | None:
        """The optimizer's C++ kernel for this pack (:attr:`~adamlab.optim._base.RuleOptimizer._native_rule`)
        where it applies: a pack of float32 or float64 on the CPU whose only per-param scalar is
        ``step`` (for a rule that reduces, a pack of segments: its elementwise packs, ND-Adam's
        biases, run the compiled rule), once :mod:`~adamlab.optim._native` is loaded (built now if need be)."""
        cls = type(self.opt)
        rule = cls._native_rule
        if (
            rule is None
            or (cls._reduction is not None and self.reduction is None)
            or self.flat_p.device.type != "cpu"
            or self.flat_p.dtype not in (torch.float32, torch.float64)
            or tuple(self.scalar) != ("step",)
        ):
            return None
        return rule if _native.kernels() is not None else None

    def _calls(self, missing: tuple[int, ...]) -> list[tuple[torch.Tensor, Any, list[torch.Tensor], list[torch.Tensor], dict]]:
        """The kernel calls of a step: ``(p, g, slots, columns, site)`` with slices of the flat buffers
        (the per-param scalars' too, see :func:`_kernel_function`) and the call's site (see :class:`_Kernel`);
        ``g`` is a slice of ``flat_g``, or for a direct param its index (its gradient is read at the call).

        The params that have a gradient are cut into contiguous runs with equal per-param scalars
        (``step``...), and a run into one call per direct param and one per stretch of gathered params
        between them. Usually one call per direct param and one for all the rest. A param without a
        gradient is skipped as torch skips it (no update, no decay, no state change) and keeps a
        smaller ``step`` from then on, which cuts the pack into runs around it; recomputed only when
        the set of params without a gradient changes (or new state appears).
        """
        n, skip = len(self.params), set(missing)
        stacked = torch.stack([buf.to(torch.float64) for buf in self.scalar.values()], 1)
        differs = [False, *(stacked[1:] != stacked[:-1]).any(1).tolist()]  # param i's scalars differ from param i-1's
        calls, start = [], None
        units, g_units = self.unit_offsets, self.g_unit_offsets

        def close(stop: int) -> None:
            lo, hi = units[start], units[stop]
            g = self.g_view[g_units[start] : g_units[stop]]
            calls.append((self.views[0][lo:hi], g, [x[lo:hi] for x in self.views[1:]], [buf[start:stop] for buf in self.scalar.values()], {}))

        for i in range(n + 1):
            cut = i == n or i in skip or differs[i] or self.direct[i]
            if start is not None and cut:
                close(i)
                start = None
            if i < n and i not in skip:
                if self.direct[i]:
                    lo, hi = units[i], units[i + 1]
                    calls.append((self.views[0][lo:hi], i, [x[lo:hi] for x in self.views[1:]], [buf[i : i + 1] for buf in self.scalar.values()], {}))
                elif start is None:
                    start = i
        return calls


def build_packs(
    opt: RuleOptimizer, group: dict[str, Any], params: list[torch.Tensor], direct_min: float | None = None
) -> tuple[list[Pack], list[torch.Tensor]]:
    """Split params of a group into packs per (device, dtype, reduction kind, segment length) of packable params, and the rest.

    A param listed twice in the group is left to the reference engine, which updates it twice per
    step, as torch.optim does."""
    by_kind: dict[tuple[torch.device, torch.dtype, str | None, int | None], list[torch.Tensor]] = {}
    rest = []
    counts: dict[int, int] = {}
    for p in params:
        counts[id(p)] = counts.get(id(p), 0) + 1
    for p in params:
        if counts[id(p)] == 1 and packable(p):
            reduction = None if opt._reduction is None else opt._reduction(p)
            length = None if reduction is None else segment_length(reduction, p)
            by_kind.setdefault((p.device, p.dtype, reduction, length), []).append(p)
        else:
            rest.append(p)
    return [Pack(opt, group, ps, kind[2], direct_min) for kind, ps in by_kind.items()], rest


def _plain(value: Any) -> bool:
    return isinstance(value, (int, float)) or (isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value))


def _group_scalars(opt: RuleOptimizer, group: dict[str, Any], cache: list) -> tuple[Any, tuple[str, ...], list[torch.Tensor]]:
    """:func:`~adamlab.optim._engine.scalars` of the group (for params the reference engine updates),
    and the names and values the kernels take: the same numbers as 1-element tensors (views), since
    dynamo gives every 0-d float64 CPU input a symbolic ``item()`` that it then specializes away by
    restarting the whole trace, which doubled the first step's tracing; the kernel views them as 0-d
    again (:func:`_kernel_function`). Reused (from ``cache``) while the group's hyperparameters are
    the same Python numbers as at the last step: building the tensors costs a few microseconds each,
    every step. (Hyperparameters given as tensors are read afresh.)"""
    key = tuple((k, group[k]) for k in opt._scalar_names)
    if not (cache and all(_plain(v) for _, v in key) and cache[0] == key):
        h = scalars(group, opt._scalar_names, opt._zero_decay_structural)
        cache[:] = [key, (h, tuple(vars(h)), [value.view(1) for value in vars(h).values()])]
    return cache[1]


def packed_step(opt: RuleOptimizer, group: dict[str, Any]) -> None:
    """One optimizer step for one param group on the packed layout."""
    entry = opt._packs.get(id(group))
    ids = list(map(id, group["params"]))
    if entry is None or entry[0] is not group or entry[4] != ids:  # (a new group, or its list of params changed)
        entry = opt._packs[id(group)] = (group, *build_packs(opt, group, group["params"]), [], ids)
    _, packs, rest, cache, _ = entry
    h, names, values = _group_scalars(opt, group, cache)
    flags = opt._options(group)
    for p in rest:
        if p.grad is not None:
            reference_update(opt, p, group, h)
    for i, pack in enumerate(packs):
        if not pack.step(names, values, flags):
            break
    else:
        if not _native.STARTED:
            _native.prepare()
        return
    # A param of pack i moved its storage (``model.to()``, ``p.data = ...``), or its gradients stay in
    # place (``persistent``), found before that pack changed anything: re-pack the params of packs i,
    # i+1, ... from their data and state (pack i with every gradient gathered if persistent); step them.
    new, unpackable = [], []
    for j, pack in enumerate(packs[i:]):
        more, also = build_packs(opt, group, pack.params, math.inf if j == 0 and pack.persistent else pack.direct_min)
        new += more
        unpackable += also
    for pack in new:
        pack.step(names, values, flags)
    for p in unpackable:
        if p.grad is not None:
            reference_update(opt, p, group, h)
    opt._packs[id(group)] = (group, packs[:i] + new, rest + unpackable, cache, ids)
