"""DDP: sharding arithmetic, gathering in dataset order, and a 2-process torchrun run vs 1 process.

A 2-rank run with per-rank batch ``B/2`` sees the same global batches as a 1-process run with
batch ``B`` (see :mod:`zsar.training.distributed`), and DDP averages the two half-batch mean
gradients, which is the full-batch mean gradient. The runs still differ in the last bits
because floating-point sums are taken in a different order (two half-batch reductions plus an
all-reduce instead of one reduction), and AdamW divides by ``sqrt(v)``, which amplifies tiny
differences early on. Measured on CPU/gloo: final loss and weights agree to ~1e-7 (max abs);
the test allows ``DDP_ATOL``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torch.utils.data import DistributedSampler

from zsar.training import LoaderFactory, distributed_sampler, gather_in_dataset_order, world_size
from zsar.training.toy import ToyDataset

DDP_ATOL = 1e-5
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_two_ranks_together_load_the_one_process_batches():
    dataset = ToyDataset(48)
    one = [b.tolist() for b in torch.tensor(list(distributed_sampler(dataset, True, seed=3, epoch=1))).split(16)]
    shards = []
    for r in range(2):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=r, shuffle=True, seed=3)
        sampler.set_epoch(1)
        shards.append(torch.tensor(list(sampler)).split(8))
    for k, batch in enumerate(one):
        assert sorted(batch) == sorted(shards[0][k].tolist() + shards[1][k].tolist())


def test_loader_order_depends_only_on_seed_and_epoch():
    dataset = ToyDataset(32)
    factory = LoaderFactory(dataset, 8, seed=1)
    first = [b["video_index"].tolist() for b in factory(2)]
    other = [b["video_index"].tolist() for b in factory(3)]
    again = [b["video_index"].tolist() for b in LoaderFactory(ToyDataset(32), 8, seed=1)(2)]
    assert first == again and first != other and dataset.epoch == 3
    assert sorted(sum(first, [])) == list(range(32))


def test_gather_puts_rows_in_dataset_order_and_drops_padding():
    # what rank 0 and 1 of a 2-rank DistributedSampler(shuffle=False) see for 5 items: 0,2,4 | 1,3,0
    indices = torch.tensor([0, 2, 4, 1, 3, 0])
    values = indices.float()[:, None] * torch.ones(1, 3)
    out = gather_in_dataset_order(values, indices, 5)
    assert world_size() == 1 and torch.equal(out[:, 0], torch.arange(5.0))
    with pytest.raises(ValueError, match="never computed"):
        gather_in_dataset_order(values[:2], indices[:2], 5)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        gather_in_dataset_order(values, indices, 3)


def test_per_rank_batch_size_must_split():
    with pytest.raises(ValueError, match="global batch size 0"):
        LoaderFactory(ToyDataset(8), 0)(0)


def _run(cmd, tmp_path):
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_torchrun_two_processes_match_one_process(tmp_path):
    job = ["-m", "zsar.training.toy", "--epochs", "3", "--batch-size", "16"]
    _run([sys.executable, *job, "--run-dir", str(tmp_path / "one")], tmp_path)
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
          *job, "--run-dir", str(tmp_path / "ddp")], tmp_path)
    one, ddp = (json.loads((tmp_path / d / "result.json").read_text()) for d in ("one", "ddp"))
    assert (one["world_size"], ddp["world_size"]) == (1, 2)
    for key in ("train_loss", "train_acc", "train_grad_norm", "lr", "val_top1"):
        assert ddp["final"][key] == pytest.approx(one["final"][key], abs=DDP_ATOL), key
    assert ddp["final"]["step"] == one["final"]["step"] == 3 * 128 // 16

    w1, w2 = (torch.load(tmp_path / d / "final_model.pt") for d in ("one", "ddp"))
    assert max((w1[k] - w2[k]).abs().max().item() for k in w1) < DDP_ATOL

    f1, f2 = (torch.load(tmp_path / d / "features.pt") for d in ("one", "ddp"))
    held_out = ToyDataset(37, split=1)  # 37 items: the 2-rank sampler pads one repeat
    expected = torch.stack([held_out[i]["video"] for i in range(len(held_out))])
    assert torch.equal(f1["inputs"], expected) and torch.equal(f2["inputs"], expected)
    assert torch.allclose(f1["model"], f2["model"], atol=DDP_ATOL * 10)
