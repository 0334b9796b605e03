"""adamlab.schedules: exact values at chosen steps, state round trips, torch.optim interop, validation."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from adamlab import schedules
from adamlab.optim.adam import AdamW
from adamlab.optim.padam import Padam
from adamlab.schedules import CosineWarmRestarts, PartialExponentDecay, madam_beta3, normalized_weight_decay


def _params(n=2):
    return [torch.zeros(3, requires_grad=True) for _ in range(n)]


# -- the MAdam paper: beta3 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lr", "want"),
    [
        (3e-3, 5.4),  # the MAdam paper, Figure 1 (b): 2 * 3 * 0.9
        (1e-3, 0.9),  # (c): the default, unchanged
        (1e-3 / 3, 0.6),  # (d): 2 * (1/3) * 0.9
        (1e-4, 0.18),  # (e): 2 * 0.1 * 0.9
        (3e-4, 0.54),  # 2 * 0.3 * 0.9
        (5e-4, 0.9),  # ratio exactly 1/2: unchanged
        (1.9e-3, 0.9),  # ratio just below 2: unchanged
        (2e-3, 3.6),  # ratio 2: 2 * 2 * 0.9 (the rule jumps here)
        (1e-2, 18.0),
    ],
)
def test_madam_beta3_values(lr, want):
    assert madam_beta3(lr) == pytest.approx(want, rel=1e-12)


def test_madam_beta3_other_defaults():
    assert madam_beta3(0.4, base_lr=0.1, beta3=0.5) == pytest.approx(4.0, rel=1e-15)  # ratio 4: 2*4*0.5
    assert madam_beta3(0.1, base_lr=0.1, beta3=0.5) == 0.5


@pytest.mark.parametrize(
    ("kw", "name"),
    [({"lr": 0.0}, "lr"), ({"lr": -1.0}, "lr"), ({"lr": 1e-3, "base_lr": 0}, "base_lr"), ({"lr": 1e-3, "beta3": -0.1}, "beta3")],
)
def test_madam_beta3_rejects_bad_values(kw, name):
    with pytest.raises(ValueError, match=name):
        madam_beta3(**kw)


# -- Loshchilov & Hutter: normalized weight decay ---------------------------------------------------------


def test_normalized_weight_decay_formula():
    # sqrt(100 / (10000 * 1)) = 0.1
    assert normalized_weight_decay(0.05, batch_size=100, n_train=10000, epochs=1) == pytest.approx(0.005, rel=1e-15)
    # sqrt(128 / (50000 * 100)) = sqrt(2.56e-5) = 0.0050596442562694...
    assert normalized_weight_decay(0.05, 128, 50000, 100) == pytest.approx(0.05 * 0.0050596442562694, rel=1e-12)
    # four times the epochs halves it
    assert normalized_weight_decay(0.05, 100, 10000, 4) == pytest.approx(0.0025, rel=1e-15)
    # torch-style AdamW multiplies the decay by lr: weight_decay = lambda / lr
    assert normalized_weight_decay(0.05, 100, 10000, 1, lr=1e-3) == pytest.approx(5.0, rel=1e-12)


@pytest.mark.parametrize("name", ["wd_norm", "batch_size", "n_train", "epochs", "lr"])
def test_normalized_weight_decay_rejects_bad_values(name):
    kw = {"wd_norm": 0.05, "batch_size": 100, "n_train": 10000, "epochs": 1, "lr": 1e-3}
    kw[name] = -1
    with pytest.raises(ValueError, match=name):
        normalized_weight_decay(**kw)


# -- Loshchilov & Hutter: warm restarts -------------------------------------------------------------------

# eta_t = 0.5 (1 + cos(pi T_cur / T_i)), T_0 = 10, T_mult = 2: periods [0,10) [10,30) [30,70) [70,150)
HAND = {
    0: 1.0,
    5: 0.5,  # cos(pi/2) = 0
    9: 0.5 * (1 + math.cos(0.9 * math.pi)),
    10: 1.0,  # restart
    13: 0.5 * (1 + math.cos(math.pi * 3 / 20)),
    20: 0.5,  # T_cur 10 of 20
    29: 0.00615582970243117,  # 0.5 (1 + cos(0.95 pi)) = 0.5 (1 - 0.98768834059513...)
    30: 1.0,  # restart
    50: 0.5,  # T_cur 20 of 40
    69: 0.001541333133436018,  # 0.5 (1 + cos(39 pi / 40))
    70: 1.0,  # restart
    110: 0.5,  # T_cur 40 of 80
    150: 1.0,  # restart
}


def test_cosine_restart_multiplier_hand_values():
    for step, want in HAND.items():
        assert schedules.cosine_restart_multiplier(step, 10, 2) == pytest.approx(want, rel=1e-14, abs=1e-16), step
    # T_mult = 1: every T_0 steps; eta_min is the multiplier's floor
    assert schedules.cosine_restart_multiplier(25, 10, 1) == pytest.approx(0.5, abs=1e-15)
    assert schedules.cosine_restart_multiplier(5, 10, 2, eta_min=0.1) == pytest.approx(0.55, abs=1e-15)
    assert schedules.cosine_restart_multiplier(10**9 + 3, 10, 1) == pytest.approx(0.5 * (1 + math.cos(0.3 * math.pi)), rel=1e-14)


@pytest.mark.parametrize("scale_weight_decay", [False, True])
def test_warm_restarts_write_lr_and_weight_decay_of_every_group(scale_weight_decay):
    ps = _params(2)
    opt = AdamW([{"params": [ps[0]], "lr": 1e-2, "weight_decay": 0.1}, {"params": [ps[1]], "lr": 1e-3, "weight_decay": 0.0}])
    sched = CosineWarmRestarts(opt, T_0=10, T_mult=2, scale_weight_decay=scale_weight_decay)
    seen = {0: (opt.param_groups[0]["lr"], opt.param_groups[0]["weight_decay"], opt.param_groups[1]["lr"])}
    for t in range(1, 151):
        sched.step()
        seen[t] = (opt.param_groups[0]["lr"], opt.param_groups[0]["weight_decay"], opt.param_groups[1]["lr"])
    for step, eta in HAND.items():
        lr0, wd0, lr1 = seen[step]
        assert lr0 == pytest.approx(1e-2 * eta, rel=1e-14, abs=1e-18)
        assert lr1 == pytest.approx(1e-3 * eta, rel=1e-14, abs=1e-18)
        assert wd0 == pytest.approx(0.1 * eta if scale_weight_decay else 0.1, rel=1e-14, abs=1e-18)
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"], opt.param_groups[1]["lr"]]
    assert opt.param_groups[1]["weight_decay"] == 0.0


def test_warm_restarts_scale_adamw_decay_once():
    """With zero gradients AdamW only decays: p_t = p_0 prod(1 - eta_t lr0 wd0), the paper's eta_t * lambda per step."""
    p = torch.ones(4, dtype=torch.float64, requires_grad=True)
    opt = AdamW([p], lr=0.1, weight_decay=0.5)
    sched = CosineWarmRestarts(opt, T_0=4, T_mult=2)
    want = 1.0
    for t in range(20):
        p.grad = torch.zeros_like(p)
        opt.step()
        want *= 1 - schedules.cosine_restart_multiplier(t, 4, 2) * 0.1 * 0.5
        sched.step()
    assert torch.allclose(p.detach(), torch.full_like(p, want), rtol=1e-14, atol=0)


