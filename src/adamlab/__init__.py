"""adamlab: the Adam family of optimizers, exact and fast, and a lab to compare them.

``import adamlab`` imports nothing heavy: the optimizer classes, :func:`create` and
:func:`available` load ``adamlab.optim`` (and so torch) on first use, and the lab's dependencies
load where they are used. So ``adamlab run`` can tell that a sweep has nothing left to do without
importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_OPTIM = ("AdaBelief", "AdaBound", "Adam", "AdamAL", "AdamW", "Adamax", "MAdam", "NAdam", "NDAdam", "Padam", "RAdam", "SWATS")
_REGISTRY = ("available", "create")

__all__ = [*_OPTIM, *_REGISTRY, "optim", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _OPTIM:
        value = getattr(importlib.import_module(".optim", __name__), name)
    elif name in _REGISTRY:
        value = getattr(importlib.import_module(".optim.registry", __name__), name)
    elif name == "optim":
        value = importlib.import_module(".optim", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
