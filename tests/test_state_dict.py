"""state_dict: torch.optim interop both ways, bit-for-bit resume, and checked loading."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from util import SHAPES, assert_load_refused_unchanged, assert_trajectories_close, make_params

import adamlab

PAIRS = [
    (adamlab.Adam, torch.optim.Adam, {}),
    (adamlab.Adam, torch.optim.Adam, {"amsgrad": True, "weight_decay": 0.01}),
    (adamlab.AdamW, torch.optim.AdamW, {}),
    (adamlab.Adamax, torch.optim.Adamax, {}),
    (adamlab.NAdam, torch.optim.NAdam, {"decoupled_weight_decay": True, "weight_decay": 0.01}),
    (adamlab.RAdam, torch.optim.RAdam, {}),
]
PAIR_IDS = [f"{a.__name__}-{i}" for i, (a, _, _) in enumerate(PAIRS)]


def _grads(n: int, seed: int = 7, shapes=SHAPES) -> list[list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [[torch.randn(s, generator=gen) for s in shapes] for _ in range(n)]


def _run(opt, params, grads):
    out = []
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = (g + 0.1 * p.detach()).clone()
        opt.step()
        out.append(torch.cat([p.detach().flatten() for p in params]))
    return out


def _roundtrip(state_dict):
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.usefixtures("float64_default")
@pytest.mark.parametrize(("ours", "theirs", "kw"), PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("direction", ["torch_to_adamlab", "adamlab_to_torch"])
def test_checkpoint_moves_between_torch_and_adamlab(ours, theirs, kw, direction):
    first, second = (theirs, ours) if direction == "torch_to_adamlab" else (ours, theirs)
    grads = _grads(60)
    params = make_params()
    opt = first(params, lr=1e-2, **kw)
    _run(opt, params, grads[:30])
    saved = _roundtrip(opt.state_dict())
    # continue with the same class, and with the other class loaded from the checkpoint
    same_params = [p.detach().clone().requires_grad_() for p in params]
    cont_same = first(same_params, lr=1e-2, **kw)
    cont_same.load_state_dict(copy.deepcopy(saved))
    other_params = [p.detach().clone().requires_grad_() for p in params]
    cont_other = second(other_params, lr=1e-2, **kw)
    cont_other.load_state_dict(copy.deepcopy(saved))
    assert_trajectories_close(_run(cont_same, same_params, grads[30:]), _run(cont_other, other_params, grads[30:]))


@pytest.mark.parametrize(
    ("cls", "kw"),
    [(a, kw) for a, _, kw in PAIRS] + [(adamlab.Adam, {"bias_correction": False}), (adamlab.SWATS, {}), (adamlab.NDAdam, {})],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_save_load_mid_training_is_bit_for_bit(cls, kw, dtype):
    grads = [[g.to(dtype) for g in gs] for gs in _grads(50)]
    params = make_params(dtype=dtype)
    straight = _run(cls(params, lr=1e-2, **kw), params, grads)

    params = make_params(dtype=dtype)
    opt = cls(params, lr=1e-2, **kw)
    first = _run(opt, params, grads[:25])
    saved = _roundtrip(opt.state_dict())
    params = [p.detach().clone().requires_grad_() for p in params]
    opt = cls(params, lr=1e-2, **kw)
    opt.load_state_dict(saved)
    resumed = first + _run(opt, params, grads[25:])
    assert all(torch.equal(a, b) for a, b in zip(straight, resumed))
    assert not torch.equal(straight[0], straight[-1])


def test_stepping_after_load_does_not_write_into_the_loaded_dict():
    params = make_params()
    opt = adamlab.Adam(params)
    _run(opt, params, _grads(3))
    saved = copy.deepcopy(opt.state_dict())
    other = adamlab.Adam([p.detach().clone().requires_grad_() for p in params])
    other.load_state_dict(saved)
    _run(other, other.param_groups[0]["params"], _grads(2))
    assert saved["state"][0]["step"].item() == 3.0
    assert other.state_dict()["state"][0]["step"].item() == 5.0


def _trained(cls, params, **kw):
    opt = cls(params, **kw)
    _run(opt, params, _grads(3, shapes=[p.shape for p in params]))
    return opt


def test_loading_another_optimizers_state_is_refused_and_changes_nothing():
    params = make_params()
    opt = _trained(adamlab.Adam, params)
    sgd = _trained(torch.optim.SGD, make_params(), lr=0.1, momentum=0.9)
    assert_load_refused_unchanged(opt, sgd.state_dict(), r"lacks the hyperparameters \['betas', 'eps'\].*different optimizer")
    adamax = _trained(adamlab.Adamax, make_params()).state_dict()
    assert_load_refused_unchanged(opt, adamax, r"saved by adamlab's Adamax, a different algorithm \(this is Adam\)")
    del adamax["adamlab_algorithm"]  # as torch.optim.Adamax saves it: its state keys tell
    match = r"keys \['exp_avg', 'exp_inf', 'step'\].*keeps \['exp_avg', 'exp_avg_sq', 'step'\]"
    assert_load_refused_unchanged(opt, adamax, match)
    ams = copy.deepcopy(_trained(adamlab.Adam, make_params(), amsgrad=True).state_dict())
    del ams["state"][2]["max_exp_avg_sq"]  # the group says amsgrad, the state lacks its max
    assert_load_refused_unchanged(opt, ams, r"param 2 has the keys \['exp_avg', 'exp_avg_sq', 'step'\].*different options")


def test_loading_a_different_parameter_layout_is_refused_and_changes_nothing():
    opt = _trained(adamlab.Adam, make_params())
    fewer = _trained(adamlab.Adam, make_params(shapes=SHAPES[:-1]))
    assert_load_refused_unchanged(opt, fewer.state_dict(), r"param group 0 holds 4 params in the state_dict, 5 here")
    reshaped = _trained(adamlab.Adam, make_params(shapes=[(3, 4)] + list(SHAPES[1:])))
    assert_load_refused_unchanged(opt, reshaped.state_dict(), r"state 'exp_avg' of param 0 has shape \(3, 4\), expected \(4, 3\)")
    two_groups = adamlab.Adam([{"params": make_params()[:2]}, {"params": make_params()[2:]}])
    assert_load_refused_unchanged(opt, two_groups.state_dict(), r"has 2 param groups, this optimizer has 1")
    assert_load_refused_unchanged(opt, {"state": {}}, r"not an optimizer state_dict")


def test_loading_corrupt_hyperparameters_is_refused():
    opt = _trained(adamlab.Adam, make_params())
    bad = copy.deepcopy(opt.state_dict())
    bad["param_groups"][0]["lr"] = -1.0
    assert_load_refused_unchanged(opt, bad, r"lr=-1.0")
