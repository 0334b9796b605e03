"""The lab's command-line commands, for ``adamlab``'s CLI to mount (and ``python -m adamlab.lab.cli``).

:func:`add_commands` registers on an argparse ``subparsers`` object::

    run SPEC.toml --db results.sqlite [--workers N] [--executor local|ray] [--address ADDR] [--yes]
        [--progress auto|rich|plain|none]
    show --db results.sqlite [--json] [--problem P] [--optimizer O] [--status S]

Each sets ``func`` (``args.func(args)`` returns the exit status). :func:`list_problems` prints the
problems, one line each with its description (for ``adamlab list problems``). Exit statuses: 0 done;
1 a worker died or some jobs failed; 2 a user error (:class:`~adamlab.lab.errors.LabError`: bad
spec, unknown name, missing dataset file, unusable store), printed as one line ``error: ...``;
130 interrupted (Ctrl-C or SIGTERM; everything finished before is stored, rerun to resume; the
workers are killed at once, whatever their jobs' length, and a second Ctrl-C is ignored while they
are). A sweep of more than :data:`~adamlab.lab.spec.JOB_LIMIT` jobs is refused unless ``--yes``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, TextIO

from .errors import LabError
from .spec import JOB_LIMIT, hyperparameter_labels, short_value

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _lab_errors(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except LabError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USAGE

    wrapped.__name__ = func.__name__
    wrapped.__doc__ = func.__doc__
    return wrapped


def _interrupt_once(signum: int, frame: Any) -> None:
    """SIGINT and SIGTERM during ``run``: a KeyboardInterrupt, and every later one ignored, so that a
    second, impatient Ctrl-C cannot cut the cleanup (workers killed, store closed) or the exit short
    with a traceback."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


@_lab_errors
def cmd_run(args: argparse.Namespace) -> int:
    """``run``: run a sweep spec into a store, skipping finished jobs."""
    from .runner import WorkerLost, run_sweep

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # SIGINT may arrive ignored (a shell starts background jobs that way): `run` promises to stop
        # cleanly on it, so it is handled here; a polite SIGTERM stops the same way.
        signal.signal(signal.SIGINT, _interrupt_once)
        signal.signal(signal.SIGTERM, _interrupt_once)
    except ValueError:  # not the main thread: leave the handlers alone
        previous = {}
    interrupted = False
    try:
        summary = run_sweep(
            args.spec,
            args.db,
            workers=args.workers,
            executor=args.executor,
            address=args.address,
            progress=args.progress,
            max_jobs=None if args.yes else JOB_LIMIT,
        )
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: finished jobs are stored; run the same command again to run the rest", file=sys.stderr)
        return EXIT_INTERRUPTED
    except WorkerLost as err:
        print(f"error: {err}; finished jobs are stored; run the same command again to run the rest", file=sys.stderr)
        return EXIT_FAILED
    finally:
        # (after an interrupt the command ends as it is, ignoring further ones until the process exits)
        for sig, handler in previous.items() if not interrupted else ():
            signal.signal(sig, handler)
    return EXIT_FAILED if summary.failed else EXIT_OK


