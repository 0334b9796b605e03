"""The studies' decision rule: the rule on intervals, and its error rates on simulated studies (calibration)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adamlab.lab.studies import Verdict
from adamlab.lab.studies.decision import (
    FAILS,
    HOLDS,
    OPEN,
    UNTESTABLE,
    combine,
    compare,
    interval,
    paired,
    power_shift,
    rule,
    t_quantile,
)

SIMULATED = 4000  # studies per case: the binomial error of a 5% rate is 0.35%
SEEDS = (3, 9, 10)  # the studies' own counts: 3 seeds; 9 AMSGrad runs (3 seeds x 3 lrs); 10 (lr, seed) pairs


def simulate(n: int, effect: float, direction: str, margin: float, seed: int = 0) -> dict[str, float]:
    """The share of each outcome over :data:`SIMULATED` studies of n values N(effect, 1), decided by the rule."""
    values = np.random.default_rng(seed).normal(effect, 1.0, size=(SIMULATED, n))
    mean, se = values.mean(1), values.std(1, ddof=1) / math.sqrt(n)
    low, high = mean - t_quantile(n) * se, mean + t_quantile(n) * se
    # the same intervals as the module's, row by row
    for k in range(3):
        assert interval(list(values[k]))[1:3] == pytest.approx((low[k], high[k]))
    outcomes = [rule(direction, margin, lo, hi) for lo, hi in zip(low.tolist(), high.tolist())]
    return {o: outcomes.count(o) / SIMULATED for o in (HOLDS, FAILS, OPEN)}


@pytest.mark.parametrize("n", SEEDS)
@pytest.mark.parametrize("direction", ["greater", "less"])
@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_with_no_effect_a_directional_claim_neither_holds_nor_fails_more_than_5_percent(n, direction, margin):
    rates = simulate(n, 0.0, direction, margin)
    assert rates[HOLDS] <= 0.05 and rates[FAILS] <= 0.05, rates
    # the t interval's one-sided error is 2.5%: at margin 0 both rates are near it
    if margin == 0.0:
        assert rates[HOLDS] == pytest.approx(0.025, abs=0.01) and rates[FAILS] == pytest.approx(0.025, abs=0.01)


@pytest.mark.parametrize("n", SEEDS)
@pytest.mark.parametrize("direction", ["greater", "less"])
def test_an_effect_of_twice_a_resolvable_margin_holds_at_least_80_percent(n, direction):
    """A margin the size resolves (1.2 x the one whose double is the smallest detectable effect at the true spread)."""
    margin = 1.2 * power_shift(n) / math.sqrt(n)
    sign = 1 if direction == "greater" else -1
    rates = simulate(n, sign * 2 * margin, direction, margin)
    assert rates[HOLDS] >= 0.80 and rates[FAILS] == 0.0, rates
    assert simulate(n, sign * 2.5 * margin, direction, margin)[HOLDS] >= 0.9


@pytest.mark.parametrize("n", SEEDS)
def test_smallest_detectable_effect_has_80_percent_power(n):
    """At the effect ``compare`` reports as detectable (from the true spread), the claim holds 80% of the time."""
    se = 1 / math.sqrt(n)
    detectable = 0.3 + power_shift(n) * se
    assert simulate(n, detectable, "greater", 0.3)[HOLDS] == pytest.approx(0.80, abs=0.025)
    # compare() reports it from the observed spread
    values = [0.0, 1.0, 2.0][: min(n, 3)]
    c = compare("x", values, "greater", 0.3)
    observed = np.std(values, ddof=1) / math.sqrt(len(values))
    assert c.detectable == pytest.approx(0.3 + power_shift(len(values)) * observed)
    assert "smallest effect this size could detect" in c.describe()


@pytest.mark.parametrize("n", SEEDS)
def test_equivalence_claims(n):
    """"Comparable" (within a margin): at the margin's edge it holds at most 5% of the time; with no
    difference it is refuted at most 5% of the time; twice the margin away it is refuted mostly."""
    margin = 1.5 * t_quantile(n) / math.sqrt(n)
    assert simulate(n, margin, "within", margin)[HOLDS] <= 0.05
    assert simulate(n, -margin, "within", margin)[HOLDS] <= 0.05
    none = simulate(n, 0.0, "within", margin)
    assert none[FAILS] <= 0.05 and none[HOLDS] >= 0.5, none
    assert simulate(n, 3 * margin, "within", margin)[FAILS] >= 0.8


def test_non_inferiority_with_a_negative_margin():
    """"As fast as" (no worse than a tolerance): greater than -m; at the tolerance it holds at most 5%."""
    assert simulate(3, -3.0, "greater", -3.0)[HOLDS] <= 0.05
    assert rule("greater", -1.0, -0.5, 2.0) == HOLDS and rule("greater", -1.0, -3.0, -1.5) == FAILS
    assert rule("greater", -1.0, -1.5, 0.5) == OPEN


def test_rule_on_intervals():
    assert rule("greater", 0.5, 0.6, 2.0) == HOLDS and rule("greater", 0.5, 0.4, 2.0) == OPEN
    assert rule("greater", 0.5, -2.0, -0.1) == FAILS and rule("greater", 0.5, -2.0, 0.1) == OPEN
    assert rule("less", 0.5, -2.0, -0.6) == HOLDS and rule("less", 0.5, 0.1, 1.0) == FAILS
    assert rule("within", 0.5, -0.4, 0.4) == HOLDS and rule("within", 0.5, 0.6, 0.9) == FAILS
    assert rule("within", 0.5, -0.6, 0.4) == OPEN
    assert rule("greater", 0.0, math.nan, math.nan) == OPEN and rule("greater", 0.0, None, None) == OPEN
    with pytest.raises(ValueError, match="direction 'up': expected one of greater, less, within"):
        rule("up", 0.0, 0.0, 1.0)


def test_comparisons_and_claims():
    # paired over the seeds both sides have; an exact (deterministic) value is its own interval
    c = paired("a - b", {0: 0.97, 1: 0.971, 2: 0.969, 3: 0.5}, {0: 0.95, 1: 0.95, 2: 0.95}, "greater", 0.0, unit="points")
    assert c.n == 3 and c.estimate == pytest.approx(0.02) and c.outcome == HOLDS
    assert c.as_dict()["low"] == pytest.approx(0.02 - t_quantile(3) * np.std([0.02, 0.021, 0.019], ddof=1) / math.sqrt(3))
    assert c.describe().startswith("a - b: +2 points, 95% interval [+")
    one = compare("x", [0.99], "greater", 0.9, exact=True)
    assert (one.low, one.high, one.outcome) == (0.99, 0.99, HOLDS)
    noisy_one = compare("x", [0.99], "greater", 0.9)
    assert noisy_one.outcome == OPEN and noisy_one.as_dict()["low"] is None
    diverged = compare("x", [0.1, math.inf, 0.2], "greater", 0.0)
    assert diverged.outcome == OPEN and diverged.as_dict()["estimate"] is None
    blocked = compare("x", [1.0, 1.1, 1.2], "greater", 0.0, untestable="no switch happened")
    assert blocked.outcome == UNTESTABLE and blocked.as_dict()["untestable"] == "no switch happened"
    assert combine([HOLDS, HOLDS]) == HOLDS and combine([HOLDS, OPEN]) == OPEN and combine([]) == OPEN
    assert combine([HOLDS, UNTESTABLE, OPEN]) == UNTESTABLE and combine([UNTESTABLE, FAILS]) == FAILS
    # a verdict: only the deciding comparisons count; the JSON lists them all
    reported = compare("y", [-1.0, -1.1, -1.2], "greater", 0.0, decides=False)
    v = Verdict.of([c, reported], "More.")
    assert v.outcome == HOLDS and v.because.endswith("reported, not decisive. More.")
    assert [d["outcome"] for d in v.as_dict()["comparisons"]] == [HOLDS, FAILS]
