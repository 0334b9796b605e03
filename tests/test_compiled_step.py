"""A training step compiled whole with ``torch.compile`` (forward, backward, ``opt.step()``,
``zero_grad()``), as in PyTorch's compiled-optimizer recipe: inside it, the step traces the
reference engine's plain torch ops, which inductor fuses with the rest of the step. It must equal
the eager loop and compile about as many graphs as ``torch.optim.Adam`` does (no recompiles per
step: step counts are tensors, hyperparameters constants)."""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.utils import counters

import adamlab
from adamlab.optim.registry import REGISTRY

pytestmark = pytest.mark.usefixtures("float64_default")

STEPS = 12
NAMES = [n for n in adamlab.available() if not REGISTRY[n].cls.__module__.startswith("torch.")]


def train(make, compiled: bool) -> tuple[list[torch.Tensor], int]:
    """Params after STEPS steps, and dynamo's count of unique graphs."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.Tanh(), torch.nn.Linear(10, 3))
    opt = make(model.parameters())
    x, y = torch.randn(16, 6), torch.randn(16, 3)

    def step():
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    torch._dynamo.reset()
    counters.clear()
    fn = torch.compile(step) if compiled else step
    for _ in range(STEPS):
        fn()
    return [p.detach().clone() for p in model.parameters()], counters["stats"]["unique_graphs"]


@pytest.fixture(scope="module")
def torch_graphs():
    _, graphs = train(lambda ps: torch.optim.Adam(ps, lr=1e-2), compiled=True)
    assert graphs >= 1
    return graphs


@pytest.mark.parametrize("name", NAMES)
def test_compiled_training_step_equals_eager_without_recompiling(name, torch_graphs):
    def make(ps):
        return adamlab.create(name, ps, lr=1e-2)

    eager, _ = train(make, compiled=False)
    compiled, graphs = train(make, compiled=True)
    moved = max((a - b).abs().max().item() for a, b in zip(eager, train(make, compiled=False)[0]))
    assert moved == 0.0  # (the eager loop itself is deterministic)
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert graphs <= torch_graphs + 2, f"{name}: {graphs} unique graphs over {STEPS} steps, torch.optim.Adam {torch_graphs}"
