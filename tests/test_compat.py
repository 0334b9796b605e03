"""Each private torch entry point taken away in turn: its fallback steps as the reference engine does.

An entry point is taken away where torch itself would lack it (the import fails, the attribute is
gone) when that is safe within one process, else at adamlab's compatibility layer, set to what it
answers where torch lacks it. Packed and reference engines then run the same trajectory.
"""

from __future__ import annotations

import sys
import warnings
from types import SimpleNamespace

import pytest
import torch
from util import assert_trajectories_close, trajectory

import adamlab
from adamlab.optim import _compat, _isa, _native, _packed

pytestmark = pytest.mark.usefixtures("float64_default")

HAS_GRAPH_PASS = _compat.custom_graph_pass() is not None  # (torch >= 2.6)
HAS_COMPILE_IDS = hasattr(torch._C._dynamo.eval_frame._CacheEntry, "compile_id")  # (torch >= 2.6)
HAS_VEC_ISA = _compat.vec_isa() is not None  # (torch >= 2.5)


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    """Compat answers decided afresh, no kernel or warning left from earlier tests (all restored after)."""
    for check in _compat.CACHED:
        check.cache_clear()
    monkeypatch.setattr(_packed, "_KERNELS", {})
    monkeypatch.setattr(_packed, "_WARNED", set())
    monkeypatch.setattr(_packed, "_HOIST_PASS", None)
    torch._dynamo.reset()
    yield
    for check in _compat.CACHED:
        check.cache_clear()
    torch._dynamo.reset()


def compiled_kernels():
    return [k for k in _packed._KERNELS.values() if k.compiled is not None]


