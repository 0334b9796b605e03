"""The result store: one SQLite file (WAL mode) holding every run of every sweep.

Schema (version 2)::

    adamlab_schema(application, version, created_at)   -- one row: 'adamlab.lab', 2
    runs(id PRIMARY KEY,             -- the job id (hash of the canonical config)
         config,                     -- the job's canonical config, JSON
         problem, optimizer, hyperparameters (JSON), seed, steps,
         status,                     -- 'finished' or 'failed'
         started_at, finished_at,    -- Unix times, as measured where the job ran
         wall_time,                  -- seconds, build + training + evaluation
         final_metrics,              -- JSON: the final evaluate() plus final_loss, steps_to_target, diverged
         timings,                    -- JSON: build/train/eval seconds, seconds_to_target
         error,                      -- traceback text of a failed run
         host, adamlab_version, recorded_at)
    metrics(run_id -> runs.id, kind, step, name, value)
         -- kind 'train': what trial.step returned, every log_every steps;
         -- kind 'eval': what trial.evaluate returned, every eval_every steps, at 0 and at the end
    artifacts(run_id -> runs.id, name, data)
         -- named arrays of a run (diagnostics, generated samples), each in NumPy's .npy format
    sweeps(key, job_ids, recorded_at)
         -- the job ids a validated sweep expanded to, by the sweep's key (see Sweep.cache_key),
         -- so a rerun can see that nothing is left to do without expanding the sweep again

A version-1 store (no artifacts or sweeps table) is upgraded in place, in one transaction, when it is opened
for writing; read-only it reads as a store whose runs have no artifacts.

Only the parent process writes, one transaction per finished job (its run row and all its
metrics), so a crash or Ctrl-C never leaves half a run: a run is in the store whole or not at all.
Jobs that were running when a sweep stopped are not recorded and run again next time. Opening a
file that is not an adamlab store (another SQLite database, or not SQLite at all), a store written
by a newer schema, or a path that cannot be written raises :class:`LabError` and changes nothing.
Non-finite metric values are stored as NULL (JSON ``null``).
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import LabError

APPLICATION = "adamlab.lab"
SCHEMA_VERSION = 2
APPLICATION_ID = 0x41444C42  # "ADLB", in the SQLite header (PRAGMA application_id)
STATUSES = ("finished", "failed")

_V2_TABLES = """
CREATE TABLE artifacts (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
CREATE TABLE sweeps (
    key TEXT PRIMARY KEY,
    job_ids TEXT NOT NULL,
    recorded_at REAL NOT NULL
);
"""

_SCHEMA = (
    f"""
CREATE TABLE adamlab_schema (
    application TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    problem TEXT NOT NULL,
    optimizer TEXT NOT NULL,
    hyperparameters TEXT NOT NULL,
    seed INTEGER NOT NULL,
    steps INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN {STATUSES!r}),
    started_at REAL,
    finished_at REAL,
    wall_time REAL,
    final_metrics TEXT,
    timings TEXT,
    error TEXT,
    host TEXT,
    adamlab_version TEXT,
    recorded_at REAL NOT NULL
);
CREATE INDEX runs_by_problem ON runs (problem, optimizer, seed);
CREATE TABLE metrics (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('train', 'eval')),
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, kind, name, step)
) WITHOUT ROWID;
"""
    + _V2_TABLES
)


_SQLITE_MAGIC = b"SQLite format 3\x00"


def finite_or_none(value: Any) -> Any:
    """Floats that are NaN or infinite become None (SQLite NULL, JSON null); other values pass."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return finite_or_none(obj)


def _npy(array: Any) -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _dumps(obj: Any) -> str:
    return json.dumps(_clean(obj), sort_keys=True, allow_nan=False)


