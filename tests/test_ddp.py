"""The packed engine under DistributedDataParallel (2 CPU processes, gloo): the same result as the reference engine."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import adamlab

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo")

WORLD = 2


def _train(rank: int, init: str, engine: str, bucket_view: bool, out: dict) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=WORLD)
    try:
        torch.manual_seed(0)  # the same initial model on both ranks (DDP broadcasts rank 0's anyway)
        model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4)).double()
        ddp = torch.nn.parallel.DistributedDataParallel(model, gradient_as_bucket_view=bucket_view)
        opt = adamlab.Adam(ddp.parameters(), lr=1e-2, weight_decay=0.01, engine=engine)
        gen = torch.Generator().manual_seed(100 + rank)  # each rank its own data
        for _ in range(25):
            x = torch.randn(16, 8, generator=gen, dtype=torch.float64)
            opt.zero_grad()
            ddp(x).pow(2).mean().backward()
            opt.step()
        out[rank] = torch.cat([p.detach().flatten() for p in model.parameters()])
    finally:
        dist.destroy_process_group()


def _run(tmp_path, engine: str, bucket_view: bool) -> list[torch.Tensor]:
    init = f"file://{tmp_path / f'store-{engine}-{bucket_view}'}"
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_train, args=(init, engine, bucket_view, out), nprocs=WORLD, join=True)
        return [out[r] for r in range(WORLD)]


@pytest.mark.parametrize("bucket_view", [False, True], ids=["copied-grads", "gradient_as_bucket_view"])
def test_ddp_packed_equals_reference_and_ranks_agree(tmp_path, bucket_view):
    ref = _run(tmp_path, "reference", bucket_view)
    packed = _run(tmp_path, "packed", bucket_view)
    assert torch.equal(ref[0], ref[1]) and torch.equal(packed[0], packed[1])  # DDP keeps the ranks in step
    assert (ref[0] - packed[0]).abs().max().item() <= 1e-12
    assert (ref[0] - torch.cat([p.flatten() for p in _initial()])).abs().max().item() > 1e-3  # it trained


def _initial() -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4)).double()
    return [p.detach() for p in model.parameters()]
