"""Hostile inputs to the optimizers, as tables: every bad value is refused with an error naming the
parameter and the value, every accepted one is normalized and trains exactly as its plain Python
number, and no checkpoint of another optimizer loads. Both engines where a step is taken.
(The lab's hostile inputs and process faults: tests/lab/test_lab_hostile.py, test_lab_faults.py.)"""

from __future__ import annotations

import copy
import warnings
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
import torch
from util import assert_load_refused_unchanged, make_params, trajectory

import adamlab
from adamlab.optim import registry
from adamlab.optim._base import RuleOptimizer

ENGINES = ["reference", "packed"]
NAMES = [n for n in registry.available() if issubclass(registry.entry(n).cls, RuleOptimizer)]


def _create(name, params, **kw):
    return adamlab.create(name, params, **kw)


def _real_keys(name):
    """The hyperparameters of a registry name that are real numbers (not flags, not betas)."""
    e = registry.entry(name)
    p = [torch.zeros(1, requires_grad=True)]
    defaults = e.cls(p, **e.fixed).defaults
    return [k for k in e.keywords() if k in defaults and isinstance(defaults[k], float)]


# -- wrong types: refused at construction, naming the parameter and the value -----------------------------

BAD_VALUES = [
    ("0.5", r"'0.5'.*\(got a str\)"),  # a numeric string: was stored and then ignored (weight_decay) or crashed the step
    ("fast", r"'fast'.*\(got a str\)"),
    (Decimal("0.1"), r"Decimal\('0.1'\).*\(got a Decimal\)"),
    (Fraction(1, 10), r"Fraction\(1, 10\).*\(got a Fraction\)"),
    (None, r"None.*\(got a NoneType\)"),
    (True, r"True"),
    (np.bool_(True), r"np.True_"),
    (1j, r"1j.*\(got a complex\)"),
    ([0.1], r"\[0.1\].*\(got a list\)"),
    (np.array([0.1, 0.2]), r"array\(\[0.1, 0.2\]\).*\(got a ndarray\)"),
    (torch.tensor([0.1, 0.2]), r"tensor\(\[0.1000, 0.2000\]\).*exactly one element"),
    (torch.tensor(True), r"tensor\(True\)"),
    (float("nan"), r"nan"),
    (float("inf"), r"inf: expected a real number in"),
    (-1.0, r"-1.0: expected a real number in"),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("value", "match"), BAD_VALUES, ids=[repr(v)[:20] for v, _ in BAD_VALUES])
def test_every_real_hyperparameter_refuses_a_bad_value(name, value, match):
    for key in _real_keys(name):
        with pytest.raises(ValueError, match=rf"invalid {key}={match}"):
            _create(name, make_params(), **{key: value})


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", ["0.9", Decimal("0.9"), None, np.float32(1.0)], ids=repr)
def test_betas_refuse_a_bad_element(name, bad):
    with pytest.raises(ValueError, match=r"invalid betas\[0\]="):
        _create(name, make_params(), betas=(bad, 0.999))


BAD_BETAS = [
    ((0.9,), r"betas=\(0.9,\): expected a tuple of 2 reals"),
    ((0.9, 0.99, 0.9), r"betas=\(0.9, 0.99, 0.9\): expected a tuple of 2 reals"),
    ("0.9,0.99", r"betas='0.9,0.99': expected a tuple of 2 reals"),
    (0.9, r"betas=0.9: expected a tuple of 2 reals"),
    ((1.0, 0.999), r"betas\[0\]=1.0: expected a real number in \[0, 1\)"),
    ((0.9, -0.1), r"betas\[1\]=-0.1"),
    ((float("nan"), 0.9), r"betas\[0\]=nan"),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("betas", "match"), BAD_BETAS, ids=[repr(b) for b, _ in BAD_BETAS])
def test_betas_of_the_wrong_shape_or_range_are_refused(name, betas, match):
    with pytest.raises(ValueError, match=rf"invalid {match}"):
        _create(name, make_params(), betas=betas)


def test_an_unknown_engine_is_refused():
    with pytest.raises(ValueError, match=r"^Adam: invalid engine='fast': expected one of 'auto', 'reference', 'packed'$"):
        adamlab.Adam(make_params(), engine="fast")


@pytest.mark.parametrize("name", NAMES)
def test_flags_refuse_non_booleans(name):
    e = registry.entry(name)
    defaults = e.cls([torch.zeros(1, requires_grad=True)], **e.fixed).defaults
    for key in (k for k in e.keywords() if isinstance(defaults.get(k), bool)):
        for value in ("True", 1, None):
            with pytest.raises(ValueError, match=rf"invalid {key}={value!r}: expected True or False"):
                _create(name, make_params(), **{key: value})


def test_a_numeric_string_weight_decay_is_refused_not_ignored():
    message = r"^AdamW: invalid weight_decay='0.5': expected a real number in \[0, inf\) \(got a str\)$"
    with pytest.raises(ValueError, match=message):
        adamlab.AdamW([torch.zeros(2, requires_grad=True)], lr=0.1, weight_decay="0.5")


