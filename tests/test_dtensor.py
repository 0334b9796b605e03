"""DTensor params under engine="auto": FSDP2 (``fully_shard``) and tensor parallel
(``ColwiseParallel`` + ``RowwiseParallel``), 2 CPU processes on gloo, every adamlab algorithm.

One spawn runs every case (process start-up and the process group cost more than all the steps);
each case reports numbers and the tests assert them: the sharded run equals a single-process
float64 run of the unsharded model, and a run resumed from a torch.distributed.checkpoint
checkpoint continues bit for bit.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import adamlab
from adamlab.optim._base import RuleOptimizer

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo")

WORLD = 2
LAYOUTS = ("fsdp2", "tp")
NAMES = [name for name in adamlab.available() if isinstance(adamlab.create(name, [torch.zeros(1, requires_grad=True)]), RuleOptimizer)]
STEPS = 6  # steps per run
SAVED_AT = 3  # the checkpoint is taken after this many steps
BATCH = 8
HYPERPARAMETERS: dict[str, dict] = {
    # SWATS: eps is also the switching threshold; with these the unsharded run's tensors switch to
    # SGD at steps 2, 3 and 6 (one before the checkpoint, two after), and the first weight never
    "swats": {"lr": 0.05, "eps": 1e-2},
}


def _model() -> torch.nn.Module:
    # FSDP2 shards the second layer's 5 rows unevenly (3 + 2); tensor parallel splits the first
    # layer's 10 rows (Shard(0)) and the second layer's 10 columns (Shard(1)) across the ranks
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.Tanh(), torch.nn.Linear(10, 5)).double()


def _batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1000 + step)
    return torch.randn(BATCH, 6, generator=gen, dtype=torch.float64), torch.randn(BATCH, 5, generator=gen, dtype=torch.float64)


def _optimizer(name: str, params, engine: str) -> torch.optim.Optimizer:
    return adamlab.create(name, params, **{"lr": 0.01, **HYPERPARAMETERS.get(name, {}), "engine": engine})


def _train(model: torch.nn.Module, opt: torch.optim.Optimizer, steps: range, rows: slice) -> dict[str, float]:
    """Train on batches ``steps``; returns the collectives the optimizer's steps made, by name, per step."""
    from torch.distributed.tensor.debug import CommDebugMode

    collectives: Counter[str] = Counter()
    for step in steps:
        x, y = _batch(step)
        opt.zero_grad()
        (model(x[rows]) - y[rows]).pow(2).mean().backward()
        with CommDebugMode() as comm:
            opt.step()
        collectives.update({str(op): n for op, n in comm.get_comm_counts().items()})
    return {op: n / len(steps) for op, n in collectives.items()}


def _sharded(layout: str, mesh) -> torch.nn.Module:
    model = _model()
    if layout == "fsdp2":
        from torch.distributed.fsdp import fully_shard

        for layer in (model[0], model[2]):
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
    else:
        from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

        parallelize_module(model, mesh, {"0": ColwiseParallel(), "2": RowwiseParallel()})
    return model


def _full(t: torch.Tensor) -> torch.Tensor:
    return t.full_tensor() if hasattr(t, "full_tensor") else t


CPU_SCALARS = ("step", "mu_product")
"""State that torch.optim keeps as a plain 0-d CPU tensor per param (``step``, NAdam's ``mu_product``),
also under FSDP2: adamlab keeps them so too."""


def _laid_out_like(p: torch.Tensor, key: str, value: torch.Tensor) -> bool:
    """Whether state ``key`` of DTensor param ``p`` has the layout docs/distributed.md promises."""
    from torch.distributed.tensor import DTensor, Replicate, Shard

    if key in CPU_SCALARS:
        return type(value) is torch.Tensor and value.dim() == 0 and value.device.type == "cpu"
    if not isinstance(value, DTensor) or value.device_mesh != p.device_mesh:
        return False
    if value.shape == p.shape:
        return value.placements == p.placements
    if value.dim() == 0:  # SWATS's per-tensor scalars
        return all(pl == Replicate() for pl in value.placements)
    # ND-Adam's per-row second moment: sharded as the rows are, else replicated
    return value.shape == (p.shape[0], 1) and value.placements == tuple(Shard(0) if pl == Shard(0) else Replicate() for pl in p.placements)


