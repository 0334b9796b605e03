"""The reference engine: applies an optimizer's rule tensor by tensor.

This is the readable definition of every adamlab optimizer and what the tests run in float64.
For each param group it builds the group's numeric hyperparameters once as 0-d float64 tensors
(``h.lr``, ``h.beta1``, ``h.beta2``, ``h.eps``, ...; see :func:`scalars`), then for each param that
has a gradient: creates its state lazily, increments ``state["step"]``, negates the gradient under
``maximize``, and calls the rule with the group's structural options (``opt._options(group)``) (with the param's segments, :mod:`adamlab.optim._segments`, for a
rule that reduces). Params whose ``.grad`` is None are skipped entirely (no update,
no weight decay, no state change), as in torch.optim. Complex params are updated as real views
(``torch.view_as_real``), as torch.optim does, so real and imaginary parts are independent
coordinates.

A rule updates ``p`` and the state tensors in place and never rebinds a state entry, so the same
rule can later run on other layouts of the same numbers.

DTensor params (FSDP2's ``fully_shard``, tensor parallel's ``parallelize_module``) are updated here
under every engine setting (the packed engine leaves them to this path): the rule runs on the
DTensors, so each op runs on the rank's local shard, and a rule that reduces gets segments whose
sums are global over the mesh (:mod:`adamlab.optim._segments`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch

from ._segments import reference_segments

if TYPE_CHECKING:
    from ._base import RuleOptimizer

_NOT_SCALARS = {"params", "param_names"}

KERNEL_PASSES = False
"""True while the packed engine's kernels trace a rule: :func:`~adamlab.optim._base.new_pass` then splits it."""


class Scalars:
    """``h``, the hyperparameters a rule reads, as attributes (``h.lr``, ``h.beta1``...). A plain
    class rather than ``types.SimpleNamespace``: torch.compile traces building it (inside a compiled
    training step, and in the packed engine's kernels)."""


def scalars(group: dict[str, Any], names: Iterable[str], zero_decay_structural: bool = False) -> Scalars:
    """The group's numeric hyperparameters among ``names`` as 0-d float64 CPU tensors.

    ``betas`` is split into ``beta1``, ``beta2`` (and ``beta3``... when longer). Booleans are
    structural options, read from the group by the rule itself, and are not included. With
    ``zero_decay_structural`` (:attr:`~adamlab.optim._base.RuleOptimizer._zero_decay_structural`), a
    zero ``weight_decay`` is left out, and :func:`~adamlab.optim._base.decay` then does nothing.
    """
    h = Scalars()
    for key in names:
        value = group[key]
        if zero_decay_structural and key == "weight_decay" and value == 0:
            continue
        if key == "betas":
            for i, b in enumerate(value, start=1):
                setattr(h, f"beta{i}", torch.as_tensor(b, dtype=torch.float64).detach().cpu())
        elif not isinstance(value, bool) and isinstance(value, (int, float, torch.Tensor)):
            setattr(h, key, torch.as_tensor(value, dtype=torch.float64).detach().cpu())
    return h


def _real_view(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t) if t.is_complex() else t


def conform_state(opt: RuleOptimizer, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
    """Make param ``p``'s existing ``state`` fit ``p`` as it is now, or raise; both engines call it
    before they use a state they did not make or whose param changed.

    The state must hold the slots this optimizer keeps for ``p`` with these options, each per-element
    (or per-segment) slot in the shape ``p`` needs: a param whose shape changed after its state was made
    (``p.data = t.view(...)``) is refused with a ``RuntimeError`` (delete ``opt.state[p]`` to start its
    state afresh). A slot on another device or in another dtype than a fresh state would have (after
    ``model.to(dtype)`` or ``model.to(device)``) is cast to it, as ``load_state_dict`` casts
    (round to nearest), on both engines.
    """
    name = type(opt).__name__
    expected = opt._init_state(torch.empty_like(p, device="meta"), group)
    if set(state) != set(expected):
        raise RuntimeError(
            f"{name}: the state of a param of shape {tuple(p.shape)} has the keys {sorted(state)}, but {name} with these options "
            f"keeps {sorted(expected)}; delete opt.state[p] to start its state afresh"
        )
    for key, want in expected.items():
        value = state[key]
        if not isinstance(value, torch.Tensor) or value.shape != want.shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise RuntimeError(
                f"{name}: state {key!r} of a param of shape {tuple(p.shape)} has shape {shape}, expected {tuple(want.shape)}: "
                "the param changed shape after its state was made; delete opt.state[p] to start its state afresh"
            )
        device = p.device if want.device.type == "meta" else want.device
        if value.dtype != want.dtype or value.device != device:
            state[key] = value.to(device=device, dtype=want.dtype)
    state.conformed = (p.dtype, p.device, p.shape)  # type: ignore[attr-defined]


def reference_update(opt: RuleOptimizer, p: torch.Tensor, group: dict[str, Any], h: Scalars) -> None:
    """Update one param that has a gradient: lazy state, ``step += 1``, ``maximize``, then the rule."""
    g = p.grad
    if g.is_sparse:
        raise RuntimeError(f"{type(opt).__name__} does not support sparse gradients")
    state = opt.state[p]
    if not state:
        state.update(opt._init_state(p, group))
        state.conformed = (p.dtype, p.device, p.shape)
    elif getattr(state, "conformed", None) != (p.dtype, p.device, p.shape):
        conform_state(opt, p, group, state)
    state["step"] += 1
    if group["maximize"]:
        g = -g
    if p.is_complex():
        p, g, state = _real_view(p), _real_view(g), {k: _real_view(v) for k, v in state.items()}
    options = opt._options(group)
    if opt._reduction is None:
        opt._rule(p, g, state, h, options)
    else:
        opt._rule(p, g, state, h, options, reference_segments(opt._reduction(p), p))


@torch.no_grad()
def reference_step(opt: RuleOptimizer, group: dict[str, Any]) -> None:
    """One optimizer step for one param group, tensor by tensor."""
    h = scalars(group, opt._scalar_names, opt._zero_decay_structural)
    for p in group["params"]:
        if p.grad is not None:
            reference_update(opt, p, group, h)
