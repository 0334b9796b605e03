"""The one optimizer base class every adamlab algorithm shares.

It owns everything that is not an algorithm's math: param groups, hyperparameter validation, lazy
state, the closure protocol, ``maximize``, and checked ``state_dict`` loading. An algorithm subclass
declares its hyperparameter checks, its state (``_init_state``) and its update (``_rule``), and
nothing else.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch

from . import _checks, _compat, _engine
from ._engine import reference_step
from ._packed import packed_step
from ._state import StateDict

ENGINES = ("auto", "reference", "packed")

ALGORITHM_KEY = "adamlab_algorithm"
"""The key of an adamlab state_dict that names the algorithm that saved it."""

IMPLEMENTATION_OPTIONS = frozenset({"foreach", "fused", "capturable", "differentiable"})
"""torch.optim's options that choose how an update is computed, not what it computes. torch.optim's
checkpoints carry them in every param group; adamlab's engine is its own choice, so a group may carry
them and they are not read."""


def scalar_dtype() -> torch.dtype:
    """The dtype torch.optim uses for ``state["step"]``: float64 under a float64 default dtype, else float32."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def step_counter() -> torch.Tensor:
    """A fresh ``state["step"]``, laid out as torch.optim lays it out (0-d, CPU, :func:`scalar_dtype`)."""
    return torch.tensor(0.0, dtype=scalar_dtype())


@functools.cache
def other_hyperparameters() -> frozenset[str]:
    """Every hyperparameter name of an optimizer adamlab knows (its own algorithms' and torch.optim's
    built-in ones'), less torch's :data:`IMPLEMENTATION_OPTIONS`.

    A param group key in this set that an optimizer does not have belongs to another optimizer: a
    warning when a group given to the optimizer carries one (it is not read), a refusal when a loaded
    state_dict's group does (it was saved by another optimizer). Other keys (``initial_lr`` written
    by torch's LR schedulers, a user's ``name``...) are kept as torch.optim keeps them.
    """
    names: set[str] = set()
    pending = [RuleOptimizer]
    while pending:
        cls = pending.pop()
        names.update(cls._checks)
        pending.extend(cls.__subclasses__())
    for cls_name in torch.optim.__all__:
        cls = getattr(torch.optim, cls_name)
        if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer:
            names.update(n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "params"))
    return frozenset(names - IMPLEMENTATION_OPTIONS)


def hyperparameters(local_vars: dict[str, Any]) -> dict[str, Any]:
    """A constructor's defaults from its ``locals()``: every argument but ``self``, ``params`` and ``engine``.

    Call it first thing in ``__init__``, so the arguments are all the locals there are.
    """
    return {k: v for k, v in local_vars.items() if k not in ("self", "params", "engine", "__class__")}


def fresh_state(p: torch.Tensor, *slots: str) -> dict[str, torch.Tensor]:
    """``{"step": 0, slot: zeros_like(p) for each slot}``: the usual lazily-created state of one param.

    For a DTensor param (FSDP2, tensor parallel) each slot is a DTensor with the param's mesh and
    placements (``zeros_like`` keeps them), so torch.distributed.checkpoint saves and loads it
    sharded; ``step`` stays a plain 0-d CPU tensor, as torch.optim keeps it (under FSDP2 too).
    """
    state = {"step": step_counter()}
    for slot in slots:
        state[slot] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return state


def decay(p: torch.Tensor, g: torch.Tensor, h: Any, decoupled: bool) -> torch.Tensor:
    """Weight decay as torch.optim applies it; returns the gradient the rule goes on with.

    Coupled (L2): ``g <- g + weight_decay * p``. Decoupled (AdamW): ``p <- p * (1 - lr * weight_decay)``
    before the update, the gradient unchanged. With ``weight_decay = 0`` both are exact no-ops; with
    no ``h.weight_decay`` (zero, for an optimizer with ``_zero_decay_structural``) nothing is done.
    """
    if not hasattr(h, "weight_decay"):
        return g
    if decoupled:
        p.mul_(1 - h.lr * h.weight_decay)
        return g
    return g + h.weight_decay * p


def new_pass() -> None:
    """In a rule: end the packed engine's compiled kernel here and go on in a new one (a graph break
    while torch.compile traces the kernel; nothing when the rule runs eagerly, or inside a training
    step that the user compiles whole, where a graph break would only cut that step's graph).

    For rules whose sums read a tensor the rule then overwrites (SWATS's params through its decayed
    gradient, ND-Adam's rows): in one kernel, inductor writes the new values into a temporary it
    allocates every step (a fresh 4 bytes per element, page-faulted in every step: measured 24,400
    faults and 2-3x the step time for 25M params); split, the later kernel writes in place.
    """
    if torch.compiler.is_compiling() and _engine.KERNEL_PASSES:
        _compat.graph_break()