def test_warm_restarts_match_torch_on_a_torch_optimizer():
    """On torch.optim.SGD the learning rates equal torch's CosineAnnealingWarmRestarts (eta_min scaled by the base lr)."""
    ours_opt = torch.optim.SGD(_params(1), lr=0.2, momentum=0.9, weight_decay=1e-4)
    theirs_opt = torch.optim.SGD(_params(1), lr=0.2, momentum=0.9, weight_decay=1e-4)
    ours = CosineWarmRestarts(ours_opt, T_0=5, T_mult=3, eta_min=0.05)
    theirs = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(theirs_opt, T_0=5, T_mult=3, eta_min=0.05 * 0.2)
    for _ in range(100):
        assert ours_opt.param_groups[0]["lr"] == pytest.approx(theirs_opt.param_groups[0]["lr"], rel=1e-12, abs=1e-15)
        assert ours_opt.param_groups[0]["weight_decay"] == 1e-4
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        theirs.step()


def test_warm_restarts_fill_tensor_learning_rates_in_place():
    lr = torch.tensor(0.01)
    opt = AdamW(_params(1), lr=lr)
    sched = CosineWarmRestarts(opt, T_0=10)
    for _ in range(5):
        sched.step()
    assert opt.param_groups[0]["lr"] is lr
    assert lr.item() == pytest.approx(0.005, rel=1e-6)


