"""The ``adamlab`` command: ``list``, ``demo``, ``bench``, and the lab's ``run`` and ``show``."""

from __future__ import annotations

import argparse
import os
import sys


def _cmd_list(args: argparse.Namespace) -> int:
    if args.what == "problems":
        from .lab.cli import list_problems

        return list_problems()
    from .optim.registry import REGISTRY

    width = max(map(len, REGISTRY))
    for name in sorted(REGISTRY):
        e = REGISTRY[name]
        fixed = "".join(f", {k}={v}" for k, v in e.fixed.items())
        print(f"{name:<{width}}  {e.cls.__module__}.{e.cls.__name__}{fixed and f'({fixed[2:]})'}  -  {e.reference}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import format_table, run_demo

    import torch

    torch.set_num_threads(max(1, args.threads))
    results = run_demo(steps=args.steps, names=args.optimizers)
    print(format_table(results, args.steps))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main

    bench_main(args.cases, args.optimizers, args.reps, args.first_step, args.threads, args.fresh_grads, memory_layers=args.memory)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adamlab", description="The Adam family of optimizers, and a lab to compare them.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list the optimizers (default) or the lab's problems, one line each")
    p.add_argument("what", nargs="?", choices=["optimizers", "problems"], default="optimizers")
    p.set_defaults(func=_cmd_list)
    p = sub.add_parser("demo", help="train logistic regression on the bundled digits with every optimizer")
    p.add_argument("--steps", type=int, default=300, help="training steps per optimizer (default 300)")
    p.add_argument("--optimizers", nargs="+", metavar="NAME", help="only these optimizers (default: all)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.set_defaults(func=_cmd_demo)
    p = sub.add_parser("bench", help="optimizer step time against torch's fused Adam (both engines)")
    p.add_argument(
        "--cases",
        nargs="+",
        choices=["a", "b", "c"],
        default=["a", "b"],
        help="(a) 25M params in 50 tensors, (b) 1M in 500, (c) 25M in 50 matrices (1000, 500) (ND-Adam's rows); default a b",
    )
    p.add_argument("--optimizers", nargs="+", metavar="NAME", help="only these optimizers (default: all adamlab ones)")
    p.add_argument("--reps", type=int, default=15, help="timed steps per row (median reported; default 15)")
    p.add_argument("--first-step", action="store_true", help="also time the first compiled step, cold and warm cache")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument(
        "--fresh-grads", action="store_true", help="new grad tensors before every step, as zero_grad() + backward() leave them"
    )
    p.add_argument(
        "--memory",
        type=int,
        default=0,
        metavar="LAYERS",
        help="also the peak memory of a training loop on LAYERS Linear(1000, 1000) layers, per optimizer in a fresh process",
    )
    p.set_defaults(func=_cmd_bench)
    from .lab.cli import add_commands

    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:
        print(f"adamlab: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (`adamlab show --json | head`): stop quietly, as Unix tools do, and
        # point stdout at /dev/null so the interpreter's final flush does not raise again
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # stdout without a file descriptor
            pass
        return 0


if __name__ == "__main__":
    sys.exit(main())
