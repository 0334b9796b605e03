"""``adamlab bench``: optimizer step time against torch's fused Adam, measured in one process.

Three layouts: (a) 25M float32 params in 50 tensors (a large model, bound by memory bandwidth),
(b) 1M params in 500 tensors (many small tensors, bound by per-tensor overhead), both flat (1-D:
ND-Adam treats them elementwise, as biases); and (c) 25M params in 50 matrices of (1000, 500), the
layout of linear layers' weights, whose rows ND-Adam normalizes (for the elementwise algorithms (c)
is (a) again). For each, every row's ratio is the median over steps of its step time divided by the
time of a torch.optim.Adam(fused=True) step taken right after it (the two alternate), so the
machine's drift during the run cancels; rows also show the achieved memory bandwidth (bytes an
ideal one-pass step must move: read param and grad, read and write each per-element state slot,
write param) against the machine's measured in-place bandwidth (:func:`memory_bandwidth`).
Gradients stay in place between steps and are written in place before each (untimed), as after
``zero_grad(set_to_none=False)`` and ``backward()``;
with ``fresh_grads`` (``adamlab bench --fresh-grads``), every step of every optimizer is preceded, untimed,
by ``zero_grad()`` and new gradient tensors, as a training loop's ``backward()`` leaves them
(the packed engine reads those of params of 65,536 elements or more where they are, and gathers
smaller ones into its flat gradient buffer inside the timed step).

``--memory LAYERS`` also measures the peak memory of an ordinary training loop (``zero_grad()``,
``backward()``, ``step()`` on a stack of ``Linear(1000, 1000)`` layers), each optimizer in a fresh
process, against torch's fused Adam.

``--first-step`` also times the first step (compilation included) in fresh processes: once with an
empty inductor cache (cold) and once again with that cache filled (warm).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

CASES: dict[str, tuple[tuple[int, ...], int]] = {"a": ((500_000,), 50), "b": ((2_000,), 500), "c": ((1000, 500), 50)}
"""Each case's tensor shape and number of tensors."""


@dataclass
class Row:
    name: str
    ms: float
    gbs: float


