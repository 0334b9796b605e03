"""MAdam, AdamAL, AdaBelief, AdaBound/AMSBound against independent float64 references.

The references below are plain numpy float64 loops written from the papers and the authors'
packages (nothing from adamlab): each is an ``update(x, g, state, t, hp) -> x`` run by
:class:`NumpyReference`, a minimal torch optimizer, so the shared trajectory harness can drive both.
The hyperparameter defaults are also written here independently, so the trajectories check the
classes' defaults too.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math

import numpy as np
import pytest
import torch
from util import SHAPES, assert_trajectories_close, make_params, max_diff, trajectory

from adamlab.optim.adabelief import AdaBelief
from adamlab.optim.adabound import AdaBound
from adamlab.optim.adam import Adam
from adamlab.optim.adamal import AdamAL
from adamlab.optim.madam import MAdam
from adamlab.optim.radam import RAdam

# -- independent float64 references --------------------------------------------------------------


class NumpyReference(torch.optim.Optimizer):
    """Applies ``update(x, g, state, t, group)`` to each param as float64 numpy arrays."""

    def __init__(self, params, update, hp):
        super().__init__(params, dict(hp))
        self.update = update
        for group in self.param_groups:
            group["ref_base_lr"] = group["lr"]  # AdaBound's final_lr scaling needs the initial lr

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                st["t"] = st.get("t", 0) + 1
                x = p.detach().double().numpy().copy()
                g = p.grad.detach().double().numpy().copy()
                if group["maximize"]:
                    g = -g
                p.copy_(torch.from_numpy(self.update(x, g, st, st["t"], group)))


def _zeros(st, x, *names):
    return [st.get(n, np.zeros_like(x)) for n in names]


def _radam_step(m_hat, v, t, b2, eps, rectify_at, otherwise):
    """Liu et al.'s RAdam direction: rectified adaptive step when rho_t passes the threshold."""
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    rho_t = rho_inf - 2.0 * t * b2**t / (1.0 - b2**t)
    if rectify_at(rho_t):
        r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        return r * m_hat * math.sqrt(1.0 - b2**t) / (np.sqrt(v) + eps)
    return otherwise


def ref_madam(x, g, st, t, hp):
    """The MAdam paper, Algorithm 2, with the paper's own formula for g~ (through m_t and / beta1)."""
    (b1, b2), b3, lr, eps, wd = hp["betas"], hp["beta3"], hp["lr"], hp["eps"], hp["weight_decay"]
    if hp["decoupled_weight_decay"]:
        x = x * (1.0 - lr * wd)
    else:
        g = g + wd * x
    m_prev, v = _zeros(st, x, "m", "v")
    m = b1 * m_prev + (1.0 - b1) * g
    if b1 > 0:
        g_tilde = b3 * g + (1.0 - b3) * (g - m) / b1  # as Algorithm 2 writes it
    else:
        g_tilde = g - (1.0 - b3) * m_prev  # Eq. (1); Algorithm 2 would divide by beta1 = 0
    v = b2 * v + (1.0 - b2) * g_tilde**2
    st["m"], st["v"] = m, v
    m_hat = m / (1.0 - b1**t)
    if hp["rectify"]:  # torch.optim.RAdam: rectify when rho_t > 5, else the momentum step
        return x - lr * _radam_step(m_hat, v, t, b2, eps, lambda rho: rho > 5, m_hat)
    return x - lr * m_hat / (np.sqrt(v / (1.0 - b2**t)) + eps)


def ref_adamal(x, g, st, t, hp):
    """The AdamAL paper, Algorithm 1 with beta2 in line 7 (as its Eq. 18), plus eps and optional bias correction."""
    (b1, b2), lr, eps, wd = hp["betas"], hp["lr"], hp["eps"], hp["weight_decay"]
    if hp["decoupled_weight_decay"]:
        x = x * (1.0 - lr * wd)
    else:
        g = g + wd * x
    m, v = _zeros(st, x, "m", "v")
    m = b1 * m + (1.0 - b1) * g
    g_hat = np.maximum(g * g, v)
    v = b2 * v + (1.0 - b2) * g_hat
    st["m"], st["v"] = m, v
    if hp["bias_correction"]:
        return x - lr * (m / (1.0 - b1**t)) / (np.sqrt(v / (1.0 - b2**t)) + eps)
    return x - lr * m / (np.sqrt(v) + eps)


