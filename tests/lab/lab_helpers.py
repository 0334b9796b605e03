"""User problems for the lab tests, named in specs as ``lab_helpers:NAME`` (tests/lab on PYTHONPATH).

``slow``: a 1-D quadratic whose every step sleeps ``delay`` seconds (jobs of a known length, for
interrupt tests); with ``kill_marker`` set, the first job to start creates that file and SIGKILLs
its own worker process (a worker dying mid-sweep, once); with ``fail`` every job raises.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from adamlab.lab.problems.base import Problem, Trial


@dataclass
class Slow(Problem):
    delay: float = 0.0
    kill_marker: str = ""
    fail: bool = False

    name: ClassVar[str] = "slow"
    description: ClassVar[str] = "test problem: 0.5 x^2 with a sleep per step"
    default_steps: ClassVar[int] = 10

    def build(self, seed: int) -> Trial:
        if self.fail:
            raise RuntimeError("this test problem always fails")
        if self.kill_marker and not Path(self.kill_marker).exists():
            Path(self.kill_marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return SlowTrial(self.delay, float(seed) + 1.0)


class SlowTrial(Trial):
    def __init__(self, delay: float, x0: float) -> None:
        self.delay = delay
        self.x = torch.tensor([x0], dtype=torch.float64, requires_grad=True)

    def parameters(self) -> list[torch.Tensor]:
        return [self.x]

    def step(self, optimizer: Any, t: int) -> dict[str, float]:
        time.sleep(self.delay)
        optimizer.zero_grad()
        loss = 0.5 * (self.x**2).sum()
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    def evaluate(self) -> dict[str, float]:
        return {"x": self.x.item()}


def slow(**options: Any) -> Slow:
    return Slow(**options)


def not_a_problem(**options: Any) -> object:
    return object()


# -- shared by the tests -------------------------------------------------------------------------

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
MINIMAL_SPEC = """\
[sweep]
problems = ["logreg-digits"]
optimizers = ["adam", "madam"]
seeds = [0, 1]
steps = 200
[sweep.grid]
lr = [1e-3, 3e-3]
"""


def subprocess_env() -> dict[str, str]:
    """The environment for ``python -m adamlab.lab.cli`` in a subprocess: src/ and tests/lab importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), str(HERE), env.get("PYTHONPATH", "")) if p)
    return env


def cli(*argv: str) -> int:
    """Run the lab commands in this process through a parser built from ``add_commands``."""
    import argparse

    from adamlab.lab.cli import add_commands

    parser = argparse.ArgumentParser(prog="adamlab")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)