class RuleOptimizer(torch.optim.Optimizer):
    """Base class: a :class:`torch.optim.Optimizer` whose update is one *rule* of plain torch ops.

    Subclasses set ``_checks`` (hyperparameter name -> check, see :mod:`adamlab.optim._checks`) and
    implement ``_init_state(p, group)`` and the static ``_rule(p, g, state, h, group)``. ``h`` holds
    the group's numeric hyperparameters as 0-d float64 tensors; the rule's ``group`` holds only the
    structural options (:meth:`_options`: booleans such as ``amsgrad``).

    A rule that needs per-tensor or per-row sums also sets ``_reduction``, a function of a param
    giving what its rule sums over (``"tensor"``, ``"rows"``, or None where the rule is elementwise
    for that param); its rule takes a sixth argument ``seg`` and reduces only through it
    (:mod:`adamlab.optim._segments`), so both engines run it.
    """

    _checks: ClassVar[dict[str, _checks.Check]] = {}
    _reduction: ClassVar[Callable[[torch.Tensor], str | None] | None] = None
    _native_rule: ClassVar[Callable[..., None] | None] = None
    """Optional: the same rule on a run of a packed CPU float32/float64 buffer (for a rule that
    reduces, a run of segments) through a C++ kernel of :mod:`adamlab.optim._native`, where the rule's
    compiled form is slower than its memory traffic allows. Called by the packed engine as
    ``(module, p, g, slots, step, h, group)`` with the run's flat views (``(count, length)`` for segments), its state
    slots by name, the step number this step takes (a float), the hyperparameters as floats by name
    (``lr``, ``beta1``...) and the structural options; it must compute what ``_rule`` computes (the
    packed engine increments ``step``). Tests compare it with the reference engine like every engine."""
    _zero_decay_structural: ClassVar[bool] = False
    """True: a zero ``weight_decay`` is left out of ``h`` and the rule skips weight decay (the same
    numbers for finite params: ``g + 0 * p`` is ``g``), a structural choice: on the packed engine a schedule moving the
    decay to or from 0 compiles a second kernel (once). SWATS sets it, so that without weight decay
    its per-tensor sums do not read the params and inductor updates them in place in the pass that
    takes the sums (with weight decay, SWATS updates them in a second pass: see its docstring)."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any], *, engine: str = "auto") -> None:
        normalized = self.check_hyperparameters({**defaults, "engine": engine})
        self.engine = engine
        self._packs: dict[int, Any] = {}  # (set again by _track_state; torch's __init__ may call overridden methods)
        super().__init__(params, {**defaults, **normalized})
        self._track_state()

    @property
    def _scalar_names(self) -> tuple[str, ...]:
        # in the declared order, never a set: the order of the hyperparameters is the order of the
        # compiled kernel's inputs, and a set's order changes with each process's string hashing,
        # which made every new process miss inductor's on-disk graph cache
        return tuple(self._checks)

    @classmethod
    def check_hyperparameters(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Raise the ValueError the constructor would raise for these keyword values (``engine`` too);
        else the checked ones, normalized as the constructor stores them."""
        name = cls.__name__
        engine = values.get("engine", "auto")
        if engine not in ENGINES:
            raise ValueError(f"{name}: invalid engine={engine!r}: expected one of {', '.join(map(repr, ENGINES))}")
        return cls._validate(values, "")

    @classmethod
    def _validate(cls, values: dict[str, Any], where: str) -> dict[str, Any]:
        """The checked hyperparameters among ``values``, normalized (:mod:`adamlab.optim._checks`)."""
        out = {}
        for key, value in values.items():
            check = cls._checks.get(key)
            if check is None:
                continue
            try:
                out[key] = check(key, value)
            except ValueError as err:
                raise ValueError(f"{cls.__name__}{where}: {err}") from None
        return out

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch.optim's ``add_param_group``, after checking the group: its hyperparameters are
        validated and stored normalized (a ``ValueError`` names a bad one), params that are not
        floating point (or complex) are refused, and a hyperparameter of another optimizer that this
        one does not read (Hugging Face's Trainer gives every group a ``weight_decay``) is kept but
        warned about, once per message."""
        if isinstance(param_group, dict):
            param_group = {**param_group, **self._validate(param_group, " (param group)")}
            unused = sorted(k for k in param_group if k not in self._checks and k in other_hyperparameters())
            if unused:
                warnings.warn(
                    f"{type(self).__name__}: a param group carries {', '.join(unused)}, which {type(self).__name__} "
                    f"does not use (its hyperparameters: {', '.join(self._checks)}); the value is ignored",
                    UserWarning,
                    stacklevel=3,
                )
        super().add_param_group(param_group)
        not_floating = [p for p in self.param_groups[-1]["params"] if not (p.is_floating_point() or p.is_complex())]
        if not_floating:
            self.param_groups.pop()
            p = not_floating[0]
            raise ValueError(
                f"{type(self).__name__}: can only optimize floating-point (or complex) params, got a {p.dtype} "
                f"param of shape {tuple(p.shape)}"
            )

    def __getstate__(self) -> dict[str, Any]:
        # torch's keeps defaults, state and param_groups; the engine choice travels too (pickle,
        # copy.deepcopy), the packed buffers do not (they are rebuilt on the next step)
        return {**super().__getstate__(), "engine": self.engine}

    def __setstate__(self, state: dict[str, Any]) -> None:
        own_defaults = dict(state.get("defaults", getattr(self, "defaults", {})))
        super().__setstate__(state)
        # torch's __setstate__ (run by every load_state_dict) adds defaults["differentiable"]; our step
        # never reads it, and keeping it would put a key into every group that a fresh optimizer's
        # state_dict lacks, so a second load_state_dict would reject a fresh optimizer's state_dict.
        self.defaults = own_defaults
        self.__dict__.setdefault("engine", "auto")
        self._track_state()
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)

    # -- the algorithm ---------------------------------------------------------------------------

    def _options(self, group: dict[str, Any]) -> dict[str, Any]:
        """The structural options the rule reads as its ``group`` argument: the group's booleans
        (``amsgrad``...), and what a subclass adds (hashable values). Both engines pass these; the
        packed engine compiles one kernel per distinct set of options."""
        return {k: v for k, v in group.items() if isinstance(v, bool)}

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    _rule: ClassVar[Callable[..., None]]

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimization step; returns the closure's loss when a closure is given.

        Step hooks (``register_step_pre_hook``/``post_hook``, and torch's global ones) and the
        profiler's ``Optimizer.step#<class>.step`` range work as for torch.optim: while there is a
        hook or a profiler is running, the step goes through torch's own wrapper (``_hooked_step``).
        Otherwise it skips that wrapper, which costs about 0.1 ms per step with the caches as cold as
        in a training loop (a profiler range entered and left through the dispatcher, hook lookups;
        measured alternating with torch's fused Adam, whose step is 3 ms for 1M params in 500
        tensors): ``step.hooked`` tells torch.optim not to wrap this method itself.
        """
        if _compat.step_needs_wrapper(self):
            return self._hooked_step() if closure is None else self._hooked_step(closure)  # (the hooks' args)
        return self._step(closure)

    step.hooked = True  # type: ignore[attr-defined]

    @torch.no_grad()
    def _step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        compiling = torch.compiler.is_compiling()  # (inside a compiled training step: the rule's ops are traced)
        if not compiling:
            if type(self.state) is not StateDict:  # (the user assigned a new ``opt.state``)
                self._track_state()
            elif self.state.version != self._state_version:  # (state changed from outside since the last step)
                self._packs = {}
        packed = not compiling and self.engine != "reference"
        for group in self.param_groups:
            (packed_step if packed else reference_step)(self, group)
        if packed:
            self._state_version = self.state.version
        return loss

    def _track_state(self) -> None:
        """Make ``opt.state`` a :class:`~adamlab.optim._state.StateDict` (its changes counted from
        now on) and forget the packed layout, which is rebuilt from it at the next packed step."""
        self.state = StateDict(self.state)
        self._state_version = self.state.version
        self._packs = {}

    _hooked_step = torch.optim.Optimizer.profile_hook_step(_step)

    # -- checkpoints -----------------------------------------------------------------------------

    @classmethod
    def _algorithm(cls) -> str:
        """The name of the class that defines the update rule (AdamW's is Adam's): what a state_dict records."""
        return next(c.__name__ for c in cls.__mro__ if "_rule" in c.__dict__)

    def state_dict(self) -> dict[str, Any]:
        """torch.optim's state_dict, plus ``"adamlab_algorithm"``: the algorithm that saved it
        (:meth:`_algorithm`), so that loading it into another algorithm is refused even where the
        hyperparameter names and state keys agree (RAdam's and Adam's). torch.optim reads only
        ``"state"`` and ``"param_groups"``, so the state_dict still loads into torch's class. Each
        param's state is a plain ``dict``, as torch.optim's."""
        out = super().state_dict()
        out["state"] = {k: dict(v) if isinstance(v, dict) else v for k, v in out["state"].items()}
        return {**out, ALGORITHM_KEY: self._algorithm()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state_dict saved by this class or by torch.optim's class of the same algorithm.

        The state_dict is checked first: the algorithm that saved it (when adamlab saved it), the
        param group count and sizes, each group's hyperparameters (none of another optimizer, every
        numeric one this algorithm needs; each validated as at construction, see
        :func:`other_hyperparameters` for the keys a group may carry), the state keys and shapes per
        parameter. On any mismatch a ``ValueError`` says what differs and the optimizer is left
        unchanged. Hyperparameters are stored normalized; scalar state (``step``...) is copied, so
        stepping after a load never writes into the loaded dict, and an old-style Python number
        ``step`` (torch.optim before 1.12) is read as torch.optim reads it.
        """
        loaded = self._check_loadable(state_dict)
        super().load_state_dict(state_dict)  # (its __setstate__ drops the packs: re-packed on the next step)
        # torch.optim keeps loaded ``step`` tensors by reference and casts other scalars (NAdam's
        # ``mu_product``) to the param's dtype; own copies in the dtype a fresh state has instead, so a
        # resumed run continues bit for bit.
        for group, values in zip(self.param_groups, loaded):
            group.update(values)
            for p in group["params"]:
                state = self.state.get(p)
                if not state:
                    continue
                for key, fresh in self._init_state(torch.empty_like(p, device="meta"), group).items():
                    if fresh.device.type != "meta":
                        state[key] = torch.as_tensor(state[key]).to(fresh.dtype, copy=True)

    def _check_loadable(self, state_dict: dict[str, Any]) -> list[dict[str, Any]]:
        """Raise the ValueError for a state_dict this optimizer cannot load; else each group's
        hyperparameters, validated and normalized."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= state_dict.keys():
            raise ValueError(f"{name}.load_state_dict: not an optimizer state_dict (expected the keys 'state' and 'param_groups')")
        saved_by = state_dict.get(ALGORITHM_KEY, self._algorithm())
        if saved_by != self._algorithm():
            raise ValueError(
                f"{name}.load_state_dict: the state_dict was saved by adamlab's {saved_by}, a different algorithm "
                f"(this is {self._algorithm()})"
            )
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the state_dict has {len(saved_groups)} param groups, this optimizer has {len(self.param_groups)}"
            )
        params: dict[Any, tuple[torch.Tensor, dict[str, Any]]] = {}
        loaded: list[dict[str, Any]] = []
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: param group {i} holds {len(saved['params'])} params in the state_dict, "
                    f"{len(group['params'])} here: the parameter layout differs"
                )
            # Like torch.optim, a missing boolean option takes its default; numeric ones must be there.
            missing = sorted(k for k in set(self.defaults) - set(saved) if not isinstance(self.defaults[k], bool))
            if missing:
                raise ValueError(
                    f"{name}.load_state_dict: param group {i} lacks the hyperparameters {missing}; "
                    f"the state_dict was saved by a different optimizer (this is {name})"
                )
            foreign = sorted(k for k in saved if k not in self._checks and k in other_hyperparameters())
            if foreign:
                raise ValueError(
                    f"{name}.load_state_dict: param group {i} carries the hyperparameters {foreign}, which {name} "
                    f"does not have; the state_dict was saved by a different optimizer"
                )
            merged = {**self.defaults, **saved}
            merged.update(self._validate(merged, f".load_state_dict (param group {i})"))
            loaded.append({k: merged[k] for k in self._checks if k in merged})
            for pid, p in zip(saved["params"], group["params"]):
                params[pid] = (p, merged)
        for pid, saved_state in state_dict["state"].items():
            if pid not in params:
                raise ValueError(f"{name}.load_state_dict: the state_dict has state for param id {pid!r}, which no param group lists")
            p, group = params[pid]
            expected = self._init_state(torch.empty_like(p, device="meta"), group)
            if set(saved_state) != set(expected):
                raise ValueError(
                    f"{name}.load_state_dict: the state of param {pid} has the keys {sorted(saved_state)}, but {name} with these "
                    f"options keeps {sorted(expected)}: the state_dict comes from a different optimizer or different options"
                )
            for key, want in expected.items():
                got = saved_state[key]
                if want.dim() == 0 and _checks.is_real(got):  # an old-style number ``step``
                    continue
                if not isinstance(got, torch.Tensor) or got.shape != want.shape:
                    shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
                    raise ValueError(
                        f"{name}.load_state_dict: state {key!r} of param {pid} has shape {shape}, expected "
                        f"{tuple(want.shape)} for a param of shape {tuple(p.shape)}: the parameter layout differs"
                    )
        return loaded


ADAM_CHECKS: dict[str, _checks.Check] = {
    "lr": _checks.NONNEGATIVE,
    "betas": _checks.betas(2),
    "eps": _checks.NONNEGATIVE,
    "weight_decay": _checks.NONNEGATIVE,
    "maximize": _checks.flag,
}
"""The checks every Adam-family optimizer shares; algorithms extend this table."""
