"""The lab runner's cost: overhead against a bare training loop, and throughput with 1 vs 2 workers.

    .venv/bin/python benchmarks/lab_overhead.py [--steps 1500] [--jobs 8]

Overhead: one job of ``mlp-digits`` (a real model) run in-process by ``run_sweep`` (spec expansion,
store, step-wise metric rows, one transaction) against the same build, optimizer, steps and
evaluations written as a plain loop, each the median of 3 runs. Scaling: ``--jobs`` jobs of
``logreg-digits`` with 1 and then 2 pool workers (worker start-up included), as jobs per second.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch

import adamlab
from adamlab.lab.problems import get_problem
from adamlab.lab.runner import run_sweep
from adamlab.lab.spec import Sweep


def bare_loop(problem: str, optimizer: str, lr: float, steps: int, seed: int) -> float:
    """Seconds for build + ``steps`` training steps + evaluations at step 0 and at the end."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    start = time.perf_counter()
    trial = get_problem(problem).build(seed)
    opt = adamlab.create(optimizer, trial.parameters(), lr=lr)
    trial.evaluate()
    for t in range(1, steps + 1):
        trial.step(opt, t)
    trial.evaluate()
    return time.perf_counter() - start


def runner(sweep: Sweep, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = run_sweep(sweep, os.path.join(tmp, "r.sqlite"), workers=workers, progress="none")
        seconds = time.perf_counter() - start
    assert summary.finished == summary.total, summary.line()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--jobs", type=int, default=8)
    args = parser.parse_args()

    one = Sweep(problems=["mlp-digits"], optimizers=["adam"], seeds=[0], steps=args.steps, eval_every=args.steps, grid={"lr": [1e-3]})
    bare = statistics.median(bare_loop("mlp-digits", "adam", 1e-3, args.steps, 0) for _ in range(3))
    lab = statistics.median(runner(one, workers=0) for _ in range(3))
    print(f"mlp-digits, adam, {args.steps} steps: bare loop {bare:.2f} s, run_sweep in-process {lab:.2f} s: overhead {100 * (lab / bare - 1):+.1f}%")

    lrs = [10 ** (-4 + 3 * i / max(1, args.jobs - 1)) for i in range(args.jobs)]
    many = Sweep(problems=["logreg-digits"], optimizers=["adam"], seeds=[0], steps=args.steps, grid={"lr": lrs})
    t1 = runner(many, workers=1)
    t2 = runner(many, workers=2)
    print(
        f"{args.jobs} logreg-digits jobs of {args.steps} steps: 1 worker {t1:.2f} s ({args.jobs / t1:.2f} jobs/s), "
        f"2 workers {t2:.2f} s ({args.jobs / t2:.2f} jobs/s): {t1 / t2:.2f}x throughput"
    )
    print(f"({os.cpu_count()} CPUs, torch {torch.__version__}, python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
