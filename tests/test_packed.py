"""The packed engine against the reference engine, and what training loops do to it."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from util import assert_trajectories_close, make_params, trajectory

import adamlab

pytestmark = pytest.mark.usefixtures("float64_default")

ELEMENTWISE = [
    (adamlab.Adam, {}),
    (adamlab.Adam, {"amsgrad": True, "weight_decay": 0.05}),
    (adamlab.Adam, {"bias_correction": False, "maximize": True}),
    (adamlab.Adam, {"weight_decay": 0.05, "decoupled_weight_decay": True}),
    (adamlab.AdamW, {"amsgrad": True}),
    (adamlab.Adamax, {"weight_decay": 0.05}),
    (adamlab.NAdam, {}),
    (adamlab.NAdam, {"weight_decay": 0.05, "decoupled_weight_decay": True}),
    (adamlab.RAdam, {}),
    (adamlab.RAdam, {"weight_decay": 0.05, "decoupled_weight_decay": True}),
    (adamlab.MAdam, {}),
    (adamlab.MAdam, {"rectify": False, "beta3": 5.4, "weight_decay": 0.05}),
    (adamlab.AdamAL, {"weight_decay": 0.05}),
    (adamlab.AdamAL, {"bias_correction": False}),
    (adamlab.AdaBelief, {"weight_decay": 0.05}),
    (adamlab.AdaBelief, {"rectify": True, "amsgrad": True}),
    (adamlab.AdaBound, {"weight_decay": 0.05}),
    (adamlab.AdaBound, {"amsbound": True, "final_lr": 0.02}),
    (adamlab.Padam, {"partial": 0.125, "weight_decay": 0.05}),
    (adamlab.Padam, {"bias_correction": False}),
    (adamlab.Padam, {"partial": 0.3}),  # the general power, exp(2p log d)
]
REDUCING = [  # per-tensor (SWATS) and per-row (ND-Adam) reductions: segment sums on the packed layout
    (adamlab.SWATS, {}),
    (adamlab.SWATS, {"weight_decay": 0.05, "maximize": True}),
    (adamlab.NDAdam, {}),
    (adamlab.NDAdam, {"betas": (0.8, 0.99), "eps": 1e-6, "maximize": True}),
]
CASES = ELEMENTWISE + REDUCING


@pytest.fixture(params=["native", "python"])
def checks(request, monkeypatch):
    """The packed engine's per-step checks in C++ (adamlab.optim._native, built here if need be) or in Python."""
    import torch._inductor  # noqa: F401 - (the module is kept in inductor's cache directory)

    from adamlab.optim import _native

    built = _native.wait()  # (also: no build finishing in the background during the test)
    if request.param == "python":
        monkeypatch.setattr(_native, "check", None)
    elif not built:
        pytest.skip("the C++ checks cannot be built here (no compiler or Python headers)")
    return request.param


@pytest.fixture
def compiled_rules_only(monkeypatch):
    """Rules that have a C++ kernel (ND-Adam's rows, SWATS's tensors) run their compiled form, as where it cannot be built."""
    from adamlab.optim import _native

    monkeypatch.setattr(_native, "kernels", lambda: None)


def ids(cases):
    return [f"{c.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}" for c, kw in cases]


IDS = ids(CASES)


def engines(cls, kw, **extra):
    return [lambda ps, e=e: cls(ps, lr=1e-2, engine=e, **kw, **extra) for e in ("reference", "packed")]


@pytest.mark.parametrize(("cls", "kw"), CASES, ids=IDS)
def test_packed_equals_reference(cls, kw):
    ref, packed = engines(cls, kw)
    assert_trajectories_close(trajectory(ref), trajectory(packed))


@pytest.mark.parametrize(("cls", "kw"), CASES, ids=IDS)
def test_packed_equals_reference_with_missing_grads_and_late_params(cls, kw, checks, grads_read):
    """Param 1 has no grad on some steps; param 3 gets its first grad at step 20 (its step lags after)."""

    def skip(t, i):
        return (i == 1 and t % 4 == 0) or (i == 3 and t < 20)

    ref, packed = engines(cls, kw)
    assert_trajectories_close(trajectory(ref, skip=skip), trajectory(packed, skip=skip))


@pytest.mark.parametrize(("cls", "kw"), ELEMENTWISE[::2] + REDUCING, ids=ids(ELEMENTWISE[::2] + REDUCING))
def test_packed_equals_reference_with_schedule_and_two_groups(cls, kw):
    def make(engine):
        def build(ps):
            groups = [{"params": ps[:2]}, {"params": ps[2:], "lr": 3e-2, "betas": (0.7, 0.95), "weight_decay": 0.1}]
            opt = cls(groups, lr=1e-2, engine=engine, **kw)
            build.sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 / (1 + 0.05 * t))
            return opt

        return build

    a, b = make("reference"), make("packed")
    assert_trajectories_close(
        trajectory(a, after_step=lambda o, t: a.sched.step()), trajectory(b, after_step=lambda o, t: b.sched.step())
    )


def test_params_grads_and_state_are_views_of_flat_buffers():
    params = make_params()
    opt = adamlab.Adam(params, engine="packed")
    assigned = [torch.ones_like(p) for p in params]
    for p, g in zip(params, assigned):
        p.grad = g
    opt.step()  # fresh grads are copied in; p.grad stays the tensor the user assigned...
    assert all(p.grad is g for p, g in zip(params, assigned))
    opt.step()  # ...until the same grad is found again: then it becomes the view (no copies from then on)
    (_, [pack], rest, _, _) = opt._packs[id(opt.param_groups[0])]
    assert rest == []
    base = pack.flat_p.data_ptr()
    size = pack.flat_p.element_size()
    for i, p in enumerate(params):
        assert p.data_ptr() == base + size * pack.offsets[i]
        assert p.grad.data_ptr() == pack.flat_g.data_ptr() + size * pack.offsets[i]
        assert opt.state[p]["exp_avg"].data_ptr() == pack.flat["exp_avg"].data_ptr() + size * pack.offsets[i]
        assert opt.state[p]["exp_avg"].shape == p.shape and opt.state[p]["step"].shape == ()


