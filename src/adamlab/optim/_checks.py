"""Hyperparameter validation: each check names the parameter, the value given and the range accepted.

A check is a callable ``check(name, value) -> value`` that raises :class:`ValueError` when the value
is not of an accepted type or outside its range, and otherwise returns the value *normalized*.
Optimizers declare a ``{name: check}`` table; the base class runs it on the defaults, on every param
group added later and on every param group of a loaded state_dict, always before any state is
touched, and stores the normalized values.

One rule for the type of a real hyperparameter: a Python ``int`` or ``float``, a NumPy integer or
floating scalar (or 0-d array), or a one-element tensor (as torch.optim accepts a tensor ``lr``). The
number is stored as a Python ``float``; a tensor is stored as given (a schedule may write into it).
Anything else, a numeric string such as ``"0.5"``, ``bool``, ``Decimal``, ``Fraction``, ``None``, is
refused: nothing is ever stored that the update would read differently or not at all. A flag is a
``bool`` (or NumPy ``bool_``, stored as ``bool``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

Check = Callable[[str, Any], Any]


def _fail(name: str, value: Any, accepted: str) -> ValueError:
    return ValueError(f"invalid {name}={value!r}: expected {accepted}")


def is_real(value: Any) -> bool:
    """A Python int/float or a NumPy integer/floating scalar or 0-d array; never a bool."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, float, np.integer, np.floating)):
        return True
    return isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf"


def _as_float(name: str, value: Any, accepted: str) -> float:
    """The value as a float for the range check; refuses every type but the real numbers above."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise _fail(name, value, accepted + " (a tensor must hold exactly one element)")
        if value.dtype == torch.bool or value.is_complex():
            raise _fail(name, value, accepted)
        out = float(value.item())
    elif is_real(value):
        out = float(value)
    else:
        raise _fail(name, value, accepted + f" (got a {type(value).__name__})")
    if math.isnan(out):
        raise _fail(name, value, accepted)
    return out


def normalized(value: Any) -> Any:
    """A real number as the engine reads it: a tensor as given, anything else as a Python float."""
    return value if isinstance(value, torch.Tensor) else float(value)


def real(low: float = 0.0, high: float = math.inf, *, low_open: bool = False, high_open: bool = True) -> Check:
    """A real number in the interval from ``low`` to ``high`` (closed at ``low`` unless ``low_open``)."""
    accepted = "a real number in " + ("(" if low_open else "[") + f"{low:g}, {high:g}" + (")" if high_open else "]")
    if (low, high) == (-math.inf, math.inf):
        accepted = "a real number"

    def check(name: str, value: Any) -> Any:
        x = _as_float(name, value, accepted)
        above = x > low if low_open else x >= low
        below = x < high if high_open else x <= high
        if not (above and below):
            raise _fail(name, value, accepted)
        return normalized(value)

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
        return tuple(normalized(b) for b in value)

    check.accepted = accepted  # type: ignore[attr-defined]
    return check


def flag(name: str, value: Any) -> Any:
    """A bool (True or False; a NumPy ``bool_`` is stored as ``bool``)."""
    if not isinstance(value, (bool, np.bool_)):
        raise _fail(name, value, "True or False")
    return bool(value)


flag.accepted = "True or False"  # type: ignore[attr-defined]

NONNEGATIVE = real(0.0)
REAL = real(-math.inf)
