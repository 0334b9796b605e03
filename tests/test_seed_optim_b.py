"""Padam, SWATS and ND-Adam against independent float64 references written from the papers / authors' code.

Every reference below is plain numpy in float64, written from the published update (see each
class docstring for the source); none calls adamlab. The gradients are the harness's
(tests/util.py: N(0, 1) noise + 0.1 * param, drawn from the same torch generator), or, for SWATS's
switching runs, a precomputed sequence designed so that tensors switch.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from util import SHAPES, assert_trajectories_close, make_params, max_diff, trajectory

from adamlab.optim.adam import Adam
from adamlab.optim.ndadam import NDAdam
from adamlab.optim.padam import Padam
from adamlab.optim.swats import SWATS
from adamlab.schedules import PartialExponentDecay

STEPS = 60
ND_SHAPES = SHAPES + ((3, 2, 2, 2),)  # add a conv-like kernel: 3 vectors of 8


def _record(name: str, ours: list[torch.Tensor], ref: list[torch.Tensor], tol: float = 1e-12) -> None:
    print(f"{name}: max diff {max_diff(ours, ref):.3e}")  # shown with pytest -s
    assert_trajectories_close(ours, ref, tol)


# -- a reference driver: the harness's gradients, numpy updates -----------------------------------


def reference_trajectory(update, init, steps=STEPS, seed=0, shapes=SHAPES, skip=None, maximize=False, hyper=None):
    """Replays tests/util.trajectory's gradients and applies ``update(x, g, state, t)`` in numpy.

    ``init(x)`` makes a param's state (with ``k`` = 0); ``hyper(t)`` (optional) gives per-step
    hyperparameters passed through ``state["hyper"]``.
    """
    xs = [p.detach().numpy().copy() for p in make_params(seed, shapes)]
    states: list[dict | None] = [None] * len(xs)
    gen = torch.Generator().manual_seed(seed + 1000)
    out = []
    for t in range(steps):
        for i, x in enumerate(xs):
            noise = torch.randn(x.shape, generator=gen, dtype=torch.float64).numpy()
            if skip is not None and skip(t, i):
                continue
            g = noise + 0.1 * x
            if maximize:
                g = -g
            if states[i] is None:
                states[i] = init(x)
            states[i]["k"] += 1
            if hyper is not None:
                states[i]["hyper"] = hyper(t)
            xs[i] = update(x, g, states[i], t)
        out.append(torch.from_numpy(np.concatenate([x.ravel() for x in xs])))
    return out


def skip_some(t: int, i: int) -> bool:
    return (t + i) % 4 == 0


# -- Padam -------------------------------------------------------------------------------------


def padam_reference(lr, betas=(0.9, 0.999), eps=1e-8, partial=0.25, weight_decay=0.0, bias_correction=True):
    """Chen & Gu's Padam as the authors' Padam.py computes it (amsgrad=True), in numpy."""
    b1, b2 = betas

    def init(x):
        return {"k": 0, "m": np.zeros_like(x), "v": np.zeros_like(x), "vmax": np.zeros_like(x)}

    def update(x, g, s, t):
        p = s.get("hyper", partial)
        k = s["k"]
        g = g + weight_decay * x
        s["m"] = b1 * s["m"] + (1 - b1) * g
        s["v"] = b2 * s["v"] + (1 - b2) * g * g
        s["vmax"] = np.maximum(s["vmax"], s["v"])
        denom = (np.sqrt(s["vmax"]) + eps) ** (2 * p)
        if bias_correction:
            return x - lr * math.sqrt(1 - b2**k) / (1 - b1**k) * s["m"] / denom
        return x - lr * s["m"] / denom

    return update, init


PADAM_CASES = {
    "default": {},
    "p1/8-wd": {"partial": 0.125, "weight_decay": 0.05},
    "p1/2": {"partial": 0.5},
    "no-bias-correction": {"bias_correction": False, "partial": 0.2},
    "eps1e-3-betas": {"eps": 1e-3, "betas": (0.8, 0.99), "partial": 0.3},
}


@pytest.mark.parametrize("case", list(PADAM_CASES))
@pytest.mark.parametrize("variant", ["plain", "skip", "maximize"])
def test_padam_matches_reference(case, variant):
    kw = PADAM_CASES[case]
    lr = 1e-2
    skip = skip_some if variant == "skip" else None
    maximize = variant == "maximize"
    ours = trajectory(lambda ps: Padam(ps, lr=lr, maximize=maximize, **kw), steps=STEPS, skip=skip)
    update, init = padam_reference(lr, **kw)
    ref = reference_trajectory(update, init, skip=skip, maximize=maximize)
    _record(f"padam[{case},{variant}]", ours, ref)


@pytest.mark.parametrize("mode", ["linear", "exponential"])
def test_padam_partial_driven_by_decaying_exponent(mode):
    """``partial`` changes between steps: the decaying-exponent schedule drives it, the reference recomputes it."""
    start, end, total, gamma = 0.5, 0.1, 40, 0.9
    kwargs = {"total_steps": total} if mode == "linear" else {"gamma": gamma}
    scheds = []

    def make(ps):
        opt = Padam(ps, lr=1e-2)
        scheds.append(PartialExponentDecay(opt, start=start, end=end, mode=mode, **kwargs))
        return opt

    ours = trajectory(make, steps=STEPS, after_step=lambda opt, t: scheds[0].step())

    def p_at(t):  # the value in force during optimizer step t + 1 (scheduler stepped t times)
        if mode == "linear":
            return start + (end - start) * min(t, total) / total
        return end + (start - end) * gamma**t

    update, init = padam_reference(1e-2)
    ref = reference_trajectory(update, init, hyper=p_at)
    _record(f"padam[schedule-{mode}]", ours, ref)
    assert scheds[0].optimizer.param_groups[0]["partial"] == pytest.approx(p_at(STEPS), abs=1e-15)


def test_padam_general_power_in_float32_is_within_a_few_ulps_of_pow():
    """Padam's d**(2p) for p not in {1/2, 1/4, 1/8} is exp(2p log d): in float32 within 3e-6 relative
    of a correctly rounded power, over the range a denominator sqrt(v) + eps takes."""
    d = torch.logspace(-9, 4, 200_001, dtype=torch.float64)
    for p in (0.05, 0.3, 0.45):
        exact = d ** (2 * p)
        d32 = d.float()
        ours = torch.exp(torch.log(d32) * torch.tensor(2 * p, dtype=torch.float64)).double()
        rounded = (d32.double() ** (2 * p)).float().double()  # pow of the same float32 input, rounded
        assert ((ours - rounded).abs() / exact).max().item() < 3e-6  # (measured 2.2e-6, at p = 0.45, d = 1e4)
    # the rule itself uses this form (a float32 step equals the formula written out; the packed engine's
    # C++ kernel computes the power otherwise: tests/test_packed.py)
    p = torch.full((5,), 2.0, requires_grad=True)
    p.grad = torch.tensor([1e-4, 1e-2, 1.0, 10.0, -3.0])
    opt = Padam([p], lr=0.1, partial=0.3, betas=(0.9, 0.999), eps=1e-8, engine="reference")
    opt.step()
    g = p.grad
    m, v = 0.1 * g, 0.001 * g * g
    denom = torch.exp(torch.log(v.sqrt() + 1e-8) * torch.tensor(0.6, dtype=torch.float64))
    want = 2.0 - m / denom * (0.1 * math.sqrt(1 - 0.999) / (1 - 0.9))
    assert torch.allclose(p.detach(), want, rtol=1e-6, atol=0)


def test_padam_half_with_eps0_is_amsgrad():
    """p = 1/2, eps = 0: lr*sqrt(bc2)/bc1 * m/sqrt(vmax) == lr/bc1 * m/(sqrt(vmax)/sqrt(bc2)), Adam(amsgrad)."""
    ours = trajectory(lambda ps: Padam(ps, lr=1e-2, partial=0.5, eps=0.0), steps=STEPS)
    adam = trajectory(lambda ps: Adam(ps, lr=1e-2, amsgrad=True, eps=0.0), steps=STEPS)
    _record("padam[p=1/2,eps=0] vs Adam(amsgrad,eps=0)", ours, adam)


def test_padam_half_without_bias_correction_is_uncorrected_amsgrad():
    ours = trajectory(lambda ps: Padam(ps, lr=1e-2, partial=0.5, bias_correction=False, weight_decay=0.01), steps=STEPS)
    adam = trajectory(lambda ps: Adam(ps, lr=1e-2, amsgrad=True, bias_correction=False, weight_decay=0.01), steps=STEPS)
    _record("padam[p=1/2,no-bc] vs Adam(amsgrad,no-bc)", ours, adam)


# -- SWATS -------------------------------------------------------------------------------------


def swats_reference_step(x, g, s, lr, betas, eps, weight_decay):
    """One step of Keskar & Socher's Algorithm 1 for one tensor (flattened as one vector); ``s["k"]`` is this step's k."""
    b1, b2 = betas
    k = s["k"]
    g = g + weight_decay * x
    if s["phase"] == "SGD":
        s["v"] = b1 * s["v"] + g
        return x - (1 - b1) * s["Lambda"] * s["v"]
    s["m"] = b1 * s["m"] + (1 - b1) * g
    s["a"] = b2 * s["a"] + (1 - b2) * g * g
    p = -lr * math.sqrt(1 - b2**k) / (1 - b1**k) * s["m"] / (np.sqrt(s["a"]) + eps)
    x = x + p
    pg = float(np.dot(p.ravel(), g.ravel()))
    if pg != 0:
        gamma = float(np.dot(p.ravel(), p.ravel())) / -pg
        s["lambda"] = b2 * s["lambda"] + (1 - b2) * gamma
        if k > 1 and abs(s["lambda"] / (1 - b2**k) - gamma) < eps:
            s["phase"] = "SGD"
            s["v"] = np.zeros_like(x)
            s["Lambda"] = s["lambda"] / (1 - b2**k)
            s["switch"] = k
    return x


def swats_init(x):
    return {"k": 0, "m": np.zeros_like(x), "a": np.zeros_like(x), "lambda": 0.0, "Lambda": 0.0, "phase": "Adam", "switch": 0}


SWATS_CASES = {
    "default": {},
    "lr1e-2-wd": {"lr": 1e-2, "weight_decay": 0.05},
    "betas-eps": {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6},
}


@pytest.mark.parametrize("case", list(SWATS_CASES))
@pytest.mark.parametrize("variant", ["plain", "skip", "maximize"])
def test_swats_matches_reference_on_noisy_gradients(case, variant):
    kw = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-9, "weight_decay": 0.0, **SWATS_CASES[case]}
    skip = skip_some if variant == "skip" else None
    maximize = variant == "maximize"
    ours = trajectory(lambda ps: SWATS(ps, maximize=maximize, **kw), steps=STEPS, skip=skip, grad_scale=1.0)

    def update(x, g, s, t):
        return swats_reference_step(x, g, s, kw["lr"], kw["betas"], kw["eps"], kw["weight_decay"])

    ref = reference_trajectory(update, swats_init, skip=skip, maximize=maximize)
    _record(f"swats[{case},{variant}]", ours, ref)


def test_swats_with_eps0_is_adam_with_eps0():
    """eps = 0: the switch test |.| < 0 never holds, and the Adam phase is Adam(eps=0) in exact arithmetic."""
    ours = trajectory(lambda ps: SWATS(ps, lr=1e-2, eps=0.0), steps=STEPS)
    adam = trajectory(lambda ps: Adam(ps, lr=1e-2, eps=0.0), steps=STEPS)
    _record("swats[eps=0] vs Adam(eps=0)", ours, adam)


# Switching runs: gradients g_k = c + noise * rate^k, independent of the params, so that the
# projected rate gamma_k settles and each tensor meets |Lambda_k - gamma_k| < eps at its own step.
# Small betas shorten the memories (beta1^k and beta2^k must fall to ~1e-10); one tensor keeps
# full noise and never switches; one has a constant gradient under the paper's default betas
# (it switches at k = 2: gamma_1 and gamma_2 differ only through eps / sqrt(1 - beta2^k)).
SWITCH_SHAPES = ((4, 3), (2, 3, 2), (6,), (5, 1, 2), (7,), (3,))
SWITCH_RATES = (0.2, 0.5, 0.3, 0.5, 1.0, 0.0)
SWITCH_GROUPS = (  # (param indices, betas)
    ((0, 1), (0.3, 0.3)),
    ((2, 3), (0.5, 0.5)),
    ((4, 5), (0.9, 0.999)),
)
SWITCH_STEPS = 70
SWITCH_LR = 1e-2


def switching_grads(steps=SWITCH_STEPS, seed=3, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    const = [torch.randn(s, generator=gen, dtype=torch.float64) for s in SWITCH_SHAPES]
    out = []
    for k in range(steps):
        out.append(
            [
                (c + torch.randn(c.shape, generator=gen, dtype=torch.float64) * r ** (k + 1)).to(dtype)
                for c, r in zip(const, SWITCH_RATES)
            ]
        )
    return out


def switching_params(seed=4, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype).requires_grad_() for s in SWITCH_SHAPES]


def make_switching_swats(params, **kw):
    groups = [{"params": [params[i] for i in idx], "betas": betas} for idx, betas in SWITCH_GROUPS]
    return SWATS(groups, lr=SWITCH_LR, **kw)


def run(opt, params, grads, before_step=None):
    out = []
    for t, gs in enumerate(grads):
        if before_step is not None:
            before_step(opt, t)
        for p, g in zip(params, gs):
            p.grad = g.clone()
        opt.step()
        out.append(torch.cat([p.detach().double().flatten() for p in params]))
    return out


def swats_switching_reference(grads, weight_decay=lambda t: 0.0):
    xs = [p.detach().numpy().copy() for p in switching_params()]
    betas_of = {i: betas for idx, betas in SWITCH_GROUPS for i in idx}
    states = [swats_init(x) for x in xs]
    out = []
    for t, gs in enumerate(grads):
        for i, g in enumerate(gs):
            states[i]["k"] += 1
            xs[i] = swats_reference_step(xs[i], g.numpy(), states[i], SWITCH_LR, betas_of[i], 1e-9, weight_decay(t))
        out.append(torch.from_numpy(np.concatenate([x.ravel() for x in xs])))
    return out, states


@pytest.mark.parametrize("late_weight_decay", [0.0, 0.05])
def test_swats_switches_and_matches_reference(late_weight_decay):
    """Tensors switch at their own steps; then (optionally) L2 decay is switched on at step 41, in both phases.

    (Decay from the start would keep the gradient moving with the params, and nothing would switch.)
    """
    grads = switching_grads()
    params = switching_params()
    opt = make_switching_swats(params)

    def wd_at(t):
        return late_weight_decay if t >= 40 else 0.0

    def set_wd(opt, t):
        for group in opt.param_groups:
            group["weight_decay"] = wd_at(t)

    ours = run(opt, params, grads, before_step=set_wd)
    ref, ref_states = swats_switching_reference(grads, wd_at)
    _record(f"swats[switching,late wd={late_weight_decay}]", ours, ref)

    ref_switch = [s["switch"] for s in ref_states]
    our_switch = [int(opt.state[p]["switch_step"].item()) for p in params]
    print(f"SWATS switch steps: ours {our_switch}, reference {ref_switch}")
    assert our_switch == ref_switch
    # tensors 0-3 and the constant-gradient one switch; the always-noisy one never does
    assert all(k > 1 for k in our_switch[:4]) and our_switch[5] > 1 and our_switch[4] == 0
    assert len(set(our_switch[:4])) > 1, "switches should happen at different steps"
    assert max(our_switch) < 40, "every switch happens before the decay starts, and the SGD phase runs for 30+ steps"
    for p, s in zip(params, ref_states):
        lam = opt.state[p]["sgd_lr"].item()
        assert abs(lam - s["Lambda"]) <= 1e-15 * max(1.0, abs(s["Lambda"]))
        assert (lam > 0) == (s["switch"] > 0)


def test_swats_sgd_phase_is_heavy_ball_at_the_learned_rate():
    """After the switch the update is exactly -(1-beta1)*Lambda*v with v = beta1 v + g (v zeroed at the switch)."""
    grads = switching_grads()
    params = switching_params()
    opt = make_switching_swats(params)
    run(opt, params, grads[:60])
    p = params[0]  # switched well before step 60
    s = opt.state[p]
    assert 0 < s["switch_step"].item() < 60
    b1 = opt.param_groups[0]["betas"][0]
    before, buf = p.detach().clone(), s["momentum_buffer"].clone()
    m, a = s["exp_avg"].clone(), s["exp_avg_sq"].clone()
    run(opt, params, grads[60:61])
    expect_buf = b1 * buf + grads[60][0]
    assert torch.equal(s["momentum_buffer"], expect_buf)
    assert torch.allclose(p.detach(), before - (1 - b1) * s["sgd_lr"] * expect_buf, rtol=0, atol=1e-15)
    assert torch.equal(s["exp_avg"], m) and torch.equal(s["exp_avg_sq"], a), "Adam moments are frozen after the switch"


# -- ND-Adam -----------------------------------------------------------------------------------


def ndadam_reference(lr, betas=(0.9, 0.999), eps=1e-8):
    """Zhang et al.'s ND-Adam as the authors' pytorch/ndadam.py computes it (vec_axes = all but the first)."""
    b1, b2 = betas

    def init(x):
        v = np.zeros((x.shape[0], 1)) if x.ndim >= 2 else np.zeros_like(x)
        return {"k": 0, "m": np.zeros(x.shape).reshape(x.shape[0], -1) if x.ndim >= 2 else np.zeros_like(x), "v": v}

    def update(x, g, s, t):
        k = s["k"]
        step = lr * math.sqrt(1 - b2**k) / (1 - b1**k)
        if x.ndim < 2:
            s["m"] = b1 * s["m"] + (1 - b1) * g
            s["v"] = b2 * s["v"] + (1 - b2) * g * g
            return x - step * s["m"] / (np.sqrt(s["v"]) + eps)
        w = x.reshape(x.shape[0], -1)
        gw = g.reshape(x.shape[0], -1)
        gw = gw - np.sum(gw * w, axis=1, keepdims=True) * w
        s["m"] = b1 * s["m"] + (1 - b1) * gw
        s["v"] = b2 * s["v"] + (1 - b2) * np.sum(gw * gw, axis=1, keepdims=True)
        w = w - step * s["m"] / (np.sqrt(s["v"]) + eps)
        w = w / np.linalg.norm(w, axis=1, keepdims=True)
        return w.reshape(x.shape)

    return update, init


def assert_rows_unit_norm(opt, t):
    for group in opt.param_groups:
        for p in group["params"]:
            if p.dim() >= 2 and p.grad is not None and opt.state[p]:
                norms = p.detach().reshape(p.shape[0], -1).norm(dim=1)
                assert torch.allclose(norms, torch.ones_like(norms), rtol=0, atol=1e-12), f"step {t + 1}: row norms {norms}"


ND_CASES = {
    "default": {"lr": 1e-2},
    "betas-eps": {"lr": 5e-2, "betas": (0.8, 0.99), "eps": 1e-3},
}


@pytest.mark.parametrize("case", list(ND_CASES))
@pytest.mark.parametrize("variant", ["plain", "skip", "maximize"])
def test_ndadam_matches_reference_and_keeps_rows_unit_norm(case, variant):
    kw = ND_CASES[case]
    skip = skip_some if variant == "skip" else None
    maximize = variant == "maximize"
    ours = trajectory(
        lambda ps: NDAdam(ps, maximize=maximize, **kw), steps=STEPS, shapes=ND_SHAPES, skip=skip, after_step=assert_rows_unit_norm
    )
    update, init = ndadam_reference(**kw)
    ref = reference_trajectory(update, init, shapes=ND_SHAPES, skip=skip, maximize=maximize)
    _record(f"ndadam[{case},{variant}]", ours, ref)


def test_ndadam_state_layout():
    params = make_params(shapes=ND_SHAPES)
    opt = NDAdam(params)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    for p in params:
        want = (p.shape[0], 1) if p.dim() >= 2 else tuple(p.shape)
        assert tuple(opt.state[p]["exp_avg_sq"].shape) == want
        assert opt.state[p]["exp_avg"].shape == p.shape


def test_ndadam_on_vectors_only_is_adam_with_eps0():
    shapes = ((7,), (1,), (3,))
    ours = trajectory(lambda ps: NDAdam(ps, lr=1e-2, eps=0.0), steps=STEPS, shapes=shapes)
    adam = trajectory(lambda ps: Adam(ps, lr=1e-2, eps=0.0), steps=STEPS, shapes=shapes)
    _record("ndadam[1-d,eps=0] vs Adam(eps=0)", ours, adam)


# -- state_dict round trips ----------------------------------------------------------------------


def _plain_grads(n, shapes, seed=7, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return [[torch.randn(s, generator=gen, dtype=torch.float64).to(dtype) for s in shapes] for _ in range(n)]


ROUNDTRIP = {
    "padam": (lambda ps: Padam(ps, lr=1e-2, partial=0.125, weight_decay=0.01), SHAPES),
    "padam-no-bc": (lambda ps: Padam(ps, lr=1e-2, bias_correction=False), SHAPES),
    "swats": (lambda ps: SWATS(ps, lr=1e-2), SHAPES),
    "ndadam": (lambda ps: NDAdam(ps, lr=1e-2), ND_SHAPES),
}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", list(ROUNDTRIP))
def test_state_dict_round_trip_is_bit_for_bit(name, dtype):
    make, shapes = ROUNDTRIP[name]
    grads = _plain_grads(50, shapes, dtype=dtype)
    params = make_params(shapes=shapes, dtype=dtype)
    straight = run(make(params), params, grads)

    params = make_params(shapes=shapes, dtype=dtype)
    opt = make(params)
    first = run(opt, params, grads[:25])
    saved = copy.deepcopy(opt.state_dict())
    params = [p.detach().clone().requires_grad_() for p in params]
    opt = make(params)
    opt.load_state_dict(saved)
    resumed = first + run(opt, params, grads[25:])
    assert all(torch.equal(a, b) for a, b in zip(straight, resumed))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_swats_state_dict_round_trip_after_switch(dtype):
    grads = switching_grads(dtype=dtype)
    params = switching_params(dtype=dtype)
    opt = make_switching_swats(params)
    straight = run(opt, params, grads)
    final_switch = [opt.state[p]["switch_step"].item() for p in params]

    params = switching_params(dtype=dtype)
    opt = make_switching_swats(params)
    first = run(opt, params, grads[:25])
    at_25 = [opt.state[p]["switch_step"].item() for p in params]
    if dtype == torch.float64:  # the switch steps are those of test_swats_switches_and_matches_reference
        assert any(0 < k <= 25 for k in at_25), f"some tensor must have switched by step 25: {at_25}"
        assert any(k == 0 for k in at_25)
    saved = copy.deepcopy(opt.state_dict())
    params = [p.detach().clone().requires_grad_() for p in params]
    opt = make_switching_swats(params)
    opt.load_state_dict(saved)
    resumed = first + run(opt, params, grads[25:])
    assert all(torch.equal(a, b) for a, b in zip(straight, resumed))
    assert [opt.state[p]["switch_step"].item() for p in params] == final_switch
    for p in params:
        for key in ("proj_lr_avg", "sgd_lr", "switch_step"):
            t = opt.state[p][key]
            assert t.dim() == 0 and t.dtype == p.dtype


# -- hyperparameter validation -------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0.0, -0.1, 0.5000001, 0.75, 1.0, float("nan"), True, "half"])
def test_padam_rejects_partial_outside_range(bad):
    with pytest.raises(ValueError, match=r"partial.*\(0, 0\.5\]"):
        Padam(make_params(), partial=bad)


def test_padam_partial_checked_on_groups_and_loaded_state_dicts():
    params = make_params()
    opt = Padam(params[:2])
    with pytest.raises(ValueError, match="partial"):
        opt.add_param_group({"params": params[2:], "partial": 0.6})
    good = Padam(params[:2], partial=0.5)
    sd = copy.deepcopy(good.state_dict())
    sd["param_groups"][0]["partial"] = 0.0
    with pytest.raises(ValueError, match="partial"):
        good.load_state_dict(sd)
    assert good.param_groups[0]["partial"] == 0.5


@pytest.mark.parametrize("cls", [Padam, SWATS, NDAdam])
@pytest.mark.parametrize(
    ("key", "bad"), [("lr", -1e-3), ("betas", (1.0, 0.999)), ("betas", (0.9, -0.1)), ("eps", -1e-8), ("betas", (0.9,))]
)
def test_bad_common_hyperparameters_raise(cls, key, bad):
    with pytest.raises(ValueError, match=key):
        cls(make_params(), **{key: bad})


@pytest.mark.parametrize("cls", [Padam, SWATS])
def test_negative_weight_decay_raises(cls):
    with pytest.raises(ValueError, match="weight_decay"):
        cls(make_params(), weight_decay=-0.1)


def test_ndadam_has_only_the_public_keywords_and_rejects_complex():
    with pytest.raises(TypeError):
        NDAdam(make_params(), weight_decay=0.1)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="complex"):
        NDAdam([torch.zeros(3, 2, dtype=torch.complex128, requires_grad=True)])


def test_switch_state_is_checked_on_load():
    """A SWATS state_dict does not load into ND-Adam (another algorithm; without the record of it, other keys)."""
    params = make_params()
    a = SWATS(params)
    for p in params:
        p.grad = torch.ones_like(p)
    a.step()
    b = NDAdam([p.detach().clone().requires_grad_() for p in params])
    saved = copy.deepcopy(a.state_dict())
    with pytest.raises(ValueError, match="saved by adamlab's SWATS, a different algorithm"):
        b.load_state_dict(saved)
    del saved["adamlab_algorithm"]
    with pytest.raises(ValueError, match=r"carries the hyperparameters \['weight_decay'\], which NDAdam does not have"):
        b.load_state_dict(saved)