def test_direct_params_read_their_gradients_where_autograd_left_them(checks):
    """A large param has no slice of the flat gradient buffer: its gradient (fresh, persistent, or
    not contiguous) is read where it is and never replaced by a view; small ones are gathered."""
    from adamlab.optim import _packed

    big, small = torch.randn(300, 250, requires_grad=True), torch.randn(7, requires_grad=True)
    assert big.numel() >= _packed.DIRECT_MIN_NUMEL > small.numel()
    twins = [p.detach().clone().requires_grad_() for p in (big, small)]
    opt, ref = adamlab.Adam([big, small], lr=1e-2, engine="packed"), adamlab.Adam(twins, lr=1e-2, engine="reference")
    gen = torch.Generator().manual_seed(0)
    kept = torch.zeros(300, 250)
    for t in range(8):
        grads = [torch.randn(p.shape, generator=gen) for p in (big, small)]
        if t % 3 == 1:
            big.grad = torch.randn(250, 300, generator=gen).t()  # not contiguous
        elif t % 3 == 2:
            big.grad = kept  # the same object at every such step
            big.grad.copy_(grads[0])
        else:
            big.grad = grads[0]
        small.grad = grads[1]
        for q, p in zip(twins, (big, small)):
            q.grad = p.grad.clone()
        given = big.grad
        opt.step()
        ref.step()
        assert big.grad is given
    (_, [pack], _, _, _) = opt._packs[id(opt.param_groups[0])]
    assert pack.direct == [True, False] and pack.flat_g.numel() == small.numel()
    for p, q in zip((big, small), twins):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-12)


@pytest.mark.parametrize("set_to_none", [True, False])
def test_gradients_kept_between_steps_are_gathered_fresh_ones_read_where_they_are(set_to_none, checks):
    """A training loop with ``zero_grad(set_to_none=False)`` writes the same gradient tensors in place
    every step: the pack is rebuilt with every gradient gathered and ``p.grad`` becomes a view of the
    flat buffer (one call per step). With fresh gradients (the default) they stay direct. Both equal
    the reference engine."""

    def run(engine):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(300, 250), torch.nn.Tanh(), torch.nn.Linear(250, 3))
        opt = adamlab.Adam(model.parameters(), lr=1e-3, engine=engine)
        gen = torch.Generator().manual_seed(1)
        for _ in range(6):
            opt.zero_grad(set_to_none=set_to_none)
            model(torch.randn(16, 300, generator=gen)).pow(2).mean().backward()
            opt.step()
        return model, opt

    model, opt = run("packed")
    ref, _ = run("reference")
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-12)
    [pack] = opt._packs[id(opt.param_groups[0])][1]
    weight = model[0].weight
    assert weight.numel() >= pack.direct_min or set_to_none is False
    if set_to_none:
        assert pack.direct[pack.params.index(weight)] and pack.flat_g.numel() < weight.numel()
    else:
        assert not any(pack.direct) and weight.grad.data_ptr() == pack.flat_g.data_ptr() + 8 * pack.offsets[pack.params.index(weight)]


def test_training_loop_with_zero_grad_and_backward_equals_reference(checks, grads_read):
    def run(engine):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
        opt = adamlab.Adam(model.parameters(), lr=1e-2, engine=engine)
        gen = torch.Generator().manual_seed(1)
        for _ in range(60):
            x = torch.randn(32, 6, generator=gen)
            opt.zero_grad()  # set_to_none: backward allocates fresh grads, the packed engine copies them in
            model(x).pow(2).mean().backward()
            opt.step()
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert (run("reference") - run("packed")).abs().max().item() <= 1e-12


def test_fresh_assigned_and_persistent_grads_mixed_equal_reference(checks, grads_read):
    # each step: some params get a fresh grad tensor (as backward after zero_grad(set_to_none=True)),
    # some keep the grad object they had (accumulation, set_to_none=False), sometimes with its storage
    # swapped (p.grad.data = ...), one has none every 5th step
    def run(engine):
        params = make_params()
        opt = adamlab.Adam(params, lr=1e-2, engine=engine)
        gen = torch.Generator().manual_seed(3)
        for t in range(30):
            for i, p in enumerate(params):
                g = torch.randn(p.shape, generator=gen, dtype=p.dtype)
                if i == 0 and t % 5 == 4:
                    p.grad = None
                elif i % 2 == 0 or p.grad is None:
                    p.grad = g
                elif t % 7 == 6:
                    p.grad.data = g  # the same grad object, its storage swapped
                else:
                    p.grad.copy_(g)
            opt.step()
        return torch.cat([p.detach().flatten() for p in params])

    assert (run("reference") - run("packed")).abs().max().item() <= 1e-12


def test_model_to_after_packing_repacks(checks, grads_read):
    model = torch.nn.Linear(4, 2)
    opt = adamlab.Adam(model.parameters(), lr=0.1, engine="packed")
    ref_model = copy.deepcopy(model)
    ref_opt = adamlab.Adam(ref_model.parameters(), lr=0.1, engine="reference")
    x = torch.randn(8, 4)
    for step in range(6):
        if step == 3:
            model.to(torch.float32).to(torch.float64)  # new storages: the engine must notice
            ref_model.to(torch.float32).to(torch.float64)
        for m, o in ((model, opt), (ref_model, ref_opt)):
            o.zero_grad()
            m(x).pow(2).sum().backward()
            o.step()
    assert torch.allclose(model.weight, ref_model.weight, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("cls", "kw"), ELEMENTWISE[::3] + REDUCING, ids=ids(ELEMENTWISE[::3] + REDUCING))
def test_checkpoints_move_between_engines_and_torch(cls, kw, grads_read):
    params = make_params()
    opt = cls(params, lr=1e-2, engine="packed", **kw)
    gen = torch.Generator().manual_seed(5)

    def feed(o, ps, n):
        out = []
        for _ in range(n):
            for p in ps:
                p.grad = torch.randn(p.shape, generator=gen)
            o.step()
            out.append(torch.cat([p.detach().flatten() for p in ps]))
        return out

    feed(opt, params, 20)
    saved = copy.deepcopy(opt.state_dict())
    gen_state = gen.get_state()
    runs = []
    for engine in ("packed", "reference"):
        ps = [p.detach().clone().requires_grad_() for p in params]
        o = cls(ps, lr=1e-2, engine=engine, **kw)
        o.load_state_dict(copy.deepcopy(saved))
        gen.set_state(gen_state)
        runs.append(feed(o, ps, 30))
    # one rule; not always bit for bit, since vectorized pow (Padam) rounds differently on long buffers
    assert_trajectories_close(runs[0], runs[1])


