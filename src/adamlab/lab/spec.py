"""Sweep specs (TOML or Python) and their expansion into jobs.

A sweep is problems x optimizers x hyperparameter grid x seeds. The minimal TOML form::

    [sweep]
    problems = ["logreg-digits"]
    optimizers = ["adam", "nadam"]
    seeds = [0, 1]
    steps = 200            # optional: else each problem's default budget
    [sweep.grid]           # hyperparameters every optimizer gets (each value: a list of choices)
    lr = [1e-3, 3e-3]

Everything else is optional:

``eval_every``, ``log_every``
    Evaluate every ``eval_every`` steps (default: steps // 10; always at step 0 and at the end);
    store the step-wise training metrics every ``log_every`` steps (default 1).
grid values
    A list of choices (``lr = [1e-3, 3e-3]``); a scalar, meaning one choice (``eps = 1e-8``); a
    choice that is itself a list is a tuple (``betas = [[0.9, 0.999], [0.0, 0.1]]``); a log-spaced
    range ``lr = {log = [1e-4, 1e-1], num = 4}`` (1e-4, 1e-3, 1e-2, 1e-1) or a linear one
    ``{lin = [0.1, 0.9], num = 5}``.
``[sweep.optimizer.NAME]``
    Grid entries for one optimizer only; they replace the shared grid's entries of the same key
    and add others (``[sweep.optimizer.sgd] momentum = [0.9]``).
``[sweep.problem.NAME]``
    Per-problem settings: ``steps`` and ``eval_every`` (that problem's budget), and any other key
    is an option of the problem (``[sweep.problem.mlp-digits] dropout = 0.5``,
    ``mnist_dir = "data/mnist"``). Options whose name ends in ``_dir`` or ``_file`` are paths,
    relative to the spec file's folder.
run controls
    Grid keys the runner applies around the optimizer rather than passing to it: ``schedule``
    (``"cosine-restarts"``, ``"inv-sqrt"``...), ``weight_decay_norm``, ``diagnostics``, ``beta3_rescale`` (see
    :mod:`adamlab.lab.controls`), e.g. ``schedule = ["constant", "cosine-restarts"]``.

Problems are registry names (:func:`adamlab.lab.problems.available_problems`) or user problems
``"package.module:factory"``; optimizers are names :func:`adamlab.available` lists.
Hyperparameters a problem suggests (``default_hyperparameters``, e.g. Reddi's ``lr = 0.1``, the
GAN's ``betas = [0.5, 0.999]``) are used where the sweep sets none and the optimizer takes the
keyword (``sgd`` gets the GAN's ``lr`` but not its ``betas``).

Each job's config is canonical JSON (sorted keys, every option and default resolved) and its id
is the first 16 hex digits of its SHA-256, so the same job always has the same id and a rerun
skips it. Everything is validated (problems built, every optimizer/hyperparameter combination
constructed on a dummy tensor) before a job runs, so a bad spec fails before anything is stored.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import LabError

FORMAT = 1  # the job-config format; part of every job id
JOB_LIMIT = 1000
"""The most jobs ``adamlab run`` expands without ``--yes``: a grid above it is most likely a mistake
(a 1000 x 1000 grid takes minutes and gigabytes just to expand; the studies' sweeps have at most 252)."""

SWEEP_KEYS = (
    "problems",
    "optimizers",
    "seeds",
    "steps",
    "eval_every",
    "log_every",
    "grid",
    "optimizer",
    "problem",
    "name",
    "description",
)
PROBLEM_SETTINGS = ("steps", "eval_every")


def _toml_loads(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        try:
            import tomli as tomllib
        except ImportError:
            raise LabError("reading TOML specs on Python 3.10 needs tomli (pip install tomli)") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise LabError(f"malformed TOML: {err}") from None


@dataclass(frozen=True)
class Job:
    """One run: a problem with options, an optimizer with hyperparameters, a seed, a budget."""

    id: str
    config: dict[str, Any]

    @property
    def problem(self) -> str:
        return self.config["problem"]

    @property
    def optimizer(self) -> str:
        return self.config["optimizer"]

    @property
    def seed(self) -> int:
        return self.config["seed"]

    def label(self) -> str:
        hp = " ".join(f"{k}={short_value(v)}" for k, v in self.config["hyperparameters"].items())
        return f"{self.problem} {self.optimizer}{' ' + hp if hp else ''} seed={self.seed}"


def short_value(v: Any, exact: bool = False) -> str:
    """A hyperparameter or metric value for a one-line label: floats to 4 significant digits, lists
    as (a,b). With ``exact``, every digit (the shortest text that reads back as the same float) and
    strings quoted, so that different values never read the same."""
    if isinstance(v, float):
        return repr(v) if exact else f"{v:.4g}"
    if isinstance(v, list):
        return "(" + ",".join(short_value(x, exact) for x in v) + ")"
    return repr(v) if exact and isinstance(v, str) else str(v)


def hyperparameter_labels(runs: list[dict[str, Any]]) -> list[str]:
    """One label per run (``lr=0.001 betas=(0.9,0.999)``), never the same for two runs of one problem,
    optimizer and seed with different configs: where the short labels of such runs agree, their
    values are written exactly (``lr=0.001`` and ``lr=0.0010001``; ``1`` and ``1.0``; ``0.5`` and
    ``'0.5'``), and where those agree too, the config entries that differ are added (``steps=200``).
    Each run is a dict with ``id``, ``problem``, ``optimizer``, ``seed``, ``hyperparameters`` and
    ``config``."""

    def label(run: dict[str, Any], exact: bool) -> str:
        return " ".join(f"{k}={short_value(v, exact)}" for k, v in (run["hyperparameters"] or {}).items())

    def clashes() -> list[list[int]]:
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, run in enumerate(runs):
            groups.setdefault((run["problem"], run["optimizer"], run["seed"], labels[i]), []).append(i)
        return [members for members in groups.values() if len({runs[i]["id"] for i in members}) > 1]

    labels = [label(run, False) for run in runs]
    for members in clashes():
        for i in members:
            labels[i] = label(runs[i], True)
    for members in clashes():
        configs = [runs[i].get("config") or {} for i in members]
        keys = {k for c in configs for k in c} - {"hyperparameters"}
        differing = sorted(k for k in keys if any(c.get(k) != configs[0].get(k) for c in configs))
        for i, config in zip(members, configs):
            extra = " ".join(f"{k}={canonical_json(config.get(k))}" for k in differing) or f"(run {runs[i]['id'][:8]})"
            labels[i] = f"{labels[i]} {extra}".strip()
    return labels


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def job_id(config: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


def _native(value: Any) -> Any:
    """NumPy and torch values (scalars, arrays, tensors) as Python numbers and lists, in lists, tuples
    and dicts too: grid values given from Python as ``np.float32(1e-3)`` or ``np.logspace(...)``."""
    if isinstance(value, (list, tuple)):
        return type(value)(_native(v) for v in value)
    if isinstance(value, dict):
        return {k: _native(v) for k, v in value.items()}
    if type(value).__module__.split(".")[0] in ("numpy", "torch") and callable(getattr(value, "tolist", None)):
        return value.tolist()
    return value


def _plain(value: Any) -> Any:
    """Tuples to lists (recursively), so configs are JSON and compare equal after a round trip."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def expand_values(key: str, spec: Any, where: str) -> list[Any]:
    """The choices of one grid entry (see the module docstring)."""
    if isinstance(spec, dict):
        kinds = [k for k in ("log", "lin") if k in spec]
        extra = set(spec) - {"log", "lin", "num"}
        if len(kinds) != 1 or "num" not in spec or extra:
            raise LabError(
                f"{where}.{key}: a range is {{log = [low, high], num = N}} or {{lin = [low, high], num = N}}, got {spec!r}"
            )
        bounds, num = spec[kinds[0]], spec["num"]
        if not (isinstance(bounds, list) and len(bounds) == 2 and all(_is_number(b) for b in bounds)):
            raise LabError(f"{where}.{key}.{kinds[0]}: expected [low, high], two numbers, got {bounds!r}")
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            raise LabError(f"{where}.{key}.num: expected an integer >= 1, got {num!r}")
        low, high = float(bounds[0]), float(bounds[1])
        if kinds[0] == "log" and not (low > 0 and high > 0):
            raise LabError(f"{where}.{key}.log: both bounds must be > 0, got {bounds!r}")
        if num == 1:
            return [low]
        if kinds[0] == "log":
            a, b = math.log(low), math.log(high)
            inner = [math.exp(a + (b - a) * i / (num - 1)) for i in range(1, num - 1)]
        else:
            inner = [low + (high - low) * i / (num - 1) for i in range(1, num - 1)]
        # rounded to 12 significant digits so the values (and job ids) do not depend on the last ulp
        return [low] + [float(f"{v:.12g}") for v in inner] + [high]
    if isinstance(spec, list):
        if not spec:
            raise LabError(f"{where}.{key}: the list of choices is empty")
        return [_plain(v) for v in spec]
    return [spec]


def _choice_count(key: str, spec: Any, where: str) -> int:
    """``len(expand_values(key, spec, where))``, without expanding a range."""
    if isinstance(spec, dict) and _positive_int(spec.get("num")):
        expand_values(key, {**spec, "num": 1}, where)  # (the range's checks)
        return spec["num"]
    return len(expand_values(key, spec, where))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise LabError(message)


@dataclass
class Sweep:
    """A sweep, from TOML (:func:`load_spec`) or built in Python::

    Sweep(problems=["logreg-digits"], optimizers=["adam", "nadam"], seeds=[0, 1], steps=200,
          grid={"lr": [1e-3, 3e-3]})
    """

    problems: list[str]
    optimizers: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    steps: int | None = None
    eval_every: int | None = None
    log_every: int = 1
    grid: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, dict[str, Any]] = field(default_factory=dict)
    problem: dict[str, dict[str, Any]] = field(default_factory=dict)
    name: str = ""
    description: str = ""
    source: str = "sweep"
    base_dir: str | None = None

    def __post_init__(self) -> None:
        for key in ("seeds", "steps", "eval_every", "log_every", "grid", "optimizer", "problem"):
            setattr(self, key, _native(getattr(self, key)))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "sweep", base_dir: str | None = None) -> Sweep:
        """A sweep from the contents of a ``[sweep]`` table; unknown keys raise LabError."""
        where = f"{source}: sweep"
        _need(isinstance(data, dict), f"{source}: expected a [sweep] table")
        for key in data:
            if key not in SWEEP_KEYS:
                close = difflib.get_close_matches(key, SWEEP_KEYS, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise LabError(f"{where}: unknown key {key!r}.{hint} Accepted: {', '.join(SWEEP_KEYS)}")
        for key in ("problems", "optimizers"):
            _need(key in data, f"{where}: missing {key!r} (a list of names)")
        seeds = data.get("seeds", [0])
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            seeds = [seeds]
        return cls(
            problems=data["problems"],
            optimizers=data["optimizers"],
            seeds=seeds,
            steps=data.get("steps"),
            eval_every=data.get("eval_every"),
            log_every=data.get("log_every", 1),
            grid=data.get("grid", {}),
            optimizer=data.get("optimizer", {}),
            problem=data.get("problem", {}),
            name=data.get("name", ""),
            description=data.get("description", ""),
            source=source,
            base_dir=base_dir,
        )

    def cache_key(self) -> str | None:
        """A key of everything that decides this sweep's jobs (and the adamlab version), or None.

        Equal keys expand to the same jobs, so a store that recorded a key's job ids (when the
        sweep was first expanded and validated) lets a rerun see what is left without expanding
        again, and so without importing torch. None for sweeps with user problems, whose code can
        change their options between runs.
        """
        if any(":" in name for name in self.problems if isinstance(name, str)):
            return None
        from .. import __version__

        fields = [k for k in SWEEP_KEYS if k not in ("name", "description")] + ["base_dir"]
        try:
            text = canonical_json({"format": FORMAT, "adamlab": __version__, **{k: getattr(self, k) for k in fields}})
        except (TypeError, ValueError):
            return None  # not JSON: jobs() will say what is wrong
        return hashlib.sha256(text.encode()).hexdigest()

    # -- validation and expansion -----------------------------------------------------------------

    def _check_shape(self) -> None:
        where = f"{self.source}: sweep"
        for key in ("problems", "optimizers"):
            value = getattr(self, key)
            _need(
                isinstance(value, list) and value and all(isinstance(v, str) for v in value),
                f"{where}.{key}: expected a non-empty list of names, got {value!r}",
            )
            dupes = sorted({v for v in value if value.count(v) > 1})
            _need(not dupes, f"{where}.{key}: listed twice: {', '.join(dupes)}")
        _need(
            isinstance(self.seeds, list)
            and self.seeds
            and all(isinstance(s, int) and not isinstance(s, bool) for s in self.seeds),
            f"{where}.seeds: expected a non-empty list of integers, got {self.seeds!r}",
        )
        for key in ("steps", "eval_every"):
            value = getattr(self, key)
            _need(value is None or _positive_int(value), f"{where}.{key}: expected an integer >= 1, got {value!r}")
        _need(_positive_int(self.log_every), f"{where}.log_every: expected an integer >= 1, got {self.log_every!r}")
        _need(isinstance(self.grid, dict), f"{where}.grid: expected a table of hyperparameter choices, got {self.grid!r}")
        _need(
            isinstance(self.optimizer, dict), f"{where}.optimizer: expected tables [sweep.optimizer.NAME], got {self.optimizer!r}"
        )
        _need(isinstance(self.problem, dict), f"{where}.problem: expected tables [sweep.problem.NAME], got {self.problem!r}")
        for name, table in self.optimizer.items():
            _need(
                name in self.optimizers,
                f"{where}.optimizer.{name}: {name!r} is not in sweep.optimizers ({', '.join(self.optimizers)})",
            )
            _need(isinstance(table, dict), f"{where}.optimizer.{name}: expected a table of hyperparameter choices")
        for name, table in self.problem.items():
            _need(
                name in self.problems,
                f"{where}.problem.{name}: {name!r} is not in sweep.problems ({', '.join(self.problems)})",
            )
            _need(isinstance(table, dict), f"{where}.problem.{name}: expected a table of settings and options")
            for key in PROBLEM_SETTINGS:
                value = table.get(key)
                _need(
                    value is None or _positive_int(value),
                    f"{where}.problem.{name}.{key}: expected an integer >= 1, got {value!r}",
                )

    def _optimizer_grid(self, name: str) -> dict[str, list[Any]]:
        where = f"{self.source}: sweep"
        grid = {k: expand_values(k, v, f"{where}.grid") for k, v in self.grid.items()}
        for k, v in self.optimizer.get(name, {}).items():
            grid[k] = expand_values(k, v, f"{where}.optimizer.{name}")
        return grid

    def job_count(self) -> int:
        """How many jobs :meth:`jobs` gives at most (before equal configs merge), counted without
        expanding the grid: to refuse a sweep too large to expand (:data:`JOB_LIMIT`) in a moment."""
        self._check_shape()
        per_problem = 0
        for name in self.optimizers:
            tables = {k: (f"{self.source}: sweep.grid", v) for k, v in self.grid.items()}
            tables.update({k: (f"{self.source}: sweep.optimizer.{name}", v) for k, v in self.optimizer.get(name, {}).items()})
            combos = 1
            for key, (where, spec) in tables.items():
                combos *= _choice_count(key, spec, where)
            per_problem += combos
        return len(self.problems) * per_problem * len(self.seeds)

    def jobs(self) -> list[Job]:
        """Every job of the sweep, in order problem, optimizer, hyperparameters, seed; LabError on any bad entry."""
        import adamlab

        from .problems import get_problem, problem_options

        self._check_shape()
        available = adamlab.available()
        for name in self.optimizers:
            if name not in available:
                close = difflib.get_close_matches(name, available, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise LabError(f"{self.source}: unknown optimizer {name!r}.{hint} Available: {', '.join(available)}")
        checked: set[str] = set()
        jobs: list[Job] = []
        seen: set[str] = set()
        for pname in self.problems:
            table = dict(self.problem.get(pname, {}))
            settings = {k: table.pop(k) for k in PROBLEM_SETTINGS if k in table}
            options = {k: self._resolve_path(k, v) for k, v in table.items()}
            problem = get_problem(pname, **options)
            check = getattr(problem, "check", None)
            if callable(check):
                check()
            steps = settings.get("steps") or self.steps or int(problem.default_steps)
            eval_every = settings.get("eval_every") or self.eval_every or max(1, steps // 10)
            suggested = dict(getattr(problem, "default_hyperparameters", {}) or {})
            opts = _plain(problem_options(problem, options))
            for oname in self.optimizers:
                grid = self._optimizer_grid(oname)
                keys = sorted(grid)
                for combo in itertools.product(*(grid[k] for k in keys)):
                    hp = {k: _plain(v) for k, v in suggested.items() if k not in grid and _accepts(oname, k, v)}
                    hp.update(dict(zip(keys, combo)))
                    hp = dict(sorted(hp.items()))
                    self._check_optimizer(oname, hp, steps, checked)
                    for seed in self.seeds:
                        config = {
                            "format": FORMAT,
                            "problem": pname,
                            "options": opts,
                            "optimizer": oname,
                            "hyperparameters": hp,
                            "seed": seed,
                            "steps": steps,
                            "eval_every": eval_every,
                            "log_every": self.log_every,
                        }
                        try:
                            jid = job_id(config)
                        except (TypeError, ValueError) as err:
                            raise LabError(
                                f"{self.source}: a value of problem {pname!r} / optimizer {oname!r} is not JSON: {err}"
                            ) from None
                        if jid not in seen:
                            seen.add(jid)
                            jobs.append(Job(jid, config))
        return jobs

    def _resolve_path(self, key: str, value: Any) -> Any:
        if isinstance(value, str) and (key.endswith("_dir") or key.endswith("_file")) and self.base_dir:
            return str((Path(self.base_dir) / Path(value).expanduser()).resolve())
        return value

    def _check_optimizer(self, name: str, hp: dict[str, Any], steps: int, checked: set[str]) -> None:
        key = canonical_json([name, hp, steps])
        if key in checked:
            return
        from adamlab.optim.registry import check

        from . import controls

        where = f"{self.source}: optimizer {name!r} with {hp}"
        optimizer_hp, run_controls = controls.split(hp)
        controls.check(run_controls, optimizer_hp, where)
        if (
            run_controls.get("schedule") == "partial-decay"
            and "partial" not in optimizer_hp
            and not _accepts(name, "partial", 0.25)
        ):
            raise LabError(f"{where}: schedule 'partial-decay' needs an optimizer with a 'partial' exponent (padam)")
        if run_controls.get("beta3_rescale") and "beta3" not in optimizer_hp and not _accepts(name, "beta3", 0.9):
            raise LabError(f"{where}: beta3_rescale needs an optimizer with a 'beta3' (madam)")
        kwargs = optimizer_kwargs(controls.resolve(optimizer_hp, run_controls, steps))
        try:
            check(name, **kwargs)
        except (ValueError, TypeError) as err:
            raise LabError(f"{where}: {err}") from None
        controls.check_diagnostics(run_controls, name, kwargs, where)
        checked.add(key)


_ACCEPTS: dict[tuple[str, str], bool] = {}


def _accepts(optimizer: str, key: str, value: Any) -> bool:
    """Whether ``adamlab.create(optimizer, ..., key=value)`` is accepted (for a problem's suggestions)."""
    if (optimizer, key) not in _ACCEPTS:
        from adamlab.optim.registry import check

        try:
            check(optimizer, **optimizer_kwargs({key: _plain(value)}))
            _ACCEPTS[optimizer, key] = True
        except (ValueError, TypeError):
            _ACCEPTS[optimizer, key] = False
    return _ACCEPTS[optimizer, key]


def optimizer_kwargs(hp: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameters as the optimizer takes them: lists (from JSON/TOML) become tuples (``betas``)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in hp.items()}


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def load_spec(path: str | Path) -> Sweep:
    """Read a TOML sweep spec; malformed TOML (with its line and column), unknown keys, a missing file raise LabError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabError(f"sweep spec {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise LabError(f"cannot read sweep spec {str(path)!r}: {err}") from None
    try:
        data = _toml_loads(text)
    except LabError as err:
        raise LabError(f"{path}: {err}") from None
    extra = sorted(set(data) - {"sweep"})
    if extra:
        raise LabError(f"{path}: unknown top-level table(s) {', '.join(extra)}; a spec has one [sweep] table")
    if "sweep" not in data:
        raise LabError(f"{path}: no [sweep] table")
    return Sweep.from_dict(data["sweep"], source=str(path), base_dir=str(path.resolve().parent))
