"""Running sweeps: each job in a worker, each result into the store as it finishes, reruns resume.

:func:`run_sweep` expands the sweep (all validation happens here, before the store is touched),
opens the store, skips the jobs already finished there, and hands the rest to an executor:

- ``inline`` (``workers=0``): one after another in this process (debugging, tests);
- ``local`` (the default): a process pool of ``workers`` processes (forkserver where the platform
  has it, else spawn), each with ``torch.set_num_threads(1)``; workers ignore SIGINT so Ctrl-C
  reaches only this process, which then kills the workers (and the fork server) and stops within
  seconds whatever the jobs' length; workers exit by themselves when this process dies (SIGKILL,
  the OOM killer: :func:`_exit_with`), so nothing is left running;
- ``ray``: tasks on a Ray cluster (``address`` of a running one, or a local one started for the
  sweep); ``ray`` is imported only then.

Every executor calls back in this (the parent) process for each result, which is stored in its own
transaction right away. So at any stop (Ctrl-C, a killed worker, a crash) the store holds every
job that finished before it, whole, and nothing of the jobs that were running; rerunning the same
sweep runs exactly the jobs that are missing. A worker killed by a signal (or the OOM killer)
breaks a local pool: the runner stores what finished and raises :class:`WorkerLost`.

:func:`execute_job` is the job itself and is what the workers run: build the problem for the
seed, create the optimizer through :func:`adamlab.create`, train ``steps`` steps, evaluate.
"""

from __future__ import annotations

import math
import os
import queue as queue_module
import signal
import socket
import sys
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from . import controls
from .errors import LabError
from .progress import Progress, _duration, make_progress
from .spec import Job, Sweep, load_spec, optimizer_kwargs
from .store import Store

ResultCallback = Callable[[Job, dict[str, Any]], None]
StepCallback = Callable[[str, int, int], None]

PROGRESS_INTERVAL = 0.25  # seconds between a worker's step reports


class WorkerLost(RuntimeError):
    """A worker process died (killed by a signal, out of memory) while it ran jobs."""


# -- one job --------------------------------------------------------------------------------------


