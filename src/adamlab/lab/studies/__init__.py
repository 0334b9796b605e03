"""Studies: each paper's claim as a named sweep, the figures that show it, and a verdict from the store.

A :class:`Study` holds the claim (quoted verbatim from its paper, with where in it; a paraphrase is
labelled as such), the paper's setup beside the study's, the sweep at full size and the overrides
of ``--quick`` (CPU seconds, used by the tests), a function drawing its figures (each with a
caption) from the stored runs, a function computing the verdict — the claim's comparisons, each
an estimate with a 95% interval over seeds, a direction and a margin, decided by the one rule of
:mod:`.decision` — and optionally extra tables (:class:`Table`); :mod:`.plots` has what they share. ``adamlab study NAME`` runs (or reuses) the sweep, then writes the report
(:mod:`adamlab.lab.report`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import LabError
from ..spec import Sweep
from .decision import Comparison, claim_outcome


@dataclass(frozen=True)
class Verdict:
    """A claim's outcome (see :mod:`.decision`), the numbers behind it and its comparisons.

    ``claim`` names the claim when a study decides more than one (``also``: the further verdicts).
    """

    outcome: str  # "holds" | "does not hold" | "inconclusive" | "inconclusive: the setup cannot test this"
    because: str  # the numbers behind it
    comparisons: tuple[Comparison, ...] = ()
    claim: str = ""
    also: tuple[Verdict, ...] = ()

    @classmethod
    def of(cls, comparisons: list[Comparison], because: str = "", claim: str = "", also: tuple[Verdict, ...] = ()) -> Verdict:
        """The verdict the comparisons imply; ``because`` (extra numbers) comes after each comparison's sentence."""
        text = "; ".join(c.describe() for c in comparisons) + "."
        return cls(claim_outcome(comparisons), f"{text} {because}".strip(), tuple(comparisons), claim, also)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"outcome": self.outcome, "because": self.because}
        if self.claim:
            out["claim"] = self.claim
        out["comparisons"] = [c.as_dict() for c in self.comparisons]
        if self.also:
            out["also"] = [v.as_dict() for v in self.also]
        return out


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
    source: str  # the paper by title and authors, and where in it the claim is (section, figure, slide)
    claim: str  # the paper's words, verbatim ("[...]" marks a cut)
    sweep: dict[str, Any]
    quick: dict[str, Any]
    # (store, runs, out_dir) -> the figures written, each a (file stem, caption) pair (plots.save
    # writes the PNG and SVG); the caption, one or two sentences saying what the figure shows, is
    # the report's figure caption and the image's alt text
    figures: Callable[..., list[tuple[str, str]]]
    verdict: Callable[..., Verdict]  # (store, runs) -> Verdict
    notes: str = ""
    metrics: tuple[str, ...] = field(default=())
    # the paper's setup, by aspect ("model", "data", "steps", "hyperparameters", "seeds"): the report
    # shows it beside the study's own, read from its sweep (:func:`adamlab.lab.report.setup_table`)
    paper_setup: dict[str, str] = field(default_factory=dict)
    paraphrase: str = ""  # what the study tests, in our words, when the quote alone does not say it
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