def test_unpackable_params_fall_back_per_tensor():
    z = torch.randn(3, dtype=torch.complex128, requires_grad=True)
    w = torch.randn(4, 3).t().requires_grad_()  # non-contiguous leaf
    opt = adamlab.Adam([z, w], engine="packed")
    ref_z, ref_w = z.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    ref = adamlab.Adam([ref_z, ref_w], engine="reference")
    for _ in range(5):
        for a, b in ((z, ref_z), (w, ref_w)):
            a.grad = torch.ones_like(a)
            b.grad = torch.ones_like(b)
        opt.step()
        ref.step()
    assert torch.equal(z, ref_z) and torch.equal(w, ref_w)
    assert not w.is_contiguous()


def test_engine_keyword_is_checked():
    with pytest.raises(ValueError, match=r"Adam: invalid engine='fast': expected one of 'auto', 'reference', 'packed'"):
        adamlab.Adam([torch.zeros(1, requires_grad=True)], engine="fast")


def test_compiled_packed_engine_matches_reference_and_never_recompiles(monkeypatch):
    """Scheduler-driven changes of lr, betas, eps and weight decay reach the compiled rule as tensors."""
    torch._dynamo.reset()
    monkeypatch.setenv("ADAMLAB_COMPILE", "1")
    counters = torch._dynamo.utils.counters
    counters.clear()

    def tweak(opt, t):
        for g in opt.param_groups:
            g["lr"] = 1e-2 / (1 + t)
            g["betas"] = (0.9 - 0.001 * t, 0.999)
            g["weight_decay"] = 0.01 * (t % 3)

    a = trajectory(lambda ps: adamlab.Adam(ps, engine="reference"), steps=50, before_step=tweak)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a compile failure would warn and run eagerly
        b = trajectory(lambda ps: adamlab.Adam(ps, engine="packed"), steps=50, before_step=tweak)
    assert_trajectories_close(a, b)
    assert counters["stats"]["unique_graphs"] == 1  # one graph for all 50 steps: no recompilation


def test_first_compile_traces_once(tmp_path):
    """The kernel is traced once: dynamo gave every 0-d float64 CPU input a symbolic item() and then
    restarted the whole trace to specialize them away (the hyperparameters now enter as 1-element
    tensors). Seen in a fresh process with an empty compile cache (later processes learn from it)."""
    import os
    import subprocess
    import sys

    code = (
        "import torch, adamlab\n"
        "ps = [torch.randn(1000, requires_grad=True) for _ in range(4)]\n"
        "for p in ps: p.grad = torch.randn_like(p)\n"
        "opt = adamlab.create('adam', ps, lr=1e-3, engine='packed')\n"
        "opt.step(); opt.step()\n"
    )
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path), "ADAMLAB_COMPILE": "1", "ADAMLAB_NATIVE": "0", "TORCH_LOGS": "dynamo"}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "Restarting analysis" not in res.stderr
    assert "torch.compile failed" not in res.stderr


def test_ndadam_kernels_run_row_by_row(tmp_path):
    """ND-Adam's two big kernels are each one loop over the rows (inductor's outer-loop fusion: every
    loop over a row while it is in cache), which made the step 2.6x -> 1.2x torch's fused Adam on 25M
    params in rows of 500. A kernel that also writes a per-row value alone (the second moment) was
    compiled as separate passes over all rows. Seen in a fresh process with an empty compile cache."""
    import os
    import subprocess
    import sys

    code = (
        "import torch, adamlab\n"
        "from torch._inductor import metrics\n"
        "ps = [torch.randn(64, 40, requires_grad=True) for _ in range(3)]\n"
        "for p in ps: p.grad = torch.randn_like(p)\n"
        "opt = adamlab.create('ndadam', ps, lr=1e-3, engine='packed')\n"
        "opt.step(); opt.step()\n"
        "print(len(metrics.cpp_outer_loop_fused_inner_counts))\n"
    )
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path), "ADAMLAB_COMPILE": "1", "ADAMLAB_NATIVE": "0"}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert res.stdout.split()[-1] == "2", res.stderr[-2000:]


@pytest.mark.parametrize(
    ("make", "direct"),
    [
        (lambda ps, engine: adamlab.Adam(ps, lr=1e-2, weight_decay=0.01, engine=engine), True),
        (lambda ps, engine: adamlab.NAdam(ps, lr=1e-2, engine=engine), True),
        (lambda ps, engine: adamlab.SWATS(ps, lr=1e-2, weight_decay=0.01, engine=engine), False),  # a graph break
    ],
    ids=["adam", "nadam", "swats-decay"],
)
def test_compiled_kernels_are_called_directly_after_their_first_call(monkeypatch, make, direct, compiled_rules_only):
    """From the second step on, a run calls its compiled graph directly, not through torch.compile:
    with torch.compile's entry made to fail from step 3 on, a float64 and a float32 pack (one
    kernel, two graphs) still follow the reference engine under a schedule that changes lr every
    step, and nothing falls back to eager. A rule with a graph break keeps going through torch.compile."""
    torch._dynamo.reset()
    monkeypatch.setenv("ADAMLAB_COMPILE", "1")
    from adamlab.optim import _packed

    params = make_params(0) + make_params(1, dtype=torch.float32)
    twins = [p.detach().clone().requires_grad_() for p in params]
    opt, ref = make(params, "packed"), make(twins, "reference")
    gen = torch.Generator().manual_seed(5)

    def boom(*args):
        raise AssertionError("called through torch.compile")

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # an eager fallback warns
        for t in range(30):
            for p, q in zip(params, twins):
                p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype) + 0.1 * p.detach()
                q.grad = p.grad.clone()
            for o in (opt, ref):
                o.param_groups[0]["lr"] = 1e-2 / (1 + t)
            opt.step()
            ref.step()
            if t == 1:
                kernels = [k for k in _packed._KERNELS.values() if k.compiled is not None]
                sites = [run[-1] for pack in opt._packs[id(opt.param_groups[0])][1] for run in pack.calls]
                assert len(sites) >= 2 and all(len(site) == 1 for site in sites)  # (SWATS: a pack per tensor length)
                if not direct:
                    assert not any(f for site in sites for f in site.values())
                    break
                assert all(callable(f) for site in sites for f in site.values())
                for k in kernels:
                    monkeypatch.setattr(k, "compiled", boom)  # (restored after the test)
    if direct:
        for p, q in zip(params, twins):
            tol = 1e-12 if p.dtype == torch.float64 else 1e-5
            torch.testing.assert_close(p, q, rtol=0, atol=tol)


