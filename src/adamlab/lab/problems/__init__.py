"""Problems by name: ``available_problems()``, ``get_problem(name, **options)``.

The protocol a problem follows is documented in :mod:`adamlab.lab.problems.base`. Built-in
problems live one family per module (``online``: Reddi's counterexample; ``surfaces``: 2-D test
functions; ``logreg``: logistic regression; ``mlp``: the multilayer perceptron; ``generative``: the
GAN and the VAE; ``cnn``: the CIFAR-10 CNN) and are registered
here by name. A name of the form ``"package.module:factory"`` is a user problem: the factory is
called with the options and must return an object of the protocol.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from typing import Any

from ..errors import LabError
from .base import Problem, Target, Trial, check_problem

# name -> (module, class). Modules are imported when a problem is asked for (they import only torch;
# scikit-learn loads when a dataset does).
_BUILTIN: dict[str, tuple[str, str]] = {
    "reddi": ("online", "Reddi"),
    "rosenbrock": ("surfaces", "Rosenbrock"),
    "beale": ("surfaces", "Beale"),
    "quadratic": ("surfaces", "Quadratic"),
    "logreg-digits": ("logreg", "LogRegDigits"),
    "logreg-sparse": ("logreg", "LogRegSparse"),
    "mlp-digits": ("mlp", "MLPDigits"),
    "gan-digits": ("generative", "GANDigits"),
    "vae-digits": ("generative", "VAEDigits"),
    "cnn-cifar10": ("cnn", "CNNCifar10"),
}


def available_problems() -> list[str]:
    """The sorted names of the built-in problems."""
    return sorted(_BUILTIN)


def problem_class(name: str) -> type[Problem]:
    """The class of a built-in problem; LabError lists the names for an unknown one."""
    if name not in _BUILTIN:
        close = difflib.get_close_matches(str(name), list(_BUILTIN), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise LabError(
            f"unknown problem {name!r}.{hint} Available: {', '.join(available_problems())}; "
            "or name a user problem as 'package.module:factory'"
        )
    module, cls = _BUILTIN[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def get_problem(name: str, **options: Any) -> Any:
    """The problem ``name`` with ``options``; unknown names or options raise :class:`LabError`."""
    if ":" in name:
        return _user_problem(name, options)
    cls = problem_class(name)
    fields = [f.name for f in dataclasses.fields(cls)]
    for key in options:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            accepted = ", ".join(fields) if fields else "none"
            raise LabError(f"unknown option {key!r} for problem {name!r}.{hint} Accepted: {accepted}")
    try:
        return cls(**options)
    except (TypeError, ValueError) as err:
        raise LabError(f"problem {name!r}: {err}") from None


def _user_problem(spec: str, options: dict[str, Any]) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise LabError(f"user problem {spec!r}: expected 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise LabError(f"user problem {spec!r}: cannot import {module_name!r} ({err}); is it on PYTHONPATH?") from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise LabError(f"user problem {spec!r}: {module_name!r} has no callable {attr!r}")
    try:
        problem = factory(**options)
        check_problem(problem, spec)
    except (TypeError, ValueError) as err:
        raise LabError(f"user problem {spec!r}: {err}") from None
    return problem


def problem_options(problem: Any, given: dict[str, Any]) -> dict[str, Any]:
    """The options that identify ``problem``: its own ``options()`` when it has one, else ``given``."""
    get = getattr(problem, "options", None)
    return dict(get()) if callable(get) else dict(given)


def describe_problems() -> list[tuple[str, str]]:
    """``(name, description)`` of every built-in problem, sorted by name."""
    return [(name, problem_class(name).description) for name in available_problems()]


__all__ = [
    "Problem",
    "Target",
    "Trial",
    "available_problems",
    "describe_problems",
    "get_problem",
    "problem_class",
    "problem_options",
]