def ref_adabelief(x, g, st, t, hp):
    """adabelief-pytorch 0.2.1: s += eps stored, eps again in the denominator, rho_t >= 5."""
    (b1, b2), lr, eps, wd = hp["betas"], hp["lr"], hp["eps"], hp["weight_decay"]
    if hp["decoupled_weight_decay"]:
        x = x * (1.0 - (wd if hp["fixed_decay"] else lr * wd))
    else:
        g = g + wd * x
    m, s, s_max = _zeros(st, x, "m", "s", "s_max")
    m = b1 * m + (1.0 - b1) * g
    s = b2 * s + (1.0 - b2) * (g - m) ** 2 + eps
    st["m"], st["s"] = m, s
    if hp["amsgrad"]:
        s = st["s_max"] = np.maximum(s_max, s)
    bc1, bc2 = 1.0 - b1**t, 1.0 - b2**t
    if not hp["rectify"]:
        return x - (lr / bc1) * m / (np.sqrt(s) / math.sqrt(bc2) + eps)
    fallback = m / bc1 if hp["degenerated_to_sgd"] else 0.0 * m
    return x - lr * _radam_step(m / bc1, s, t, b2, eps, lambda rho: rho >= 5, fallback)


def ref_adabound(x, g, st, t, hp):
    """adabound 0.0.5: clip lr*sqrt(bc2)/bc1/(sqrt(v)+eps) into the bounds, final_lr scaled by lr/lr0."""
    (b1, b2), lr, eps, wd = hp["betas"], hp["lr"], hp["eps"], hp["weight_decay"]
    g = g + wd * x
    m, v, v_max = _zeros(st, x, "m", "v", "v_max")
    m = b1 * m + (1.0 - b1) * g
    v = b2 * v + (1.0 - b2) * g * g
    st["m"], st["v"] = m, v
    if hp["amsbound"]:
        v = st["v_max"] = np.maximum(v_max, v)
    final_lr = hp["final_lr"] * lr / hp["ref_base_lr"]
    lower = final_lr * (1.0 - 1.0 / (hp["gamma"] * t + 1.0))
    upper = final_lr * (1.0 + 1.0 / (hp["gamma"] * t)) if hp["gamma"] > 0 else math.inf
    raw = lr * math.sqrt(1.0 - b2**t) / (1.0 - b1**t) / (np.sqrt(v) + eps)
    st["clipped_low"] = st.get("clipped_low", 0) + int((raw < lower).sum())
    st["clipped_high"] = st.get("clipped_high", 0) + int((raw > upper).sum())
    return x - np.clip(raw, lower, upper) * m


# Defaults written from API.md / the packages, not read from the classes.
ALGORITHMS = {
    "madam": (
        MAdam,
        ref_madam,
        dict(
            lr=1e-3,
            betas=(0.9, 0.999),
            beta3=0.9,
            eps=1e-16,
            weight_decay=0.0,
            rectify=True,
            maximize=False,
            decoupled_weight_decay=False,
        ),
    ),
    "adamal": (
        AdamAL,
        ref_adamal,
        dict(
            lr=1e-3,
            betas=(0.9, 0.999),
            eps=1e-8,
            weight_decay=0.0,
            bias_correction=True,
            maximize=False,
            decoupled_weight_decay=False,
        ),
    ),
    "adabelief": (
        AdaBelief,
        ref_adabelief,
        dict(
            lr=1e-3,
            betas=(0.9, 0.999),
            eps=1e-16,
            weight_decay=0.0,
            amsgrad=False,
            decoupled_weight_decay=True,
            fixed_decay=False,
            rectify=False,
            degenerated_to_sgd=True,
            maximize=False,
        ),
    ),
    "adabound": (
        AdaBound,
        ref_adabound,
        dict(lr=1e-3, betas=(0.9, 0.999), final_lr=0.1, gamma=1e-3, eps=1e-8, weight_decay=0.0, amsbound=False, maximize=False),
    ),
}

