"""Hyperparameter schedules from the papers, for any adamlab or torch.optim optimizer.

- :func:`madam_beta3` -- MAdam's rescaling of :math:`\\beta_3` for a new learning rate (Miao 2020).
- :func:`normalized_weight_decay` -- normalized weight decay (Loshchilov & Hutter 2019).
- :class:`CosineWarmRestarts` -- warm restarts (AdamWR / SGDR, Loshchilov & Hutter): cosine annealing with
  restarts and a period multiplier, the multiplier applied to the learning rate (and optionally the
  weight decay) of every param group.
- :class:`PartialExponentDecay` -- the decaying exponent of :math:`v` for Padam (the blog post
  *Adaptive exponent for ADAM*), from 1/2 toward a floor, linear or exponential.

The schedulers only read and write ``optimizer.param_groups`` (plain Python numbers), so they work
with any optimizer. Like torch's LR schedulers, a scheduler writes the value for step 0 when
it is built, and each :meth:`step` call (after ``optimizer.step()``) advances one step; the unit of a
step (iteration or epoch) is the caller's. ``state_dict()`` / ``load_state_dict()`` save and restore
the scheduler's own state (the optimizer's state_dict already holds the values last written).
"""

from __future__ import annotations

import math
from typing import Any

from .optim import _checks

__all__ = [
    "CosineWarmRestarts",
    "PartialExponentDecay",
    "cosine_restart_multiplier",
    "madam_beta3",
    "normalized_weight_decay",
    "partial_exponent",
]


def _real(
    name: str, value: Any, low: float = 0.0, high: float = math.inf, *, low_open: bool = False, high_open: bool = True
) -> float:
    return float(_checks.real(low, high, low_open=low_open, high_open=high_open)(name, value))


def _integer(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"invalid {name}={value!r}: expected an integer >= {low}")
    return value


# -- MAdam's beta3 for a new learning rate (Miao 2020) ------------------------------------------


def madam_beta3(lr: float, base_lr: float = 1e-3, beta3: float = 0.9) -> float:
    r"""MAdam's :math:`\tilde\beta_3` for learning rate ``lr`` (Miao, *MAdam: Modify Second Momentum
    Estimation in Adam*, 2020, section 2.2).

    .. math::
        \tilde\beta_3 = \begin{cases} \beta_3 & \tfrac12 \le \tilde\alpha/\alpha < 2 \\
            2\,(\tilde\alpha/\alpha)\,\beta_3 & \text{otherwise} \end{cases}

    with :math:`\alpha` = ``base_lr`` and :math:`\beta_3` = ``beta3`` the defaults (1e-3, 0.9).
    The paper's Figure 1 lists :math:`\tilde\beta_3 = 5.4, 0.9, 0.6, 0.18`: the rule gives 5.4 at
    ``lr=3e-3`` (:math:`2\cdot3\cdot0.9`), 0.9 at 1e-3, 0.18 at 1e-4 (:math:`2\cdot0.1\cdot0.9`), and
    0.6 at ``lr=1e-3/3`` (at 3e-4 it gives 0.54). The rule is continuous at ratio 1/2 but jumps at
    ratio 2 (0.9 just below, 3.6 at 2); it is used as written.
    The result is computed in floating point: ``madam_beta3(3e-3)`` is 5.4 to rounding.
    """
    lr = _real("lr", lr, 0.0, low_open=True)
    base_lr = _real("base_lr", base_lr, 0.0, low_open=True)
    beta3 = _real("beta3", beta3, 0.0)
    ratio = lr / base_lr
    return beta3 if 0.5 <= ratio < 2 else 2 * ratio * beta3


# -- normalized weight decay (Loshchilov & Hutter 2019) -----------------------------------------


