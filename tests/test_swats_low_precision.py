"""SWATS with bfloat16 params: every engine switches each tensor at the same step.

The switching test compares two per-tensor sums' ratio with a running average to within ``eps``;
summed in bfloat16 (or from moments rounded differently by the eager and the compiled rule), the
engines switched different tensors at different steps (9 of the 24 tensors below, reference
engine against the packed engine's eager rule).
"""

from __future__ import annotations

import pytest
import torch

import adamlab

COUNT, LENGTH, STEPS = 24, 512, 20


def _run(engine: str) -> tuple[list[torch.Tensor], list[int]]:
    torch.manual_seed(0)
    base = [torch.randn(LENGTH) for _ in range(COUNT)]
    noise = [0.0, 1e-3, 1e-2, 0.1] * (COUNT // 4)  # the gradients' noise around a fixed direction...
    scale = [s for s in (1.0, 10.0, 100.0, 1e3, 0.1, 0.01) for _ in range(4)]  # ... and their size
    params = [torch.nn.Parameter(torch.randn(LENGTH, generator=torch.Generator().manual_seed(i)).bfloat16()) for i in range(COUNT)]
    opt = adamlab.SWATS(params, lr=1e-3, eps=1e-6, engine=engine)
    gen = torch.Generator().manual_seed(7)
    for _ in range(STEPS):
        for p, b, n, s in zip(params, base, noise, scale):
            p.grad = (s * (b + n * torch.randn(LENGTH, generator=gen))).bfloat16()
        opt.step()
    return [p.detach() for p in params], [int(opt.state[p]["switch_step"].item()) for p in params]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager-rule", "compiled-rule"])
def test_bfloat16_switches_at_the_same_steps_on_both_engines(monkeypatch, compiled):
    monkeypatch.setenv("ADAMLAB_COMPILE", "1" if compiled else "0")
    params, switched = _run("packed")
    ref_params, ref_switched = _run("reference")
    # tensors switching at steps from 2 to 20, and some staying in the Adam phase
    assert ref_switched == [3, 8, 9, 20, 2, 2, 2, 12, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0]
    assert switched == ref_switched
    assert all(torch.equal(p, q) for p, q in zip(params, ref_params))
