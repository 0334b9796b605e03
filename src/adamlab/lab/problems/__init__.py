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
import os
import traceback
import types
import typing
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
    hints = _option_types(cls)
    for key, value in options.items():
        if key in hints and not _matches(value, hints[key]):
            raise LabError(f"problem {name!r}: option {key}={value!r}: expected {_type_name(hints[key])}")
    try:
        return cls(**options)
    except (TypeError, ValueError) as err:
        raise LabError(f"problem {name!r}: {err}") from None


def _option_types(cls: type) -> dict[str, Any]:
    """The annotated types of a problem class's options (none where an annotation does not resolve)."""
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation naming what the module does not import: no type checks
        return {}


def _matches(value: Any, hint: Any) -> bool:
    """Whether an option value (from TOML or Python) fits an annotation: ``int``, ``float`` (an int
    too), ``str``, ``bool``, ``None``, unions, ``tuple[...]``/``list[...]`` (a TOML list for either);
    any other annotation accepts anything."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
        return all(_matches(v, args[0]) for v in value) if args else True
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (str, bool):
        return isinstance(value, hint)
    return True


def _type_name(hint: Any) -> str:
    """What an annotation accepts, in words (for the error :func:`_matches` leads to)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin in (tuple, list):
        numbers = args and all(a in (int, float) for a in args if a is not Ellipsis)
        count = f"{len(args)} " if origin is tuple and args and args[-1] is not Ellipsis else ""
        return f"a list of {count}{'numbers' if numbers else 'values'}"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "none (leave it out)"}
    return names.get(hint, str(hint))


def _user_problem(spec: str, options: dict[str, Any]) -> Any:
    """The user problem ``spec`` (``package.module:factory``) built with ``options``. Whatever its code
    raises (an ImportError, a SyntaxError, an exception at import or in the factory) is a LabError:
    one line naming the problem, the exception and where it was raised."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise LabError(f"user problem {spec!r}: expected 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise LabError(f"user problem {spec!r}: cannot import {module_name!r} ({err}); is it on PYTHONPATH?") from None
    except Exception as err:  # the user's module failed: one line, not their traceback
        raise LabError(f"user problem {spec!r}: importing {module_name!r} raised {_described(err)}") from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise LabError(f"user problem {spec!r}: {module_name!r} has no callable {attr!r}")
    try:
        problem = factory(**options)
        check_problem(problem, spec)
    except (TypeError, ValueError) as err:
        raise LabError(f"user problem {spec!r}: {err}") from None
    except Exception as err:
        raise LabError(f"user problem {spec!r}: {attr}(...) raised {_described(err)}") from None
    return problem


def _described(err: BaseException) -> str:
    """``SyntaxError: invalid syntax (bad.py, line 3)`` or ``RuntimeError: no GPU (bad.py, line 7)``:
    the exception and the last frame of the user's code it came from."""
    if isinstance(err, SyntaxError):
        return f"SyntaxError: {err.msg} ({err.filename}, line {err.lineno})"
    frames = traceback.extract_tb(err.__traceback__)
    where = f" ({os.path.basename(frames[-1].filename)}, line {frames[-1].lineno})" if frames else ""
    return f"{type(err).__name__}: {err}{where}"


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
