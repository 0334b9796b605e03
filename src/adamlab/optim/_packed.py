"""The packed engine: one application of the rule updates a whole param group at once.

Per param group and (device, dtype), a :class:`Pack` keeps the params, their gradients and every
per-element state slot in contiguous flat buffers; each param's ``.data``, ``.grad`` and
``state[p][slot]`` is a view into them, so ``state_dict()``, ``model.state_dict()`` and user code see
ordinary per-parameter tensors laid out as torch.optim lays them out. Per-param scalar state
(``step``, NAdam's ``mu_product``) lives in a ``(num_params,)`` buffer with ``state[p]["step"]`` a
0-d view of it.

When every param of the pack has a gradient, the rule runs once on the flat buffers, compiled with
``torch.compile`` (eager, with a one-time warning, where compiling fails). If all per-param scalars
are equal (every param has the same history, the usual case) one value stands for each; otherwise
(a param that got its first gradient later than the others) they are expanded per element for the
step and read back. When some param has no gradient this step, the step takes the *exact path*:
the reference engine's per-tensor update on the views, which writes into the same buffers. All
paths run the same rule, so they and the two engines agree.

Gradients: a gradient that is not already the view into the flat gradient buffer (a fresh tensor
from ``backward()`` after ``zero_grad(set_to_none=True)``, or one the user assigned) is copied into
it and ``p.grad`` is pointed at the view. A param whose storage moved (``model.to()``, a user
assigning ``p.data``) is detected by its data pointer and the pack is rebuilt.
"""

from __future__ import annotations

import functools
import os
import types
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from ._engine import reference_update, scalars

if TYPE_CHECKING:
    from ._base import RuleOptimizer

_COMPILED: dict[Callable[..., None], Callable[..., None]] = {}
_WARNED: set[str] = set()

COMPILE_MIN_NUMEL = 1 << 16
"""Packs smaller than this run the rule eagerly: for them compiling costs more than it saves."""


def _apply(rule: Callable[..., None], p, g, s, h, flags) -> None:
    if flags["maximize"]:
        g = -g
    rule(p, g, s, h, flags)


