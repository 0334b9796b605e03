"""The SQLite result store: schema, atomic records, and refusing files it does not own."""

from __future__ import annotations

import sqlite3

import pytest

from adamlab.lab import LabError
from adamlab.lab.store import SCHEMA_VERSION, Store


def result(run_id="r1", status="finished", seed=0, metrics=None, final=None):
    config = {"problem": "p", "optimizer": "adam", "hyperparameters": {"lr": 0.1}, "seed": seed, "steps": 3, "options": {}}
    return {
        "id": run_id,
        "config": config,
        "status": status,
        "started_at": 1.0,
        "finished_at": 2.0,
        "wall_time": 1.0,
        "final_metrics": final if final is not None else {"loss": 0.5, "nan": float("nan")},
        "timings": {"train": 0.9},
        "metrics": metrics
        if metrics is not None
        else [("train", 1, "loss", 3.0), ("train", 2, "loss", 2.0), ("eval", 2, "loss", 1.5)],
        "error": None if status == "finished" else "Traceback...\nRuntimeError: boom",
    }


def test_create_record_reopen(tmp_path):
    db = tmp_path / "r.sqlite"
    with Store.open(db) as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        store.record(result())
        store.record(result("r2", status="failed", seed=1))
    with Store.open(db, create=False) as store:
        assert store.integrity() == "ok"
        assert store.finished_ids() == {"r1"}
        assert store.conn.execute("SELECT application, version FROM adamlab_schema").fetchone() == ("adamlab.lab", SCHEMA_VERSION)
        runs = store.runs()
        assert [(r["id"], r["status"], r["seed"]) for r in runs] == [("r1", "finished", 0), ("r2", "failed", 1)]
        assert runs[0]["final_metrics"] == {"loss": 0.5, "nan": None}  # non-finite values become null
        assert runs[0]["hyperparameters"] == {"lr": 0.1} and runs[0]["config"]["steps"] == 3
        assert runs[1]["error"].endswith("RuntimeError: boom")
        assert store.series("r1", "loss") == ([1, 2], [3.0, 2.0])
        assert store.series("r1", "loss", kind="eval") == ([2], [1.5])
        with pytest.raises(LabError, match="read-only"):
            store.record(result("r3"))


def test_record_replaces_an_earlier_record_of_the_same_run(tmp_path):
    with Store.open(tmp_path / "r.sqlite") as store:
        store.record(result(status="failed"))
        store.record(result(metrics=[("train", 1, "loss", 9.0)]))
        assert store.count() == 1 and store.finished_ids() == {"r1"}
        assert store.metrics("r1") == [("train", 1, "loss", 9.0)]


def test_a_failing_record_leaves_nothing_half_written(tmp_path):
    with Store.open(tmp_path / "r.sqlite") as store:
        store.record(result("keep"))
        bad = result("r1", metrics=[("train", 1, "loss", 1.0), ("train", 1, "loss", 2.0)])  # duplicate key
        with pytest.raises(LabError, match="cannot write"):
            store.record(bad)
        assert store.finished_ids() == {"keep"}
        assert store.metrics("r1") == []


def test_foreign_sqlite_file_is_refused_untouched(tmp_path):
    db = tmp_path / "other.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE customers (name TEXT)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    for create in (True, False):
        with pytest.raises(LabError, match="not an adamlab result store .*customers"):
            Store.open(db, create=create)
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.sqlite"]


def test_non_sqlite_file_is_refused_untouched(tmp_path):
    db = tmp_path / "notes.txt"
    db.write_text("my notes, not a database\n")
    with pytest.raises(LabError, match="is not a SQLite database"):
        Store.open(db)
    assert db.read_text() == "my notes, not a database\n"


def test_newer_schema_is_refused(tmp_path):
    db = tmp_path / "r.sqlite"
    Store.open(db).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE adamlab_schema SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(LabError, match=f"schema version {SCHEMA_VERSION + 1}.*upgrade adamlab"):
        Store.open(db)


def test_unwritable_paths_give_a_clear_error_and_create_nothing(tmp_path):
    with pytest.raises(LabError, match="does not exist"):
        Store.open(tmp_path / "missing" / "r.sqlite")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(LabError, match="is not a directory"):
        Store.open(tmp_path / "afile" / "r.sqlite")
    with pytest.raises(LabError, match="is a directory"):
        Store.open(tmp_path)
    with pytest.raises(LabError, match="no result store at"):
        Store.open(tmp_path / "absent.sqlite", create=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_artifacts_round_trip_and_are_replaced_with_their_run(tmp_path):
    import numpy as np

    db = tmp_path / "r.sqlite"
    images = np.linspace(0, 1, 2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    with Store.open(db) as store:
        store.record({**result(), "artifacts": {"samples": images, "steps": np.array([4, -1])}})
    with Store.open(db, create=False) as store:
        assert store.artifact_names("r1") == ["samples", "steps"]
        got = store.artifact("r1", "samples")
        assert got.dtype == np.float32 and np.array_equal(got, images)
        assert store.artifact("r1", "steps").tolist() == [4, -1]
        assert store.artifact("r1", "absent") is None
    with Store.open(db) as store:
        store.record(result())  # a rerun of the same job without artifacts drops the old ones
        assert store.artifact_names("r1") == []


def test_a_version_1_store_is_upgraded_when_written_and_read_as_is(tmp_path):
    db = tmp_path / "r.sqlite"
    with Store.open(db) as store:
        store.record(result())
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE artifacts")
    conn.execute("DROP TABLE sweeps")
    conn.execute("UPDATE adamlab_schema SET version = 1")
    conn.commit()
    conn.close()
    with Store.open(db, create=False) as store:  # read-only: no table, no artifacts, no error
        assert store.artifact_names("r1") == [] and store.artifact("r1", "x") is None
        assert store.finished_ids() == {"r1"}
    with Store.open(db) as store:
        assert store.conn.execute("SELECT version FROM adamlab_schema").fetchone() == (SCHEMA_VERSION,)
        store.record({**result("r2"), "artifacts": {"a": [1.0]}})
        assert store.artifact("r2", "a").tolist() == [1.0] and store.finished_ids() == {"r1", "r2"}
