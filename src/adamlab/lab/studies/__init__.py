"""Studies: each seed claim as a named sweep, the figures that show it, and a verdict from the store.

A :class:`Study` holds the claim (quoted from its seed), the sweep at full size and the overrides of
``--quick`` (CPU seconds, used by the tests), a function drawing its figures (each with a caption)
from the stored runs, a function computing the verdict ("holds", "does not hold", "inconclusive")
with the numbers behind it, and optionally extra tables (:class:`Table`); :mod:`.plots` has what
they share. ``adamlab study NAME`` runs (or reuses) the sweep, then writes the report
(:mod:`adamlab.lab.report`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import LabError
from ..spec import Sweep


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "holds" | "does not hold" | "inconclusive"
    because: str  # the numbers behind it, one sentence


@dataclass(frozen=True)
class Table:
    """An extra table of a report (a time-to-target table...): a title, column names, rows of strings, a note."""

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    source: str
    claim: str
    sweep: dict[str, Any]
    quick: dict[str, Any]
    # (store, runs, out_dir) -> the figures written, each a (file stem, caption) pair (plots.save
    # writes the PNG and SVG); the caption, one or two sentences saying what the figure shows, is
    # the report's figure caption and the image's alt text
    figures: Callable[..., list[tuple[str, str]]]
    verdict: Callable[..., Verdict]  # (store, runs) -> Verdict
    notes: str = ""
    metrics: tuple[str, ...] = field(default=())
    tables: Callable[..., list[Table]] | None = None  # (store, runs) -> extra tables, shown before the final metrics

    def spec(self, quick: bool, data: dict[str, str] | None = None) -> Sweep:
        """The study's sweep (``quick``: with the quick overrides). ``data`` maps dataset options of
        the problems (``mnist_dir``, ``cifar_dir``) to paths: every problem of the sweep that has
        the option reads its data from there (real MNIST / CIFAR-10 at full size); a LabError when
        no problem of the study has it."""
        table = {**self.sweep, **(self.quick if quick else {}), "name": f"{self.name}{' (quick)' if quick else ''}"}
        for key, path in (data or {}).items():
            from ..problems import problem_class

            readers = [p for p in table["problems"] if key in getattr(problem_class(p), "__dataclass_fields__", {})]
            if not readers:
                raise LabError(f"study {self.name}: none of its problems ({', '.join(table['problems'])}) reads {key}")
            per_problem = {name: dict(options) for name, options in table.get("problem", {}).items()}
            for name in readers:
                per_problem.setdefault(name, {})[key] = path
            table["problem"] = per_problem
        return Sweep.from_dict(table, source=f"study {self.name}")


def studies() -> dict[str, Study]:
    from .adam_paper import ADAM_PAPER
    from .amsgrad_swaps import AMSGRAD_SWAPS
    from .bias_correction import BIAS_CORRECTION
    from .exponent import EXPONENT
    from .generalization import NDADAM, SWATS
    from .madam_lr import MADAM_LR
    from .reddi import REDDI
    from .trajectories import TRAJECTORIES
    from .weight_decay import WEIGHT_DECAY

    return {
        s.name: s
        for s in (
            REDDI,
            BIAS_CORRECTION,
            MADAM_LR,
            AMSGRAD_SWAPS,
            EXPONENT,
            WEIGHT_DECAY,
            SWATS,
            NDADAM,
            ADAM_PAPER,
            TRAJECTORIES,
        )
    }


def get_study(name: str) -> Study:
    known = studies()
    if name not in known:
        raise LabError(f"unknown study {name!r}; available: {', '.join(sorted(known))}")
    return known[name]