def execute_job(config: dict[str, Any], report: StepCallback | None = None, job_id: str = "") -> dict[str, Any]:
    """Run one job and return its result (never raises for a failing job: it is returned as ``failed``).

    The run: ``problem.build(seed)``; ``adamlab.create(optimizer, trial.parameters(), **hp)``
    (with the run controls of :mod:`adamlab.lab.controls` taken out of ``hp`` and applied around
    the optimizer: schedules before each step, diagnostics attached); evaluate at step 0;
    ``trial.step(opt, t)`` for t = 1..steps, keeping its metrics every ``log_every`` steps; evaluate every ``eval_every`` steps and after the last. It runs with one
    torch thread and torch's global RNG seeded with the seed (both restored after), so the same
    config gives the same metrics bit for bit. A non-finite training loss stops the run early with
    ``diverged = True``.

    ``final_metrics``: the last evaluation, plus ``final_loss`` (the last training loss),
    ``steps_run``, ``diverged``, and ``steps_to_target`` (the first step whose training metric, or
    evaluation, reached the problem's target; None when never). Wall-clock numbers, which differ
    between runs, are kept apart in ``timings`` (``build``, ``train``, ``eval``,
    ``seconds_to_target``: training seconds until the target). ``artifacts``: named numpy arrays
    from the diagnostics and from the trial's optional ``artifacts()`` (called after the last
    evaluation; e.g. the GAN's generated images), stored whole with the run.
    """
    import torch

    import adamlab

    from .problems import get_problem

    started_at = time.time()
    t_start = time.perf_counter()
    rows: list[tuple[str, int, str, float | None]] = []
    final: dict[str, Any] = {}
    artifacts: dict[str, Any] = {}
    timings: dict[str, Any] = {"build": 0.0, "train": 0.0, "eval": 0.0, "seconds_to_target": None}
    error = None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config["seed"])
            problem = get_problem(config["problem"], **config["options"])
            target = getattr(problem, "target", None)
            trial = problem.build(config["seed"])
            steps, eval_every, log_every = config["steps"], config["eval_every"], config["log_every"]
            optimizer_hp, run_controls = controls.split(config["hyperparameters"])
            kwargs = optimizer_kwargs(controls.resolve(optimizer_hp, run_controls, steps))
            opt = adamlab.create(config["optimizer"], trial.parameters(), **kwargs)
            controller = controls.Controller(opt, run_controls, steps, eval_every)
            timings["build"] = time.perf_counter() - t_start
            steps_to_target = None
            train_seconds = eval_seconds = 0.0

            def evaluate(t: int) -> dict[str, float]:
                nonlocal eval_seconds, steps_to_target
                t0 = time.perf_counter()
                metrics = {k: float(v) for k, v in trial.evaluate().items()}
                metrics.update(controller.eval_metrics())
                eval_seconds += time.perf_counter() - t0
                rows.extend(("eval", t, k, _finite(v)) for k, v in metrics.items())
                if target is not None and steps_to_target is None and target.reached(metrics.get(target.metric)):
                    steps_to_target = t
                    timings["seconds_to_target"] = train_seconds
                return metrics

            last_eval = evaluate(0)
            last_loss = None
            diverged = False
            t = 0
            last_report = 0.0
            for t in range(1, steps + 1):
                t0 = time.perf_counter()
                controller.before_step(t)
                metrics = trial.step(opt, t)
                train_seconds += time.perf_counter() - t0
                last_loss = float(metrics["loss"])
                if t % log_every == 0 or t == steps or not math.isfinite(last_loss):
                    rows.extend(("train", t, k, _finite(float(v))) for k, v in metrics.items())
                if (
                    target is not None
                    and steps_to_target is None
                    and target.metric in metrics
                    and target.reached(float(metrics[target.metric]))
                ):
                    steps_to_target = t
                    timings["seconds_to_target"] = train_seconds
                if not math.isfinite(last_loss):
                    diverged = True
                    break
                if t % eval_every == 0 and t != steps:
                    last_eval = evaluate(t)
                if report is not None and time.perf_counter() - last_report > PROGRESS_INTERVAL:
                    report(job_id, t, steps)
                    last_report = time.perf_counter()
            last_eval = evaluate(t)
            diagnosed, artifacts = controller.final()
            trial_artifacts = getattr(trial, "artifacts", None)
            if callable(trial_artifacts):
                artifacts.update(trial_artifacts())
            final = {
                **{k: _finite(v) for k, v in last_eval.items()},
                **diagnosed,
                "final_loss": _finite(last_loss) if last_loss is not None else None,
                "steps_run": t,
                "diverged": diverged,
                "steps_to_target": steps_to_target,
            }
            timings["train"] = train_seconds
            timings["eval"] = eval_seconds
        status = "finished"
    except Exception:
        status = "failed"
        error = traceback.format_exc()[-8000:]
    finally:
        torch.set_num_threads(threads)
    return {
        "id": job_id,
        "config": config,
        "status": status,
        "started_at": started_at,
        "finished_at": time.time(),
        "wall_time": time.perf_counter() - t_start,
        "final_metrics": final,
        "timings": timings,
        "metrics": rows,
        "artifacts": artifacts,
        "error": error,
        "host": socket.gethostname(),
    }


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


# -- executors ------------------------------------------------------------------------------------


class Executor(ABC):
    """Runs jobs and calls ``on_result(job, result)`` in the calling process as each one finishes.

    ``on_step(job_id, t, steps)`` receives the workers' progress reports when the executor can
    relay them. On KeyboardInterrupt an executor stops its workers and re-raises; when workers die
    it delivers every result it has and raises :class:`WorkerLost`.
    """

    name = "executor"

    @abstractmethod
    def run(self, jobs: list[Job], on_result: ResultCallback, on_step: StepCallback) -> None: ...

    def describe(self) -> str:
        return self.name


class InlineExecutor(Executor):
    """Jobs one after another in this process (``workers=0``)."""

    name = "inline"

    def run(self, jobs: list[Job], on_result: ResultCallback, on_step: StepCallback) -> None:
        for job in jobs:
            on_result(job, execute_job(job.config, on_step, job.id))

    def describe(self) -> str:
        return "in this process"


_worker_queue: Any = None

ORPHAN_POLL = 0.5  # seconds between a worker's checks that the sweep's main process is alive
PR_SET_PDEATHSIG = 1  # prctl(2) option: the signal this process gets when its parent dies (Linux)


def _worker_init(q: Any, main_pid: int) -> None:
    """Each pool worker: ignore SIGINT (the parent handles Ctrl-C), one torch thread, the progress
    queue, and an exit of its own when the sweep's main process dies (:func:`_exit_with`)."""
    global _worker_queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with(main_pid)
    import torch

    torch.set_num_threads(1)
    _worker_queue = q