def same_as_reference(make, steps=8, **kw):
    """The packed engine's trajectory equals the reference engine's (no eager fallback warned)."""
    a = trajectory(lambda ps: make(ps, "reference"), steps=steps, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        b = trajectory(lambda ps: make(ps, "packed"), steps=steps, **kw)
    assert_trajectories_close(a, b)


def adam(ps, engine):
    return adamlab.Adam(ps, lr=1e-2, weight_decay=0.01, engine=engine)


def test_no_custom_graph_pass_compiles_plainly(monkeypatch):
    with monkeypatch.context() as m:  # (only while asked: inductor itself imports it while compiling)
        m.setitem(sys.modules, "torch._inductor.custom_graph_pass", None)  # (the import fails, as on torch < 2.6)
        assert _compat.custom_graph_pass() is None
    monkeypatch.setattr(_compat, "custom_graph_pass", lambda: None)
    monkeypatch.setenv("ADAMLAB_COMPILE", "1")
    assert _packed._hoist_pass() is None
    same_as_reference(adam)
    [k] = compiled_kernels()
    assert k.options["post_grad_custom_post_pass"] is None  # inductor's default: no pass
    assert k.graphs  # still inductor, through adamlab's backend


@pytest.mark.skipif(not HAS_GRAPH_PASS, reason="this torch has no custom graph pass: the fallback is its only path")
def test_with_the_custom_graph_pass_the_scalar_math_is_hoisted():
    assert isinstance(_packed._hoist_pass(), _compat.custom_graph_pass())


def test_no_compile_id_runs_inductor_through_torch_compile(monkeypatch):
    with monkeypatch.context() as m:  # (only while asked: dynamo's own logging reads it while compiling)
        m.delattr(torch._guards.CompileContext, "current_compile_id")
        assert _compat._compile_id() is None
    monkeypatch.setattr(_compat, "_compile_id", lambda: None)
    monkeypatch.setenv("ADAMLAB_COMPILE", "1")
    same_as_reference(adam)
    [k] = compiled_kernels()
    assert k.graphs == {}  # backend="inductor": nothing kept, every call goes through torch.compile


@pytest.fixture
def bound(monkeypatch):
    """What each kernel call site was bound to after its first call (see ``_Kernel._bind``)."""
    sites = []
    original = _packed._Kernel._bind

    def bind(self, *args):
        sites.append(original(self, *args))
        return sites[-1]

    monkeypatch.setattr(_packed._Kernel, "_bind", bind)
    return sites


@pytest.mark.skipif(not HAS_COMPILE_IDS, reason="this torch's cache entries have no compile id: the fallback is its only path")
def test_with_every_entry_point_a_site_calls_its_graph_directly(monkeypatch, bound):
    monkeypatch.setenv("ADAMLAB_COMPILE", "1")
    same_as_reference(adam)
    assert len(bound) == 1 and callable(bound[0])


def test_no_cache_entry_list_calls_through_torch_compile(monkeypatch, bound):
    monkeypatch.delattr(torch._dynamo.eval_frame, "_debug_get_cache_entry_list")
    assert _compat._cache_entries() is None
    monkeypatch.setenv("ADAMLAB_COMPILE", "1")
    same_as_reference(adam)
    assert bound == [None]  # one site, bound to no graph: it keeps calling torch.compile
    assert compiled_kernels()


def test_cache_entries_without_guard_manager_or_compile_id_bind_nothing(monkeypatch, bound):
    """As on torch 2.4 and 2.5: cache entries have ``check_fn`` and ``code``, no ``guard_manager`` or ``compile_id``."""
    old_style = SimpleNamespace(check_fn=lambda frame: True, code=adam.__code__)
    monkeypatch.setattr(_compat, "_cache_entries", lambda: lambda code: [old_style])
    assert _compat.guarded_compile_id(adam.__code__, {}) is None
    monkeypatch.setenv("ADAMLAB_COMPILE", "1")
    same_as_reference(adam)
    assert bound == [None]


def test_no_dynamo_sources_binds_nothing(monkeypatch, bound):
    with monkeypatch.context() as m:  # (only while asked: dynamo uses it while compiling)
        m.delattr(sys.modules["torch._dynamo.source"], "TensorPropertySource")
        assert _compat.dynamo_sources() is None
    monkeypatch.setenv("ADAMLAB_COMPILE", "1")
    same_as_reference(adam)
    assert bound == [None]
    [k] = compiled_kernels()
    assert k.graphs  # compiled and kept, but called through torch.compile


def test_compiling_impossible_runs_eagerly_after_one_warning(monkeypatch):
    """As ``torch.compile`` raises on a Python version that torch's dynamo does not support."""
    monkeypatch.setenv("ADAMLAB_COMPILE", "1")

    def refuse(*args, **kwargs):
        raise RuntimeError("Python 3.99+ not yet supported for torch.compile")

    monkeypatch.setattr(torch, "compile", refuse)
    a = trajectory(lambda ps: adam(ps, "reference"), steps=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        b = trajectory(lambda ps: adam(ps, "packed"), steps=8)
    assert [str(w.message) for w in caught] == [
        "adamlab: torch.compile failed for Adam._rule (RuntimeError: Python 3.99+ not yet supported for torch.compile); "
        "the packed engine runs it eagerly from now on (same results, slower)"
    ]
    assert_trajectories_close(a, b)
    assert compiled_kernels() == []


@pytest.mark.skipif(not HAS_VEC_ISA, reason="this torch has no cpu_vec_isa module: the fallback is its only path")
def test_no_vec_isa_module_leaves_the_probe_to_inductor(monkeypatch):
    monkeypatch.delattr(sys.modules["torch._inductor.cpu_vec_isa"], "x86_isa_checker")  # (as on torch 2.4, which keeps these in codecache)
    assert _compat.vec_isa() is None
    assert _isa._claimed_and_record() is None and _isa._decide() == {}


def test_no_cpp_compiler_or_cache_dir_keeps_checks_in_python_and_rules_compiled(monkeypatch):
    with monkeypatch.context() as m:  # (only while asked: inductor needs both to compile)
        for name in ("cpp_builder", "codecache"):
            m.setitem(sys.modules, f"torch._inductor.{name}", None)
        assert _compat.cpp_compiler() is None
    monkeypatch.setattr(_compat, "_cpp_compiler", lambda: None)
    monkeypatch.setattr(_compat, "_cache_dir", lambda: None)
    assert _compat.cpp_compiler() is None and _compat.inductor_cache_dir() is None
    assert _native._compiler() is None
    for name, value in (("STARTED", False), ("module", None), ("check", None), ("_THREAD", None)):
        monkeypatch.setattr(_native, name, value)  # (a process that has not loaded the module yet)
    monkeypatch.setattr(_packed, "_KERNELS", {})
    same_as_reference(lambda ps, engine: adamlab.SWATS(ps, lr=1e-2, engine=engine), steps=8)
    assert _native.STARTED and _native.module is None and _native.check is None


def test_no_tensor_impl_addresses_keeps_the_checks_in_python(monkeypatch):
    assert _compat.tensor_impl_addresses([SimpleNamespace()]) is None
    if not _native.wait():
        pytest.skip("the C++ module cannot be built here")
    monkeypatch.setattr(_compat, "tensor_impl_addresses", lambda tensors: None)
    for name, value in (("STARTED", False), ("module", None), ("check", None), ("_THREAD", None)):
        monkeypatch.setattr(_native, name, value)
    assert _native.wait() is False  # loaded, for its kernels; the checks stay in Python
    assert _native.module is not None
    same_as_reference(lambda ps, engine: adamlab.SWATS(ps, lr=1e-2, engine=engine), steps=8)


def test_no_profiler_or_hook_globals_steps_through_torchs_wrapper(monkeypatch):
    monkeypatch.delattr(torch._C._autograd, "_profiler_enabled")
    calls = []
    wrapper = adamlab.Adam._hooked_step

    def spy(self, *args):
        calls.append(1)
        return wrapper(self, *args)

    monkeypatch.setattr(adamlab.Adam, "_hooked_step", spy)
    opt = adam([torch.zeros(3, requires_grad=True)], "packed")
    assert _compat.step_needs_wrapper(opt) is True
    same_as_reference(adam)
    assert len(calls) == 16  # every step of both engines


def test_with_the_globals_a_plain_step_skips_the_wrapper():
    opt = adam([torch.zeros(3, requires_grad=True)], "packed")
    assert _compat.step_needs_wrapper(opt) is False
    opt.register_step_pre_hook(lambda *a: None)
    assert _compat.step_needs_wrapper(opt) is True


def test_no_foreach_copy_copies_gradients_one_by_one(monkeypatch):
    monkeypatch.delattr(torch, "_foreach_copy_")
    assert _compat._foreach_copy() is None
    same_as_reference(adam)  # (fresh gradient tensors every step: each copied into the flat buffer)


def test_no_graph_break_compiles_the_rule_as_one_kernel(monkeypatch):
    monkeypatch.setenv("ADAMLAB_COMPILE", "1")
    monkeypatch.setattr(_native, "kernels", lambda: None)  # (SWATS's compiled rule, not its C++ kernel)
    monkeypatch.delattr(torch._dynamo, "graph_break")
    calls = []
    original = _compat.graph_break
    monkeypatch.setattr(_compat, "graph_break", lambda: calls.append(1) or original())
    same_as_reference(lambda ps, engine: adamlab.SWATS(ps, lr=1e-2, weight_decay=0.01, engine=engine), steps=8)
    assert calls and compiled_kernels()  # the rule asked for a break; without graph_break it went on in the same graph
