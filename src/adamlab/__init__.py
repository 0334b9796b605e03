"""adamlab: the Adam family of optimizers, exact and fast, and a lab to compare them.

``import adamlab`` imports only torch and numpy; the lab's dependencies load where they are used.
"""

from . import optim
from .optim import Adam, Adamax, AdamW, NAdam, RAdam
from .optim.registry import available, create

__version__ = "0.1.0"

__all__ = ["Adam", "AdamW", "Adamax", "NAdam", "RAdam", "available", "create", "optim", "__version__"]