def _exit_with(main_pid: int) -> None:
    """Make this worker exit when the process ``main_pid`` is gone, so that killing the sweep's main
    process (SIGKILL, the OOM killer) leaves no worker running a job nobody will store.

    On Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` kills the worker the moment its parent dies (the
    main process under spawn, the fork server under forkserver, which exits when the main process
    does); everywhere, a daemon thread checks every :data:`ORPHAN_POLL` seconds that the main
    process is still alive (a zombie counts as dead) and ends the worker with ``os._exit`` if not.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl in this C library: the thread below still watches
            pass
    import threading

    def watch() -> None:
        while _alive(main_pid):
            time.sleep(ORPHAN_POLL)
        os._exit(1)

    threading.Thread(target=watch, name="adamlab-orphan-check", daemon=True).start()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (killed, not yet reaped by its parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user (the pid was reused): not ours
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):  # no /proc (macOS): os.kill said it exists
        return True


def _worker_report(job_id: str, t: int, steps: int) -> None:
    if _worker_queue is not None:
        try:
            _worker_queue.put_nowait((job_id, t, steps))
        except Exception:  # a full or closed queue only costs a progress update
            pass


def _worker_execute(config: dict[str, Any], job_id: str) -> dict[str, Any]:
    return execute_job(config, _worker_report, job_id)


def _context() -> Any:
    import multiprocessing as mp

    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        # Imported once in the fork server, inherited by every worker: torch, adamlab, and torch._dynamo,
        # which torch.optim.Optimizer imports on first use (about a second each time otherwise).
        ctx.set_forkserver_preload(["adamlab.lab.runner", "torch._dynamo"])
        return ctx
    return mp.get_context("spawn")


class LocalExecutor(Executor):
    """A process pool of ``workers`` processes on this machine."""

    name = "local"

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise LabError(f"workers must be >= 1 for the local executor, got {workers}")
        self.workers = workers

    def describe(self) -> str:
        return f"on {self.workers} local worker process{'es' if self.workers != 1 else ''}"

    def run(self, jobs: list[Job], on_result: ResultCallback, on_step: StepCallback) -> None:
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        ctx = _context()
        q = ctx.Queue()
        pool = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=ctx, initializer=_worker_init, initargs=(q, os.getpid())
        )
        by_id = {job.id: job for job in jobs}
        lost: list[Job] = []
        try:
            # (submitting starts the workers, and the fork server first: seconds, which a Ctrl-C may interrupt)
            futures = {pool.submit(_worker_execute, job.config, job.id): job for job in jobs}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                self._drain(q, by_id, on_step)
                for future in done:
                    job = futures[future]
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        lost.append(job)
                        continue
                    on_result(job, result)
            if lost:
                raise WorkerLost(
                    f"a worker process died (killed by a signal, or out of memory) while jobs ran; "
                    f"{len(lost)} job{'s' if len(lost) != 1 else ''} did not finish and were not stored"
                )
        except BaseException:
            self._kill(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            q.close()
            q.cancel_join_thread()

    @staticmethod
    def _drain(q: Any, by_id: dict[str, Job], on_step: StepCallback) -> None:
        while True:
            try:
                job_id, t, steps = q.get_nowait()
            except (queue_module.Empty, OSError, ValueError):
                return
            if job_id in by_id:
                on_step(job_id, t, steps)

    @staticmethod
    def _kill(pool: Any) -> None:
        """Stop the workers now (running jobs are abandoned, queued ones cancelled).

        The worker processes are taken from the pool before ``shutdown``, which forgets them, and
        killed first: a pool shut down with its workers alive waits for their jobs to finish (at
        interpreter exit at the latest).
        """
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for process in processes:
            try:
                process.kill()
            except (OSError, ValueError, AttributeError):
                pass
        pool.shutdown(wait=False, cancel_futures=True)  # queued jobs are cancelled by the pool's own thread
        for process in processes:
            try:
                process.join(timeout=5)
            except (OSError, ValueError, AttributeError, AssertionError):
                pass
        _stop_fork_server()


def _stop_fork_server() -> None:
    """Kill the fork server (the next pool starts a new one): it would exit with this process anyway,
    but only after seconds of tearing down its Python, which imported torch."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    stop = getattr(server, "_stop", None)
    if pid is None or not callable(stop):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    stop()  # reaps it and removes its socket


def _ray_execute(config: dict[str, Any], job_id: str) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    return execute_job(config, None, job_id)