def _case(layout: str, name: str, mesh, rank: int, directory: str) -> dict:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    # the batch: FSDP2 is data parallel (each rank its half; gradients are averaged), tensor parallel
    # gives every rank the whole batch
    rows = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD) if layout == "fsdp2" else slice(None)
    model = _sharded(layout, mesh)
    opt = _optimizer(name, model.parameters(), "auto")
    _train(model, opt, range(SAVED_AT), rows)
    checkpoint = f"{directory}/{layout}-{name}"
    model_sd, optim_sd = get_state_dict(model, opt)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=checkpoint)
    collectives = _train(model, opt, range(SAVED_AT, STEPS), rows)

    resumed = _sharded(layout, mesh)
    resumed_opt = _optimizer(name, resumed.parameters(), "auto")
    model_sd, optim_sd = get_state_dict(resumed, resumed_opt)
    dcp.load({"model": model_sd, "optim": optim_sd}, checkpoint_id=checkpoint)
    set_state_dict(resumed, resumed_opt, model_state_dict=model_sd, optim_state_dict=optim_sd)
    _train(resumed, resumed_opt, range(SAVED_AT, STEPS), rows)

    single = _model()
    single_opt = _optimizer(name, single.parameters(), "reference")
    _train(single, single_opt, range(STEPS), slice(None))

    states = [opt.state[p] for p in model.parameters()]
    report = {
        "collectives": collectives,
        "placements": sorted({str(p.placements) for p in model.parameters()}),
        "state_laid_out": all(_laid_out_like(p, k, v) for p in model.parameters() for k, v in opt.state[p].items()),
        "error": max((_full(p) - q).abs().max().item() for p, q in zip(model.parameters(), single.parameters())),
        "state_error": max(
            (_full(v) - single_opt.state[q][k]).abs().max().item()
            for p, q in zip(model.parameters(), single.parameters())
            for k, v in opt.state[p].items()
        ),
        "resumed_equal": all(torch.equal(p.to_local(), q.to_local()) for p, q in zip(model.parameters(), resumed.parameters()))
        and all(
            torch.equal(_full(v), _full(resumed_opt.state[q][k])) for p, q in zip(model.parameters(), resumed.parameters()) for k, v in opt.state[p].items()
        ),
        "moved": max((q - p0).abs().max().item() for q, p0 in zip(single.parameters(), _model().parameters())),
    }
    if name == "swats":
        report["switch_steps"] = [_full(s["switch_step"]).item() for s in states]
        report["single_switch_steps"] = [single_opt.state[q]["switch_step"].item() for q in single.parameters()]
    return report


def _worker(rank: int, init: str, directory: str, out: dict) -> None:
    from torch.distributed.device_mesh import init_device_mesh

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=WORLD)
    try:
        mesh = init_device_mesh("cpu", (WORLD,))
        out[rank] = {(layout, name): _case(layout, name, mesh, rank, directory) for layout in LAYOUTS for name in NAMES}
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> list[dict]:
    directory = tmp_path_factory.mktemp("dtensor")
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_worker, args=(f"file://{directory / 'store'}", str(directory), out), nprocs=WORLD, join=True)
        return [out[rank] for rank in range(WORLD)]


def test_every_algorithm_is_covered():
    assert len(NAMES) == 14 and {"swats", "ndadam", "madam", "adamal"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_sharded_run_equals_single_process_run(reports, layout, name):
    for report in (r[layout, name] for r in reports):
        assert report["placements"] == ["(Replicate(),)", "(Shard(dim=0),)", "(Shard(dim=1),)"] if layout == "tp" else ["(Shard(dim=0),)"]
        assert report["state_laid_out"]
        assert report["moved"] > 1e-3  # it trained
        assert report["error"] <= 1e-12
        assert report["state_error"] <= 1e-12


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_checkpoint_resumes_bit_for_bit(reports, layout, name):
    assert all(r[layout, name]["resumed_equal"] for r in reports)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_swats_switches_at_the_single_process_steps(reports, layout):
    for report in (r[layout, "swats"] for r in reports):
        # (the state is checked against the single-process run's in test_sharded_run_equals_single_process_run)
        assert report["switch_steps"] == report["single_switch_steps"] == [0.0, 2.0, 3.0, 6.0]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_only_sums_over_sharded_dims_communicate(reports, layout, name):
    """Elementwise rules make no collective; a sum over a segment whose elements are split across
    ranks is all-reduced once (DTensor left alone would all-reduce a Partial sum at each use, and
    gather ND-Adam's Shard(1) rows)."""
    expected = {
        # SWATS: two sums per sharded tensor (FSDP2: all four; tensor parallel: all but the
        # replicated bias of the row-wise layer); ND-Adam: three row sums of the Shard(1) weight
        ("fsdp2", "swats"): {"c10d_functional.all_reduce": 8.0},
        ("tp", "swats"): {"c10d_functional.all_reduce": 6.0},
        ("tp", "ndadam"): {"c10d_functional.all_reduce": 3.0},
    }.get((layout, name), {})
    assert all(r[layout, name]["collectives"] == expected for r in reports)