def normalized_weight_decay(wd_norm: float, batch_size: int, n_train: int, epochs: float, *, lr: float | None = None) -> float:
    r"""Normalized weight decay :math:`\lambda = \lambda_{norm}\sqrt{b / (B\,T)}`.

    Reference: Loshchilov & Hutter, *Decoupled Weight Decay Regularization* (ICLR 2019).

    ``batch_size`` is :math:`b`, ``n_train`` the number of training points :math:`B` (per epoch),
    ``epochs`` the total number of epochs :math:`T` (for warm restarts, Loshchilov & Hutter use the
    epochs of the current run or period). :math:`\lambda` is the paper's decay: the fraction
    :math:`\eta_t\lambda` of the weights removed per step, not multiplied by the learning rate.

    ``torch.optim.AdamW`` and :class:`adamlab.optim.AdamW` multiply the decay by the learning rate
    (``p *= 1 - lr * weight_decay``). For them pass the base learning rate as ``lr``: the function
    then returns :math:`\lambda / \alpha`, the ``weight_decay`` that removes :math:`\lambda` per step.
    """
    wd_norm = _real("wd_norm", wd_norm, 0.0)
    batch_size = _real("batch_size", batch_size, 0.0, low_open=True)
    n_train = _real("n_train", n_train, 0.0, low_open=True)
    epochs = _real("epochs", epochs, 0.0, low_open=True)
    wd = wd_norm * math.sqrt(batch_size / (n_train * epochs))
    if lr is not None:
        wd = wd / _real("lr", lr, 0.0, low_open=True)
    return wd


# -- schedulers --------------------------------------------------------------------------------


def _write(group: dict[str, Any], key: str, value: float) -> None:
    """Set a group hyperparameter, in place when it is a tensor (as torch's LR schedulers do)."""
    current = group.get(key)
    if hasattr(current, "fill_"):
        current.fill_(value)
    else:
        group[key] = value


class _GroupScheduler:
    """Shared mechanics: step counting, applying values to every param group, state_dict."""

    def __init__(self, optimizer: Any) -> None:
        if not hasattr(optimizer, "param_groups"):
            raise ValueError(f"invalid optimizer={optimizer!r}: expected an object with param_groups (a torch.optim.Optimizer)")
        self.optimizer = optimizer
        self.last_step = 0

    def _apply(self) -> None:
        raise NotImplementedError

    def step(self) -> None:
        """Advance one step and write the new values into every param group."""
        self.last_step += 1
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state (its settings, base values and ``last_step``); not the optimizer."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`. The optimizer is not written (its own state_dict holds the values)."""
        unknown = set(state_dict) - set(self.__dict__)
        if unknown:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: unknown keys {sorted(unknown)}: the state_dict comes from another scheduler"
            )
        self.__dict__.update({k: (list(v) if isinstance(v, list) else v) for k, v in state_dict.items()})


def cosine_restart_multiplier(step: int, T_0: int, T_mult: int = 1, eta_min: float = 0.0) -> float:
    r"""The warm-restart multiplier :math:`\eta_t` after ``step`` steps (SGDR / AdamWR).

    Reference: Loshchilov & Hutter, *SGDR: Stochastic Gradient Descent with Warm Restarts* (ICLR 2017).

    .. math::
        \eta_t = \eta_{min} + \tfrac12 (1 - \eta_{min}) \left(1 + \cos(\pi\, T_{cur} / T_i)\right)

    where the run is cut into periods :math:`T_i = T_0 T_{mult}^i` and :math:`T_{cur}` counts the
    steps since the last restart (0 at every restart, where :math:`\eta_t = 1`). With ``T_0=10,
    T_mult=2`` restarts happen at steps 10, 30, 70, 150, ...
    """
    t, period = step, T_0
    if T_mult == 1:
        t %= T_0
    else:
        while t >= period:
            t -= period
            period *= T_mult
    return eta_min + (1 - eta_min) * 0.5 * (1 + math.cos(math.pi * t / period))