class RayExecutor(Executor):
    """Tasks on a Ray cluster: ``address`` of a running one (``"auto"``, ``"ray://host:10001"``), or
    ``None`` to start a local one with ``workers`` CPUs for the sweep (stopped after it).

    Each job is one task with ``num_cpus=1`` and no retries (a rerun of the sweep retries). A remote
    cluster must have adamlab installed (and the problems' data files at the same paths); a local
    one gets this adamlab's folder on its workers' PYTHONPATH. Results come back to this process
    and are stored here; per-job progress bars are not relayed (the overall one is).
    """

    name = "ray"

    def __init__(self, address: str | None, workers: int | None) -> None:
        self.address = address
        self.workers = workers

    def describe(self) -> str:
        return (
            f"on the Ray cluster at {self.address}"
            if self.address
            else f"on a local Ray cluster ({self.workers or os.cpu_count()} CPUs)"
        )

    def run(self, jobs: list[Job], on_result: ResultCallback, on_step: StepCallback) -> None:
        try:
            import ray
        except ImportError:
            raise LabError("--executor ray needs Ray: pip install 'ray>=2.9' (or use the default local executor)") from None
        started_here = not ray.is_initialized()
        if started_here:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
            if self.address:
                kwargs["address"] = self.address
            else:
                kwargs["num_cpus"] = self.workers or os.cpu_count()
                src = str(Path(__file__).resolve().parents[2])
                path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
                kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}
            try:
                ray.init(**kwargs)
            except Exception as err:  # ConnectionError, RuntimeError, ... depending on the Ray version
                raise LabError(f"cannot start or reach Ray ({self.describe()}): {err}") from None
        try:
            task = ray.remote(num_cpus=1, max_retries=0)(_ray_execute)
            refs = {task.remote(job.config, job.id): job for job in jobs}
            lost = 0
            try:
                while refs:
                    ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
                    for ref in ready:
                        job = refs.pop(ref)
                        try:
                            result = ray.get(ref)
                        except ray.exceptions.RayError:
                            lost += 1
                            continue
                        on_result(job, result)
            except BaseException:
                for ref in refs:
                    try:
                        ray.cancel(ref, force=True)
                    except Exception:
                        pass
                raise
            if lost:
                raise WorkerLost(f"{lost} Ray task{'s' if lost != 1 else ''} died (worker lost) and were not stored")
        finally:
            if started_here:
                ray.shutdown()


RAY_CONNECT_TIMEOUT = 5.0  # seconds to open a TCP connection to a Ray address before giving up


def _check_reachable(address: str) -> None:
    """LabError unless a TCP connection to a ``host:port`` (or ``ray://host:port``) Ray address opens
    within :data:`RAY_CONNECT_TIMEOUT` seconds: Ray itself retries an unreachable address for minutes.
    Other addresses (``"auto"``) are left to Ray."""
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=RAY_CONNECT_TIMEOUT).close()
    except OSError as err:
        reason = "timed out" if isinstance(err, TimeoutError) else err.strerror or str(err)
        raise LabError(
            f"cannot reach the Ray cluster at {address!r} ({reason}); start one with 'ray start --head' or check --address"
        ) from None


def make_executor(kind: str, workers: int | None, address: str | None, jobs: int) -> Executor:
    """The executor for ``--executor`` ``kind`` (``local`` with ``workers=0`` runs inline)."""
    if kind == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise LabError("--executor ray needs Ray: pip install 'ray>=2.9' (or use the default local executor)")
        if workers is not None and workers < 1:
            raise LabError(f"--workers must be >= 1 with --executor ray, got {workers}")
        if address:
            _check_reachable(address)
        return RayExecutor(address, workers)
    if address:
        raise LabError("--address is for --executor ray")
    if kind not in ("local", "inline"):
        raise LabError(f"unknown executor {kind!r}; accepted: local, ray")
    if workers is None:
        workers = max(1, min(os.cpu_count() or 1, jobs))
    if workers < 0:
        raise LabError(f"--workers must be >= 0, got {workers}")
    if kind == "inline" or workers == 0:
        return InlineExecutor()
    return LocalExecutor(workers)


# -- the sweep ------------------------------------------------------------------------------------


