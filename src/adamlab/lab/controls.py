"""Run controls: grid keys that shape a run around the optimizer instead of being passed to it.

A sweep's grid (or ``[sweep.optimizer.NAME]`` table) may hold these keys beside the optimizer's
hyperparameters. They are part of the job's config (and id) like any hyperparameter, but the runner
consumes them instead of handing them to :func:`adamlab.create`:

``schedule``
    The learning-rate schedule over the run's ``steps`` (every param group's ``lr`` is rewritten
    before each step, as a torch LR scheduler would):

    - ``"constant"`` (the default): the optimizer's ``lr`` throughout;
    - ``"cosine"``: one half cosine from ``lr`` down to 0 at the last step;
    - ``"cosine-restarts"``: Loshchilov & Hutter's warm restarts (SGDR/AdamWR,
      :class:`adamlab.schedules.CosineWarmRestarts`) with periods ``restart_period``
      (default ``steps // 7``) times ``restart_mult`` (default 2) per restart, so by default the
      third period ends at the budget;
    - ``"inv-sqrt"``: ``lr / sqrt(t)`` at step t;
    - ``"partial-decay"``: the decaying exponent of the post *Adaptive exponent for ADAM* for Padam
      (:class:`adamlab.schedules.PartialExponentDecay`, linear): ``partial`` goes from the
      optimizer's value at the first step to ``partial_end`` (default 1/8) at the last; ``lr``
      stays constant.
``restart_period``, ``restart_mult``, ``partial_end``
    The parameters of those schedules (only with the schedule that reads them).
``weight_decay_norm``
    Loshchilov & Hutter's normalized weight decay :math:`\\lambda_{norm}`: the run's ``weight_decay`` becomes
    :math:`\\lambda_{norm}\\sqrt{b/(BT)}/\\alpha = \\lambda_{norm}/(\\alpha\\sqrt{\\text{steps}})`
    (``b/(BT)`` is one over the number of steps; dividing by the base ``lr`` :math:`\\alpha` is
    for optimizers that multiply the decay by ``lr``, as AdamW does: see
    :func:`adamlab.schedules.normalized_weight_decay`). Not combined with ``weight_decay``.
``beta3_rescale``
    ``true`` or ``false`` (the default): the MAdam paper's rule for :math:`\beta_3` at another
    learning rate. With ``true`` the optimizer gets
    ``beta3 = madam_beta3(lr, base_lr=1e-3, beta3=b)`` (:func:`adamlab.schedules.madam_beta3`),
    where ``lr`` is the run's (base) learning rate (1e-3 if the grid sets none) and ``b`` the grid's
    ``beta3`` if it sets one, else 0.9: a ``beta3`` given beside the control is always the value
    at the seed's default ``lr`` 1e-3, never the value to use at this run's ``lr``. The stored
    hyperparameters keep the grid's values; the rescaled ``beta3`` is computed again from them.
    ``true`` only for optimizers that take ``beta3`` (madam).
``grad_scale``
    A number c > 0 (default 1): every gradient is multiplied by c just before each
    ``optimizer.step()`` (a step pre-hook), as if the loss were c times larger, while the stored
    losses stay unscaled. Kingma & Ba: Adam's update is invariant to such a rescaling (up to eps);
    SGD's is not.
``diagnostics``
    A list of :mod:`adamlab.diagnostics` observers to attach (off, and free, by default):

    - ``"amsgrad-swaps"`` (:class:`~adamlab.diagnostics.AMSGradSwaps`, intervals of
      ``eval_every`` steps): eval metric ``swap_fraction`` (share of coordinate-steps in the
      last interval whose max was taken over by the current v), final ``swap_fraction`` over the
      run, and one artifact ``amsgrad_swaps/<i>`` per param tensor i: swaps per coordinate per
      interval, shape ``(intervals, *param.shape)``;
    - ``"swats-switches"`` (:class:`~adamlab.diagnostics.SWATSSwitches`): final
      ``first_switch_step`` and ``switched_fraction`` (share of param tensors that switched), and
      the artifact ``swats_switch_steps`` (the step each tensor switched, -1 for never);
    - ``"effective-step"`` (:class:`~adamlab.diagnostics.EffectiveStepSize`): final
      ``max_step_ratio_to_bound`` (Kingma & Ba's bound; <= 1 for Adam) and eval metric
      ``median_step`` (median :math:`|\\Delta\\theta|` of the last step);
    - ``"update-ratio"`` (:class:`~adamlab.diagnostics.UpdateRatio`): eval metric
      ``update_ratio`` (median over param tensors of :math:`\\|\\Delta\\theta\\|/\\|\\theta\\|` at the
      last step).
"""

