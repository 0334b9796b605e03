"""Step time of an optimizer with diagnostics off (never attached, or attached then removed) and on.

Usage: ``python benchmarks/diagnostics_overhead.py [--numel 1000000] [--tensors 10] [--reps 41]``

Builds one ``adamlab.Adam(amsgrad=True)`` over ``tensors`` float32 tensors per configuration, with
fixed random gradients, and times ``step()`` in rounds that visit every configuration once in turn
(so machine noise hits all alike); prints the median ms/step of each and its ratio to the
never-attached optimizer. "off" must match "never attached" within noise: :func:`attach`'s handle
removes both hooks, and an optimizer without hooks runs no diagnostic code.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import adamlab
from adamlab import diagnostics


def build(numel: int, tensors: int) -> torch.optim.Optimizer:
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(numel // tensors, generator=gen, requires_grad=True) for _ in range(tensors)]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen) * 1e-3
    return adamlab.Adam(params, lr=1e-4, amsgrad=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numel", type=int, default=1_000_000)
    parser.add_argument("--tensors", type=int, default=10)
    parser.add_argument("--reps", type=int, default=41)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    configs: dict[str, torch.optim.Optimizer] = {}
    configs["never attached"] = build(args.numel, args.tensors)
    off = build(args.numel, args.tensors)
    diagnostics.attach(off, diagnostics.EffectiveStepSize(), diagnostics.AMSGradSwaps()).remove()
    configs["attached, removed (off)"] = off
    for name, observer in (
        ("on: AMSGradSwaps", diagnostics.AMSGradSwaps(interval=1000)),
        ("on: UpdateRatio", diagnostics.UpdateRatio()),
        ("on: EffectiveStepSize", diagnostics.EffectiveStepSize()),
    ):
        opt = build(args.numel, args.tensors)
        diagnostics.attach(opt, observer)
        configs[name] = opt
    for opt in configs.values():  # warm up: state allocation, packing, compilation
        for _ in range(3):
            opt.step()
    times: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.reps):
        for name, opt in configs.items():
            t0 = time.perf_counter()
            opt.step()
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["never attached"])
    print(f"adamlab.Adam(amsgrad=True), {args.numel:,} float32 params in {args.tensors} tensors, {args.threads} thread(s)")
    print(f"median of {args.reps} steps, configurations interleaved")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"{name:<26} {1e3 * m:8.2f} ms/step  {m / base:5.2f}x")


if __name__ == "__main__":
    main()
