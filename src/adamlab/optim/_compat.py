"""Every private torch entry point adamlab uses, each behind a feature check with a fallback.

torch's underscore modules and attributes (inductor's graph passes and C++ toolchain, dynamo's cache
entries and guard sources, the profiler's and optimizer hooks' globals) change between releases
without notice. adamlab reaches them only through this module. Each entry point checks that what
it needs is there (the import succeeds, the attribute exists) the first time it is asked, and
answers None (or takes the slower public path) where it is not, so an older or newer torch costs
speed, never results:

=================================  ==========================================  =========================================
entry point                        where torch lacks it                        cost
=================================  ==========================================  =========================================
:func:`custom_graph_pass`          inductor compiles without the scalar hoist  the rule's scalar math per element (the
                                   pass (plain ``torch.compile``)              compiled step up to 3x slower)
:func:`compile_rule`               ``backend="inductor"``, no graphs kept;     0.25 ms more per kernel call (dynamo's
                                   where ``torch.compile`` itself fails, the   guards each call); eager: the rule's ops
                                   rule runs eagerly after one warning         one by one
:func:`guarded_compile_id`,        every call goes through ``torch.compile``   0.25 ms more per kernel call
:func:`dynamo_sources`
:func:`vec_isa`                    inductor's own ISA probe in every process   about 1 s more for a process's first step
:func:`cpp_compiler`,              no C++ module: the per-step checks in       0.1-0.2 ms per step (checks); the compiled
:func:`inductor_cache_dir`         Python, rules compiled (no C++ kernels)     rule instead of SWATS/ND-Adam/Padam's kernel
:func:`tensor_impl_addresses`      the C++ checks stay off (Python checks)     0.1-0.2 ms per step
:func:`step_needs_wrapper`         every step through torch's hook wrapper     about 0.1 ms per step
:func:`foreach_copy_`              one ``copy_`` per gradient                  a dispatch per stale gradient
:func:`graph_break`                no split: the rule is one kernel            SWATS/ND-Adam's temporary (when compiled)
=================================  ==========================================  =========================================

torch 2.4.1 lacks the custom graph pass, the ``cpu_vec_isa`` module and the cache entries' guard
managers and compile ids (and finds the C++ compiler and the cache directory in older places);
torch 2.6.0, 2.13.0 and 2.14.1 have every entry point. ``tests/test_compat.py``
takes each entry point away in turn and checks that the optimizers still step as the reference
engine does.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from types import CodeType
from typing import Any, NamedTuple

import torch


def _first(*candidates: tuple[str, str]) -> Any:
    """The first ``module.attribute`` of ``candidates`` that imports (newer torch's location first), or None."""
    for module, name in candidates:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    return None


@functools.cache
def custom_graph_pass() -> type | None:
    """Inductor's ``CustomGraphPass`` base class (a post-grad pass with a ``uuid()`` that keys the
    FX graph cache), or None: torch < 2.6 has no such class, and its caches refuse other passes."""
    return _first(("torch._inductor.custom_graph_pass", "CustomGraphPass"))


@functools.cache
def _compile_fx() -> Callable[..., Any] | None:
    return _first(("torch._inductor.compile_fx", "compile_fx"))


@functools.cache
def _compile_id() -> Callable[[], Any] | None:
    context = _first(("torch._guards", "CompileContext"))
    return getattr(context, "current_compile_id", None)


def compile_rule(fn: Callable[..., None], options: dict[str, Any], keep: Callable[[Any, list[Any], Callable[..., Any]], None]) -> Callable[..., None]:
    """``fn`` compiled by ``torch.compile(dynamic=True)`` with inductor under the config ``options``.

    Where torch lets a backend call inductor's ``compile_fx`` and read the compile id, each graph
    compiled is handed to ``keep(compile_id, input_sources, graph)`` (the sources are dynamo's, one
    per graph input, None where unknown) so the caller can call it directly; else inductor runs as
    ``torch.compile(backend="inductor", options=...)`` and nothing is kept. Where ``torch.compile``
    itself refuses (a Python version that this torch's dynamo does not support), the result raises
    that error when called, so the caller's fallback (the rule eagerly, after one warning) applies.
    """
    compile_fx, compile_id = _compile_fx(), _compile_id()
    if compile_fx is None or compile_id is None:
        backend: Any = "inductor"
        extra = {"options": options}
    else:

        def backend(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
            sources = [getattr(n.meta.get("grapharg"), "source", None) for n in gm.graph.nodes if n.op == "placeholder"]
            graph = compile_fx(gm, example_inputs, config_patches=options)
            keep(compile_id(), sources, graph)
            return graph

        extra = {}
    try:
        return torch.compile(fn, dynamic=True, backend=backend, **extra)
    except Exception as err:  # noqa: BLE001 - torch.compile unavailable here: raised at the first call, where the rule falls back to eager
        reason = err

        def unavailable(*args: Any) -> None:
            raise reason

        return unavailable


@functools.cache
def _cache_entries() -> Callable[[CodeType], list[Any]] | None:
    return _first(("torch._dynamo.eval_frame", "_debug_get_cache_entry_list"))


def guarded_compile_id(code: CodeType, frame: dict[str, Any]) -> tuple[Any, tuple[str, ...]] | None:
    """(compile id, names the transformed code uses) of the entry of dynamo's cache for ``code``
    whose guards accept the local variables ``frame``; None where none does, or where this torch's
    cache entries lack a guard manager or a compile id (torch < 2.6)."""
    entries = _cache_entries()
    if entries is None:
        return None
    for entry in entries(code):
        manager, compile_id = getattr(entry, "guard_manager", None), getattr(entry, "compile_id", None)
        if manager is None or compile_id is None:
            return None
        if manager.check(frame):
            return compile_id, entry.code.co_names
    return None


class Sources(NamedTuple):
    GetItemSource: type
    LocalSource: type
    TensorProperty: type
    TensorPropertySource: type


@functools.cache
def dynamo_sources() -> Sources | None:
    """Dynamo's classes that name where a graph input comes from, or None where one is missing."""
    found = [_first(("torch._dynamo.source", name)) for name in Sources._fields]
    return None if None in found else Sources(*found)


@functools.cache
def vec_isa() -> Any:
    """Inductor's ``cpu_vec_isa`` module (``x86_isa_checker``, ``supported_vec_isa_list``,
    ``valid_vec_isa_list``), or None (torch < 2.5 keeps these elsewhere: inductor probes itself)."""
    module = _first(("torch._inductor", "cpu_vec_isa"))
    wanted = ("x86_isa_checker", "supported_vec_isa_list", "valid_vec_isa_list")
    return module if module is not None and all(hasattr(module, name) for name in wanted) else None


@functools.cache
def _cpp_compiler() -> Callable[[], str] | None:
    return _first(("torch._inductor.cpp_builder", "get_cpp_compiler"), ("torch._inductor.codecache", "cpp_compiler"))


def cpp_compiler() -> str | None:
    """The name of the C++ compiler inductor compiles with (``CXX``, else its default), or None."""
    return _called(_cpp_compiler)


@functools.cache
def _cache_dir() -> Callable[[], str] | None:
    return _first(("torch._inductor.runtime.cache_dir_utils", "cache_dir"), ("torch._inductor.runtime.runtime_utils", "cache_dir"))


def inductor_cache_dir() -> str | None:
    """Inductor's cache directory (``TORCHINDUCTOR_CACHE_DIR``, else its default), or None."""
    return _called(_cache_dir)


def _called(loader: Callable[[], Callable[[], str] | None]) -> str | None:
    """What the function that ``loader`` found returns now (it reads the environment), or None where there is none."""
    find = loader()
    return None if find is None else find()


def import_inductor() -> bool:
    """Import ``torch._inductor`` (whose cache directory holds adamlab's files); whether it imported."""
    try:
        importlib.import_module("torch._inductor")
    except ImportError:
        return False
    return True


def tensor_impl_addresses(tensors: list[torch.Tensor]) -> list[int] | None:
    """The addresses of the tensors' C++ ``TensorImpl`` (``Tensor._cdata``), or None where torch does not give them."""
    try:
        return [t._cdata for t in tensors]
    except AttributeError:
        return None


@functools.cache
def _step_check() -> Callable[[torch.optim.Optimizer], bool]:
    try:
        from torch._C._autograd import _profiler_enabled
        from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

        probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)])
        probe._optimizer_step_pre_hooks, probe._optimizer_step_post_hooks  # noqa: B018 - (that these attributes exist)
    except (ImportError, AttributeError):
        return lambda opt: True

    def check(opt: torch.optim.Optimizer) -> bool:
        return bool(
            (not torch.compiler.is_compiling() and _profiler_enabled())  # (a graph break inside a compiled training step)
            or _global_optimizer_pre_hooks
            or _global_optimizer_post_hooks
            or opt._optimizer_step_pre_hooks
            or opt._optimizer_step_post_hooks
        )

    return check


