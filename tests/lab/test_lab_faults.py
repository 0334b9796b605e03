"""Process faults of ``adamlab run``: Ctrl-C and SIGTERM stop a sweep of long jobs within seconds, and
killing the main process leaves no worker, fork server or resource tracker behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from lab_helpers import subprocess_env

from adamlab.lab.store import Store

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads the process table from /proc")

# two short jobs (stored within seconds), then two of 3,000,000 steps (minutes each): a stop finds
# both workers in the middle of a long job
LONG_SPEC = """\
[sweep]
problems = ["rosenbrock", "quadratic"]
optimizers = ["adam"]
seeds = [0, 1]
log_every = 1000000
[sweep.problem.rosenbrock]
steps = 5
[sweep.problem.quadratic]
steps = 3000000
eval_every = 3000000
"""


def _session(sid: int) -> list[int]:
    """The pids of the live (not zombie) processes of session ``sid``: the run and everything it started."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != b"Z":  # fields: state, ppid, pgrp, session
            pids.append(int(entry))
    return pids


def _described(pids: list[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().replace(bytes(1), b" ").decode()
            out.append(f"{pid}: {command[:200]}")
        except OSError:
            pass
    return out


def _start(spec, db, log):
    cmd = [sys.executable, "-m", "adamlab.lab.cli", "run", str(spec), "--db", str(db), "--workers", "2", "--progress", "plain"]
    return subprocess.Popen(cmd, env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _stored(db) -> int:
    if not os.path.exists(db):
        return 0
    try:
        with Store.open(db, create=False) as store:
            return store.count("finished")
    except Exception:  # the store is being created
        return 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_ends_long_jobs_within_seconds_and_a_kill_leaves_no_process(tmp_path, sig):
    spec = tmp_path / "long.toml"
    spec.write_text(LONG_SPEC)
    db = tmp_path / "r.sqlite"
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        proc = _start(spec, db, out)
        try:
            assert _wait_for(lambda: "[2/4]" in log.read_text(), 120), log.read_text()  # the short jobs are stored
            time.sleep(1.0)  # both workers are in a 3,000,000-step job now
            assert proc.poll() is None and len(_session(proc.pid)) >= 3  # run, fork server, workers
            t0 = time.monotonic()
            os.killpg(proc.pid, sig)  # as Ctrl-C at a terminal (SIGINT), or a polite kill of the group
            time.sleep(0.2)
            if proc.poll() is None:
                os.killpg(proc.pid, sig)  # a second, impatient one: ignored while the first one's cleanup runs
            proc.wait(timeout=30)
            stopped = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert proc.returncode == 130, text
    assert stopped < 5, f"stopped {stopped:.1f} s after the signal"
    assert "interrupted: finished jobs are stored" in text and "Traceback" not in text and "Exception ignored" not in text
    assert _wait_for(lambda: not _session(proc.pid), 2), _described(_session(proc.pid))
    assert _stored(db) == 2
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith("r.sqlite")) == ["r.sqlite"]  # no -wal, -shm left

    if sig == signal.SIGTERM:
        return  # (the rest once, after the Ctrl-C)
    # the same command runs exactly the two missing jobs; SIGKILL of its main process stops them all
    with open(log, "w") as out:
        proc = _start(spec, db, out)
        try:
            assert _wait_for(lambda: "4 jobs: 2 already finished, 2 to run" in log.read_text(), 60), log.read_text()
            assert _wait_for(lambda: len(_session(proc.pid)) >= 4, 60), _session(proc.pid)  # run, fork server, 2 workers
            proc.kill()
            proc.wait(timeout=10)
            assert _wait_for(lambda: not _session(proc.pid), 10), _described(_session(proc.pid))
        finally:
            for pid in _session(proc.pid):
                os.kill(pid, signal.SIGKILL)
    assert _stored(db) == 2