LR = dict(lr=1e-2)
BOUNDS = dict(lr=0.03, final_lr=0.05, gamma=0.05)  # both AdaBound bounds bind within 60 steps
VARIANTS: list[tuple[str, dict]] = [
    ("madam", {}),
    ("madam", LR),
    ("madam", {**LR, "rectify": False}),
    ("madam", {**LR, "beta3": 0.0}),
    ("madam", {**LR, "beta3": 5.4, "rectify": False}),
    ("madam", {**LR, "beta3": 0.18, "betas": (0.9, 0.99)}),
    ("madam", {**LR, "betas": (0.0, 0.999)}),
    ("madam", {**LR, "betas": (0.0, 0.99), "rectify": False}),
    ("madam", {**LR, "weight_decay": 0.1}),
    ("madam", {**LR, "weight_decay": 0.1, "decoupled_weight_decay": True, "rectify": False}),
    ("madam", {**LR, "maximize": True}),
    ("adamal", {}),
    ("adamal", LR),
    ("adamal", {**LR, "bias_correction": False}),
    ("adamal", {**LR, "bias_correction": False, "eps": 0.0}),
    ("adamal", {**LR, "betas": (0.5, 0.9)}),
    ("adamal", {**LR, "weight_decay": 0.1}),
    ("adamal", {**LR, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("adamal", {**LR, "maximize": True}),
    ("adabelief", {}),
    ("adabelief", LR),
    ("adabelief", {**LR, "eps": 1e-8}),
    ("adabelief", {**LR, "rectify": True}),
    ("adabelief", {**LR, "rectify": True, "degenerated_to_sgd": False}),
    ("adabelief", {**LR, "amsgrad": True}),
    ("adabelief", {**LR, "amsgrad": True, "rectify": True}),
    ("adabelief", {**LR, "weight_decay": 0.1}),
    ("adabelief", {**LR, "weight_decay": 0.1, "fixed_decay": True}),
    ("adabelief", {**LR, "weight_decay": 0.1, "decoupled_weight_decay": False}),
    ("adabelief", {**LR, "weight_decay": 0.1, "decoupled_weight_decay": False, "rectify": True}),
    ("adabelief", {**LR, "maximize": True}),
    ("adabound", {}),
    ("adabound", LR),
    ("adabound", {**LR, "amsbound": True}),
    ("adabound", BOUNDS),
    ("adabound", {**BOUNDS, "amsbound": True}),
    ("adabound", {**BOUNDS, "weight_decay": 0.1}),
    ("adabound", {**LR, "gamma": 0.0}),
    ("adabound", {**BOUNDS, "maximize": True}),
]


def _id(variant):
    name, kw = variant
    return name + "".join(f"-{k}={v}" for k, v in kw.items())


def decaying_lr(base):
    """A before_step hook: lr = base * 0.97^t (an lr schedule, so AdaBound's final_lr scaling is exercised)."""

    def hook(opt, t):
        for group in opt.param_groups:
            group["lr"] = base * 0.97**t

    return hook


def ours_and_reference(name, kw, steps=60, **traj_kw):
    cls, update, defaults = ALGORITHMS[name]
    hp = {**defaults, **kw}
    ours = trajectory(lambda ps: cls(ps, **kw), steps, **traj_kw)
    refs = []
    ref = trajectory(lambda ps: refs.append(NumpyReference(ps, update, hp)) or refs[-1], steps, **traj_kw)
    return ours, ref, refs[0]


@pytest.mark.parametrize("variant", VARIANTS, ids=_id)
def test_matches_float64_reference(variant):
    name, kw = variant
    ours, ref, ref_opt = ours_and_reference(name, kw)
    assert_trajectories_close(ours, ref, tol=1e-12)
    if name == "adabound" and kw.get("gamma") == BOUNDS["gamma"]:
        state = ref_opt.state.values()
        assert sum(s["clipped_low"] for s in state) > 0 and sum(s["clipped_high"] for s in state) > 0, "the bounds never bound"


@pytest.mark.parametrize("variant", [("adabound", BOUNDS), ("adabound", {**BOUNDS, "amsbound": True}), ("madam", LR)], ids=_id)
def test_matches_float64_reference_under_lr_schedule(variant):
    name, kw = variant
    ours, ref, _ = ours_and_reference(name, kw, before_step=decaying_lr(kw["lr"]))
    assert_trajectories_close(ours, ref, tol=1e-12)


def test_madam_seed_formula_agrees_with_ours_at_small_beta1():
    """Our g~ = g - (1-b3) m_{t-1} and the seed's b3 g + (1-b3)(g - m_t)/b1 agree beyond rounding."""
    ours, ref, _ = ours_and_reference("madam", {**LR, "betas": (0.3, 0.999), "beta3": 0.2, "rectify": False}, grad_scale=5.0)
    assert_trajectories_close(ours, ref, tol=1e-12)


# -- the authors' packages -----------------------------------------------------------------------


def _package_adabelief(ps, kw):
    adabelief_pytorch = pytest.importorskip("adabelief_pytorch")
    kw = dict(kw)
    kw["weight_decouple"] = kw.pop("decoupled_weight_decay", True)
    kw.setdefault("rectify", False)  # the package defaults to True, adamlab to False
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints its change log and options
        return adabelief_pytorch.AdaBelief(ps, print_change_log=False, **kw)


def _package_adabound(ps, kw):
    adabound = pytest.importorskip("adabound")
    return adabound.AdaBound(ps, **kw)


PACKAGE_VARIANTS = [
    v
    for v in VARIANTS
    if v[0] in ("adabelief", "adabound")
    and not v[1].get("maximize")  # the packages have no maximize
    and not (v[1].get("amsgrad") and v[1].get("rectify"))  # documented deviation: the package ignores the max there
    and v[1].get("gamma", 1) != 0.0  # the package divides by gamma * t
]


@pytest.mark.filterwarnings("ignore:This overload of:UserWarning")  # adabound 0.0.5 uses deprecated Tensor.add overloads
@pytest.mark.parametrize("variant", PACKAGE_VARIANTS + [("adabound", {**BOUNDS, "schedule": True})], ids=_id)
def test_matches_authors_package(variant):
    name, kw = variant
    kw = dict(kw)
    hook = decaying_lr(kw["lr"]) if kw.pop("schedule", False) else None
    package = _package_adabelief if name == "adabelief" else _package_adabound
    theirs = trajectory(lambda ps: package(ps, kw), before_step=hook)
    ours = trajectory(lambda ps: ALGORITHMS[name][0](ps, **kw), before_step=hook)
    assert_trajectories_close(ours, theirs, tol=1e-12)


def test_package_amsgrad_has_no_effect_on_rectified_steps():
    """Evidence for AdaBelief's documented deviation: with rectify=True the package divides by s_t, not the max."""
    kw = dict(lr=1e-2, rectify=True)
    with_max = trajectory(lambda ps: _package_adabelief(ps, {**kw, "amsgrad": True}))
    without = trajectory(lambda ps: _package_adabelief(ps, kw))
    assert max_diff(with_max, without) <= 1e-15
    ours = trajectory(lambda ps: AdaBelief(ps, amsgrad=True, **kw))
    assert max_diff(ours, with_max) > 1e-8  # ours uses the max (measured 2.4e-6 apart after 60 steps)


# -- identities ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra", [{}, {"weight_decay": 0.1}, {"weight_decay": 0.1, "decoupled_weight_decay": True}, {"maximize": True}]
)
@pytest.mark.parametrize("rectify", [False, True])
def test_madam_with_beta3_one_is_adam_or_radam(rectify, extra):
    kw = dict(lr=1e-2, eps=1e-16, **extra)
    madam = trajectory(lambda ps: MAdam(ps, beta3=1.0, rectify=rectify, **kw))
    other = trajectory(lambda ps: (RAdam if rectify else Adam)(ps, **kw))
    assert all(torch.equal(a, b) for a, b in zip(madam, other)), f"differ by {max_diff(madam, other):.3e}"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_adamal_second_moment_never_decreases(dtype):
    previous: dict[int, torch.Tensor] = {}
    counts = {"held": 0, "checked": 0}  # held: v stayed equal, i.e. g^2 <= v_{t-1}, where Adam's v would have decreased

    def check(opt, t):
        for p in opt.param_groups[0]["params"]:
            v = opt.state[p]["exp_avg_sq"]
            if id(p) in previous:
                assert bool((v >= previous[id(p)]).all()), f"v decreased at step {t}"
                counts["held"] += int((v == previous[id(p)]).sum())
                counts["checked"] += v.numel()
            previous[id(p)] = v.clone()

    trajectory(lambda ps: AdamAL(ps, lr=1e-2, betas=(0.9, 0.9)), steps=100, dtype=dtype, after_step=check)
    assert counts["held"] > 0.2 * counts["checked"], counts  # the max really mattered, often


# -- Reddi et al.'s online counterexample -----------------------------------------


def reddi_final_x(make, steps=10_000, x0=0.0):
    """f_t(x) = 3x if t mod 3 = 1 else -x on [-1, 1], lr 0.1/sqrt(t), projected by clamping; the optimum is -1."""
    x = torch.tensor([x0], dtype=torch.float64, requires_grad=True)
    opt = make([x])
    up, down = torch.tensor([3.0], dtype=torch.float64), torch.tensor([-1.0], dtype=torch.float64)
    for t in range(1, steps + 1):
        x.grad = up if t % 3 == 1 else down
        opt.param_groups[0]["lr"] = 0.1 / math.sqrt(t)
        opt.step()
        with torch.no_grad():
            x.clamp_(-1.0, 1.0)
    return x.item()


def test_reddi_counterexample_adam_fails_amsgrad_and_adamal_converge():
    betas = (0.0, 0.1)
    adam = reddi_final_x(lambda ps: Adam(ps, betas=betas))
    amsgrad = reddi_final_x(lambda ps: Adam(ps, betas=betas, amsgrad=True))
    adamal = reddi_final_x(lambda ps: AdamAL(ps, betas=betas))
    assert adam > 0.99, adam  # measured +0.998953
    assert amsgrad < -0.99, amsgrad  # measured -1.0 (held at the bound)
    assert adamal < -0.99, adamal  # measured -1.0


# -- checkpoints ---------------------------------------------------------------------------------


def _run_with_checkpoint(cls, kw, steps=60, split=25, reload=True):
    gen = torch.Generator().manual_seed(7)
    noise = [[torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES] for _ in range(steps)]
    params = make_params()
    opt = cls(params, **kw)
    for t in range(steps):
        if t == 10:  # an lr change before the checkpoint: AdaBound's final_lr must keep following lr / lr0
            for group in opt.param_groups:
                group["lr"] = group["lr"] * 0.5
        if reload and t == split:
            saved = copy.deepcopy(opt.state_dict())
            params = [p.detach().clone().requires_grad_() for p in params]
            opt = cls(params, **{**kw, "lr": 0.123})  # a different lr: everything must come from the state_dict
            opt.load_state_dict(saved)
        for p, n in zip(params, noise[t]):
            p.grad = n + 0.1 * p.detach()
        opt.step()
    return params, opt


@pytest.mark.parametrize("variant", VARIANTS, ids=_id)
def test_state_dict_round_trip_is_bit_exact(variant):
    name, kw = variant
    cls = ALGORITHMS[name][0]
    straight, opt_a = _run_with_checkpoint(cls, kw, reload=False)
    resumed, opt_b = _run_with_checkpoint(cls, kw, reload=True)
    assert all(torch.equal(a, b) for a, b in zip(straight, resumed))
    sa, sb = opt_a.state_dict(), opt_b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for i in sa["state"]:
        assert sa["state"][i].keys() == sb["state"][i].keys()
        assert all(torch.equal(sa["state"][i][k], sb["state"][i][k]) for k in sa["state"][i])


def test_adabound_keeps_each_groups_initial_lr():
    a, b = make_params(0, [(3,)]), make_params(1, [(2,)])
    opt = AdaBound([{"params": a, "lr": 0.1}], lr=1e-3)
    opt.add_param_group({"params": b, "lr": 0.02})
    opt.param_groups[0]["lr"] = 0.05
    assert [g["base_lr"] for g in opt.param_groups] == [0.1, 0.02]
    saved = copy.deepcopy(opt.state_dict())
    fresh = AdaBound([{"params": a}, {"params": b}], lr=7.0)
    fresh.load_state_dict(saved)
    assert [g["base_lr"] for g in fresh.param_groups] == [0.1, 0.02]
    del saved["param_groups"][1]["base_lr"]  # a state_dict without it starts over from its lr
    fresh.load_state_dict(saved)
    assert [g["base_lr"] for g in fresh.param_groups] == [0.1, 0.02]


def test_adabound_zero_initial_lr_uses_final_lr_unscaled():
    (p,) = make_params(0, [(4,)])
    opt = AdaBound([p], lr=0.0, final_lr=0.05, gamma=0.5)
    opt.param_groups[0]["lr"] = 1e-3
    p.grad = torch.ones_like(p)
    before = p.detach().clone()
    opt.step()
    assert torch.isfinite(p).all() and not torch.equal(p.detach(), before)


# -- hyperparameter checks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, kw, name",
    [
        (MAdam, {"beta3": -0.1}, "beta3"),
        (MAdam, {"beta3": float("nan")}, "beta3"),
        (MAdam, {"eps": -1e-16}, "eps"),
        (MAdam, {"rectify": "yes"}, "rectify"),
        (MAdam, {"betas": (1.0, 0.999)}, "betas[0]"),
        (AdamAL, {"lr": -1e-3}, "lr"),
        (AdamAL, {"betas": (0.9, 1.0)}, "betas[1]"),
        (AdamAL, {"weight_decay": -0.1}, "weight_decay"),
        (AdamAL, {"bias_correction": 1}, "bias_correction"),
        (AdaBelief, {"eps": -1.0}, "eps"),
        (AdaBelief, {"degenerated_to_sgd": None}, "degenerated_to_sgd"),
        (AdaBound, {"final_lr": -0.1}, "final_lr"),
        (AdaBound, {"gamma": -1e-3}, "gamma"),
        (AdaBound, {"gamma": 1.0}, "gamma"),
        (AdaBound, {"amsbound": "no"}, "amsbound"),
    ],
)
def test_bad_hyperparameters_raise_naming_the_parameter(cls, kw, name):
    ((key, value),) = kw.items()
    with pytest.raises(ValueError, match="invalid " + name.replace("[", r"\[").replace("]", r"\]") + "=") as err:
        cls(make_params(), **kw)
    message = str(err.value)
    assert "expected" in message and message.startswith(cls.__name__)
    if "[" not in name:
        assert f"{key}={value!r}" in message


def test_bad_param_group_values_raise():
    (p,) = make_params(0, [(2,)])
    opt = AdaBound([p])
    (q,) = make_params(1, [(2,)])
    with pytest.raises(ValueError, match="base_lr=-1"):
        opt.add_param_group({"params": [q], "base_lr": -1.0})
    with pytest.raises(ValueError, match="beta3=-2"):
        MAdam([p]).add_param_group({"params": [q], "beta3": -2})


@pytest.mark.parametrize("cls", [Adam, MAdam, AdamAL, AdaBelief, AdaBound])
def test_load_state_dict_twice(cls):
    """A loaded optimizer still accepts a fresh optimizer's state_dict (torch's __setstate__ adds 'differentiable')."""
    params = make_params()
    opt = cls(params)
    opt.load_state_dict(cls(params).state_dict())
    opt.load_state_dict(cls(params).state_dict())
    assert opt.state_dict()["param_groups"] == cls(params).state_dict()["param_groups"]