@_lab_errors
def cmd_show(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``show``: the runs in a store, as a table or (``--json``) one JSON object per line."""
    from .store import Store, run_records

    out = out or sys.stdout
    with Store.open(args.db, create=False) as store:
        runs = store.runs(problem=args.problem, optimizer=args.optimizer, status=args.status)
    if args.json:
        for record in run_records(runs):
            print(json.dumps(record, sort_keys=True), file=out)
        return EXIT_OK
    if not runs:
        print(f"no runs in {args.db}", file=out)
        return EXIT_OK
    skip = {"steps_run", "diverged", "x", "y"}
    header = ("id", "problem", "optimizer", "hyperparameters", "seed", "status", "seconds", "final metrics")
    rows = []
    for run, hp in zip(runs, hyperparameter_labels(runs)):
        metrics = run["final_metrics"] or {}
        shown = ", ".join(f"{k}={short_value(v)}" for k, v in sorted(metrics.items()) if k not in skip and v is not None)
        if metrics.get("diverged"):
            shown = "diverged; " + shown
        if run["status"] == "failed" and run["error"]:
            shown = (run["error"].strip().splitlines() or [""])[-1]
        rows.append(
            (
                run["id"][:8],
                run["problem"],
                run["optimizer"],
                hp,
                str(run["seed"]),
                run["status"],
                f"{run['wall_time'] or 0:.1f}",
                shown,
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1], file=out)
    return EXIT_OK


@_lab_errors
def cmd_study(args: argparse.Namespace) -> int:
    """``study``: run (or reuse) a study's sweep, then write its report."""
    from .report import make_folder, write_report
    from .studies import get_study

    study = get_study(args.name)
    db = args.db or f"{study.name}{'-quick' if args.quick else ''}.sqlite"
    out = args.out or f"report-{study.name}{'-quick' if args.quick else ''}"
    data = _data_options(args)
    make_folder(out, "report folder")  # before the sweep runs
    args.spec, args.db = study.spec(args.quick, data), db
    status = cmd_run(args)
    if status != EXIT_OK:
        return status
    result = write_report(study, db, out, quick=args.quick, data=data)
    print(f"{study.name}: {result['outcome']}. {result['because']}\nreport: {out}/index.html")
    return EXIT_OK


@_lab_errors
def cmd_report(args: argparse.Namespace) -> int:
    """``report``: write the report of every study whose runs are in the store (reads only the store)."""
    from .report import make_folder, write_report
    from .store import Store
    from .studies import studies

    with Store.open(args.db, create=False) as store:
        data = _data_options(args)
        present = [(s, quick) for s in studies().values() for quick in (False, True) if _has_runs(store, s, quick, data)]
    if not present:
        raise LabError(f"{args.db}: holds no runs of any study ({', '.join(sorted(studies()))})")
    make_folder(args.out, "report folder")
    for study, quick in present:
        out = args.out if len(present) == 1 else os.path.join(args.out, study.name + ("-quick" if quick else ""))
        result = write_report(study, args.db, out, quick=quick, data=data)
        print(f"{study.name}{' (quick)' if quick else ''}: {result['outcome']}. {result['because']}\nreport: {out}/index.html")
    return EXIT_OK


def _data_options(args: argparse.Namespace) -> dict[str, str]:
    """``--mnist-dir`` / ``--cifar-dir`` as problem options (absolute paths, so job ids do not depend on the cwd)."""
    given = {"mnist_dir": args.mnist_dir, "cifar_dir": args.cifar_dir}
    return {key: os.path.abspath(path) for key, path in given.items() if path}


def _has_runs(store: Any, study: Any, quick: bool, data: dict[str, str]) -> bool:
    from .report import study_runs

    try:
        return bool(study_runs(store, study, quick, data))
    except LabError:  # the study has no problem reading one of the data options
        return False


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mnist-dir", default=None, help="real MNIST IDX files for the study's digits problems (full size)")
    parser.add_argument("--cifar-dir", default=None, help="the CIFAR-10 batches for the study's CIFAR problems")


def problem_lines() -> list[str]:
    """One line per built-in problem: its name, padded, then its description."""
    from .problems import describe_problems

    described = describe_problems()
    width = max(len(name) for name, _ in described)
    return [f"{name.ljust(width)}  {description}" for name, description in described]


def list_problems(file: TextIO | None = None) -> int:
    """Print :func:`problem_lines` (for ``adamlab list problems``); returns exit status 0."""
    for line in problem_lines():
        print(line, file=file or sys.stdout)
    return EXIT_OK


def _executor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: CPU count, at most the job count; 0 = in this process)",
    )
    parser.add_argument(
        "--executor", choices=("local", "ray"), default="local", help="where jobs run (default: a local process pool)"
    )
    parser.add_argument("--address", default=None, help="Ray cluster address for --executor ray (default: start a local one)")
    parser.add_argument("--yes", action="store_true", help=f"run a sweep of more than {JOB_LIMIT:,} jobs (refused without it)")
    parser.add_argument(
        "--progress",
        choices=("auto", "rich", "plain", "none"),
        default="auto",
        help="progress display (default: rich on a terminal)",
    )


def add_commands(subparsers: Any) -> None:
    """Register ``run``, ``show``, ``study`` and ``report`` on an argparse subparsers object; each sets ``func``."""
    run = subparsers.add_parser(
        "run",
        help="run a sweep spec (TOML) into a result store, skipping jobs already finished there",
        description="Run every job of a sweep spec into a SQLite result store. Finished jobs are skipped, so rerunning "
        "the same command after Ctrl-C or a crash runs exactly the missing jobs.",
    )
    run.add_argument("spec", help="the sweep spec, a TOML file with a [sweep] table")
    run.add_argument("--db", required=True, help="the result store (SQLite file; created if missing)")
    _executor_options(run)
    run.set_defaults(func=cmd_run)

    show = subparsers.add_parser("show", help="list the runs in a result store", description="List the runs in a result store.")
    show.add_argument("--db", required=True, help="the result store (SQLite file)")
    show.add_argument("--json", action="store_true", help="one JSON object per run: its config, status and final metrics")
    show.add_argument("--problem", default=None, help="only runs of this problem")
    show.add_argument("--optimizer", default=None, help="only runs of this optimizer")
    show.add_argument("--status", choices=("finished", "failed"), default=None, help="only runs with this status")
    show.set_defaults(func=cmd_show)

    study = subparsers.add_parser(
        "study",
        help="run (or reuse) a seed claim's study and write its report (index.html, figures, verdict)",
        description="Run a study's sweep into a store (finished jobs are reused) and write its report.",
    )
    from .studies import studies

    study.add_argument("name", help=f"the study: {', '.join(sorted(studies()))}")
    study.add_argument("--quick", action="store_true", help="the small version (well under a minute on 2 cores)")
    study.add_argument("--db", default=None, help="the result store (default: NAME[-quick].sqlite)")
    study.add_argument("--out", default=None, help="the report folder (default: report-NAME[-quick])")
    _data_arguments(study)
    _executor_options(study)
    study.set_defaults(func=cmd_study)

    report = subparsers.add_parser("report", help="write the reports of the studies stored in a result store")
    report.add_argument("--db", required=True, help="the result store (SQLite file)")
    report.add_argument("--out", required=True, help="the report folder (one subfolder per study when several)")
    _data_arguments(report)
    report.set_defaults(func=cmd_report)


def main(argv: list[str] | None = None) -> int:
    """``python -m adamlab.lab.cli {run,show,problems}``: the lab commands without the main CLI."""
    parser = argparse.ArgumentParser(prog="python -m adamlab.lab.cli", description="adamlab's benchmark lab")
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(sub)
    problems = sub.add_parser("problems", help="list the built-in problems")
    problems.set_defaults(func=lambda args: list_problems())
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `... show --json | head`: the reader left; not an error
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
