"""Hyperparameter validation: each check names the parameter, the value given and the range accepted.

A check is a callable ``check(name, value) -> value`` that raises :class:`ValueError` when the value
is outside its range. Optimizers declare a ``{name: check}`` table; the base class runs it on the
defaults, on every param group added later and on every param group of a loaded state_dict, always
before any state is touched.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

Check = Callable[[str, Any], Any]


def _fail(name: str, value: Any, accepted: str) -> ValueError:
    return ValueError(f"invalid {name}={value!r}: expected {accepted}")


def _as_float(name: str, value: Any, accepted: str) -> float:
    if isinstance(value, bool):
        raise _fail(name, value, accepted)
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise _fail(name, value, accepted + " (a tensor must hold exactly one element)")
        value = value.item()
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise _fail(name, value, accepted) from None
    if math.isnan(out):
        raise _fail(name, value, accepted)
    return out


def real(low: float = 0.0, high: float = math.inf, *, low_open: bool = False, high_open: bool = True) -> Check:
    """A real number in the interval from ``low`` to ``high`` (closed at ``low`` unless ``low_open``)."""
    accepted = "a real number in " + ("(" if low_open else "[") + f"{low:g}, {high:g}" + (")" if high_open else "]")

    def check(name: str, value: Any) -> Any:
        x = _as_float(name, value, accepted)
        above = x > low if low_open else x >= low
        below = x < high if high_open else x <= high
        if not (above and below):
            raise _fail(name, value, accepted)
        return value

    check.accepted = accepted  # type: ignore[attr-defined]
    return check


def betas(count: int = 2) -> Check:
    """A tuple of ``count`` reals, each in [0, 1)."""
    accepted = f"a tuple of {count} reals, each in [0, 1)"

    def check(name: str, value: Any) -> Any:
        if not isinstance(value, (tuple, list)) or len(value) != count:
            raise _fail(name, value, accepted)
        for i, b in enumerate(value):
            x = _as_float(f"{name}[{i}]", b, "a real number in [0, 1)")
            if not 0.0 <= x < 1.0:
                raise _fail(f"{name}[{i}]", b, "a real number in [0, 1)")
        return tuple(value)

    check.accepted = accepted  # type: ignore[attr-defined]
    return check


def flag(name: str, value: Any) -> Any:
    """A bool (True or False)."""
    if not isinstance(value, bool):
        raise _fail(name, value, "True or False")
    return value


flag.accepted = "True or False"  # type: ignore[attr-defined]

NONNEGATIVE = real(0.0)