def test_a_bad_param_group_is_refused_and_changes_nothing():
    opt = adamlab.Adam(make_params()[:1])
    for bad in ({"lr": "0.1"}, {"eps": Decimal("1e-8")}, {"betas": ("0.9", 0.99)}):
        with pytest.raises(ValueError, match=r"^Adam \(param group\): invalid"):
            opt.add_param_group({"params": make_params()[1:2], **bad})
    assert len(opt.param_groups) == 1


# -- NumPy scalars and tensors: accepted, normalized, the same numbers as Python floats -------------------

NUMPY_LIKE = [np.float32(0.25), np.float64(0.25), np.float16(0.25), np.array(0.25), np.int64(0)]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", NAMES)
def test_numpy_scalars_are_normalized_and_train_as_python_floats(name, engine):
    keys = _real_keys(name)
    as_numpy = {k: np.float32(0.5) if k == "partial" else np.float32(0.01) for k in keys}
    as_numpy["betas"] = (np.float32(0.5), np.float64(0.75))
    as_python = {k: float(v) for k, v in as_numpy.items() if k != "betas"} | {"betas": (0.5, 0.75)}
    opt = _create(name, make_params(), engine=engine, **as_numpy)
    group = opt.param_groups[0]
    assert all(type(group[k]) is float for k in keys)
    assert group["betas"] == (0.5, 0.75) and all(type(b) is float for b in group["betas"])
    a = trajectory(lambda ps: _create(name, ps, engine=engine, **as_numpy), steps=5)
    b = trajectory(lambda ps: _create(name, ps, engine=engine, **as_python), steps=5)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("value", NUMPY_LIKE, ids=repr)
def test_every_numpy_real_is_stored_as_a_float(value):
    opt = adamlab.Adam([torch.zeros(2, requires_grad=True)], weight_decay=value)
    assert type(opt.param_groups[0]["weight_decay"]) is float and opt.param_groups[0]["weight_decay"] == float(value)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_tensor_lr_is_kept_as_the_tensor(engine):
    lr = torch.tensor(0.01)
    opt = adamlab.Adam(make_params(), lr=lr, engine=engine)
    assert opt.param_groups[0]["lr"] is lr
    one = adamlab.Adam([torch.zeros(2, requires_grad=True)], lr=torch.tensor([0.01]))
    assert one.param_groups[0]["lr"].shape == (1,)
    a = trajectory(lambda ps: adamlab.Adam(ps, lr=torch.tensor(0.25), engine=engine), steps=5)
    b = trajectory(lambda ps: adamlab.Adam(ps, lr=0.25, engine=engine), steps=5)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_add_param_group_normalizes():
    opt = adamlab.Adam(make_params()[:1])
    opt.add_param_group({"params": make_params()[1:2], "lr": np.float32(0.5), "betas": [np.float64(0.5), 0.5]})
    group = opt.param_groups[1]
    assert type(group["lr"]) is float and group["betas"] == (0.5, 0.5) and type(group["betas"]) is tuple


# -- params ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.uint8])
def test_non_floating_params_are_refused_at_construction(dtype):
    message = rf"^Adam: can only optimize floating-point \(or complex\) params, got a {dtype} param of shape \(3,\)$"
    with pytest.raises(ValueError, match=message):
        adamlab.Adam([torch.zeros(3, dtype=dtype)])
    opt = adamlab.Adam(make_params()[:1])
    with pytest.raises(ValueError, match="can only optimize floating-point"):
        opt.add_param_group({"params": [torch.zeros(3, dtype=dtype)]})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("shape", [(0, 4), (0,), (3, 0), (0, 2, 2)])
def test_ndadam_steps_params_with_no_elements(engine, shape):
    empty = torch.zeros(shape, requires_grad=True)
    other = torch.randn(3, 4, requires_grad=True)
    opt = adamlab.NDAdam([empty, other], engine=engine)
    for _ in range(2):
        empty.grad, other.grad = torch.zeros(shape), torch.ones(3, 4)
        opt.step()
    assert empty.shape == shape and torch.isfinite(other).all()
    assert torch.allclose(other.norm(dim=1), torch.ones(3), atol=1e-6)  # rows renormalized


def test_a_hyperparameter_the_optimizer_does_not_use_is_warned_about():
    p = torch.zeros(3, 4, requires_grad=True)
    with pytest.warns(UserWarning, match=r"^NDAdam: a param group carries weight_decay, which NDAdam does not use"):
        adamlab.NDAdam([{"params": [p], "weight_decay": 0.01}])  # as Hugging Face's Trainer builds its groups
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adamlab.NDAdam([{"params": [p], "name": "decoder", "initial_lr": 0.1}])  # not hyperparameters: kept silently
        adamlab.Adam([{"params": [p], "foreach": None, "fused": None}])  # torch's implementation options


# -- checkpoints -----------------------------------------------------------------------------------------------


def _trained(name, **kw):
    params = make_params()
    opt = _create(name, params, **kw)
    for _ in range(3):
        for p in params:
            p.grad = torch.ones_like(p)
        opt.step()
    return opt


PAIRS = [(a, b) for a in NAMES for b in NAMES if a != b]