class Store:
    """An open result store. Use :meth:`open`; ``with Store.open(path) as store: ...`` closes it."""

    def __init__(self, path: Path, conn: sqlite3.Connection, writable: bool) -> None:
        self.path = path
        self.conn = conn
        self.writable = writable

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], create: bool = True) -> Store:
        """Open the store at ``path`` for writing, creating it when ``create`` and it does not exist.

        ``create=False`` opens an existing store read-only (for reports and ``show``): with
        ``PRAGMA query_only`` where the file is writable, so that closing the last connection removes
        the ``-wal`` and ``-shm`` files as a writer's does (a ``mode=ro`` connection cannot, and
        leaves them next to the store), with ``mode=ro`` where it is not.
        """
        path = Path(path)
        if path.is_dir():
            raise LabError(f"result store {str(path)!r} is a directory; expected a file such as {str(path / 'results.sqlite')!r}")
        exists = path.exists() and path.stat().st_size > 0
        if not create:
            if not exists:
                raise LabError(f"no result store at {str(path)!r}; run a sweep into it first (adamlab run SPEC.toml --db {path})")
            cls._inspect(path)
            if os.access(path, os.W_OK) and os.access(path.resolve().parent, os.W_OK):
                conn = cls._connect(str(path), path)
                conn.execute("PRAGMA query_only=ON")
            else:
                conn = cls._connect(f"{path.resolve().as_uri()}?mode=ro", path, uri=True)
            return cls(path, conn, writable=False)
        if exists:
            cls._inspect(path)
            if not os.access(path, os.W_OK):
                raise LabError(f"result store {str(path)!r} is not writable (check its permissions)")
        else:
            parent = path.resolve().parent
            if not parent.is_dir():
                what = "is not a directory" if parent.exists() else "does not exist"
                raise LabError(f"cannot create result store {str(path)!r}: the folder {str(parent)!r} {what}")
            if not os.access(parent, os.W_OK):
                raise LabError(f"cannot create result store {str(path)!r}: the folder {str(parent)!r} is not writable")
        conn = cls._connect(str(path), path)
        store = cls(path, conn, writable=True)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if not exists:
                store._create_schema()
            else:
                store._upgrade()
        except sqlite3.Error as err:
            conn.close()
            raise LabError(f"cannot write result store {str(path)!r}: {err}") from None
        return store

    @staticmethod
    def _connect(target: str, path: Path, uri: bool = False) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(target, uri=uri, isolation_level=None, timeout=30.0)
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as err:
            raise LabError(f"cannot open result store {str(path)!r}: {err}") from None
        return conn

    @staticmethod
    def _inspect(path: Path) -> None:
        """Check, without writing, that ``path`` is an adamlab store of a schema this code reads."""
        try:
            with open(path, "rb") as f:
                head = f.read(len(_SQLITE_MAGIC))
        except OSError as err:
            raise LabError(f"cannot read result store {str(path)!r}: {err.strerror or err}") from None
        if head != _SQLITE_MAGIC:
            raise LabError(f"{str(path)!r} is not a SQLite database, so not an adamlab result store; refusing to touch it")
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                row = (
                    conn.execute("SELECT application, version FROM adamlab_schema").fetchone()
                    if "adamlab_schema" in tables
                    else None
                )
            finally:
                conn.close()
        except sqlite3.Error as err:
            raise LabError(f"cannot read result store {str(path)!r}: {err}") from None
        if row is None:
            listed = ", ".join(sorted(tables)) or "none"
            raise LabError(
                f"{str(path)!r} is a SQLite database but not an adamlab result store (its tables: {listed}); refusing to touch it"
            )
        application, version = row
        if application != APPLICATION:
            raise LabError(f"{str(path)!r} belongs to {application!r}, not {APPLICATION!r}; refusing to touch it")
        if version > SCHEMA_VERSION:
            raise LabError(
                f"{str(path)!r} has store schema version {version}; this adamlab reads up to version {SCHEMA_VERSION}: upgrade adamlab"
            )

    def _create_schema(self) -> None:
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.conn.execute(statement)
            self.conn.execute("INSERT INTO adamlab_schema VALUES (?, ?, ?)", (APPLICATION, SCHEMA_VERSION, time.time()))
        self.conn.execute(f"PRAGMA application_id={APPLICATION_ID}")

    def _upgrade(self) -> None:
        """Bring an older schema up to :data:`SCHEMA_VERSION` (v1 -> v2: add the artifacts table)."""
        with self.transaction():
            (version,) = self.conn.execute("SELECT version FROM adamlab_schema").fetchone()
            if version < 2:
                for statement in _V2_TABLES.split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute("UPDATE adamlab_schema SET version = ?", (SCHEMA_VERSION,))

    # -- writing ---------------------------------------------------------------------------------

    def transaction(self) -> _Transaction:
        return _Transaction(self.conn)

    def record(self, result: dict[str, Any]) -> None:
        """Store one finished (or failed) job, replacing an earlier record of the same id, in one transaction.

        ``result`` is what :func:`adamlab.lab.runner.execute_job` returns: ``id``, ``config``,
        ``status``, times, ``final_metrics``, ``timings``, ``metrics`` (rows ``(kind, step, name,
        value)``) and ``error``.
        """
        if not self.writable:
            raise LabError(f"result store {str(self.path)!r} was opened read-only")
        if result["status"] not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {result['status']!r}")
        config = result["config"]
        from .. import __version__

        run = (
            result["id"],
            _dumps(config),
            config["problem"],
            config["optimizer"],
            _dumps(config["hyperparameters"]),
            config["seed"],
            config["steps"],
            result["status"],
            result.get("started_at"),
            result.get("finished_at"),
            result.get("wall_time"),
            _dumps(result.get("final_metrics") or {}),
            _dumps(result.get("timings") or {}),
            result.get("error"),
            result.get("host") or socket.gethostname(),
            __version__,
            time.time(),
        )
        rows = [
            (result["id"], kind, int(step), name, finite_or_none(float(value)) if value is not None else None)
            for kind, step, name, value in result.get("metrics", ())
        ]
        blobs = [(result["id"], name, _npy(array)) for name, array in (result.get("artifacts") or {}).items()]
        try:
            with self.transaction():
                self.conn.execute("DELETE FROM metrics WHERE run_id = ?", (result["id"],))
                self.conn.execute("DELETE FROM artifacts WHERE run_id = ?", (result["id"],))
                self.conn.execute("DELETE FROM runs WHERE id = ?", (result["id"],))
                self.conn.execute(f"INSERT INTO runs VALUES ({', '.join('?' * len(run))})", run)
                self.conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", rows)
                self.conn.executemany("INSERT INTO artifacts VALUES (?, ?, ?)", blobs)
        except sqlite3.Error as err:
            raise LabError(f"cannot write result store {str(self.path)!r}: {err}") from None

    # -- reading ---------------------------------------------------------------------------------

    def finished_ids(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT id FROM runs WHERE status = 'finished'")}

    def runs(self, problem: str | None = None, optimizer: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Runs as dicts (JSON columns decoded), in the order problem, optimizer, hyperparameters, seed."""
        where, args = [], []
        for column, value in (("problem", problem), ("optimizer", optimizer), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY problem, optimizer, hyperparameters, seed, id"
        cur = self.conn.execute(sql, args)
        names = [d[0] for d in cur.description]
        out = []
        for row in cur:
            run = dict(zip(names, row))
            for key in ("config", "hyperparameters", "final_metrics", "timings"):
                run[key] = json.loads(run[key]) if run[key] is not None else None
            out.append(run)
        return out

    def metrics(self, run_id: str, kind: str | None = None, name: str | None = None) -> list[tuple[str, int, str, float | None]]:
        """Step-wise metrics of one run as ``(kind, step, name, value)``, ordered by kind, name, step."""
        sql = "SELECT kind, step, name, value FROM metrics WHERE run_id = ?"
        args: list[Any] = [run_id]
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        if name is not None:
            sql += " AND name = ?"
            args.append(name)
        return [tuple(r) for r in self.conn.execute(sql + " ORDER BY kind, name, step", args)]  # type: ignore[misc]

    def series(self, run_id: str, name: str, kind: str = "train") -> tuple[list[int], list[float | None]]:
        """One metric of one run as ``(steps, values)``."""
        rows = self.metrics(run_id, kind, name)
        return [r[1] for r in rows], [r[3] for r in rows]

    def artifact(self, run_id: str, name: str) -> Any:
        """One stored array of a run (a numpy array), or None when the run has none of that name."""
        if not self._has_table("artifacts"):
            return None
        row = self.conn.execute("SELECT data FROM artifacts WHERE run_id = ? AND name = ?", (run_id, name)).fetchone()
        if row is None:
            return None
        import io

        import numpy as np

        return np.load(io.BytesIO(row[0]), allow_pickle=False)

    def artifact_names(self, run_id: str) -> list[str]:
        """The names of a run's stored arrays, sorted."""
        if not self._has_table("artifacts"):
            return []
        return [r[0] for r in self.conn.execute("SELECT name FROM artifacts WHERE run_id = ? ORDER BY name", (run_id,))]

    def _has_table(self, name: str) -> bool:
        # a version-1 store opened read-only has no artifacts or sweeps table
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None

    def remember_sweep(self, key: str, job_ids: list[str]) -> None:
        """Record that the sweep of ``key`` expands to ``job_ids``."""
        with self.transaction():
            self.conn.execute("INSERT OR REPLACE INTO sweeps VALUES (?, ?, ?)", (key, json.dumps(job_ids), time.time()))

    def sweep_job_ids(self, key: str) -> list[str] | None:
        """The job ids recorded for the sweep of ``key``, or None."""
        if not self._has_table("sweeps"):
            return None
        row = self.conn.execute("SELECT job_ids FROM sweeps WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def count(self, status: str | None = None) -> int:
        if status is None:
            return self.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        return self.conn.execute("SELECT COUNT(*) FROM runs WHERE status = ?", (status,)).fetchone()[0]

    def integrity(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` answer (``"ok"`` when the file is sound)."""
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any exception (KeyboardInterrupt included)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


def run_records(runs: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """The JSON record ``show --json`` prints for each run."""
    keys = (
        "id",
        "problem",
        "optimizer",
        "hyperparameters",
        "seed",
        "steps",
        "status",
        "final_metrics",
        "timings",
        "wall_time",
        "started_at",
        "finished_at",
        "host",
        "error",
        "config",
    )
    for run in runs:
        yield {k: run.get(k) for k in keys}