def _params(shape: tuple[int, ...], tensors: int, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ps = []
    for _ in range(tensors):
        p = torch.randn(shape, generator=gen).requires_grad_()
        p.grad = torch.randn(p.shape, generator=gen) * 1e-2
        ps.append(p)
    return ps


def time_steps(step: Callable[[], object], reps: int, warmup: int = 2, before: Callable[[], object] = lambda: None) -> float:
    """Median milliseconds of ``reps`` calls after ``warmup`` calls; ``before`` runs, untimed, before each."""
    for _ in range(warmup):
        before()
        step()
    times = []
    for _ in range(reps):
        before()
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    times.sort()
    return 1e3 * times[len(times) // 2]


def memory_bandwidth(nbytes: int = 400_000_000, reps: int = 5) -> float:
    """GB/s of an in-place ``a += b`` over large tensors (bytes read plus bytes written).

    In place, like an optimizer step: an out-of-place copy also pays the write-allocate read of its
    destination, which a plain copy benchmark hides (on this machine copy_ reaches 35 GB/s, ``+=`` 55).
    """
    a = torch.ones(nbytes // 4)
    b = torch.ones_like(a)
    ms = time_steps(lambda: a.add_(b), reps)
    return 3 * nbytes / ms / 1e6


def _state_slots(opt: torch.optim.Optimizer) -> int:
    """Per-element state tensors of the first param (each read and written once per step)."""
    p = opt.param_groups[0]["params"][0]
    return sum(1 for v in opt.state[p].values() if torch.is_tensor(v) and v.shape == p.shape)


def _contenders(names: list[str]) -> list[tuple[str, Callable[[list[torch.Tensor]], torch.optim.Optimizer]]]:
    from .optim.registry import REGISTRY

    rows: list[tuple[str, Callable]] = [("torch Adam foreach", lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=True))]
    for name in names:
        entry = REGISTRY[name]
        if entry.cls.__module__.startswith("torch."):
            continue
        for engine in ("packed", "reference"):
            rows.append((f"adamlab {name} {engine}", lambda ps, n=name, e=engine: _create(n, ps, e)))
        if name == "padam":  # (an exponent other than 1/2, 1/4, 1/8: a power per element, see Padam's docstring)
            rows.append(("adamlab padam p=0.3 packed", lambda ps: _create("padam", ps, "packed", partial=0.3)))
    for label, module, cls, kw in [
        ("adabelief-pytorch 0.2.1", "adabelief_pytorch", "AdaBelief", {"print_change_log": False, "rectify": False}),
        ("adabound 0.0.5", "adabound", "AdaBound", {}),
    ]:
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # adabelief_pytorch prints on import
                mod = __import__(module)
        except ImportError:
            continue
        rows.append((label, lambda ps, m=mod, c=cls, k=kw: _quietly(getattr(m, c), ps, lr=1e-3, **k)))
    return rows


def _quietly(cls, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):  # the authors' AdaBelief prints its settings
        return cls(*args, **kwargs)


def _create(name: str, params: list[torch.Tensor], engine: str, **options: Any) -> torch.optim.Optimizer:
    from .optim.registry import create

    return create(name, params, lr=1e-3, engine=engine, **options)


def time_against(
    step: Callable[[], object],
    baseline: Callable[[], object],
    reps: int,
    warmup: int = 2,
    before: Callable[[], object] = lambda: None,
) -> tuple[float, float]:
    """(median ms of ``step``, median of the per-pair ratios step/baseline), the two alternating.

    The machine's memory bandwidth drifts (other tenants): timing the two steps in turns, one
    after the other, makes each ratio compare like with like. ``before`` runs, untimed, before each
    pair (the gradients of a training loop).
    """
    for _ in range(warmup):
        before()
        step()
        baseline()
    times, ratios = [], []
    for _ in range(reps):
        before()
        start = time.perf_counter()
        step()
        mid = time.perf_counter()
        baseline()
        end = time.perf_counter()
        times.append(mid - start)
        ratios.append((mid - start) / (end - mid))
    return 1e3 * statistics.median(times), statistics.median(ratios)


def _fresh_grads(*param_lists: list[torch.Tensor]) -> Callable[[], None]:
    """What ``zero_grad()`` then ``backward()`` do to the grads: new tensors every step (two sets, alternating)."""
    sets = [[[torch.randn_like(p) * 1e-2 for p in ps] for _ in range(2)] for ps in param_lists]
    turn = [0]

    def renew() -> None:
        turn[0] ^= 1
        for ps, grads in zip(param_lists, sets):
            for p, g in zip(ps, grads[turn[0]]):
                p.grad = None
                p.grad = g

    return renew


def _grads_written_in_place(*param_lists: list[torch.Tensor]) -> Callable[[], None]:
    """What ``zero_grad(set_to_none=False)`` then ``backward()`` do to the grads: the same tensors,
    written in place (here multiplied by 1, which changes no value and moves their version counter)."""
    grads = [p.grad for ps in param_lists for p in ps]

    def write() -> None:
        torch._foreach_mul_(grads, 1.0)

    return write


def run_case(case: str, names: list[str], reps: int, bandwidth: float, out=print, fresh_grads: bool = False) -> list[Row]:
    shape, tensors = CASES[case]
    numel = math.prod(shape) * tensors
    params = _params(shape, tensors)
    nbytes = numel * 4
    fused = torch.optim.Adam(params, lr=1e-3, fused=True)
    renew = _fresh_grads(params) if fresh_grads else _grads_written_in_place(params)
    base = time_steps(fused.step, reps, before=renew)
    rows = [Row("torch Adam fused", base, 7 * nbytes / base / 1e6)]
    grads = "new grad tensors every step (zero_grad + backward)" if fresh_grads else "grads in place"
    out(
        f"\ncase ({case}): {numel / 1e6:g}M float32 params in {tensors} tensors of {shape}, {grads}; in-place bandwidth {bandwidth:.1f} GB/s"
    )
    out(f"{'optimizer':<34} {'ms/step':>9} {'x fused':>8} {'GB/s':>7} {'% of bw':>9}")
    out(f"{rows[0].name:<34} {base:>9.2f} {1.0:>8.2f} {rows[0].gbs:>7.1f} {100 * rows[0].gbs / bandwidth:>8.0f}%")
    for label, make in _contenders(names):
        contender = _params(shape, tensors)
        opt = make(contender)
        slow = "reference" in label or "foreach" in label or "0.0.5" in label or "0.2.1" in label
        before = _fresh_grads(contender, params) if fresh_grads else _grads_written_in_place(contender, params)
        ms, ratio = time_against(opt.step, fused.step, max(3, reps // 3) if slow else reps, before=before)
        moved = (3 + 2 * _state_slots(opt)) * nbytes
        row = Row(label, ms, moved / ms / 1e6)
        rows.append(row)
        out(f"{label:<34} {ms:>9.2f} {ratio:>8.2f} {row.gbs:>7.1f} {100 * row.gbs / bandwidth:>8.0f}%")
        del opt, contender
    return rows


_FIRST_STEP = """
import time, torch, adamlab
torch.set_num_threads({threads})
ps = [torch.randn({shape}, requires_grad=True) for _ in range({t})]
for p in ps: p.grad = torch.randn_like(p)
opt = adamlab.create({name!r}, ps, lr=1e-3, engine="packed")
start = time.perf_counter(); opt.step(); print(time.perf_counter() - start)
"""


def first_step_times(name: str, case: str, threads: int) -> tuple[float, float]:
    """(cold, warm) seconds of the first packed step, each in a fresh process."""
    shape, tensors = CASES[case]
    code = _FIRST_STEP.format(threads=threads, shape=shape, t=tensors, name=name)
    with tempfile.TemporaryDirectory() as cache:
        # (the C++ module: ND-Adam's rows wait for its build in the cold process and load it in the warm
        # one; for the others its build starts after the first step, and stops when the process ends)
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "ADAMLAB_COMPILE": "1"}
        times = []
        for _ in range(2):
            res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            times.append(float(res.stdout.strip().splitlines()[-1]))
    return times[0], times[1]


_MEMORY = """
import torch, adamlab
torch.set_num_threads({threads})
torch.manual_seed(0)
model = torch.nn.Sequential(*[torch.nn.Linear(1000, 1000) for _ in range({layers})])
name = {name!r}
opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True) if name == "fused" else adamlab.create(name, model.parameters(), lr=1e-3)
x = torch.randn(64, 1000)
for _ in range(4):
    opt.zero_grad()
    model(x).pow(2).mean().backward()
    opt.step()
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def peak_memory(name: str, layers: int, threads: int) -> float:
    """Peak resident memory (MiB) of a fresh process that trains ``layers`` ``Linear(1000, 1000)``
    layers for 4 ordinary steps (``zero_grad()``, ``backward()``, ``step()``) with optimizer ``name``
    (``"fused"``: torch's fused Adam): the process's own high-water mark, ``VmHWM`` (Linux; ``ru_maxrss``
    would count the parent's memory, which a forked child shares until it runs Python)."""
    code = _MEMORY.format(threads=threads, layers=layers, name=name)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(res.stdout.strip().splitlines()[-1]) / 1024  # (in KiB)


def memory_table(names: list[str], layers: int, threads: int, out=print) -> dict[str, float]:
    """Peak memory of an ordinary training loop per optimizer, each in its own process, against torch's fused Adam."""
    out(f"\npeak memory, MiB: {layers} x Linear(1000, 1000) ({layers * 1.001:g}M params), 4 training steps, one process each")
    out(f"{'optimizer':<20} {'peak MiB':>9} {'x fused':>8}")
    peaks = {"fused": peak_memory("fused", layers, threads)}
    out(f"{'torch Adam fused':<20} {peaks['fused']:>9.0f} {1.0:>8.2f}")
    for name in names:
        peaks[name] = peak_memory(name, layers, threads)
        out(f"{'adamlab ' + name:<20} {peaks[name]:>9.0f} {peaks[name] / peaks['fused']:>8.2f}")
    return peaks


def main(
    cases: list[str],
    names: list[str] | None,
    reps: int,
    first_step: bool,
    threads: int | None,
    fresh_grads: bool = False,
    out=print,
    memory_layers: int = 0,
) -> None:
    from .optim.registry import REGISTRY, available

    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    names = names or available()
    bandwidth = memory_bandwidth()
    from .optim import _native

    importlib.import_module("torch._inductor")  # (the packed engine's C++ checks are kept in inductor's cache directory)

    checks = "C++" if _native.wait() else "Python (the C++ ones could not be built here)"  # built now, not while timing
    out(f"torch {torch.__version__}, {threads} threads, {os.cpu_count()} CPUs; packed engine's per-step checks in {checks}; median of {reps} steps")
    for case in cases:
        run_case(case, names, reps, bandwidth, out, fresh_grads)
    if memory_layers:
        memory_table([n for n in names if not REGISTRY[n].cls.__module__.startswith("torch.")], memory_layers, threads, out)
    if first_step:
        out(f"\nfirst packed step, seconds (compile included): case ({cases[0]})")
        out(f"{'optimizer':<12} {'cold cache':>10} {'warm cache':>10}")
        for name in names:
            if REGISTRY[name].cls.__module__.startswith("torch."):
                continue
            cold, warm = first_step_times(name, cases[0], threads)
            out(f"{name:<12} {cold:>10.2f} {warm:>10.2f}")