@pytest.mark.parametrize(("saved", "loading"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_no_checkpoint_of_another_optimizer_loads(saved, loading):
    source, target = _trained(saved), _trained(loading)
    same_algorithm = type(source)._algorithm() == type(target)._algorithm()
    state_dict = copy.deepcopy(source.state_dict())
    if not same_algorithm:
        match = rf"saved by adamlab's {type(source)._algorithm()}, a different algorithm"
        assert_load_refused_unchanged(target, state_dict, match)
        return
    # the same rule (adam, adamw, amsgrad; adabound, amsbound): loads with the saved group's options
    # (amsgrad, decoupled decay...), so the target continues exactly as the source would
    target.load_state_dict(state_dict)
    assert target.state_dict()["param_groups"] == source.state_dict()["param_groups"]


@pytest.mark.parametrize(
    ("saved", "kw", "loading", "named"),
    [
        ("padam", {"lr": 0.1}, "amsgrad", r"\['partial'\]"),
        ("madam", {}, "adam", r"\['beta3', 'rectify'\]"),
        ("adabound", {}, "adam", r"\['amsbound', 'base_lr', 'final_lr', 'gamma'\]"),
        ("nadam", {}, "radam", r"\['momentum_decay'\]"),
        ("adabelief", {}, "adam", r"\['degenerated_to_sgd', 'fixed_decay', 'rectify'\]"),
    ],
)
def test_a_foreign_checkpoint_without_adamlabs_record_is_refused_by_its_keys(saved, kw, loading, named):
    """As torch.optim or an older adamlab saves it: the groups' hyperparameters tell."""
    state_dict = copy.deepcopy(_trained(saved, **kw).state_dict())
    del state_dict["adamlab_algorithm"]
    assert_load_refused_unchanged(_trained(loading), state_dict, rf"param group 0 carries the hyperparameters {named}, which")


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("lr", "0.1", r"invalid lr='0.1'"),
        ("eps", Decimal("1e-8"), r"invalid eps=Decimal"),
        ("betas", ("0.9", 0.999), r"invalid betas\[0\]='0.9'"),
        ("amsgrad", "False", r"invalid amsgrad='False'"),
        ("weight_decay", None, r"invalid weight_decay=None"),
    ],
)
def test_a_checkpoint_with_a_bad_hyperparameter_is_refused_and_changes_nothing(key, value, match):
    opt = _trained("adam")
    state_dict = copy.deepcopy(opt.state_dict())
    state_dict["param_groups"][0][key] = value
    assert_load_refused_unchanged(opt, state_dict, rf"^Adam.load_state_dict \(param group 0\): {match}")


def test_a_checkpoint_lacking_a_numeric_hyperparameter_is_refused():
    state_dict = copy.deepcopy(_trained("adam").state_dict())
    del state_dict["param_groups"][0]["eps"]
    assert_load_refused_unchanged(_trained("adam"), state_dict, r"lacks the hyperparameters \['eps'\]")


def test_a_loaded_checkpoint_is_normalized():
    opt = _trained("adam")
    state_dict = copy.deepcopy(opt.state_dict())
    state_dict["param_groups"][0].update(lr=np.float32(0.5), betas=[0.5, np.float64(0.75)], initial_lr=0.5)
    opt.load_state_dict(state_dict)
    group = opt.param_groups[0]
    assert type(group["lr"]) is float and group["betas"] == (0.5, 0.75) and type(group["betas"]) is tuple
    assert group["initial_lr"] == 0.5  # a scheduler's key stays, as torch.optim keeps it


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("step", [3.0, 3], ids=["float", "int"])
def test_an_old_style_number_step_loads_as_torch_loads_it(engine, step):
    params = make_params()
    opt = _create("adam", params, engine=engine)
    grads = [[torch.randn_like(p) for p in params] for _ in range(6)]
    for gs in grads[:3]:
        for p, g in zip(params, gs):
            p.grad = g.clone()
        opt.step()
    state_dict = copy.deepcopy(opt.state_dict())
    for s in state_dict["state"].values():
        s["step"] = step  # torch.optim before 1.12 saved a Python number
    twins = [p.detach().clone().requires_grad_() for p in params]
    resumed = _create("adam", twins, engine=engine)
    resumed.load_state_dict(state_dict)
    for gs in grads[3:]:
        for ps in (params, twins):
            for p, g in zip(ps, gs):
                p.grad = g.clone()
        opt.step()
        resumed.step()
    assert all(torch.equal(a, b) for a, b in zip(params, twins))
    assert resumed.state[twins[0]]["step"].item() == 6.0 and resumed.state[twins[0]]["step"].dtype == torch.float32


def test_torch_adam_checkpoint_with_its_implementation_options_still_loads():
    params = make_params()
    theirs = torch.optim.Adam(params, lr=0.01, foreach=False, capturable=False)
    for p in params:
        p.grad = torch.ones_like(p)
    theirs.step()
    ours = adamlab.Adam([p.detach().clone().requires_grad_() for p in params], lr=0.01)
    ours.load_state_dict(theirs.state_dict())
    assert ours.param_groups[0]["lr"] == 0.01 and ours.state_dict()["state"][0]["step"].item() == 1.0
