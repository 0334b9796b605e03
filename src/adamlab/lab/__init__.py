"""adamlab.lab: named problems, sweeps over optimizers x hyperparameters x seeds, a SQLite result
store, and a resumable runner (local process pool, or Ray).

Nothing here is imported by ``import adamlab``. The pieces:

- :mod:`adamlab.lab.problems` -- the problem protocol and the registry (``available_problems()``,
  ``get_problem(name, **options)``);
- :mod:`adamlab.lab.spec` -- the sweep spec (TOML or Python) and its expansion into jobs;
- :mod:`adamlab.lab.store` -- the SQLite store;
- :mod:`adamlab.lab.runner` -- executing jobs and streaming their results into the store;
- :mod:`adamlab.lab.cli` -- the ``run`` / ``show`` subcommands and the problem listing.
"""

from __future__ import annotations

from .errors import LabError

__all__ = ["LabError"]
