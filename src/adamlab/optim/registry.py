"""Optimizers by name: ``create(name, params, **hp)`` and ``available()``.

Each entry maps a public name to a class, the keywords the name fixes (``amsgrad``
is ``Adam(amsgrad=True)``), and a one-line reference shown by ``adamlab list``.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from . import SWATS, AdaBelief, AdaBound, Adam, AdamAL, Adamax, AdamW, MAdam, NAdam, NDAdam, Padam, RAdam
from . import _checks
from ._base import RuleOptimizer


@dataclass(frozen=True)
class Entry:
    cls: type[torch.optim.Optimizer]
    reference: str
    fixed: dict[str, Any] = field(default_factory=dict)

    def keywords(self) -> list[str]:
        """The keywords a user may pass for this name (the class's, less those the name fixes)."""
        params = inspect.signature(self.cls.__init__).parameters
        skip = {"self", "params"} | set(self.fixed)
        return [n for n, p in params.items() if n not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


REGISTRY: dict[str, Entry] = {
    "adam": Entry(Adam, "Kingma & Ba 2015, Adam: A Method for Stochastic Optimization; torch.optim.Adam numerics"),
    "adamw": Entry(AdamW, "Loshchilov & Hutter 2019, Decoupled Weight Decay Regularization; torch.optim.AdamW numerics"),
    "amsgrad": Entry(Adam, "Reddi et al. 2018, On the Convergence of Adam and Beyond; max over raw v as torch.optim", {"amsgrad": True}),
    "adamax": Entry(Adamax, "Kingma & Ba 2015, Adam: A Method for Stochastic Optimization, section 7.1; torch.optim.Adamax numerics"),
    "nadam": Entry(NAdam, "Dozat 2016, Incorporating Nesterov Momentum into Adam; torch.optim.NAdam numerics, momentum_decay 4e-3"),
    "radam": Entry(RAdam, "Liu et al. 2020, On the Variance of the Adaptive Learning Rate and Beyond; torch.optim.RAdam numerics, rectify when rho_t > 5"),
    "madam": Entry(MAdam, "Miao 2020, MAdam: Modify Second Momentum Estimation in Adam; RAdam update by default (torch.optim.RAdam numerics), eps 1e-16, beta3 0.9"),
    "adamal": Entry(AdamAL, "A New Perspective in Understanding of Adam-Type Algorithms and Beyond (2019), Algorithm 1 with beta2; Adam update with torch.optim.Adam numerics"),
    "adabelief": Entry(AdaBelief, "Zhuang et al. 2020, AdaBelief Optimizer; adabelief-pytorch 0.2.1 numerics, rectify=False, decoupled decay"),
    "adabound": Entry(AdaBound, "Luo et al. 2019, Adaptive Gradient Methods with Dynamic Bound of Learning Rate; adabound 0.0.5 numerics, final_lr scaled by lr/base_lr"),
    "amsbound": Entry(AdaBound, "Luo et al. 2019, AMSBound; adabound 0.0.5 numerics", {"amsbound": True}),
    "padam": Entry(Padam, "Chen & Gu 2018, Closing the Generalization Gap of Adaptive Gradient Methods; authors' code: AMSGrad max, lr*sqrt(bc2)/bc1*m/(sqrt(vmax)+eps)^(2p)"),
    "swats": Entry(SWATS, "Keskar & Socher 2017, Improving Generalization Performance by Switching from Adam to SGD, Algorithm 1, switching per tensor, eps 1e-9"),
    "ndadam": Entry(NDAdam, "Zhang et al. 2017, Normalized Direction-preserving Adam; authors' PyTorch numerics, rows of reshape(shape[0], -1)"),
    "sgd": Entry(torch.optim.SGD, "torch.optim.SGD baseline (momentum, nesterov as torch)"),
    "rmsprop": Entry(torch.optim.RMSprop, "torch.optim.RMSprop baseline (Hinton et al.)"),
    "adagrad": Entry(torch.optim.Adagrad, "torch.optim.Adagrad baseline (Duchi et al. 2011)"),
}


def available() -> list[str]:
    """The sorted names :func:`create` accepts."""
    return sorted(REGISTRY)


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.5)
    return f" Did you mean {' or '.join(map(repr, close))}?" if close else ""


def entry(name: str) -> Entry:
    """The registry entry for ``name``; a ValueError lists the names and suggests the closest."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        hint = _did_you_mean(str(name).lower(), available())
        raise ValueError(f"unknown optimizer {name!r}.{hint} Available: {', '.join(available())}") from None


def _entry_for(name: str, hyperparameters: dict[str, Any]) -> Entry:
    """The entry for ``name``, after refusing unknown names and unknown or fixed keywords."""
    e = entry(name)
    allowed = e.keywords()
    for key in hyperparameters:
        if key in e.fixed:
            raise ValueError(f"{name!r} fixes {key}={e.fixed[key]!r}; use the {e.cls.__name__} class to set it")
        if key not in allowed:
            hint = _did_you_mean(key, allowed)
            raise ValueError(f"unknown keyword {key!r} for optimizer {name!r}.{hint} Accepted: {', '.join(allowed)}")
    return e


def _check_baseline_types(e: Entry, hyperparameters: dict[str, Any]) -> None:
    """For torch's baselines, adamlab's rule for the types of hyperparameters (:mod:`._checks`): a
    keyword whose default is a number takes a real number, one whose default is a bool takes a bool,
    with a ValueError naming it (torch.optim compares first, and its TypeError names no parameter)."""
    params = inspect.signature(e.cls.__init__).parameters
    for key, value in hyperparameters.items():
        default = params[key].default if key in params else None
        try:
            if isinstance(default, bool):
                _checks.flag(key, value)
            elif isinstance(default, (int, float)):
                _checks.REAL(key, value)
        except ValueError as err:
            raise ValueError(f"{e.cls.__name__}: {err}") from None


def check(name: str, **hyperparameters: Any) -> None:
    """Raise the ``ValueError`` that :func:`create` would raise for these arguments, building nothing.

    For adamlab's optimizers the values go through the class's checks (fast: no optimizer, no
    torch.optim machinery); torch's baselines are built over a dummy param, their only validation
    besides the type of each value.
    """
    e = _entry_for(name, hyperparameters)
    if issubclass(e.cls, RuleOptimizer):
        e.cls.check_hyperparameters(hyperparameters)
    else:
        _check_baseline_types(e, hyperparameters)
        e.cls([torch.zeros(1, requires_grad=True)], **e.fixed, **hyperparameters)


def create(name: str, params: Iterable[Any], **hyperparameters: Any) -> torch.optim.Optimizer:
    """Build the optimizer registered as ``name`` over ``params`` with the given hyperparameters.

    ``create("amsgrad", ps, lr=1e-3)`` is ``Adam(ps, lr=1e-3, amsgrad=True)``. Unknown names and
    unknown or fixed keywords raise ``ValueError`` before anything is built.
    """
    e = _entry_for(name, hyperparameters)
    if not issubclass(e.cls, RuleOptimizer):
        _check_baseline_types(e, hyperparameters)
    return e.cls(params, **e.fixed, **hyperparameters)
