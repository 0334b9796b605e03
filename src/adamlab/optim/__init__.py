"""Adam-family optimizers as drop-in :class:`torch.optim.Optimizer` subclasses.

Every class shares :class:`~adamlab.optim._base.RuleOptimizer`: the algorithm's math is one rule of
plain torch ops (see each module), run by the reference engine tensor by tensor.
"""

from .adam import Adam, AdamW
from .adamax import Adamax
from .nadam import NAdam
from .radam import RAdam

__all__ = ["Adam", "AdamW", "Adamax", "NAdam", "RAdam"]