@pytest.mark.parametrize(
    ("make", "key", "values", "alone"),
    [  # alone: one value per specialized kernel
        (lambda ps, engine: adamlab.SWATS(ps, lr=1e-2, engine=engine), "weight_decay", (0.0, 0.01, 0.02), (0.0, 0.01)),
        (lambda ps, engine: adamlab.Padam(ps, lr=1e-2, engine=engine), "partial", (0.25, 0.3, 0.125), (0.25, 0.3, 0.125)),
    ],
    ids=["swats-zero-decay", "padam-roots"],
)
def test_specialized_kernels_compile_once_each_and_match_reference(monkeypatch, make, key, values, alone, compiled_rules_only):
    """SWATS without weight decay and Padam with partial 1/2, 1/4, 1/8 run kernels of their own: a
    schedule moving in and out of those values compiles each kernel once, not once per step (as many
    graphs as running at one value of each kind compiles)."""
    monkeypatch.setenv("ADAMLAB_COMPILE", "1")
    counters = torch._dynamo.utils.counters

    def graphs(before_step):
        torch._dynamo.reset()
        counters.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            out = trajectory(lambda ps: make(ps, "packed"), steps=30, before_step=before_step)
        return out, counters["stats"]["unique_graphs"]

    def setting(value):
        def before_step(opt, t):
            for g in opt.param_groups:
                g[key] = value

        return before_step

    def tweak(opt, t):
        setting(values[t % len(values)])(opt, t)

    once = sum(graphs(setting(v))[1] for v in alone)  # (one graph per distinct pack structure and size class)
    b, scheduled = graphs(tweak)
    assert_trajectories_close(trajectory(lambda ps: make(ps, "reference"), steps=30, before_step=tweak), b)
    assert scheduled == once


def test_deepcopy_keeps_the_engine_and_repacks_the_copy():
    params = make_params()
    opt = adamlab.Adam(params, lr=1e-2, engine="reference")
    assert copy.deepcopy(opt).engine == "reference"
    packed = adamlab.Adam(params, lr=1e-2, engine="packed")
    for p in params:
        p.grad = torch.ones_like(p)
    packed.step()
    twin = copy.deepcopy(packed)
    assert twin.engine == "packed" and twin._packs == {}
    twin.step()  # its params are copies: the copy packs them afresh and steps them
    assert all(not torch.equal(a, b) for a, b in zip(twin.param_groups[0]["params"], params))


# -- SWATS switching per tensor, on the packed layout ---------------------------------------------
# Gradients g_k = c + noise * rate^k settle, so each tensor's projected rate settles and meets the
# switch test at its own step (rate 1.0: never). Small betas shorten the memories; the lr warms up
# over 5 steps (a scheduler), then stays, so the projected rates can settle.
SWITCH_SHAPES = ((4, 3), (2, 3, 2), (6,), (5, 1, 2), (7,), (3,))
SWITCH_RATES = (0.2, 0.5, 0.3, 0.5, 1.0, 0.0)


def swats_switching(engines, steps=60, handover=25):
    """Params after every step; the run starts with ``engines[0]`` and, if given, continues from a
    checkpoint at step ``handover`` with ``engines[1]``. Param 2 has no gradient every 7th step."""
    gen = torch.Generator().manual_seed(3)
    const = [torch.randn(s, generator=gen) for s in SWITCH_SHAPES]
    params = [torch.randn(s, generator=gen).requires_grad_() for s in SWITCH_SHAPES]

    def build(engine, ps):
        opt = adamlab.SWATS(
            [{"params": ps[:3], "betas": (0.3, 0.3)}, {"params": ps[3:], "betas": (0.5, 0.5)}], lr=1e-2, engine=engine
        )
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda t: min(1.0, (t + 1) / 5))

    opt, sched = build(engines[0], params)
    out = []
    for k in range(steps):
        if k == handover and len(engines) > 1:
            saved = copy.deepcopy((opt.state_dict(), sched.state_dict()))
            params = [p.detach().clone().requires_grad_() for p in params]
            opt, sched = build(engines[1], params)
            opt.load_state_dict(saved[0])
            sched.load_state_dict(saved[1])
        for i, (p, c, r) in enumerate(zip(params, const, SWITCH_RATES)):
            g = c + torch.randn(c.shape, generator=gen) * r ** (k + 1)
            p.grad = None if i == 2 and k % 7 == 3 else g
        opt.step()
        sched.step()
        out.append(torch.cat([p.detach().flatten() for p in params]))
    return out, opt, params


@pytest.mark.parametrize("rule", ["cpp", "compiled"])
@pytest.mark.parametrize("engines", [("packed",), ("packed", "reference"), ("reference", "packed")], ids="->".join)
def test_swats_switches_per_tensor_on_the_packed_layout_as_the_reference(engines, rule, monkeypatch):
    """Switches at different steps per tensor, two groups, a scheduler, a missing grad, and checkpoints across
    engines; on the packed engine through SWATS's C++ kernel (where it builds) and through its rule."""
    if rule == "compiled":
        from adamlab.optim import _native

        monkeypatch.setattr(_native, "kernels", lambda: None)
    ref, ref_opt, ref_params = swats_switching(("reference",))
    ours, opt, params = swats_switching(engines)
    assert_trajectories_close(ref, ours)
    ref_steps = [ref_opt.state[p]["switch_step"].item() for p in ref_params]
    assert [opt.state[p]["switch_step"].item() for p in params] == ref_steps
    switched = [k for k in ref_steps if k > 0]
    assert len(set(switched)) >= 3 and max(switched) < 40 and 0 in ref_steps, ref_steps
    for p, q in zip(ref_params, params):
        assert opt.state[q]["sgd_lr"].item() == pytest.approx(ref_opt.state[p]["sgd_lr"].item(), rel=1e-12, abs=0)


