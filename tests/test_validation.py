"""Bad hyperparameters raise ValueError naming the parameter, the value and the range, before any state."""

from __future__ import annotations

import pytest
import torch

import adamlab

CLASSES = [adamlab.Adam, adamlab.AdamW, adamlab.Adamax, adamlab.NAdam, adamlab.RAdam]

BAD = [
    ({"lr": -1e-3}, r"invalid lr=-0.001: expected a real number in \[0, inf\)"),
    ({"lr": float("nan")}, r"invalid lr=nan"),
    ({"lr": "fast"}, r"invalid lr='fast'"),
    ({"betas": (1.0, 0.999)}, r"invalid betas\[0\]=1.0: expected a real number in \[0, 1\)"),
    ({"betas": (0.9, -0.1)}, r"invalid betas\[1\]=-0.1"),
    ({"betas": (0.9,)}, r"invalid betas=\(0.9,\): expected a tuple of 2 reals"),
    ({"betas": (0.9, 0.99, 0.9)}, r"invalid betas=\(0.9, 0.99, 0.9\)"),
    ({"eps": -1e-8}, r"invalid eps=-1e-08"),
    ({"weight_decay": -0.1}, r"invalid weight_decay=-0.1"),
    ({"maximize": 1}, r"invalid maximize=1: expected True or False"),
]


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(("kw", "match"), BAD)
def test_bad_hyperparameter_is_refused(cls, kw, match):
    with pytest.raises(ValueError, match=f"^{cls.__name__}: {match}"):
        cls([torch.zeros(2, requires_grad=True)], **kw)


@pytest.mark.parametrize(
    ("cls", "kw", "match"),
    [
        (adamlab.Adam, {"amsgrad": "yes"}, r"invalid amsgrad='yes'"),
        (adamlab.Adam, {"bias_correction": None}, r"invalid bias_correction=None"),
        (adamlab.NAdam, {"momentum_decay": -1.0}, r"invalid momentum_decay=-1.0"),
        (adamlab.Adam, {"lr": torch.tensor([1.0, 2.0])}, r"invalid lr=.*exactly one element"),
    ],
)
def test_bad_option_is_refused(cls, kw, match):
    with pytest.raises(ValueError, match=match):
        cls([torch.zeros(2, requires_grad=True)], **kw)


def test_bad_param_group_is_refused_before_anything_changes():
    p, q = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    opt = adamlab.Adam([p])
    with pytest.raises(ValueError, match=r"^Adam \(param group\): invalid lr=-1"):
        opt.add_param_group({"params": [q], "lr": -1})
    with pytest.raises(ValueError, match=r"^Adam \(param group\): invalid betas"):
        adamlab.Adam([{"params": [p]}, {"params": [q], "betas": (0.9, 1.5)}])
    assert len(opt.param_groups) == 1 and not opt.state


def test_unknown_keyword_is_refused():
    with pytest.raises(TypeError, match="unexpected keyword argument 'bets'"):
        adamlab.Adam([torch.zeros(1, requires_grad=True)], bets=(0.9, 0.99))
    with pytest.raises(ValueError, match=r"unknown keyword 'bets' for optimizer 'adam'. Did you mean 'betas'.*Accepted: lr, betas"):
        adamlab.create("adam", [torch.zeros(1, requires_grad=True)], bets=(0.9, 0.99))


def test_zero_is_accepted_where_the_range_is_closed():
    adamlab.Adam([torch.zeros(1, requires_grad=True)], lr=0.0, betas=(0.0, 0.0), eps=0.0, weight_decay=0.0)
