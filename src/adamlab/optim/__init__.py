"""Adam-family optimizers as drop-in :class:`torch.optim.Optimizer` subclasses.

Every class shares :class:`~adamlab.optim._base.RuleOptimizer`: the algorithm's math is one rule of
plain torch ops (see each module), run by the packed engine (flat buffers, compiled) or the reference engine (tensor by tensor).
"""

from .adabelief import AdaBelief
from .adabound import AdaBound
from .adam import Adam, AdamW
from .adamal import AdamAL
from .adamax import Adamax
from .madam import MAdam
from .nadam import NAdam
from .ndadam import NDAdam
from .padam import Padam
from .radam import RAdam
from .swats import SWATS

__all__ = ["AdaBelief", "AdaBound", "Adam", "AdamAL", "AdamW", "Adamax", "MAdam", "NAdam", "NDAdam", "Padam", "RAdam", "SWATS"]