@pytest.mark.parametrize(("cls", "kw"), REDUCING, ids=ids(REDUCING))
def test_reducing_rules_keep_the_reference_state_layout(cls, kw):
    """The per-tensor / per-row state of the packed engine is laid out as the reference engine's (0-d, (rows, 1))."""
    states = []
    for engine in ("reference", "packed"):
        params = make_params()
        opt = cls(params, lr=1e-2, engine=engine, **kw)
        for _ in range(3):
            for p in params:
                p.grad = torch.ones_like(p)
            opt.step()
        states.append(opt.state_dict()["state"])
    ref, packed = states
    assert ref.keys() == packed.keys()
    for i in ref:
        assert ref[i].keys() == packed[i].keys()
        for key, value in ref[i].items():
            other = packed[i][key]
            assert (other.shape, other.dtype, other.device) == (value.shape, value.dtype, value.device), (i, key)
            assert torch.allclose(other, value, rtol=0, atol=1e-12), (i, key)
    if cls is adamlab.NDAdam:
        assert packed[0]["exp_avg_sq"].shape == (4, 1) and packed[1]["exp_avg_sq"].shape == (7,)


@pytest.mark.parametrize(("cls", "kw"), ELEMENTWISE, ids=ids(ELEMENTWISE))
def test_compiled_elementwise_rules_match_reference(cls, kw, monkeypatch):
    """Every elementwise rule compiles (no eager fallback) with its scalar math hoisted, and the
    compiled kernel, called directly from the second step on, follows the reference engine under
    a schedule, with a param that misses gradients (runs of one and of several params)."""
    monkeypatch.setenv("ADAMLAB_COMPILE", "1")

    def tweak(opt, t):
        for g in opt.param_groups:
            g["lr"] = 1e-2 / (1 + 0.1 * t)

    def skip(t, i):
        return i == 1 and t % 3 == 0

    a = trajectory(lambda ps: cls(ps, lr=1e-2, engine="reference", **kw), steps=20, skip=skip, before_step=tweak)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a compile failure would warn and run eagerly
        b = trajectory(lambda ps: cls(ps, lr=1e-2, engine="packed", **kw), steps=20, skip=skip, before_step=tweak)
    assert_trajectories_close(a, b)


@pytest.mark.parametrize(("cls", "kw"), REDUCING[::2], ids=ids(REDUCING[::2]))
def test_compiled_reducing_rules_match_reference(cls, kw, monkeypatch, compiled_rules_only):
    """Segment sums and gathers compile (no eager fallback), also when a param joins late."""
    torch._dynamo.reset()
    monkeypatch.setenv("ADAMLAB_COMPILE", "1")

    def skip(t, i):
        return i == 3 and t < 20

    a = trajectory(lambda ps: cls(ps, lr=1e-2, engine="reference", **kw), skip=skip)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a compile failure would warn and run eagerly
        b = trajectory(lambda ps: cls(ps, lr=1e-2, engine="packed", **kw), skip=skip)
    assert_trajectories_close(a, b)


def test_kernel_inputs_are_in_the_same_order_in_every_process():
    """The hyperparameters enter the compiled kernel in the declared order, not a set's: a set's order
    changes with each process's string hashing, so every new process missed inductor's on-disk cache."""
    import os
    import subprocess
    import sys

    code = "import torch, adamlab; print([adamlab.create(n, [torch.zeros(2)])._scalar_names for n in ('adam', 'swats', 'padam')])"
    outs = set()
    for seed in ("0", "1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
    assert len(outs) == 1, outs


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda ps: adamlab.SWATS(ps, lr=1e-3, weight_decay=0.01), (2_500_000,)),  # sums read the params
        (lambda ps: adamlab.NDAdam(ps, lr=1e-3), (1000, 2500)),  # row sums read the rows it rewrites
        (lambda ps: adamlab.Adam(ps, lr=1e-3, amsgrad=True, weight_decay=0.01), (2_500_000,)),
    ],
    ids=["swats-decay", "ndadam-rows", "adam"],
)
def test_compiled_step_allocates_no_model_sized_temporary(make, shape, compiled_rules_only):
    """A compiled step must not allocate a model-sized temporary every step: 40 MB freshly mapped each
    step shows as ~10,000 page faults (inductor did this for SWATS with weight decay and ND-Adam)."""
    import resource

    torch.set_default_dtype(torch.float32)
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(shape, generator=gen).requires_grad_() for _ in range(4)]  # 10M floats
    for p in params:
        p.grad = torch.randn(shape, generator=gen) * 1e-2
    opt = make(params)
    for _ in range(3):
        opt.step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        opt.step()
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3
    assert faults < 1000, f"{faults:.0f} page faults per step"


@pytest.mark.parametrize(
    ("cls", "kw"),
    [(adamlab.NAdam, {}), (adamlab.SWATS, {"weight_decay": 0.05}), (adamlab.NDAdam, {})],
    ids=["nadam", "swats", "ndadam"],
)
def test_params_without_grads_are_skipped_in_packed_runs_not_per_tensor(cls, kw, monkeypatch):
    """One param never has a grad, another misses every 4th step: the packed engine skips them as torch
    does (equal to the reference engine), by cutting the pack into runs, never falling back to the
    per-tensor update (which would make every later step as slow as the reference engine)."""
    from adamlab.optim import _packed

    def skip(t, i):
        return i == 1 or (i == 3 and t % 4 == 0)

    a = trajectory(lambda ps: cls(ps, lr=1e-2, engine="reference", **kw), steps=40, skip=skip)

    def no_fallback(*args):
        raise AssertionError("per-tensor fallback on the packed engine")

    monkeypatch.setattr(_packed, "reference_update", no_fallback)
    b = trajectory(lambda ps: cls(ps, lr=1e-2, engine="packed", **kw), steps=40, skip=skip)
    assert_trajectories_close(a, b)