class CosineWarmRestarts(_GroupScheduler):
    r"""Cosine annealing with warm restarts on the learning rate (and optionally weight decay) of every group.

    At step :math:`t` every group gets ``lr = eta_t * initial_lr`` (and ``weight_decay``, see below)
    with :math:`\eta_t` from :func:`cosine_restart_multiplier`: periods :math:`T_0, T_0T_{mult},
    T_0T_{mult}^2, \dots`; within a period :math:`\eta` falls from 1 to ``eta_min`` along a half
    cosine; at each restart it is 1 again.

    Reference: Loshchilov & Hutter, AdamWR in *Decoupled Weight Decay Regularization* (ICLR 2019),
    after their SGDR: the schedule multiplier :math:`\eta_t`
    scales the whole step, :math:`\theta_t = \theta_{t-1} - \eta_t(\alpha\,\hat m_t/(\sqrt{\hat v_t}
    + \epsilon) + \lambda\theta_{t-1})`, so the learning rate *and* the decoupled decay both follow
    :math:`\eta_t`.

    How the decay follows :math:`\eta_t` depends on how the optimizer writes it:

    - ``torch.optim.AdamW``, :class:`adamlab.optim.AdamW` (and every L2 ``weight_decay``) apply
      ``lr * weight_decay`` per step, so scaling ``lr`` already scales the decay by :math:`\eta_t`.
      This is the default (``scale_weight_decay=False``): ``weight_decay`` is rewritten with its
      initial value and the decay per step is :math:`\eta_t\,\alpha\,\text{weight\_decay}`, the
      paper's :math:`\eta_t\lambda` with :math:`\lambda = \alpha\cdot\text{weight\_decay}`.
      Scaling both would apply :math:`\eta_t^2`.
    - For an optimizer whose decay is not multiplied by the learning rate (the paper's own form,
      ``p -= weight_decay * p``), pass ``scale_weight_decay=True``: ``weight_decay = eta_t *
      initial_weight_decay``.

    Groups without a ``weight_decay`` key are left without one. ``eta_min`` is the floor of the
    *multiplier* (a fraction of the initial values, in [0, 1]), not an absolute learning rate as in
    ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts``; with ``scale_weight_decay=False`` and
    a torch optimizer the learning rates equal that class's with ``eta_min * initial_lr``.
    Steps are integers (call :meth:`step` per iteration with periods in iterations, or per epoch).

    Args:
        optimizer: any optimizer with ``param_groups``.
        T_0: length of the first period, an integer >= 1.
        T_mult: period multiplier, an integer >= 1.
        eta_min: the multiplier's floor in [0, 1].
        scale_weight_decay: also multiply ``weight_decay`` by :math:`\eta_t` (see above).
    """

    def __init__(
        self, optimizer: Any, T_0: int, T_mult: int = 1, eta_min: float = 0.0, *, scale_weight_decay: bool = False
    ) -> None:
        super().__init__(optimizer)
        self.T_0 = _integer("T_0", T_0, 1)
        self.T_mult = _integer("T_mult", T_mult, 1)
        self.eta_min = _real("eta_min", eta_min, 0.0, 1.0, high_open=False)
        if not isinstance(scale_weight_decay, bool):
            raise ValueError(f"invalid scale_weight_decay={scale_weight_decay!r}: expected True or False")
        self.scale_weight_decay = scale_weight_decay
        self.base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        self.base_weight_decays = [float(g["weight_decay"]) if "weight_decay" in g else None for g in optimizer.param_groups]
        self.last_multiplier = 1.0
        self._apply()

    def _apply(self) -> None:
        eta = cosine_restart_multiplier(self.last_step, self.T_0, self.T_mult, self.eta_min)
        self.last_multiplier = eta
        for group, lr, wd in zip(self.optimizer.param_groups, self.base_lrs, self.base_weight_decays):
            _write(group, "lr", eta * lr)
            if wd is not None:
                _write(group, "weight_decay", eta * wd if self.scale_weight_decay else wd)

    def get_last_lr(self) -> list[float]:
        """The learning rates last written, one per group (as torch's schedulers)."""
        return [self.last_multiplier * lr for lr in self.base_lrs]


