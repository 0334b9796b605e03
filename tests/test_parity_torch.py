"""Float64 parity with torch.optim over whole trajectories (to 1e-12)."""

from __future__ import annotations

import pytest
import torch
from util import assert_trajectories_close, trajectory

import adamlab

pytestmark = pytest.mark.usefixtures("float64_default")

# (adamlab class, torch class, keyword options) — every algorithm and option in torch's numerics.
CASES = [
    (adamlab.Adam, torch.optim.Adam, {}),
    (adamlab.Adam, torch.optim.Adam, {"amsgrad": True}),
    (adamlab.Adam, torch.optim.Adam, {"weight_decay": 0.05}),
    (adamlab.Adam, torch.optim.Adam, {"weight_decay": 0.05, "decoupled_weight_decay": True}),
    (adamlab.Adam, torch.optim.Adam, {"weight_decay": 0.05, "amsgrad": True, "maximize": True, "betas": (0.8, 0.99)}),
    (adamlab.AdamW, torch.optim.AdamW, {}),
    (adamlab.AdamW, torch.optim.AdamW, {"weight_decay": 0.3, "amsgrad": True}),
    (adamlab.Adamax, torch.optim.Adamax, {}),
    (adamlab.Adamax, torch.optim.Adamax, {"weight_decay": 0.05, "maximize": True}),
    (adamlab.NAdam, torch.optim.NAdam, {}),
    (adamlab.NAdam, torch.optim.NAdam, {"weight_decay": 0.05, "momentum_decay": 1e-2}),
    (adamlab.NAdam, torch.optim.NAdam, {"weight_decay": 0.05, "decoupled_weight_decay": True, "maximize": True}),
    (adamlab.RAdam, torch.optim.RAdam, {}),
    (adamlab.RAdam, torch.optim.RAdam, {"weight_decay": 0.05}),
    (adamlab.RAdam, torch.optim.RAdam, {"weight_decay": 0.05, "decoupled_weight_decay": True, "betas": (0.5, 0.9)}),
]
IDS = [f"{a.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}" for a, _, kw in CASES]


@pytest.mark.parametrize(("ours", "theirs", "kw"), CASES, ids=IDS)
def test_matches_torch(ours, theirs, kw):
    a = trajectory(lambda ps: ours(ps, lr=1e-2, **kw), steps=60)
    b = trajectory(lambda ps: theirs(ps, lr=1e-2, **kw), steps=60)
    assert_trajectories_close(a, b)


@pytest.mark.parametrize(("ours", "theirs", "kw"), CASES[::3], ids=IDS[::3])
def test_matches_torch_under_lambda_lr(ours, theirs, kw):
    def make(cls):
        def build(ps):
            opt = cls(ps, lr=2e-2, **kw)
            build.sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1 + 0.1 * t))
            return opt

        return build

    ma, mb = make(ours), make(theirs)
    a = trajectory(ma, steps=60, after_step=lambda o, t: ma.sched.step())
    b = trajectory(mb, steps=60, after_step=lambda o, t: mb.sched.step())
    assert_trajectories_close(a, b)


@pytest.mark.parametrize(("ours", "theirs", "kw"), CASES[::2], ids=IDS[::2])
def test_matches_torch_with_two_param_groups(ours, theirs, kw):
    def make(cls):
        def build(ps):
            first = {"params": ps[:2]}
            second = {"params": ps[2:], "lr": 3e-2, "betas": (0.7, 0.95), "eps": 1e-6, "weight_decay": 0.1}
            return cls([first, second], lr=1e-2, **kw)

        return build

    assert_trajectories_close(trajectory(make(ours)), trajectory(make(theirs)))


@pytest.mark.parametrize(("ours", "theirs", "kw"), CASES[::4], ids=IDS[::4])
def test_params_without_grad_are_skipped_like_torch(ours, theirs, kw):
    def skip(t, i):
        return (t + i) % 3 == 0

    a = trajectory(lambda ps: ours(ps, lr=1e-2, **kw), skip=skip)
    b = trajectory(lambda ps: theirs(ps, lr=1e-2, **kw), skip=skip)
    assert_trajectories_close(a, b)


def _no_bias_correction_reference(params0, grads, lr, b1, b2, eps, amsgrad):
    """Kingma & Ba's Adam without bias correction, float64, written from the formula alone."""
    out = []
    for p0, gs in zip(params0, grads):
        p, m, v, vmax = [float(x) for x in p0], [0.0] * len(p0), [0.0] * len(p0), [0.0] * len(p0)
        traj = []
        for g in gs:
            for j, gj in enumerate(g):
                m[j] = b1 * m[j] + (1 - b1) * gj
                v[j] = b2 * v[j] + (1 - b2) * gj * gj
                vmax[j] = max(vmax[j], v[j])
                p[j] -= lr * m[j] / ((vmax[j] if amsgrad else v[j]) ** 0.5 + eps)
            traj.append(list(p))
        out.append(traj)
    return out


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_without_bias_correction_matches_the_formula(amsgrad):
    gen = torch.Generator().manual_seed(3)
    shapes = [(3, 2), (5,)]
    params = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
    grads = [[torch.randn(s, generator=gen) for _ in range(80)] for s in shapes]
    ref = _no_bias_correction_reference(
        [p.detach().flatten().tolist() for p in params], [[g.flatten().tolist() for g in gs] for gs in grads], 0.01, 0.9, 0.99, 1e-8, amsgrad
    )
    opt = adamlab.Adam(params, lr=0.01, betas=(0.9, 0.99), eps=1e-8, amsgrad=amsgrad, bias_correction=False)
    worst = 0.0
    for t in range(80):
        for p, gs in zip(params, grads):
            p.grad = gs[t].clone()
        opt.step()
        for i, p in enumerate(params):
            worst = max(worst, (p.detach().flatten() - torch.tensor(ref[i][t])).abs().max().item())
    assert worst <= 1e-12
    moved = (params[0].detach().flatten() - torch.tensor(ref[0][0])).abs().max().item()
    assert moved > 1e-2


def test_bias_correction_changes_early_steps():
    """Without bias correction Adam's first step is (1-b1)/sqrt(1-b2) times smaller (Kingma & Ba, section 3)."""
    p1, p2 = torch.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)
    g = torch.tensor([1.0, -2.0, 0.5])
    a = adamlab.Adam([p1], lr=0.1, eps=0.0)
    b = adamlab.Adam([p2], lr=0.1, eps=0.0, bias_correction=False)
    p1.grad, p2.grad = g.clone(), g.clone()
    a.step()
    b.step()
    assert torch.allclose(p1.detach(), -0.1 * g.sign(), rtol=0, atol=1e-15)
    assert torch.allclose(p2.detach(), -0.1 * (1 - 0.9) / (1 - 0.999) ** 0.5 * g.sign(), rtol=0, atol=1e-15)
