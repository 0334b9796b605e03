"""Optimizers by name, and the adamlab command."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import adamlab
from adamlab.cli import main

# every name in ../shared/API.md
IMPLEMENTED = sorted(
    "adam adamw amsgrad adamax nadam radam adabelief adabound amsbound padam swats ndadam madam adamal sgd rmsprop adagrad".split()
)


def test_available_is_sorted_and_complete():
    assert adamlab.available() == IMPLEMENTED


@pytest.mark.parametrize("name", IMPLEMENTED)
def test_create_builds_a_working_optimizer(name):
    w = torch.ones(3, requires_grad=True)
    opt = adamlab.create(name, [w], lr=0.1)
    w.grad = torch.ones(3)
    opt.step()
    assert (w.detach() < 1).all()


def test_create_fixes_what_the_name_says():
    opt = adamlab.create("amsgrad", [torch.zeros(1, requires_grad=True)], lr=1e-3)
    assert isinstance(opt, adamlab.Adam) and opt.defaults["amsgrad"] is True
    assert isinstance(adamlab.create("adamw", [torch.zeros(1, requires_grad=True)]), adamlab.AdamW)
    assert type(adamlab.create("sgd", [torch.zeros(1, requires_grad=True)], lr=0.1)) is torch.optim.SGD
    with pytest.raises(ValueError, match=r"'amsgrad' fixes amsgrad=True"):
        adamlab.create("amsgrad", [torch.zeros(1, requires_grad=True)], amsgrad=False)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError, match=r"unknown optimizer 'nadm'. Did you mean 'nadam' or .*Available: adabelief, adabound,"):
        adamlab.create("nadm", [])


def test_list_prints_one_line_per_optimizer_with_its_reference(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == IMPLEMENTED
    assert "Kingma & Ba" in next(line for line in lines if line.startswith("adam "))


def test_demo_trains_every_optimizer(capsys):
    assert main(["demo", "--steps", "60", "--optimizers", "adam", "sgd"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in out[2:]}
    assert set(rows) == {"adam", "sgd"}
    assert float(rows["adam"][3]) > 0.85  # test accuracy after 60 steps


def test_cli_errors_are_one_line_and_exit_2(capsys):
    assert main(["demo", "--optimizers", "adma"]) == 2
    assert capsys.readouterr().err.startswith("adamlab: error: unknown optimizer 'adma'")


def test_import_adamlab_is_light():
    """``import adamlab`` (and the CLI module) load no torch and no lab dependency; the classes load torch on first use."""
    heavy = ("torch", "adamlab.lab", "sklearn", "matplotlib", "scipy", "ray", "rich")
    code = (
        "import sys, adamlab, adamlab.cli; print([m for m in %r if m in sys.modules]); "
        "print(adamlab.Adam.__name__, adamlab.create is adamlab.optim.registry.create, 'torch' in sys.modules)" % (heavy,)
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "Adam True True"]


def test_bench_smoke_prints_ratios_to_fused_adam(capsys, monkeypatch):
    """Smoke test on a tiny layout: the table has the fused baseline and both engines, with ratios (and
    Padam's packed engine once more with an exponent that is not a square root)."""
    from adamlab import bench

    monkeypatch.setitem(bench.CASES, "b", ((2_000,), 10))
    monkeypatch.setenv("ADAMLAB_COMPILE", "0")
    assert main(["bench", "--cases", "b", "--optimizers", "adam", "swats", "padam", "--reps", "2", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = lines[lines.index(next(x for x in lines if x.startswith("optimizer"))) + 1 :]
    rows = {line[:34].strip(): line[34:].split() for line in table}
    assert rows["torch Adam fused"][1] == "1.00"
    assert {
        "adamlab adam packed",
        "adamlab adam reference",
        "adamlab swats packed",
        "adamlab swats reference",
        "adamlab padam packed",
        "adamlab padam p=0.3 packed",  # (Padam's general power: a row of its own)
        "torch Adam foreach",
    } <= set(rows)
    assert all(float(r[0]) > 0 and float(r[1]) > 0 for r in rows.values())


def test_bench_memory_measures_each_optimizer_in_its_own_process(capsys):
    from adamlab import bench

    peaks = bench.memory_table(["adam"], layers=2, threads=1)
    out = capsys.readouterr().out
    assert "torch Adam fused" in out and "adamlab adam" in out
    # two layers: 2M params, so fused Adam's params, grads and two moments alone take 30 MiB
    assert set(peaks) == {"fused", "adam"} and all(peak > 30 for peak in peaks.values())
    assert 0.5 < peaks["adam"] / peaks["fused"] < 2


def test_bench_case_c_gives_every_tensor_the_matrix_shape(capsys, monkeypatch):
    """Case (c) is matrices (ND-Adam's rows); the header says the shape."""
    from adamlab import bench

    monkeypatch.setitem(bench.CASES, "c", ((20, 50), 10))
    shapes = []
    real = bench._params
    monkeypatch.setattr(bench, "_params", lambda shape, tensors: shapes.append((shape, tensors)) or real(shape, tensors))
    assert main(["bench", "--cases", "c", "--optimizers", "ndadam", "--reps", "2", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "case (c): 0.01M float32 params in 10 tensors of (20, 50)" in out
    assert "adamlab ndadam packed" in out
    assert shapes and set(shapes) == {((20, 50), 10)}


def test_bench_fresh_grads_gives_every_step_new_grad_tensors(capsys, monkeypatch):
    from adamlab import bench

    params = [torch.zeros(3, requires_grad=True) for _ in range(2)]
    renew = bench._fresh_grads(params)
    seen = []
    for _ in range(3):
        renew()
        seen.append([p.grad for p in params])
    assert all(g is not h for a, b in zip(seen, seen[1:]) for g, h in zip(a, b))  # new objects each step
    assert all(g.abs().sum() > 0 for gs in seen for g in gs)
    monkeypatch.setitem(bench.CASES, "b", ((2_000,), 10))
    monkeypatch.setenv("ADAMLAB_COMPILE", "0")
    assert main(["bench", "--cases", "b", "--optimizers", "adam", "--reps", "2", "--threads", "1", "--fresh-grads"]) == 0
    out = capsys.readouterr().out
    assert "new grad tensors every step" in out and "adamlab adam packed" in out


def test_check_raises_what_create_raises_without_building_anything():
    from adamlab.optim.registry import check

    for name, hp, match in [
        ("adam", {"lr": -1.0}, r"^Adam: invalid lr=-1.0"),
        ("madam", {"beta3": -0.5}, r"^MAdam: invalid beta3=-0.5"),
        ("swats", {"engine": "fast"}, r"SWATS: invalid engine='fast'"),
        ("amsgrad", {"amsgrad": False}, r"'amsgrad' fixes amsgrad=True"),
        ("adam", {"bets": (0.9, 0.9)}, r"unknown keyword 'bets'"),
        ("sgd", {"lr": -1.0}, r"Invalid learning rate"),  # torch's own message
    ]:
        with pytest.raises(ValueError, match=match):
            check(name, **hp)
        with pytest.raises(ValueError, match=match):
            adamlab.create(name, [torch.zeros(1, requires_grad=True)], **hp)
    check("padam", lr=0.1, partial=0.125)  # valid: no error


def test_check_is_cheap():
    """Validating a sweep's optimizers must not pay torch.optim's first-construction cost (torch._dynamo)."""
    code = "import sys; from adamlab.optim.registry import check; check('adam', lr=1e-3); print('torch._dynamo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_closed_pipe_ends_the_command_quietly(monkeypatch):
    """``adamlab list | head -1``: the reader goes away mid-output; exit 0, no traceback."""

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["list"]) == 0
