"""adamlab: the Adam family of optimizers, exact and fast, and a lab to compare them.

``import adamlab`` imports only torch and numpy; the lab's dependencies load where they are used.
"""

from . import optim
from .optim import SWATS, AdaBelief, AdaBound, Adam, AdamAL, Adamax, AdamW, MAdam, NAdam, NDAdam, Padam, RAdam
from .optim.registry import available, create

__version__ = "0.1.0"

__all__ = [
    "AdaBelief",
    "AdaBound",
    "Adam",
    "AdamAL",
    "AdamW",
    "Adamax",
    "MAdam",
    "NAdam",
    "NDAdam",
    "Padam",
    "RAdam",
    "SWATS",
    "available",
    "create",
    "optim",
    "__version__",
]
