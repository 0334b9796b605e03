"""What code outside the optimizer does to it between steps, on both engines.

torch.optim reads ``opt.state``, ``param_groups`` and each param's data afresh at every step, so
user code (resetting moments, swapping params in, ``model.to()``) takes effect at the next step. The
reference engine does the same; the packed engine, which keeps params and state in flat buffers,
must follow each change as the reference engine does, or refuse it with the same error.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from util import make_params

import adamlab

pytestmark = pytest.mark.usefixtures("float64_default")

ENGINES = ("reference", "packed")


def feed(opt, params, steps, gen, change=None):
    """``steps`` steps of seeded gradients; ``change(opt, params, t)`` runs before step t. Returns the params after."""
    for t in range(steps):
        if change is not None:
            change(opt, params, t)
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype) + 0.1 * p.detach()
        opt.step()
    return [p.detach().clone() for p in params]


def run(engine, change, steps=12, cls=adamlab.Adam, **kw):
    params = make_params(0)
    opt = cls(params, lr=1e-2, engine=engine, **kw) if engine != "torch" else torch.optim.Adam(params, lr=1e-2, **kw)
    return feed(opt, params, steps, torch.Generator().manual_seed(1), change), opt


def assert_same(a, b, tol=1e-12):
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=tol)


def clear_state(opt, params, t):
    if t == 5:
        opt.state.clear()


def delete_one_state(opt, params, t):
    if t == 4:
        del opt.state[params[2]]


def zero_a_moment(opt, params, t):
    if t == 6:
        opt.state[params[0]]["exp_avg"] = torch.zeros_like(params[0])


def reset_moments_in_place(opt, params, t):
    if t == 6:
        for state in opt.state.values():
            state["exp_avg_sq"].zero_()


@pytest.mark.parametrize("change", [clear_state, delete_one_state, zero_a_moment, reset_moments_in_place])
def test_state_changes_are_followed_as_torch_follows_them(change, grads_read):
    expected, _ = run("torch", change)
    for engine in ENGINES:
        got, opt = run(engine, change)
        assert_same(got, expected)
        saved = opt.state_dict()["state"]
        assert sorted(saved) == [0, 1, 2, 3, 4] and all(type(s) is dict for s in saved.values())
    unchanged, _ = run("reference", None)
    assert max((a - b).abs().max().item() for a, b in zip(unchanged, expected)) > 1e-6  # (the change mattered)


@pytest.mark.parametrize("cls", [adamlab.SWATS, adamlab.NDAdam, adamlab.NAdam, adamlab.Padam])
def test_cleared_state_starts_afresh_for_every_kind_of_state(cls, grads_read):
    expected, _ = run("reference", clear_state, cls=cls)
    got, _ = run("packed", clear_state, cls=cls)
    assert_same(got, expected)


def test_new_params_in_a_group_are_stepped_and_the_old_ones_left(grads_read):
    def run_swap(engine):
        params, fresh = make_params(0), make_params(7)
        opt = adamlab.Adam(params, lr=1e-2, engine=engine)
        gen = torch.Generator().manual_seed(2)
        feed(opt, params, 3, gen)
        before = [p.detach().clone() for p in params]
        opt.param_groups[0]["params"] = fresh
        for p in params:  # (stale grads on the old params must not be used)
            p.grad = torch.ones_like(p)
        after = feed(opt, fresh, 4, gen)
        assert all(torch.equal(p, q) for p, q in zip(params, before))
        return after

    reference = run_swap("reference")
    assert_same(run_swap("packed"), reference)
    assert_same(reference, run_swap_torch())


def run_swap_torch():
    params, fresh = make_params(0), make_params(7)
    opt = torch.optim.Adam(params, lr=1e-2)
    gen = torch.Generator().manual_seed(2)
    feed(opt, params, 3, gen)
    opt.param_groups[0]["params"] = fresh
    return feed(opt, fresh, 4, gen)


def test_a_param_appended_to_a_group_is_stepped(grads_read):
    def go(engine):
        params = make_params(0)
        opt = adamlab.Adam(params[:3], lr=1e-2, engine=engine)
        gen = torch.Generator().manual_seed(4)
        feed(opt, params[:3], 3, gen)
        opt.param_groups[0]["params"].append(params[3])
        return feed(opt, params[:4], 3, gen)

    assert_same(go("packed"), go("reference"))


def test_swapping_params_and_state_in_and_out_steps_the_swapped_in_ones(grads_read):
    """As torch.func-style code does: put other params and state into the optimizer, step, put the originals back."""

    def go(engine):
        live, other = make_params(0), make_params(3)
        opt = adamlab.Adam(live, lr=1e-2, engine=engine)
        gen = torch.Generator().manual_seed(5)
        feed(opt, live, 3, gen)
        live_before = [p.detach().clone() for p in live]
        own_params, own_state = opt.param_groups[0]["params"], opt.state
        opt.param_groups[0]["params"], opt.state = other, {}
        moved = feed(opt, other, 2, gen)
        opt.param_groups[0]["params"], opt.state = own_params, own_state
        assert all(torch.equal(p, q) for p, q in zip(live, live_before))
        return moved + feed(opt, live, 2, gen)

    assert_same(go("packed"), go("reference"))


def test_duplicate_params_are_updated_twice_as_in_torch(grads_read):
    outs = []
    for engine in ("torch", *ENGINES):
        p = torch.linspace(-1, 1, 12, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # (torch warns about duplicates; so do we, through it)
            opt = torch.optim.Adam([p, p], lr=0.1) if engine == "torch" else adamlab.Adam([p, p], lr=0.1, engine=engine)
        feed(opt, [p], 4, torch.Generator().manual_seed(0))
        outs.append(p.detach().clone())
    assert_same(outs[1], outs[0])
    assert_same(outs[2], outs[0])


@pytest.mark.parametrize("engine", ENGINES)
def test_a_param_reshaped_under_its_state_is_refused_on_both_engines(engine, grads_read):
    params = make_params(0)
    opt = adamlab.Adam(params, lr=1e-2, engine=engine)
    gen = torch.Generator().manual_seed(1)
    feed(opt, params, 2, gen)
    params[0].data = params[0].detach().reshape(3, 4).clone()
    params[0].grad = torch.ones(3, 4)
    with pytest.raises(RuntimeError, match=r"state 'exp_avg' of a param of shape \(3, 4\) has shape \(4, 3\), expected \(3, 4\): the param changed shape"):
        opt.step()
    del opt.state[params[0]]  # what the error says to do: the param's state starts afresh
    feed(opt, params, 2, gen)
    assert opt.state[params[0]]["exp_avg"].shape == (3, 4) and opt.state[params[0]]["step"].item() == 2


def test_model_to_dtype_mid_run_casts_the_state_on_both_engines(grads_read):
    def go(engine):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        opt = adamlab.Adam(model.parameters(), lr=1e-2, engine=engine)
        x = torch.randn(16, 4)
        for t in range(8):
            if t == 4:
                model.to(torch.float32)
                x = x.float()
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
        assert all(s["exp_avg"].dtype == torch.float32 and s["exp_avg_sq"].dtype == torch.float32 for s in opt.state.values())
        return [p.detach().double() for p in model.parameters()]

    assert_same(go("packed"), go("reference"), tol=1e-6)
