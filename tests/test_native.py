"""The packed engine's per-step checks in C++ (adamlab.optim._native) against what they stand for."""

from __future__ import annotations

import os

import pytest
import torch

import adamlab
from adamlab.optim import _native


@pytest.fixture(scope="module")
def native():
    import torch._inductor  # noqa: F401 - the module lives in inductor's cache directory

    if not _native.wait():
        if os.environ.get("CI"):
            pytest.fail("the C++ checks did not build in CI")
        pytest.skip("the C++ checks cannot be built here (no compiler or Python headers)")
    return _native.check


def packed(n=6):
    params = [torch.randn(5, 3, requires_grad=True) for _ in range(n)]
    opt = adamlab.Adam(params, lr=1e-2, engine="packed")
    for p in params:
        p.grad = torch.randn_like(p)
    opt.step()
    opt.step()  # the second step makes the persistent grad objects views of the flat buffer
    pack = opt._packs[id(opt.param_groups[0])][1][0]
    return params, pack


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (lambda ps: None, 0),
        (lambda ps: setattr(ps[2], "grad", None), 2),  # no gradient
        (lambda ps: setattr(ps[2], "grad", torch.ones(5, 3)), 2),  # a fresh gradient tensor
        (lambda ps: setattr(ps[4].grad, "data", torch.ones(5, 3)), 2),  # the view's storage swapped
        (lambda ps: setattr(ps[0], "grad", torch.ones(5, 3).to_sparse()), 2),  # sparse: refused by the Python path
        (lambda ps: setattr(ps[3], "data", ps[3].detach().clone()), 1),  # the param's storage moved
        (lambda ps: torch.utils.swap_tensors(ps[3], torch.randn(5, 3, requires_grad=True)), 1),  # its TensorImpl swapped
        (lambda ps: (setattr(ps[1], "grad", None), setattr(ps[5], "data", ps[5].detach().clone())), 1),  # moved wins
    ],
    ids=["unchanged", "grad-none", "fresh-grad", "grad-data-swapped", "sparse-grad", "param-moved", "impl-swapped", "both"],
)
def test_native_check_sees_what_the_python_checks_see(native, change, status):
    params, pack = packed()
    assert params[0].grad.data_ptr() == pack.grad_ptrs[0]
    change(params)
    assert native(pack.params, *pack.ptr_arrays) == status
    moved = [p.data_ptr() for p in pack.params] != pack.ptrs
    grads_in_place = all(p.grad is not None and p.grad.layout == torch.strided and p.grad.data_ptr() == q for p, q in zip(pack.params, pack.grad_ptrs))
    assert status == (1 if moved else 0 if grads_in_place else 2)


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (lambda ps: None, 0),
        (lambda ps: setattr(ps[2], "grad", torch.ones(5, 3)), 0),  # a fresh gradient: read where it is
        (lambda ps: setattr(ps[2], "grad", torch.ones(3, 5).t()), 2),  # not contiguous: the Python path copies it
        (lambda ps: setattr(ps[2], "grad", None), 2),
        (lambda ps: setattr(ps[3], "data", ps[3].detach().clone()), 1),
    ],
    ids=["unchanged", "fresh-grad", "not-contiguous", "grad-none", "param-moved"],
)
def test_native_check_of_direct_params_asks_only_for_a_dense_contiguous_gradient(native, change, status, monkeypatch):
    from adamlab.optim import _packed

    monkeypatch.setattr(_packed, "DIRECT_MIN_NUMEL", 1)
    params, pack = packed()
    assert list(pack.grad_ptrs) == [0] * 6
    change(params)
    assert native(pack.params, *pack.ptr_arrays) == status


def test_native_check_declines_what_it_does_not_handle(native):
    params, pack = packed(2)
    assert native([params[0], "not a tensor"], *pack.ptr_arrays) == 3
    assert native(pack.params[:1], *pack.ptr_arrays) == 3  # buffers of another length
    with pytest.raises(TypeError):
        native(tuple(pack.params), *pack.ptr_arrays)


def test_setup_finds_the_tensor_impl_only_where_every_probe_has_it(native):
    """The module reads a tensor's TensorImpl pointer at the offset setup() found on probes; setup refuses
    probes that are not tensors or whose pointers it cannot find (the checks then stay in Python)."""
    module = _native.module
    t, q = torch.zeros(2), torch.nn.Parameter(torch.zeros(3))
    assert module.setup(torch.Tensor, [t, q], [t._cdata, q._cdata]) is True
    assert module.setup(torch.Tensor, [t, q], [t._cdata, q._cdata + 8]) is False
    assert module.setup(torch.Tensor, [t, "not a tensor"], [t._cdata, 0]) is False
    assert module.setup(torch.Tensor, [], []) is False


def test_the_compiler_runs_at_idle_priority(tmp_path):
    """The build's compiler runs under SCHED_IDLE, so it does not take a core from the training's threads."""
    if _native._idle_prefix() == []:
        pytest.skip("no chrt --idle here")
    fake = tmp_path / "cxx"
    fake.write_text(f"#!/bin/sh\nchrt -p $$ > {tmp_path / 'policy'}\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(RuntimeError, match=r"building the C\+\+ checks failed"):
        _native._build(str(fake), str(tmp_path / "module.so"))
    assert "SCHED_IDLE" in (tmp_path / "policy").read_text()


def test_a_build_cut_short_by_exit_leaves_no_files(native, tmp_path):
    """A process that exits while the module builds stops the compiler (with its children) and leaves no partial file;
    the next process that needs the module builds it (here: one that waits for it)."""
    import subprocess
    import sys

    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path)}
    code = "import time, torch._inductor; from adamlab.optim import _native; _native.prepare(); time.sleep(0.5); print(_native._THREAD is not None)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    if out.strip() != "True":
        pytest.skip("no C++ compiler here")
    assert [p.name for p in tmp_path.iterdir() if "adamlab-native" in p.name] == []
    import time

    for _ in range(20):  # (a killed process may linger a moment, as a zombie, until it is reaped)
        ps = [line.split() for line in subprocess.run(["ps", "-eo", "stat,comm"], capture_output=True, text=True).stdout.splitlines()]
        running = [comm for stat, comm in ps[1:] if comm == "cc1plus" and not stat.startswith("Z")]
        if not running:
            break
        time.sleep(0.1)
    assert running == []  # the compiler's own children stopped too (this process built its module before)
    code = "import torch._inductor; from adamlab.optim import _native; print(_native.wait())"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip() == "True"
    assert [p.suffix for p in tmp_path.iterdir() if "adamlab-native" in p.name] == [".so"]
