"""The one decision rule of every study: a claim as comparisons with a direction and a margin, an interval each, an outcome.

A *comparison* is an effect — a difference of a metric between two settings paired over seeds, or
a quantity against a reference value — with the direction and the margin the paper's words give
it ("much lower error": greater than a margin; "comparable to SGD": within a margin of 0).
Its interval is the two-sided 95% Student t interval of the mean of the n per-seed values
(n - 1 degrees of freedom: with 3 seeds the half-width is 4.30 standard errors, not 2); a
deterministic quantity (one seed of a problem with no randomness) has the exact interval
``[value, value]``. With n < 2 noisy values, or a value that is not finite (a diverged run), the
interval is unknown and the comparison inconclusive.

The rule, on ``[low, high]`` and the margin m:

- ``"greater"``: *holds* when ``low > m`` (the interval clears the margin in the claimed
  direction); *does not hold* when ``high < min(m, 0)`` (the interval excludes every effect in the
  claimed direction; with a negative m, a non-inferiority tolerance, every effect above it);
  *inconclusive* otherwise.
- ``"less"``: the mirror image: holds when ``high < -m``, does not hold when ``low > max(-m, 0)``.
- ``"within"`` (equivalence, |effect| <= m): holds when ``-m < low`` and ``high < m`` (two one-sided
  tests at 2.5% each); does not hold when ``low > m`` or ``high < -m``.

A "does not hold" needs the interval beyond 0 against the claim, so with no effect behind a
directional claim each of "holds" and "does not hold" comes out by chance at most 2.5% of the time
(tests/lab/test_decision.py simulates this at the studies' seed counts); an effect that is real
but smaller than the margin stays inconclusive. A comparison whose stated precondition fails (curves not at a
plateau, no gap to close, no switch happened, a stand-in for the paper's data) is *inconclusive:
the setup cannot test this*, whatever its interval.

A claim made of several comparisons (those with ``decides``; the others are reported beside it)
holds when every one holds, does not hold when one does not hold, is untestable when one is
untestable and none refutes it, and is inconclusive otherwise.

The *smallest detectable effect* of a noisy directional comparison is the true effect at which it
holds with 80% probability if the seeds' spread is the one observed: ``m + delta se`` (for "less",
its negative), where delta solves ``P(T > t) = 0.8`` for T noncentral t with n - 1 degrees of
freedom and noncentrality delta, t the interval's quantile (delta = 5.65 for 3 seeds, 3.15 for 10);
a study too small to resolve its margin says so with this number.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

HOLDS, FAILS, OPEN = "holds", "does not hold", "inconclusive"
UNTESTABLE = "inconclusive: the setup cannot test this"
DIRECTIONS = ("greater", "less", "within")
LEVEL = 0.95
POWER = 0.8


def t_quantile(n: int) -> float:
    """The two-sided :data:`LEVEL` Student t quantile for the mean of n values (n - 1 degrees of freedom)."""
    from scipy.stats import t

    return float(t.ppf(0.5 + LEVEL / 2, n - 1))


@functools.cache
def power_shift(n: int) -> float:
    """delta, in standard errors beyond the margin, at which a comparison of n values holds with probability :data:`POWER`."""
    from scipy.optimize import brentq
    from scipy.stats import nct

    crit = t_quantile(n)
    return float(brentq(lambda delta: nct.sf(crit, n - 1, delta) - POWER, crit, crit + 100.0))


def rule(direction: str, margin: float, low: float | None, high: float | None) -> str:
    """The outcome an interval ``[low, high]`` implies for a claim of ``direction`` with ``margin`` (module docstring)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r}: expected one of {', '.join(DIRECTIONS)}")
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return OPEN
    if direction == "greater":
        return HOLDS if low > margin else FAILS if high < min(margin, 0.0) else OPEN
    if direction == "less":
        return HOLDS if high < -margin else FAILS if low > max(-margin, 0.0) else OPEN
    return HOLDS if -margin < low and high < margin else FAILS if low > margin or high < -margin else OPEN


