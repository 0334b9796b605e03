"""Progress displays for the runner: rich bars on a terminal, plain lines otherwise.

A display gets ``start(total, skipped, pending, where)``, ``step(job, t, steps)`` (from the
workers, throttled; ignored by the plain display), ``done(job, result)`` for each job as it is
stored, and ``close(summary_line)``. :func:`make_progress` picks rich bars (one per running job and
one overall, each with its ETA) when ``rich`` is installed and the output is a terminal, plain
lines otherwise; ``rich`` is imported only then.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from .spec import Job


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _headline(result: dict[str, Any]) -> str:
    """A few final metrics of a result, for a one-line report."""
    metrics = result.get("final_metrics") or {}
    keys = [k for k in ("test_accuracy", "test_loss", "average_regret", "x", "loss", "distance_to_optimum") if k in metrics]
    parts = []
    for k in keys[:2]:
        v = metrics[k]
        parts.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
    if metrics.get("diverged"):
        parts.append("diverged")
    return ", ".join(parts)


def _start_line(total: int, skipped: int, pending: int, where: str) -> str:
    if not pending:
        return f"{total} jobs: all {skipped} already finished, nothing to run"
    return f"{total} jobs: {skipped} already finished, {pending} to run {where}"


class Progress:
    """The do-nothing display (``--progress none``); the base of the others."""

    def start(self, total: int, skipped: int, pending: int, where: str) -> None:
        self.t0 = time.perf_counter()
        self.total, self.skipped, self.pending, self.finished = total, skipped, pending, 0

    def step(self, job: Job, t: int, steps: int) -> None:
        pass

    def done(self, job: Job, result: dict[str, Any]) -> None:
        self.finished += 1

    def eta(self) -> float | None:
        if not self.finished:
            return None
        elapsed = time.perf_counter() - self.t0
        return elapsed / self.finished * (self.pending - self.finished)

    def close(self, summary: str) -> None:
        pass


class PlainProgress(Progress):
    """One line when the sweep starts, one per stored job (with the overall ETA), one at the end."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def start(self, total: int, skipped: int, pending: int, where: str) -> None:
        super().start(total, skipped, pending, where)
        self._print(_start_line(total, skipped, pending, where))

    def done(self, job: Job, result: dict[str, Any]) -> None:
        super().done(job, result)
        status = result["status"]
        line = f"[{self.finished}/{self.pending}] {job.label()}: {status} in {result.get('wall_time') or 0:.1f}s"
        head = _headline(result) if status == "finished" else (result.get("error") or "").strip().splitlines()[-1:]
        if head:
            line += f" ({head if isinstance(head, str) else head[0]})"
        eta = self.eta()
        if eta is not None and self.finished < self.pending:
            line += f"; ETA {_duration(eta)}"
        self._print(line)

    def close(self, summary: str) -> None:
        self._print(summary)


class RichProgress(Progress):
    """rich bars: the sweep overall, and one per running job fed by the workers' step reports."""

    def __init__(self, out: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import (
            Progress as Bars,
        )

        self.console = Console(file=out or sys.stdout)
        self.bars = Bars(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.tasks: dict[str, Any] = {}

    def start(self, total: int, skipped: int, pending: int, where: str) -> None:
        super().start(total, skipped, pending, where)
        self.console.print(_start_line(total, skipped, pending, where), markup=False, highlight=False)
        self.bars.start()
        self.overall = self.bars.add_task("sweep", total=pending)

    def step(self, job: Job, t: int, steps: int) -> None:
        task = self.tasks.get(job.id)
        if task is None:
            task = self.tasks[job.id] = self.bars.add_task(f"  {job.label()}", total=steps)
        self.bars.update(task, completed=t)

    def done(self, job: Job, result: dict[str, Any]) -> None:
        super().done(job, result)
        task = self.tasks.pop(job.id, None)
        if task is not None:
            self.bars.remove_task(task)
        status = result["status"]
        head = _headline(result) if status == "finished" else "see `show` for the error"
        line = f"{job.label()}: {status} in {result.get('wall_time') or 0:.1f}s" + (f" ({head})" if head else "")
        self.bars.console.print(line, markup=False, highlight=False)
        self.bars.update(self.overall, advance=1)

    def close(self, summary: str) -> None:
        self.bars.stop()
        self.console.print(summary, markup=False, highlight=False)


def make_progress(mode: str = "auto", out: TextIO | None = None) -> Progress:
    """``"auto"`` (rich on a terminal when installed, else plain), ``"rich"``, ``"plain"`` or ``"none"``."""
    out = out or sys.stdout
    if mode == "none":
        return Progress()
    if mode in ("auto", "rich"):
        tty = getattr(out, "isatty", lambda: False)()
        if mode == "rich" or tty:
            try:
                return RichProgress(out)
            except ImportError:
                if mode == "rich":
                    from .errors import LabError

                    raise LabError("--progress rich needs the rich package (pip install rich)") from None
    return PlainProgress(out)