from __future__ import annotations

import math
from typing import Any

from .errors import LabError

SCHEDULES = ("constant", "cosine", "cosine-restarts", "inv-sqrt", "partial-decay")
DIAGNOSTICS = ("amsgrad-swaps", "swats-switches", "effective-step", "update-ratio")
KEYS = (
    "schedule",
    "restart_period",
    "restart_mult",
    "partial_end",
    "weight_decay_norm",
    "diagnostics",
    "beta3_rescale",
    "grad_scale",
)
_SCHEDULE_PARAMS = {"restart_period": "cosine-restarts", "restart_mult": "cosine-restarts", "partial_end": "partial-decay"}


def split(hp: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(optimizer hyperparameters, run controls)`` of a job's hyperparameters."""
    return {k: v for k, v in hp.items() if k not in KEYS}, {k: v for k, v in hp.items() if k in KEYS}


def _is_int(v: Any, low: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check(controls: dict[str, Any], optimizer_hp: dict[str, Any], where: str) -> None:
    """Raise LabError for a bad control value or combination (called when a sweep is expanded)."""
    schedule = controls.get("schedule", "constant")
    if schedule not in SCHEDULES:
        raise LabError(f"{where}: schedule must be one of {', '.join(SCHEDULES)}; got {schedule!r}")
    for key, needs in _SCHEDULE_PARAMS.items():
        if key in controls and schedule != needs:
            raise LabError(f"{where}: {key} is a parameter of schedule {needs!r}, but the schedule is {schedule!r}")
    for key in ("restart_period", "restart_mult"):
        if key in controls and not _is_int(controls[key], 1):
            raise LabError(f"{where}: {key} must be an integer >= 1, got {controls[key]!r}")
    if "partial_end" in controls and not (_is_real(controls["partial_end"]) and 0 < controls["partial_end"] <= 0.5):
        raise LabError(f"{where}: partial_end must be a number in (0, 0.5], got {controls['partial_end']!r}")
    if "weight_decay_norm" in controls:
        value = controls["weight_decay_norm"]
        if not (_is_real(value) and value >= 0):
            raise LabError(f"{where}: weight_decay_norm must be a number >= 0, got {value!r}")
        if "weight_decay" in optimizer_hp:
            raise LabError(f"{where}: give weight_decay or weight_decay_norm, not both")
    if "beta3_rescale" in controls and not isinstance(controls["beta3_rescale"], bool):
        raise LabError(f"{where}: beta3_rescale must be true or false, got {controls['beta3_rescale']!r}")
    if "grad_scale" in controls and not (_is_real(controls["grad_scale"]) and controls["grad_scale"] > 0):
        raise LabError(f"{where}: grad_scale must be a number > 0, got {controls['grad_scale']!r}")
    diagnostics = controls.get("diagnostics", [])
    if not isinstance(diagnostics, list) or any(d not in DIAGNOSTICS for d in diagnostics):
        raise LabError(f"{where}: diagnostics must be a list of names among {', '.join(DIAGNOSTICS)}; got {diagnostics!r}")


_DIAGNOSTIC_STATE = {
    "amsgrad-swaps": ("max_exp_avg_sq", "AMSGrad's running max"),
    "swats-switches": ("switch_step", "SWATS's switch"),
}


def check_diagnostics(controls: dict[str, Any], optimizer: str, kwargs: dict[str, Any], where: str) -> None:
    """Raise LabError where a diagnostic reads a state the optimizer does not keep (``amsgrad-swaps``
    without AMSGrad's max, ``swats-switches`` on another optimizer than SWATS): it would report
    nothing, or zeros, as if measured. Builds the optimizer over one dummy tensor to see its state."""
    needed = [d for d in controls.get("diagnostics", []) if d in _DIAGNOSTIC_STATE]
    if not needed:
        return
    import torch

    import adamlab

    p = torch.zeros(1, requires_grad=True)
    opt = adamlab.create(optimizer, [p], **kwargs)
    init_state = getattr(opt, "_init_state", None)
    keys = set(init_state(p, opt.param_groups[0])) if callable(init_state) else set()
    for name in needed:
        key, what = _DIAGNOSTIC_STATE[name]
        if key not in keys:
            raise LabError(f"{where}: diagnostic {name!r} reads {what} (state {key!r}), which {optimizer!r} does not keep here")


def resolve(optimizer_hp: dict[str, Any], controls: dict[str, Any], steps: int) -> dict[str, Any]:
    """The optimizer's keyword arguments once the controls that set hyperparameters are applied."""
    hp = dict(optimizer_hp)
    if "weight_decay_norm" in controls:
        from adamlab.schedules import normalized_weight_decay

        hp["weight_decay"] = normalized_weight_decay(controls["weight_decay_norm"], 1, steps, 1, lr=hp.get("lr", 1e-3))
    if controls.get("beta3_rescale"):
        from adamlab.schedules import madam_beta3

        hp["beta3"] = madam_beta3(hp.get("lr", 1e-3), base_lr=1e-3, beta3=hp.get("beta3", 0.9))
    return hp


class Controller:
    """What the runner does around the optimizer for one job's controls."""

    def __init__(self, optimizer: Any, controls: dict[str, Any], steps: int, eval_every: int) -> None:
        from adamlab import diagnostics, schedules

        self.optimizer = optimizer
        self.schedule = controls.get("schedule", "constant")
        self.steps = steps
        self.base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        self.scheduler: Any = None
        if self.schedule == "cosine-restarts":
            period = controls.get("restart_period", max(1, steps // 7))
            self.scheduler = schedules.CosineWarmRestarts(optimizer, T_0=period, T_mult=controls.get("restart_mult", 2))
        elif self.schedule == "partial-decay":
            self.scheduler = schedules.PartialExponentDecay(
                optimizer,
                max(1, steps - 1),
                start=float(optimizer.param_groups[0]["partial"]),
                end=controls.get("partial_end", 0.125),
            )
        scale = float(controls.get("grad_scale", 1.0))
        self.scaling = optimizer.register_step_pre_hook(_grad_scaler(scale)) if scale != 1.0 else None
        names = controls.get("diagnostics", [])
        self.swaps = diagnostics.AMSGradSwaps(interval=eval_every) if "amsgrad-swaps" in names else None
        self.switches = diagnostics.SWATSSwitches() if "swats-switches" in names else None
        self.steps_seen = diagnostics.EffectiveStepSize() if "effective-step" in names else None
        self.ratios = diagnostics.UpdateRatio() if "update-ratio" in names else None
        observers = [o for o in (self.swaps, self.switches, self.steps_seen, self.ratios) if o is not None]
        self.handle = diagnostics.attach(optimizer, *observers) if observers else None
        self._swaps_reported = 0

    def before_step(self, t: int) -> None:
        """Set the step-t hyperparameters (1-based t) before the trial's step."""
        if self.schedule == "cosine":
            factor = 0.5 * (1 + math.cos(math.pi * (t - 1) / self.steps))
        elif self.schedule == "inv-sqrt":
            factor = 1 / math.sqrt(t)
        else:
            if self.scheduler is not None and t > 1:
                self.scheduler.step()
            return
        for group, lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = lr * factor

    def eval_metrics(self) -> dict[str, float]:
        """Diagnostic values stored beside each evaluation."""
        out: dict[str, float] = {}
        if self.swaps is not None:
            recent = self.swaps.fraction[self._swaps_reported :]
            self._swaps_reported = len(self.swaps.fraction)
            if recent:
                out["swap_fraction"] = sum(recent) / len(recent)
        if self.steps_seen is not None and self.steps_seen.median_step:
            out["median_step"] = self.steps_seen.median_step[-1]
        if self.ratios is not None and self.ratios.ratios and self.ratios.ratios[-1]:
            values = sorted(self.ratios.ratios[-1].values())
            out["update_ratio"] = values[len(values) // 2]
        return out

    def final(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(final metrics, artifacts)`` of the diagnostics, after the last step."""
        import numpy as np

        metrics: dict[str, Any] = {}
        artifacts: dict[str, Any] = {}
        if self.swaps is not None:
            fractions = self.swaps.fraction
            metrics["swap_fraction"] = sum(fractions) / len(fractions) if fractions else 0.0
            for i, counts in self.swaps.counts.items():
                artifacts[f"amsgrad_swaps/{i}"] = counts.numpy()
        if self.switches is not None:
            n = sum(len(g["params"]) for g in self.optimizer.param_groups)
            steps = [self.switches.switch_step.get(i, -1) for i in range(n)]
            artifacts["swats_switch_steps"] = np.array(steps, dtype=np.int64)
            switched = [s for s in steps if s >= 0]
            metrics["first_switch_step"] = min(switched) if switched else None
            metrics["switched_fraction"] = len(switched) / n if n else 0.0
        if self.steps_seen is not None:
            metrics["max_step_ratio_to_bound"] = self.steps_seen.max_ratio_to_bound
        if self.handle is not None:
            self.handle.remove()
        if self.scaling is not None:
            self.scaling.remove()
        return metrics, artifacts


def _grad_scaler(scale: float) -> Any:
    import torch

    def scale_grads(optimizer: Any, args: Any, kwargs: Any) -> None:
        with torch.no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad.mul_(scale)

    return scale_grads