@dataclass(frozen=True)
class Comparison:
    """One comparison of a claim: the effect's estimate and interval over n values, its direction and margin.

    ``untestable``: the precondition that failed (the outcome is then :data:`UNTESTABLE`);
    ``decides``: whether the claim's outcome depends on it (else it is reported beside);
    ``unit``: how to print the numbers ("points": accuracy differences shown x100).
    """

    name: str
    estimate: float
    low: float
    high: float
    margin: float
    direction: str
    n: int
    detectable: float = math.nan
    untestable: str = ""
    decides: bool = True
    unit: str = ""

    @property
    def outcome(self) -> str:
        return UNTESTABLE if self.untestable else rule(self.direction, self.margin, self.low, self.high)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``verdict.json``): non-finite numbers as null."""

        def num(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        out: dict[str, Any] = {
            "name": self.name,
            "estimate": num(self.estimate),
            "low": num(self.low),
            "high": num(self.high),
            "margin": self.margin,
            "direction": self.direction,
            "n": self.n,
            "outcome": self.outcome,
            "decides": self.decides,
        }
        if math.isfinite(self.detectable):
            out["detectable"] = self.detectable
        if self.untestable:
            out["untestable"] = self.untestable
        return out

    def cells(self) -> dict[str, str]:
        """The numbers as printed: ``estimate``, ``interval`` ("[low, high]" or "none"), ``claimed`` ("> m", "< -m",
        "within ±m"); accuracy differences (``unit`` "points") x100."""
        scale = 100.0 if self.unit == "points" else 1.0

        def f(v: float) -> str:
            return f"{scale * v:+.3g}" if math.isfinite(v) else "n/a"

        claimed = {"greater": f"> {f(self.margin)}", "less": f"< {f(-self.margin)}", "within": f"within ±{abs(scale * self.margin):.3g}"}
        interval = f"[{f(self.low)}, {f(self.high)}]" if math.isfinite(self.low) else "none"
        return {"estimate": f(self.estimate), "interval": interval, "claimed": claimed[self.direction], "detectable": f(self.detectable)}

    def describe(self) -> str:
        """One sentence: name, estimate, interval, margin, n and outcome (with the smallest detectable effect)."""
        cells = self.cells()
        suffix = f" {self.unit}" if self.unit else ""
        text = (
            f"{self.name}: {cells['estimate']}{suffix}, 95% interval {cells['interval']}, n = {self.n}; "
            f"claimed {cells['claimed']}: {self.outcome}"
        )
        if math.isfinite(self.detectable) and self.outcome == OPEN:
            text += f" (smallest effect this size could detect: {cells['detectable']})"
        if self.untestable:
            text += f" ({self.untestable})"
        return text + ("" if self.decides else "; reported, not decisive")


def interval(values: Sequence[float], exact: bool = False) -> tuple[float, float, float, float]:
    """``(estimate, low, high, standard error)`` of the mean of ``values``: the t interval (module docstring).

    ``exact``: the values are deterministic (the interval is the value itself). NaN interval when
    a value is not finite or fewer than 2 noisy values.
    """
    if not values or not all(math.isfinite(v) for v in values):
        return (statistics.fmean(values) if values else math.nan), math.nan, math.nan, math.nan
    mean = statistics.fmean(values)
    if exact:
        return mean, mean, mean, 0.0
    if len(values) < 2:
        return mean, math.nan, math.nan, math.nan
    se = statistics.stdev(values) / math.sqrt(len(values))
    half = t_quantile(len(values)) * se
    return mean, mean - half, mean + half, se


def compare(
    name: str, values: Sequence[float], direction: str, margin: float, exact: bool = False, **options: Any
) -> Comparison:
    """The comparison of the mean of ``values`` (per-seed effects) against the claim; ``options``: the other fields."""
    estimate, low, high, se = interval(list(values), exact)
    detectable = math.nan
    if math.isfinite(se) and se > 0 and direction != "within":
        shift = margin + power_shift(len(values)) * se
        detectable = shift if direction == "greater" else -shift
    return Comparison(name, estimate, low, high, margin, direction, len(values), detectable, **options)


def paired(
    name: str, a: Mapping[Any, float], b: Mapping[Any, float], direction: str, margin: float, **options: Any
) -> Comparison:
    """The comparison of ``a - b`` paired over the keys (seeds) both have: a seed fixes the data split, the
    initialization and the minibatches for every setting, so pairing removes what they share."""
    return compare(name, [a[k] - b[k] for k in sorted(set(a) & set(b))], direction, margin, **options)


def combine(outcomes: Iterable[str]) -> str:
    """The outcome of a claim from its deciding comparisons' outcomes (module docstring); none: inconclusive."""
    found = list(outcomes)
    if not found:
        return OPEN
    if FAILS in found:
        return FAILS
    if UNTESTABLE in found:
        return UNTESTABLE
    return HOLDS if all(o == HOLDS for o in found) else OPEN


def claim_outcome(comparisons: Iterable[Comparison]) -> str:
    return combine(c.outcome for c in comparisons if c.decides)
