"""A toy training job (an MLP on seeded random features) for tests and quick device checks.

It exercises the whole loop — sharded loading, DDP, AMP, checkpoints, resume, feature
extraction — in seconds and without video data::

    python -m zsar.training.toy --run-dir /tmp/toy --epochs 4
    torchrun --standalone --nproc_per_node 2 -m zsar.training.toy --run-dir /tmp/toy_ddp
    python -m zsar.training.toy --run-dir /tmp/toy --amp bf16 --device cuda   # on a GPU

Rank 0 writes ``result.json`` (final history row, best epoch), ``final_model.pt`` and
``features.pt`` (``{"inputs": (N, F), "model": (N, C)}`` gathered in dataset order).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from zsar.io import atomic_path, atomic_write_json
from zsar.training import distributed as dist_utils
from zsar.training.loop import OptimConfig, fit
from zsar.training.distributed import LoaderFactory, extract_features


class ToyDataset(Dataset):
    """``num_items`` samples ``{"video": (F,), "label": int, "video_index": int}``.

    Classes are Gaussian blobs around centres drawn from ``seed``; ``split`` draws another sample
    of the same classes (e.g. 0 train, 1 held-out). :meth:`set_epoch` adds per-epoch,
    per-sample jitter (like a video dataset's random clips) from ``[seed, split, epoch, i]``.
    """

    def __init__(self, num_items: int = 128, num_features: int = 16, num_classes: int = 4,
                 seed: int = 0, split: int = 0, jitter: float = 0.1):
        centres = np.random.default_rng(seed).normal(size=(num_classes, num_features))
        rng = np.random.default_rng([seed, split])
        self.labels = rng.integers(0, num_classes, size=num_items)
        self.features = (centres[self.labels] + rng.normal(size=(num_items, num_features))).astype(np.float32)
        self.seed, self.split, self.jitter, self.epoch = seed, split, jitter, 0

    def __len__(self) -> int:
        return len(self.labels)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict:
        noise = np.random.default_rng([self.seed, self.split, self.epoch, index]).normal(size=self.features.shape[1])
        x = self.features[index] + self.jitter * noise.astype(np.float32)
        return {"video": torch.from_numpy(x), "label": int(self.labels[index]), "video_index": index}


class ToyModel(nn.Module):
    """``(B, F) -> (B, C)`` logits: Linear-LayerNorm-GELU-Dropout-Linear times ``exp(logit_scale)``."""

    def __init__(self, num_features: int = 16, num_classes: int = 4, hidden: int = 32, dropout: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(num_features, hidden), nn.LayerNorm(hidden), nn.GELU(),
                                  nn.Dropout(dropout))
        self.head = nn.Linear(hidden, num_classes)
        self.logit_scale = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)) * self.logit_scale.exp()


def toy_loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
    """Cross-entropy and batch accuracy; ``loss_fn`` of the training loop."""
    logits = model(batch["video"])
    loss = nn.functional.cross_entropy(logits.float(), batch["label"])
    return loss, {"acc": (logits.argmax(1) == batch["label"]).float().mean().detach()}


def toy_eval_fn(dataset: ToyDataset, batch_size: int = 16, kill_at_epoch: int | None = None):
    """``eval_fn`` reporting top-1 on ``dataset``; SIGKILLs the process at ``kill_at_epoch``."""
    def evaluate(model: nn.Module, epoch: int) -> dict:
        if kill_at_epoch is not None and epoch == kill_at_epoch:
            os.kill(os.getpid(), signal.SIGKILL)  # a real kill: no cleanup, no finally blocks
        device = next(model.parameters()).device
        logits = extract_features(lambda b: model(b["video"]), dataset, batch_size, device, progress=False)
        return {"val_top1": float((logits.argmax(1).numpy() == dataset.labels).mean())}
    return evaluate


def run_toy_job(run_dir: str | os.PathLike, epochs: int = 4, batch_size: int = 16, seed: int = 0,
                amp: str = "none", dropout: float = 0.0, lr: float = 3e-3,
                kill_at_epoch: int | None = None, device: str | None = None,
                resume: bool = True) -> dict:
    """Train the toy model; return the last history row (and write files on rank 0)."""
    torch.manual_seed(seed)  # identical initial weights on every rank and in every run
    train, held_out = ToyDataset(128, seed=seed), ToyDataset(37, seed=seed, split=1)  # 37: uneven shards
    model = ToyModel(dropout=dropout)
    result = fit(model, toy_loss, LoaderFactory(train, batch_size, seed=seed), epochs, run_dir,
                 optim=OptimConfig(lr=lr, weight_decay=0.01, warmup=0.25), grad_clip=1.0, amp=amp,
                 eval_fn=toy_eval_fn(held_out, kill_at_epoch=kill_at_epoch), monitor="val_top1",
                 seed=seed, progress=False, device=device, resume=resume)
    device = next(model.parameters()).device
    inputs = extract_features(lambda b: b["video"], held_out, 8, device, progress=False)
    outputs = extract_features(lambda b: model(b["video"]), held_out, 8, device, progress=False)
    if dist_utils.is_main_process():
        run_dir = Path(run_dir)
        with atomic_path(run_dir / "final_model.pt") as tmp:
            torch.save(model.state_dict(), tmp)
        with atomic_path(run_dir / "features.pt") as tmp:
            torch.save({"inputs": inputs, "model": outputs}, tmp)
        atomic_write_json(run_dir / "result.json", {"final": result.final, "best_epoch": result.best_epoch,
                                                    "world_size": dist_utils.world_size()})
    return result.final


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16, help="global batch size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--kill-at-epoch", type=int, default=None)
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    dist_utils.init_distributed()
    try:
        final = run_toy_job(args.run_dir, args.epochs, args.batch_size, args.seed, args.amp,
                            args.dropout, kill_at_epoch=args.kill_at_epoch, device=args.device)
        if dist_utils.is_main_process():
            print(json.dumps(final, sort_keys=True))
        # no rank tears its gloo connections down while another still writes or gathers: without
        # this, a rank finishing first made the other abort at exit, now and then
        dist_utils.barrier()
    finally:
        dist_utils.cleanup()


if __name__ == "__main__":
    main()