def test_warm_restarts_state_round_trip():
    def build():
        ps = _params(2)
        opt = AdamW([{"params": [ps[0]], "lr": 1e-2}, {"params": [ps[1]], "lr": 3e-3, "weight_decay": 0.2}])
        return opt, CosineWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.01, scale_weight_decay=True)

    opt, sched = build()
    for _ in range(13):
        sched.step()
    saved_sched = copy.deepcopy(sched.state_dict())
    saved_opt = copy.deepcopy(opt.state_dict())
    assert saved_sched["last_step"] == 13 and "optimizer" not in saved_sched

    opt2, sched2 = build()
    for _ in range(2):  # a fresh scheduler in another place: the load must overwrite it
        sched2.step()
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    for _ in range(40):
        sched.step()
        sched2.step()
        assert [(g["lr"], g["weight_decay"]) for g in opt.param_groups] == [
            (g["lr"], g["weight_decay"]) for g in opt2.param_groups
        ]
    assert sched2.state_dict() == sched.state_dict()


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"T_0": 0}, "T_0"),
        ({"T_0": 2.5}, "T_0"),
        ({"T_0": 10, "T_mult": 0}, "T_mult"),
        ({"T_0": 10, "eta_min": 1.5}, "eta_min"),
        ({"T_0": 10, "eta_min": -0.1}, "eta_min"),
    ],
)
def test_warm_restarts_reject_bad_values(kw, name):
    with pytest.raises(ValueError, match=name):
        CosineWarmRestarts(AdamW(_params(1)), **kw)


def test_scheduler_load_rejects_foreign_state():
    sched = CosineWarmRestarts(AdamW(_params(1)), T_0=10)
    other = PartialExponentDecay(Padam(_params(1)), total_steps=10)
    with pytest.raises(ValueError, match="unknown keys"):
        sched.load_state_dict(other.state_dict())


# -- Adaptive exponent for ADAM: the decaying exponent -----------------------------------------------------------


def test_partial_exponent_linear_values():
    opt = Padam(_params(2))
    sched = PartialExponentDecay(opt, total_steps=10, start=0.5, end=0.125)
    values = [opt.param_groups[0]["partial"]]
    for _ in range(15):
        sched.step()
        values.append(opt.param_groups[0]["partial"])
    # 0.5 - 0.0375 t until t = 10, then the floor
    want = [0.5, 0.4625, 0.425, 0.3875, 0.35, 0.3125, 0.275, 0.2375, 0.2, 0.1625, 0.125] + [0.125] * 5
    assert values == pytest.approx(want, abs=1e-15)
    assert sched.last_value == values[-1]


def test_partial_exponent_exponential_values():
    opt = Padam([{"params": _params(1)}, {"params": _params(1), "partial": 0.3}])
    sched = PartialExponentDecay(opt, start=0.5, end=0.125, mode="exponential", gamma=0.5)
    values = [[g["partial"] for g in opt.param_groups]]
    for _ in range(3):
        sched.step()
        values.append([g["partial"] for g in opt.param_groups])
    # 0.125 + 0.375 * 0.5^t: exact binary fractions; every group gets the value
    assert values == [[0.5, 0.5], [0.3125, 0.3125], [0.21875, 0.21875], [0.171875, 0.171875]]


def test_partial_exponent_state_round_trip():
    opt = Padam(_params(1))
    sched = PartialExponentDecay(opt, start=0.4, end=0.05, mode="exponential", gamma=0.9)
    for _ in range(7):
        sched.step()
    saved = copy.deepcopy(sched.state_dict())
    opt2 = Padam(_params(1))
    sched2 = PartialExponentDecay(opt2, total_steps=3)  # different settings, overwritten by the load
    sched2.load_state_dict(saved)
    for _ in range(10):
        sched.step()
        sched2.step()
        assert opt2.param_groups[0]["partial"] == opt.param_groups[0]["partial"]
    assert opt.param_groups[0]["partial"] == pytest.approx(0.05 + 0.35 * 0.9**17, abs=1e-15)


def test_partial_exponent_with_a_torch_optimizer():
    """Any optimizer whose groups hold the key works (e.g. the Padam authors' torch-style class); others are refused."""
    opt = torch.optim.SGD([{"params": _params(1), "partial": 0.5}], lr=0.1)
    sched = PartialExponentDecay(opt, total_steps=4, end=0.25)
    sched.step()
    assert opt.param_groups[0]["partial"] == pytest.approx(0.4375)
    with pytest.raises(ValueError, match="partial"):
        PartialExponentDecay(torch.optim.Adam(_params(1)), total_steps=4)


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"total_steps": 10, "end": 0.0}, "end"),
        ({"total_steps": 10, "end": 0.3, "start": 0.2}, "end"),
        ({"total_steps": 10, "start": 0.6}, "start"),
        ({"total_steps": 0}, "total_steps"),
        ({}, "total_steps"),
        ({"mode": "exponential"}, "gamma"),
        ({"mode": "exponential", "gamma": 1.0}, "gamma"),
        ({"mode": "exponential", "gamma": 0.9, "total_steps": 5}, "total_steps"),
        ({"total_steps": 10, "mode": "cosine"}, "mode"),
    ],
)
def test_partial_exponent_rejects_bad_values(kw, name):
    with pytest.raises(ValueError, match=name):
        PartialExponentDecay(Padam(_params(1)), **kw)