def step_needs_wrapper(opt: torch.optim.Optimizer) -> bool:
    """Whether ``opt.step()`` must go through torch's hook and profiler wrapper: a profiler is
    running, or there is a step hook (global or the optimizer's own). Always True where torch
    does not expose these globals: the wrapper then decides itself."""
    return _step_check()(opt)


@functools.cache
def _foreach_copy() -> Callable[[list[torch.Tensor], list[torch.Tensor]], None] | None:
    return getattr(torch, "_foreach_copy_", None)


def foreach_copy_(dst: list[torch.Tensor], src: list[torch.Tensor]) -> None:
    """``dst[i].copy_(src[i])`` for every i: one ``torch._foreach_copy_`` where torch has it."""
    copy = _foreach_copy()
    if copy is not None:
        copy(dst, src)
        return
    for d, s in zip(dst, src):
        d.copy_(s)


def graph_break() -> None:
    """While torch.compile traces: end the graph here (``torch._dynamo.graph_break``); nothing where torch lacks it."""
    brk = getattr(getattr(torch, "_dynamo", None), "graph_break", None)
    if brk is not None:
        brk()


CACHED = (custom_graph_pass, _compile_fx, _compile_id, _cache_entries, dynamo_sources, vec_isa, _cpp_compiler, _cache_dir, _step_check, _foreach_copy)
"""The cached feature checks (tests clear them to take an entry point away)."""