@dataclass
class Summary:
    """What a :func:`run_sweep` call did."""

    total: int
    skipped: int
    ran: int = 0
    finished: int = 0
    failed: int = 0
    seconds: float = 0.0
    db: str = ""

    @property
    def not_run(self) -> int:
        return self.total - self.skipped - self.ran

    def line(self) -> str:
        text = (
            f"{self.total} jobs: {self.skipped} skipped (already finished), {self.ran} run "
            f"({self.finished} finished, {self.failed} failed) in {_duration(self.seconds)}"
        )
        if self.not_run:
            text += f"; {self.not_run} not run (rerun to finish them)"
        return text + f" -> {self.db}"


def _all_finished(total: int, db: str | os.PathLike[str], display: Progress, t0: float) -> Summary:
    """The summary (and display) of a sweep whose ``total`` jobs were all finished before."""
    summary = Summary(total=total, skipped=total, db=str(db), seconds=time.perf_counter() - t0)
    display.start(total, total, 0, "")
    display.close(summary.line())
    return summary


def run_sweep(
    sweep: Sweep | str | os.PathLike[str] | dict[str, Any],
    db: str | os.PathLike[str],
    workers: int | None = None,
    executor: str = "local",
    address: str | None = None,
    progress: str | Progress = "auto",
    out: TextIO | None = None,
    max_jobs: int | None = None,
) -> Summary:
    """Run every job of ``sweep`` not already finished in the store ``db``; return a :class:`Summary`.

    ``sweep`` is a :class:`Sweep`, the path of a TOML spec, or the dict of a ``[sweep]`` table.
    ``workers``: pool size (default: the CPU count, at most the number of jobs; 0 runs the jobs in
    this process). ``progress``: ``"auto"``, ``"rich"``, ``"plain"``, ``"none"`` or a
    :class:`~adamlab.lab.progress.Progress`. KeyboardInterrupt stops the workers, keeps every
    stored job, and propagates; :class:`WorkerLost` likewise after storing what finished.

    ``max_jobs``: refuse (LabError) a sweep of more jobs (:meth:`Sweep.job_count`), counted before
    anything is expanded; ``adamlab run`` passes :data:`~adamlab.lab.spec.JOB_LIMIT` unless ``--yes``.

    The store records the job ids of each sweep it expanded (:meth:`Sweep.cache_key`), so a rerun
    whose jobs are all finished returns without expanding the sweep (and without importing torch).
    """
    t0 = time.perf_counter()
    if isinstance(sweep, dict):
        sweep = Sweep.from_dict(sweep)
    elif not isinstance(sweep, Sweep):
        sweep = load_spec(sweep)
    display = progress if isinstance(progress, Progress) else make_progress(progress, out)
    key = sweep.cache_key()
    if key is not None and os.path.exists(db) and os.path.getsize(db) > 0:
        make_executor(executor, workers, address, 1)  # bad executor settings are an error even with nothing to run
        with Store.open(db, create=True) as store:
            known = store.sweep_job_ids(key)
            if known is not None and set(known) <= store.finished_ids():
                # finished before: nothing to expand or run, and no torch to import
                return _all_finished(len(known), db, display, t0)
    if max_jobs is not None:
        count = sweep.job_count()
        if count > max_jobs:
            raise LabError(
                f"{sweep.source}: the sweep has {count:,} jobs, more than {max_jobs:,}; "
                "narrow the grid, or pass --yes to run them all"
            )
    jobs = sweep.jobs()
    make_executor(executor, workers, address, len(jobs))  # bad executor settings fail before the store is touched
    store = Store.open(db, create=True)
    try:
        if key is not None:
            store.remember_sweep(key, [job.id for job in jobs])
        done = store.finished_ids()
        pending = [job for job in jobs if job.id not in done]
        if not pending:
            return _all_finished(len(jobs), db, display, t0)
        summary = Summary(total=len(jobs), skipped=len(jobs) - len(pending), db=str(db))
        runner = make_executor(executor, workers, address, len(pending))
        by_id = {job.id: job for job in pending}

        def on_result(job: Job, result: dict[str, Any]) -> None:
            result["id"] = job.id
            store.record(result)
            summary.ran += 1
            summary.finished += result["status"] == "finished"
            summary.failed += result["status"] == "failed"
            display.done(job, result)

        def on_step(job_id: str, t: int, steps: int) -> None:
            job = by_id.get(job_id)
            if job is not None:
                display.step(job, t, steps)

        display.start(len(jobs), summary.skipped, len(pending), runner.describe())
        try:
            runner.run(pending, on_result, on_step)
        finally:
            summary.seconds = time.perf_counter() - t0
            display.close(summary.line())
        return summary
    finally:
        store.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: python -m adamlab.lab.cli run SPEC.toml --db results.sqlite")
