"""Two real processes (gloo): the data module shards the training split by rank, disjoint and equal."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from cnnlab.data import DataBundle, ImageTensorDataset
        from cnnlab.data.datamodule import ImageDataModule

        images = torch.arange(37, dtype=torch.uint8).view(37, 1, 1, 1).expand(37, 1, 4, 4).contiguous()
        ds = ImageTensorDataset(images, torch.arange(37) % 3, ["a", "b", "c"])
        dm = ImageDataModule(DataBundle("toy", ["a", "b", "c"], ds, ds, (1, 4, 4)), batch_size=5, seed=4)
        seen = [int(x[i, 0, 0, 0]) for x, _ in dm.train_dataloader() for i in range(len(x))]
        val = [int(x[i, 0, 0, 0]) for x, _ in dm.val_dataloader() for i in range(len(x))]
        gathered: list[object] = [None] * world
        dist.all_gather_object(gathered, (seen, val))
        if rank == 0:
            torch.save(gathered, out)
        dist.barrier()  # gloo aborts a rank whose peer tears the group down under it
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
@pytest.mark.slow
def test_two_ranks_get_disjoint_equal_shards(tmp_path: Path) -> None:
    out = str(tmp_path / "shards.pt")
    mp.spawn(_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    (train0, val0), (train1, val1) = torch.load(out, weights_only=True)
    assert len(train0) == len(train1) == 19  # 37 padded to 38, split in two
    assert set(train0) | set(train1) == set(range(37))
    assert len(set(train0) & set(train1)) == 1  # the single wrap-around pad sample
    assert sorted(val0 + val1) == list(range(37))  # val: every sample exactly once, no padding