def test_large_flat_buffers_are_staggered_and_advised_huge_pages():
    """A pack's large CPU buffers start at distinct offsets modulo 4 KiB, nine cache lines apart, so
    the streams of a step do not share cache sets, and, on Linux, their whole 2 MiB blocks are advised
    MADV_HUGEPAGE; small buffers are plain allocations. The offsets hold wherever the allocations
    start in their pages (after large frees the C library serves these sizes from its heap)."""
    import os
    import sys

    from adamlab.optim._packed import flat_buffer

    cpu = torch.device("cpu")
    for _ in range(3):  # (freed allocations of these sizes: glibc then raises its mmap threshold)
        torch.empty(1 << 22).add_(1)
    bufs = [flat_buffer(1 << 21, dtype, cpu, i) for i, dtype in enumerate([torch.float32, torch.float64] * 2)]
    assert [b.data_ptr() % 4096 for b in bufs] == [0, 576, 1152, 1728]
    assert [b.numel() for b in bufs] == [1 << 21] * 4
    assert flat_buffer(1000, torch.float32, cpu, 3).storage_offset() == 0
    params = [torch.randn(1 << 20, requires_grad=True) for _ in range(2)]
    opt = adamlab.Adam(params, lr=1e-3, amsgrad=True, engine="packed")
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    pack = opt._packs[id(opt.param_groups[0])][1][0]
    assert pack.flat_g.numel() == 0  # (params this large read their gradients where they are)
    offsets = [x.data_ptr() % 4096 for x in [pack.flat_p, *pack.flat.values()]]
    assert len(offsets) == 4 and len(set(offsets)) == 4
    if sys.platform != "linux" or not os.path.exists("/sys/kernel/mm/transparent_hugepage/enabled"):
        return
    inside = bufs[0].data_ptr() + (1 << 22)  # an address in the buffer's whole 2 MiB blocks
    with open("/proc/self/smaps") as smaps:
        region = None
        for line in smaps:
            head = line.split()[0]
            if "-" in head and all(c in "0123456789abcdef-" for c in head):
                lo, hi = (int(x, 16) for x in head.split("-"))
                region = lo <= inside < hi
            elif region and line.startswith("VmFlags:"):
                assert "hg" in line.split()[1:]
                break
        else:
            pytest.fail("the buffer's mapping was not found in /proc/self/smaps")


@pytest.fixture(scope="module")
def native_kernels():
    """adamlab.optim._native's module, for its kernels (built here if need be)."""
    import os

    from adamlab.optim import _native

    module = _native.kernels()
    if module is None:
        if os.environ.get("CI"):
            pytest.fail("the C++ module did not build in CI")
        pytest.skip("the C++ module cannot be built here (no compiler or Python headers)")
    return module


ROWS = ((3, 500), (40, 27), (6, 2, 3), (2, 6), (2, 1), (5,), (4, 17))  # rows of 500 (vector loops), 27, 6 and 17 (tails), 1; a bias


@pytest.mark.parametrize("kw", [{}, {"betas": (0.8, 0.99), "eps": 1e-6, "maximize": True}], ids=["default", "options"])
def test_ndadam_rows_run_the_cpp_kernel_and_match_reference(kw, native_kernels, monkeypatch, grads_read):
    """On CPU float32/float64, ND-Adam's packs of rows run one C++ kernel per run
    (adamlab.optim._native's ndadam_rows): equal to the reference engine over 60 steps, also with a param
    that skips steps (two runs in its pack) and a schedule."""
    calls, kernel = [], native_kernels.ndadam_rows

    def spy(*args):
        calls.append(args[4:6])  # (rows, cols)
        return kernel(*args)

    monkeypatch.setattr(native_kernels, "ndadam_rows", spy)

    def skip(t, i):
        return i == 3 and t % 4 == 3

    def tweak(opt, t):
        opt.param_groups[0]["lr"] = 1e-2 / (1 + 0.1 * t)

    made = []
    a = trajectory(lambda ps: adamlab.NDAdam(ps, engine="reference", **kw), shapes=ROWS, skip=skip, before_step=tweak)
    b = trajectory(lambda ps: made.append(adamlab.NDAdam(ps, engine="packed", **kw)) or made[0], shapes=ROWS, skip=skip, before_step=tweak)
    assert_trajectories_close(a, b)
    packs = made[0]._packs[id(made[0].param_groups[0])][1]
    assert sorted(((pack.reduction or ""), bool(pack.native)) for pack in packs) == [("", False)] + [("rows", True)] * 5
    assert {(3, 500), (40, 27), (2, 1), (4, 17)} < set(calls)
    if grads_read == "gathered":  # (direct params: a call each)
        # the (6, 2, 3) and (2, 6) params' rows: one run until the second skips a step, then two
        assert calls.index((6, 6)) > calls.index((8, 6)) and (2, 6) in calls


@pytest.mark.parametrize("name", ["ndadam", "padam"])
def test_first_step_builds_the_cpp_module_instead_of_compiling(tmp_path, name):
    """On a machine without the module, ND-Adam's and Padam's first packed step waits for its build
    (about 3 s) instead of compiling the rule with inductor (which took 7-9 s on an empty compile
    cache), and prepares no compiled kernel (whose setup probes the CPU's vector instructions, seconds
    on an empty cache); a second process loads the module at once. Fresh processes, empty caches."""
    import os
    import subprocess
    import sys

    code = (
        "import time, torch, adamlab\n"
        "ps = [torch.randn(64, 300, requires_grad=True) for _ in range(3)]\n"
        "for p in ps: p.grad = torch.randn_like(p)\n"
        f"opt = adamlab.create('{name}', ps, lr=1e-3, engine='packed')\n"
        "t = time.perf_counter(); opt.step(); first = time.perf_counter() - t; opt.step()\n"
        "print(torch._dynamo.utils.counters['stats']['unique_graphs'], first)\n"
    )
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path), "ADAMLAB_COMPILE": "1"}
    out = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split() for _ in range(2)]
    assert [graphs for graphs, _ in out] == ["0", "0"]
    assert [p.suffix for p in tmp_path.iterdir() if "adamlab-native" in p.name] == [".so"]
    assert not [p for p in tmp_path.iterdir() if "adamlab-vec-isa" in p.name]  # (nor was inductor's CPU probe run for a kernel)
    assert float(out[1][1]) < 1.0  # loaded, not built again


