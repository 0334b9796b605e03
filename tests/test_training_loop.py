"""Everything a torch training loop touches behaves as with torch.optim."""

from __future__ import annotations

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from util import assert_trajectories_close, max_diff, trajectory

import adamlab

ALL = [adamlab.Adam, adamlab.AdamW, adamlab.Adamax, adamlab.NAdam, adamlab.RAdam]
TORCH = {
    adamlab.Adam: torch.optim.Adam,
    adamlab.AdamW: torch.optim.AdamW,
    adamlab.Adamax: torch.optim.Adamax,
    adamlab.NAdam: torch.optim.NAdam,
    adamlab.RAdam: torch.optim.RAdam,
}


@pytest.mark.parametrize("cls", ALL)
def test_closure_is_called_with_grad_enabled_and_its_loss_returned(cls):
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = cls([w], lr=0.1)
    calls = []

    def closure():
        calls.append(torch.is_grad_enabled())
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert calls == [True] and loss.item() == 5.0
    assert (w.detach().abs() < torch.tensor([1.0, 2.0])).all()


@pytest.mark.parametrize("cls", ALL)
def test_param_without_grad_gets_no_state_and_no_decay(cls):
    p, q = torch.ones(3, requires_grad=True), torch.ones(2, requires_grad=True)
    opt = cls([p, q], lr=0.1, weight_decay=0.5)
    p.grad = torch.ones(3)
    opt.step()
    assert q not in opt.state and torch.equal(q.detach(), torch.ones(2))
    assert opt.state[p]["step"].item() == 1.0


@pytest.mark.parametrize("cls", ALL)
def test_zero_grad_sets_none_by_default(cls):
    p = torch.ones(3, requires_grad=True)
    opt = cls([p])
    p.grad = torch.ones(3)
    opt.zero_grad()
    assert p.grad is None
    p.grad = torch.ones(3)
    opt.zero_grad(set_to_none=False)
    assert torch.equal(p.grad, torch.zeros(3))


@pytest.mark.parametrize("cls", ALL)
def test_add_param_group_after_steps_matches_torch(cls):
    def add_group(opt, t):
        if t == 20:
            opt.add_param_group({"params": add_group.late, "lr": 5e-2})

    def make(c):
        def build(ps):
            add_group.late = ps[3:]
            return c(ps[:3], lr=1e-2)

        return build

    a = trajectory(make(cls), skip=lambda t, i: i >= 3 and t < 20, before_step=add_group)
    b = trajectory(make(TORCH[cls]), skip=lambda t, i: i >= 3 and t < 20, before_step=add_group)
    assert_trajectories_close(a, b)


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.bfloat16, 0.05), (torch.float16, 1e-2)])
def test_low_precision_params_follow_torch(cls, dtype, tol):
    kw = {"eps": 1e-3} if dtype == torch.float16 else {}  # 1e-8 underflows in float16, for torch too
    a = trajectory(lambda ps: cls(ps, lr=1e-2, **kw), steps=30, dtype=dtype)
    b = trajectory(lambda ps: TORCH[cls](ps, lr=1e-2, **kw), steps=30, dtype=dtype)
    assert max_diff(a, b) <= tol
    state = cls(p := [torch.zeros(2, dtype=dtype, requires_grad=True)])
    p[0].grad = torch.ones(2, dtype=dtype)
    state.step()
    assert all(v.dtype == dtype for k, v in state.state[p[0]].items() if k not in ("step", "mu_product"))


@pytest.mark.usefixtures("float64_default")
@pytest.mark.parametrize("cls", ALL)
def test_complex_params_follow_torch(cls):
    def run(c):
        gen = torch.Generator().manual_seed(0)
        z = torch.randn(4, 3, dtype=torch.complex128, generator=gen).requires_grad_()
        opt = c([z], lr=1e-2)
        for _ in range(30):
            z.grad = torch.randn(4, 3, dtype=torch.complex128, generator=gen)
            opt.step()
        return z.detach()

    assert (run(cls) - run(TORCH[cls])).abs().max().item() <= 1e-12