def _apply_for(rule: Callable[..., None]) -> Callable[..., None]:
    """``_apply`` bound to ``rule`` as a function with a code object of its own.

    torch.compile keeps its cache (and its limit of 8 variants) per code object, so a shared wrapper
    (a ``functools.partial`` or a closure) would make every algorithm a recompile of one function.
    """

    def apply(p, g, s, h, flags) -> None:
        _apply(rule, p, g, s, h, flags)

    code = apply.__code__.replace(co_name=f"adamlab_{rule.__qualname__.replace('.', '_')}")
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
    every vector of elements (measured: Adam on 25M floats took 66 ms instead of 21 ms). The pass puts
    an opaque identity op (``adamlab::hoist``) on every edge from a 0-d value into a larger tensor,
    which makes inductor compute the scalar part in its own one-element kernel first.
    """
    global _HOIST_PASS
    if _HOIST_PASS is None:
        from torch._inductor.custom_graph_pass import CustomGraphPass

        @torch.library.custom_op("adamlab::hoist", mutates_args=())
        def hoist(x: torch.Tensor) -> torch.Tensor:
            return x.clone()

        @hoist.register_fake
        def _(x: torch.Tensor) -> torch.Tensor:
            return torch.empty_like(x)

        class HoistScalars(CustomGraphPass):
            def __call__(self, graph: torch.fx.Graph) -> None:
                for node in list(graph.nodes):
                    val = node.meta.get("val")
                    if node.op != "call_function" or not isinstance(val, torch.Tensor) or val.dim() != 0:
                        continue
                    users = [u for u in node.users if isinstance(u.meta.get("val"), torch.Tensor) and u.meta["val"].dim() > 0]
                    if not users:
                        continue
                    with graph.inserting_after(node):
                        hoisted = graph.call_function(torch.ops.adamlab.hoist.default, (node,))
                    hoisted.meta["val"] = val
                    for user in users:
                        user.replace_input_with(node, hoisted)

            def uuid(self) -> str:
                return "adamlab-hoist-scalars-1"

        _HOIST_PASS = HoistScalars()
    return _HOIST_PASS


def run_rule(rule: Callable[..., None], numel: int) -> Callable[..., None]:
    """``rule`` applied to flat buffers: compiled (once per rule, dynamic sizes) or eager.

    Compiled when ``ADAMLAB_COMPILE=1``, or by default (``auto``) when the pack holds at least
    :data:`COMPILE_MIN_NUMEL` elements; ``ADAMLAB_COMPILE=0`` never compiles. When compiling fails,
    the same rule runs eagerly from then on, after a one-time warning saying why.
    """
    if not _compile_wanted(numel):
        return functools.partial(_apply, rule)
    if rule not in _COMPILED:
        options = {"post_grad_custom_post_pass": _hoist_pass()}
        fn = torch.compile(_apply_for(rule), dynamic=True, options=options)

        def run(*args: Any) -> None:
            try:
                fn(*args)
            except Exception as err:  # noqa: BLE001 - any compiler failure falls back to the same rule, eager
                _COMPILED[rule] = eager = functools.partial(_apply, rule)
                if rule.__qualname__ not in _WARNED:
                    _WARNED.add(rule.__qualname__)
                    warnings.warn(
                        f"adamlab: torch.compile failed for {rule.__qualname__} ({type(err).__name__}: {str(err)[:300]}); "
                        "the packed engine runs it eagerly from now on (same results, slower)",
                        RuntimeWarning,
                        stacklevel=4,
                    )
                eager(*args)

        _COMPILED[rule] = run
    return _COMPILED[rule]


def packable(p: torch.Tensor) -> bool:
    """Params the packed engine takes: dense, real floating point, contiguous, on a device."""
    return p.is_floating_point() and not p.is_sparse and p.is_contiguous() and p.layout == torch.strided


class Pack:
    """The params of one group with one (device, dtype), packed in flat buffers."""

    def __init__(self, opt: RuleOptimizer, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        self.opt, self.group, self.params = opt, group, params
        first = params[0]
        dtype, device = first.dtype, first.device
        self.numels = [p.numel() for p in params]
        self.offsets = [0]
        for n in self.numels:
            self.offsets.append(self.offsets[-1] + n)
        total = self.offsets[-1]
        template = opt._init_state(torch.empty((), dtype=dtype, device="meta"), group)
        self.elementwise = [k for k, v in template.items() if v.device.type == "meta"]
        self.per_param = {k: v.dtype for k, v in template.items() if v.device.type != "meta"}

        self.flat_p = torch.empty(total, dtype=dtype, device=device)
        self.flat_g = torch.zeros(total, dtype=dtype, device=device)
        self.flat = {k: torch.zeros(total, dtype=dtype, device=device) for k in self.elementwise}
        self.scalar = {k: torch.zeros(len(params), dtype=dt) for k, dt in self.per_param.items()}
        for i, p in enumerate(params):
            view = self._slice(self.flat_p, i).view_as(p)
            view.copy_(p.detach())
            p.data = view
            old = opt.state.get(p)
            if old:
                self._adopt(i, old)
        self.ptrs = [p.data_ptr() for p in params]
        self.grad_ptrs = [self._slice(self.flat_g, i).data_ptr() for i in range(len(params))]
        self.uniform = False

    def _slice(self, flat: torch.Tensor, i: int) -> torch.Tensor:
        return flat[self.offsets[i] : self.offsets[i + 1]]

    def _adopt(self, i: int, values: dict[str, torch.Tensor]) -> None:
        """Copy param i's state into the buffers and make ``opt.state[p]`` views of them."""
        p = self.params[i]
        state = {}
        for key, value in values.items():
            if key in self.scalar:
                self.scalar[key][i] = value
                state[key] = self.scalar[key][i]
            else:
                view = self._slice(self.flat[key], i).view_as(p)
                view.copy_(value)
                state[key] = view
        self.opt.state[p] = state

    def valid(self) -> bool:
        """False when a param's storage moved (``model.to()``, ``p.data = ...``): rebuild then."""
        return all(p.data_ptr() == ptr for p, ptr in zip(self.params, self.ptrs))

    @torch.no_grad()
    def step(self, h: Any, flags: dict[str, Any]) -> None:
        missing = False
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                missing = True
            elif g.is_sparse:
                raise RuntimeError(f"{type(self.opt).__name__} does not support sparse gradients")
            elif g.data_ptr() != self.grad_ptrs[i] or g.shape != p.shape:
                view = self._slice(self.flat_g, i).view_as(p)
                view.copy_(g)
                p.grad = view
        for i, p in enumerate(self.params):
            if p.grad is not None and not self.opt.state.get(p):
                self._adopt(i, self.opt._init_state(p, self.group))
                self.uniform = False
        if missing:
            # exact path: some param has no gradient this step: per tensor, on the views
            self.uniform = False
            for p in self.params:
                if p.grad is not None:
                    reference_update(self.opt, p, self.group, h)
            return
        self.scalar["step"] += 1
        self.uniform = self.uniform or all(bool((buf == buf[0]).all()) for buf in self.scalar.values())
        rule = run_rule(type(self.opt)._rule, self.flat_p.numel())
        state = dict(self.flat)
        if self.uniform:
            # fast path: every param has the same history, so one value stands for all
            state.update((key, buf[0]) for key, buf in self.scalar.items())
            rule(self.flat_p, self.flat_g, state, h, flags)
            for key, buf in self.scalar.items():
                buf[1:] = buf[0]
        else:
            # per-param scalars differ (a param joined late): expand them per element, read them back
            counts = torch.tensor(self.numels, device=self.flat_p.device)
            starts = torch.tensor(self.offsets[:-1], device=self.flat_p.device)
            expanded = {k: torch.repeat_interleave(buf.to(self.flat_p.device, torch.float64), counts) for k, buf in self.scalar.items()}
            rule(self.flat_p, self.flat_g, {**state, **expanded}, h, flags)
            for key, buf in self.scalar.items():
                buf.copy_(expanded[key][starts])


def build_packs(opt: RuleOptimizer, group: dict[str, Any]) -> tuple[list[Pack], list[torch.Tensor]]:
    """Split a group into packs per (device, dtype) of packable params, and the rest."""
    by_kind: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    rest = []
    for p in group["params"]:
        if packable(p):
            by_kind.setdefault((p.device, p.dtype), []).append(p)
        else:
            rest.append(p)
    return [Pack(opt, group, ps) for ps in by_kind.values()], rest


@torch.no_grad()
def packed_step(opt: RuleOptimizer, group: dict[str, Any]) -> None:
    """One optimizer step for one param group on the packed layout."""
    entry = opt._packs.get(id(group))
    if entry is None or entry[0] is not group or not all(pk.valid() for pk in entry[1]):
        entry = (group, *build_packs(opt, group))
        opt._packs[id(group)] = entry
    _, packs, rest = entry
    h = scalars(group, opt._scalar_names)
    flags = {k: v for k, v in group.items() if isinstance(v, bool)}
    for pack in packs:
        pack.step(h, flags)
    for p in rest:
        if p.grad is not None:
            reference_update(opt, p, group, h)