@pytest.mark.parametrize("kw", [{}, {"weight_decay": 0.05, "maximize": True}], ids=["default", "decay-maximize"])
def test_swats_tensors_run_the_cpp_kernel_and_match_reference(kw, native_kernels, monkeypatch, grads_read):
    """On CPU float32/float64, SWATS's packs run one C++ kernel per run (adamlab.optim._native's
    swats_tensors), in chunks of 16,384 elements that the threads share: tensors of several chunks and
    of less than one match the reference engine over 60 steps, also with a param that skips steps."""
    calls, kernel = [], native_kernels.swats_tensors

    def spy(*args):
        calls.append(args[8:10])  # (count, length)
        return kernel(*args)

    monkeypatch.setattr(native_kernels, "swats_tensors", spy)
    shapes = ((2, 20_000), (40_000,), (5, 3), (15,))  # 40,000: two full chunks and a part

    def skip(t, i):
        return i == 3 and t % 4 == 3

    made = []
    a = trajectory(lambda ps: adamlab.SWATS(ps, lr=1e-2, engine="reference", **kw), shapes=shapes, skip=skip)
    b = trajectory(lambda ps: made.append(adamlab.SWATS(ps, lr=1e-2, engine="packed", **kw)) or made[0], shapes=shapes, skip=skip)
    assert_trajectories_close(a, b)
    assert all(pack.native for pack in made[0]._packs[id(made[0].param_groups[0])][1])
    assert {(2, 40_000), (2, 15), (1, 15)} <= set(calls) if grads_read == "gathered" else {(1, 40_000), (1, 15)} == set(calls)


def _steps_with_non_finite_grads(make, dtype, slots, bad_step):
    """Six steps on a long and a short param (gradients 0.5 p + 0.1), with inf, NaN and a gradient whose
    square overflows in the long one and -inf in the short one at ``bad_step``: the optimizer, and each
    param with its ``slots`` after."""
    params = [torch.linspace(-1, 1, 40_000, dtype=dtype).requires_grad_(), torch.linspace(0, 2, 12, dtype=dtype).requires_grad_()]
    opt = make(params)
    for t in range(6):
        for p in params:
            p.grad = p.detach() * 0.5 + 0.1
        if t == bad_step:
            params[0].grad[[0, 7, 20_000]] = torch.tensor([float("inf"), float("nan"), 1e30 if dtype == torch.float32 else 1e200], dtype=dtype)
            params[1].grad[3] = -float("inf")
        opt.step()
    return opt, [(p.detach(), *(opt.state[p][k] for k in slots)) for p in params]


def test_swats_cpp_kernel_follows_the_rule_on_gradients_that_are_not_finite(native_kernels):
    """After the switch the rule adds 0 * g to the frozen moments, which a gradient of inf or NaN (or one
    whose square overflows) makes NaN; the kernel writes them only then, with the rule's result."""

    def run(engine, dtype):
        def make(ps):
            return adamlab.SWATS(ps, lr=1e-2, eps=1e-3, weight_decay=0.01, engine=engine)  # (switches at step 2)

        opt, out = _steps_with_non_finite_grads(make, dtype, ("exp_avg", "exp_avg_sq", "momentum_buffer"), bad_step=4)
        assert all(state["switch_step"].item() == 2 for state in opt.state.values())
        return out

    for dtype in (torch.float64, torch.float32):
        ref, ours = run("reference", dtype), run("packed", dtype)
        for x, y in zip(ref, ours):
            for u, v in zip(x, y):
                tol = 1e-6 if dtype == torch.float32 else 1e-12  # (the sums add in another order: sgd_lr to rounding)
                torch.testing.assert_close(v, u, rtol=tol, atol=tol, equal_nan=True)
        assert ours[0][2].isnan().sum() == 3 and ours[0][1].isnan().sum() == 2  # (1e30 squared overflows: v only)


PARTIALS = (0.25, 0.3, 0.5, 0.125, 0.45, 0.01)  # 1, general, 0, 2 square roots, general, general


@pytest.mark.parametrize(
    "kw", [{}, {"weight_decay": 0.05, "maximize": True}, {"bias_correction": False, "eps": 0.0}], ids=["default", "decay-maximize", "paper-form"]
)
def test_padam_runs_the_cpp_kernel_and_matches_reference(kw, native_kernels, monkeypatch, grads_read):
    """On CPU float32/float64, Padam's packs run one C++ kernel per run (adamlab.optim._native's padam),
    whatever the exponent: a schedule moving ``partial`` through the square-root cases (1/2, 1/4, 1/8)
    and general ones matches the reference engine over 60 steps, also with a param that skips steps."""
    calls, kernel = [], native_kernels.padam

    def spy(*args):
        calls.append(args[14])  # (roots: -1 is the general power)
        return kernel(*args)

    monkeypatch.setattr(native_kernels, "padam", spy)

    def skip(t, i):
        return i == 3 and t % 4 == 3

    def tweak(opt, t):
        opt.param_groups[0]["partial"] = PARTIALS[t % len(PARTIALS)]

    made = []
    a = trajectory(lambda ps: adamlab.Padam(ps, lr=1e-2, engine="reference", **kw), skip=skip, before_step=tweak)
    b = trajectory(lambda ps: made.append(adamlab.Padam(ps, lr=1e-2, engine="packed", **kw)) or made[0], skip=skip, before_step=tweak)
    assert_trajectories_close(a, b)
    assert all(pack.native for pack in made[0]._packs[id(made[0].param_groups[0])][1])
    assert set(calls) == {-1, 0, 1, 2}


def _padam_first_step(kernel, g, partial, eps=0.0, vmax=None):
    """The params after one step of the C++ kernel's general power from params 0, with betas 0 and a step
    factor 1: -g / (sqrt(max(vmax, g^2)) + eps) ** (2 * partial) (vmax: the max before the step, default 0)."""
    p, m, v = (torch.zeros_like(g) for _ in range(3))
    vmax = torch.zeros_like(g) if vmax is None else vmax
    ptrs = (x.data_ptr() for x in (p, g, m, v, vmax))
    kernel(*ptrs, g.numel(), 0, g.dtype == torch.float64, 0.0, 0.0, eps, 0.0, 1.0, 2 * partial, -1, False)
    return p