@pytest.mark.parametrize("cls", ALL)
def test_lr_schedulers_work_unchanged(cls):
    w = torch.ones(3, requires_grad=True)
    opt = cls([w], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        w.grad = torch.ones(3)
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == [0.1, 0.05, 0.05, 0.025, 0.025]


@pytest.mark.parametrize("cls", ALL)
def test_grad_scaler_unscales_and_skips_inf_steps(cls):
    model = torch.nn.Linear(3, 1)
    ref = torch.nn.Linear(3, 1)
    ref.load_state_dict(model.state_dict())
    opt, ref_opt = cls(model.parameters(), lr=0.1), cls(ref.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    x = torch.randn(8, 3)
    for _ in range(3):
        opt.zero_grad()
        scaler.scale(model(x).pow(2).mean()).backward()
        scaler.step(opt)
        scaler.update()
        ref_opt.zero_grad()
        ref(x).pow(2).mean().backward()
        ref_opt.step()
    assert torch.allclose(model.weight, ref.weight, rtol=0, atol=1e-6)
    # an inf gradient: the scaler skips the step and the params stay as they are
    before = model.weight.detach().clone()
    opt.zero_grad()
    scaler.scale(model(x).sum() * float("inf")).backward()
    scaler.step(opt)
    scaler.update()
    assert torch.equal(model.weight.detach(), before)
    assert scaler.get_scale() == 512.0


def test_step_hooks_run():
    w = torch.ones(2, requires_grad=True)
    opt = adamlab.Adam([w])
    seen = []
    opt.register_step_pre_hook(lambda o, a, k: seen.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: seen.append("post"))
    w.grad = torch.ones(2)
    opt.step()
    assert seen == ["pre", "post"]


def test_step_hooks_and_profiler_as_in_torch(monkeypatch):
    """Hooks (own and global, a pre-hook replacing the arguments) and the profiler's step range work as
    in torch.optim; without them the step skips torch's wrapper (no profiler range is entered)."""
    w = torch.ones(2, requires_grad=True)
    opt = adamlab.Adam([w], lr=0.1)
    w.grad = torch.ones(2)
    with monkeypatch.context() as m:
        m.setattr(torch.autograd.profiler, "record_function", None)  # (torch's wrapper would call it)
        assert opt.step(lambda: 3.0) == 3.0
    assert torch.allclose(w, torch.full((2,), 0.9))

    seen = []
    handles = [
        register_optimizer_step_pre_hook(lambda o, a, k: seen.append("global pre")),
        opt.register_step_pre_hook(lambda o, a, k: (a, {"closure": lambda: 7.0})),
        opt.register_step_post_hook(lambda o, a, k: seen.append(("post", k["closure"]()))),
        register_optimizer_step_post_hook(lambda o, a, k: seen.append("global post")),
    ]
    try:
        assert opt.step() == 7.0
    finally:
        for handle in handles:
            handle.remove()
    assert seen == ["global pre", ("post", 7.0), "global post"]

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        opt.step()
    assert "Optimizer.step#Adam.step" in {event.name for event in prof.events()}


def test_sparse_gradients_are_refused():
    w = torch.ones(3, requires_grad=True)
    opt = adamlab.Adam([w])
    w.grad = torch.ones(3).to_sparse()
    with pytest.raises(RuntimeError, match="does not support sparse gradients"):
        opt.step()


@pytest.mark.parametrize("engine", ["reference", "packed"])
@pytest.mark.parametrize("cls", ALL)
def test_non_finite_gradients_propagate_as_in_torch(cls, engine):
    """Documented behaviour: a NaN/inf gradient is not filtered (as in torch.optim); only its param is hit."""
    p, q = torch.ones(3, requires_grad=True), torch.ones(2, requires_grad=True)
    ref_p = torch.ones(3, requires_grad=True)
    opt = cls([p, q], lr=0.1, engine=engine)
    ref = TORCH[cls]([ref_p], lr=0.1)
    p.grad, ref_p.grad = torch.tensor([1.0, float("nan"), float("inf")]), torch.tensor([1.0, float("nan"), float("inf")])
    q.grad = torch.ones(2)
    opt.step()
    ref.step()
    assert torch.equal(torch.isfinite(p), torch.isfinite(ref_p)) and not torch.isfinite(p).all()
    assert torch.isfinite(q).all() and (q < 1).all()