def partial_exponent(
    step: int, *, start: float = 0.5, end: float = 0.125, total_steps: int | None = None, gamma: float | None = None
) -> float:
    r"""The decaying exponent of :math:`v` after ``step`` steps (see :class:`PartialExponentDecay`).

    Linear (``total_steps`` given): :math:`p_t = p_0 + (p_{end} - p_0)\,\min(t, T)/T`, reaching
    the floor at step :math:`T` and staying there. Exponential (``gamma`` given):
    :math:`p_t = p_{end} + (p_0 - p_{end})\,\gamma^t`, approaching the floor geometrically.
    """
    if total_steps is not None:
        return start + (end - start) * min(step, total_steps) / total_steps
    return end + (start - end) * gamma**step


class PartialExponentDecay(_GroupScheduler):
    r"""A decaying exponent: Padam's ``partial`` from 1/2 toward a floor over training.

    The blog post *Adaptive exponent for ADAM* (author not named) proposes to "begin with an exponent of 0.5 and decay to
    some smaller exponent such as 0 using some decay rule" (its experiments decay "at a constant
    rate"), so that training starts as Adam (AMSGrad in Padam's form) and ends close to SGD with
    momentum. The post gives no formula; two are offered (see :func:`partial_exponent`):

    - ``mode="linear"`` (the post's "constant rate"):
      :math:`p_t = p_0 + (p_{end} - p_0)\min(t, T)/T` with ``total_steps`` :math:`T`;
    - ``mode="exponential"``: :math:`p_t = p_{end} + (p_0 - p_{end})\gamma^t`, ``gamma`` in (0, 1).

    Each step writes :math:`p_t` into ``group["partial"]`` (or ``group[key]``) of every param group;
    :class:`adamlab.optim.Padam` reads it at its next step. ``start`` and ``end`` must lie in Padam's
    range (0, 1/2] with ``end <= start``: the post's floor of exactly 0 is outside it (and a group
    holding 0 would fail to load from a checkpoint), so use a small positive floor to approach SGD
    with momentum. The default floor 1/8 is the exponent the Padam authors use in their experiments.
    Works with any optimizer whose groups hold the key (the Padam authors' own class too); a
    ``ValueError`` is raised when a group lacks it, rather than scheduling nothing.

    Args:
        optimizer: an optimizer whose param groups hold ``key``.
        total_steps: :math:`T` for the linear form (an integer >= 1).
        start: :math:`p_0` (default 1/2).
        end: the floor :math:`p_{end}` (default 1/8).
        mode: ``"linear"`` or ``"exponential"``.
        gamma: the exponential form's rate in (0, 1).
        key: the group hyperparameter to write (default ``"partial"``).
    """

    def __init__(
        self,
        optimizer: Any,
        total_steps: int | None = None,
        *,
        start: float = 0.5,
        end: float = 0.125,
        mode: str = "linear",
        gamma: float | None = None,
        key: str = "partial",
    ) -> None:
        super().__init__(optimizer)
        self.start = _real("start", start, 0.0, 0.5, low_open=True, high_open=False)
        self.end = _real("end", end, 0.0, self.start, low_open=True, high_open=False)
        if mode == "linear":
            self.total_steps = _integer("total_steps", total_steps, 1)
            if gamma is not None:
                raise ValueError(f"invalid gamma={gamma!r}: mode='linear' takes total_steps, not gamma")
            self.gamma = None
        elif mode == "exponential":
            self.gamma = _real("gamma", gamma, 0.0, 1.0, low_open=True)
            if total_steps is not None:
                raise ValueError(f"invalid total_steps={total_steps!r}: mode='exponential' takes gamma, not total_steps")
            self.total_steps = None
        else:
            raise ValueError(f"invalid mode={mode!r}: expected 'linear' or 'exponential'")
        self.mode = mode
        for i, group in enumerate(optimizer.param_groups):
            if key not in group:
                raise ValueError(
                    f"invalid key={key!r}: param group {i} of {type(optimizer).__name__} has no such hyperparameter "
                    f"(it has {sorted(k for k in group if k != 'params')})"
                )
        self.key = key
        self.last_value = self.start
        self._apply()

    def _apply(self) -> None:
        value = partial_exponent(self.last_step, start=self.start, end=self.end, total_steps=self.total_steps, gamma=self.gamma)
        self.last_value = value
        for group in self.optimizer.param_groups:
            _write(group, self.key, value)