def _padam_denominators(kernel, d, partial, dtype):
    """What one step of the C++ kernel divides by, d ** (2 * partial), on denominators d: with betas 0 and
    eps 0 the kernel's m is g and its sqrt(vmax) is |g| (for g whose square rounds to one whose root is g)."""
    g = d.to(dtype)
    return g.double() / -_padam_first_step(kernel, g, partial).double(), (g * g).sqrt().double()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_padam_general_power_in_the_cpp_kernel_is_within_rounding_of_the_exact_power(dtype, native_kernels):
    """The kernel's d ** (2p) (2^(2p log2 d) with its own log2 and exp2) is within 3e-7 relative (float32)
    or 1e-15 (float64) of the exact power of its rounded input, over denominators from 1e-20 to 1e15 and
    exponents across (0, 1] (measured 1.7e-7 and 4.0e-16, the division that reads it included); torch's
    exp(2p log d), the reference engine's form, 3.8e-6 and 7.2e-15."""
    d = torch.logspace(-20, 15, 400_001, dtype=torch.float64)
    worst, torch_worst = 0.0, 0.0
    for partial in (0.005, 0.1, 0.3, 0.45, 0.4995, 0.5):
        power, rounded = _padam_denominators(native_kernels.padam, d, partial, dtype)
        two_p = torch.tensor(2 * partial, dtype=torch.float64).to(dtype).double().item()  # (the exponent as the dtype holds it)
        exact = rounded**two_p
        worst = max(worst, ((power - exact).abs() / exact).max().item())
        theirs = torch.exp(torch.log(rounded.to(dtype)) * torch.tensor(2 * partial, dtype=torch.float64)).double()
        torch_worst = max(torch_worst, ((theirs - exact).abs() / exact).max().item())
    assert worst < (3e-7 if dtype == torch.float32 else 1e-15)
    assert torch_worst > 10 * worst  # (so the test does tell the two apart)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_padam_general_power_in_the_cpp_kernel_at_the_edges(dtype, native_kernels):
    """A subnormal denominator (a subnormal eps) is powered like any other; a zero denominator divides m
    by 0, an infinite one gives 0 and NaN stays NaN, as the reference's m / exp(2p log d)."""
    info = torch.finfo(dtype)
    for eps in (info.smallest_normal / 4, info.smallest_normal / 2**20, info.smallest_normal * 0.99):
        g = torch.full((1,), info.smallest_normal / 2**10, dtype=dtype)  # (its square underflows: d = 0 + eps)
        p = _padam_first_step(native_kernels.padam, g, 0.3, eps=eps)
        exact = g.double() / torch.tensor(eps, dtype=dtype).double() ** torch.tensor(0.6, dtype=dtype).double()
        assert ((-p.double() - exact).abs() / exact).item() < 1e-6
    g = torch.tensor([0.0, 1.0, 1.0, float("inf"), float("nan")], dtype=dtype)
    vmax = torch.tensor([0.0, 0.0, float("inf"), 0.0, 0.0], dtype=dtype)
    p = _padam_first_step(native_kernels.padam, g, 0.3, vmax=vmax)
    d = torch.tensor([0.0, 1.0, float("inf"), float("inf"), float("nan")], dtype=dtype)
    want = -(g / torch.exp(torch.log(d) * 0.6))  # (0 / 0, 1, 1 / inf, inf / inf, NaN)
    assert want[[1, 2]].tolist() == [-1.0, 0.0] and want[[0, 3, 4]].isnan().all()
    torch.testing.assert_close(p, want, equal_nan=True, rtol=0, atol=0)


def test_padam_cpp_kernel_follows_the_rule_on_gradients_that_are_not_finite(native_kernels):
    """A gradient of inf or NaN (or one whose square overflows) reaches the moments, the max (NaN wins, as
    torch.maximum) and the param exactly as in the reference engine, for the general power and a root."""

    def run(engine, dtype, partial):
        def make(ps):
            return adamlab.Padam(ps, lr=1e-2, partial=partial, weight_decay=0.01, engine=engine)

        return _steps_with_non_finite_grads(make, dtype, ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), bad_step=3)[1]

    for dtype in (torch.float64, torch.float32):
        for partial in (0.3, 0.25):
            ref, ours = run("reference", dtype, partial), run("packed", dtype, partial)
            for x, y in zip(ref, ours):
                for u, v in zip(x, y):
                    tol = 1e-5 if dtype == torch.float32 else 1e-12  # (float32: exp(2p log d) against our power)
                    torch.testing.assert_close(v, u, rtol=tol, atol=tol, equal_nan=True)
            assert ours[0][0].isnan().sum() == 2 and ours[0][3][20_000].isinf()  # (1e30 squared overflows: d = inf, a step of 0)


@pytest.mark.parametrize(
    ("make", "shapes"),
    [
        (lambda ps, engine: adamlab.NDAdam(ps, lr=1e-2, engine=engine), ((64, 300), (8, 3, 3, 3))),
        (lambda ps, engine: adamlab.SWATS(ps, lr=1e-2, weight_decay=0.01, engine=engine), ((70_000,), (70_000,), (300,))),
        (lambda ps, engine: adamlab.Padam(ps, lr=1e-2, partial=0.3, engine=engine), ((70_000,), (300,))),
        (lambda ps, engine: adamlab.Padam(ps, lr=1e-2, partial=0.125, weight_decay=0.01, engine=engine), ((70_000,), (300,))),
    ],
    ids=["ndadam", "swats", "padam-general", "padam-roots"],
)
def test_cpp_kernels_in_float32_agree_with_the_compiled_rule_and_reference(make, shapes, native_kernels, monkeypatch):
    """float32: the C++ kernels compute the rule's elementwise ops in the same order and precision; their
    sums add in another order, and Padam's general power is computed otherwise (more exactly), so they
    agree with the compiled rule and the reference to float32 rounding."""
    torch.set_default_dtype(torch.float32)
    monkeypatch.setenv("ADAMLAB_COMPILE", "1")

    def run(engine):
        return trajectory(lambda ps: make(ps, engine), shapes=shapes, dtype=torch.float32)

    ref, native = run("reference"), run("packed")
    from adamlab.optim import _native

    monkeypatch.setattr(_native, "kernels", lambda: None)
    compiled = run("packed")
    assert_trajectories_close(ref, native, tol=2e-6)
    assert_trajectories_close(compiled, native, tol=2e-6)


def test_cpp_kernels_refuse_wrong_arguments(native_kernels):
    with pytest.raises(TypeError, match="12 arguments"):
        native_kernels.ndadam_rows(0, 0, 0, 0)
    with pytest.raises(TypeError):
        native_kernels.ndadam_rows(*[0] * 7, "beta1", 0.9, 1e-3, 1e-8, False)
    with pytest.raises(TypeError, match="20 arguments"):
        native_kernels.swats_tensors(0, 0)
    with pytest.raises(TypeError, match="16 arguments"):
        native_kernels.padam(0, 0, 0)
