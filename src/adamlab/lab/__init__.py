"""adamlab.lab: named problems, sweeps over optimizers x hyperparameters x seeds, a SQLite result
store, and a resumable runner (local process pool, or Ray).

Nothing here is imported by ``import adamlab``, and ``import adamlab.lab`` itself imports only
this file; the names below load their modules on first use:

- :func:`run_sweep` (:mod:`adamlab.lab.runner`) -- run a sweep into a store, skipping finished jobs;
- :class:`Sweep`, :func:`load_spec` (:mod:`adamlab.lab.spec`) -- the sweep spec and its jobs;
- :class:`Store` (:mod:`adamlab.lab.store`) -- the SQLite store;
- :func:`available_problems`, :func:`get_problem` (:mod:`adamlab.lab.problems`) -- the problems;
- :class:`LabError` -- every user-fixable error.

See ``docs/lab.md`` for the spec format and the commands (:mod:`adamlab.lab.cli`).
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import LabError

_LAZY = {
    "run_sweep": "runner",
    "execute_job": "runner",
    "Sweep": "spec",
    "load_spec": "spec",
    "Store": "store",
    "available_problems": "problems",
    "get_problem": "problems",
}

__all__ = ["LabError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
