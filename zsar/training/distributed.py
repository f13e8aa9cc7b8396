"""torch.distributed helpers for ``torchrun`` runs; everything degrades to one process.

Launch: ``torchrun --standalone --nproc_per_node N -m your.module``. torchrun sets ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE``; :func:`init_distributed` reads them and starts a process
group (nccl on CUDA, gloo on CPU). Without them nothing is initialised and the helpers act as a
world of one, so the same code runs in a notebook.

Data order: :func:`distributed_sampler` always builds a ``DistributedSampler`` (with
``num_replicas=1`` in a single process). Its permutation is seeded by ``seed + epoch``, rank
``r`` takes positions ``r, r + N, ...``, so with a per-rank batch ``B / N`` the N ranks' k-th
batches together are exactly the k-th batch of size ``B`` of a one-process run.
:class:`LoaderFactory` builds such a loader per epoch; :func:`extract_features` shards a dataset
for inference and gathers the features back in dataset order.

Under DDP, layers that use batch statistics (BatchNorm) see per-rank batches; CLIP-style models
use LayerNorm, for which N ranks and one process are equivalent.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from zsar.seed import seed_worker, torch_generator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size``, its ``local_rank`` and ``device``."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str | None


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """Rank 0: the process that writes checkpoints, history and figures."""
    return rank() == 0


def init_distributed(backend: str | None = None, timeout_s: float = 1800.0) -> DistInfo:
    """Start the process group from torchrun's environment (idempotent).

    Args:
        backend: ``"nccl"`` / ``"gloo"``; default nccl when CUDA is available, else gloo.
        timeout_s: collective timeout.

    Returns:
        A :class:`DistInfo`. Without ``WORLD_SIZE`` > 1 in the environment no group is
        started and the device is ``cuda`` (if available) or ``cpu``.
    """
    env_world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if env_world <= 1 and not dist.is_initialized():
        return DistInfo(0, 0, 1, device, None)
    if cuda:
        # before the group starts, so that nccl binds this process to its own GPU
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = backend or ("nccl" if cuda else "gloo")
        if backend not in ("nccl", "gloo", "mpi"):
            raise ValueError(f"unknown torch.distributed backend {backend!r}")
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
        log.info("rank %d/%d started (%s)", dist.get_rank(), dist.get_world_size(), backend)
    return DistInfo(dist.get_rank(), local_rank, dist.get_world_size(), device, dist.get_backend())


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    """Destroy the process group, if any (call once at the end of a torchrun script)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _comm_device() -> torch.device:
    """nccl only moves CUDA tensors; gloo moves CPU tensors."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(value: float | torch.Tensor, weight: float = 1.0) -> float:
    """Weighted mean of a scalar over ranks: ``sum(value * weight) / sum(weight)``."""
    if not is_distributed():
        return float(value)
    pair = torch.tensor([float(value) * weight, float(weight)], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(pair)
    return (pair[0] / pair[1]).item()


def all_gather_tensors(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` of every rank along dim 0, in rank order.

    Ranks may hold different numbers of rows: each pads to the largest, and the padding is
    cut off after the gather.

    Args:
        tensor: ``(n_r, ...)`` on this rank; the trailing shape and dtype must agree.

    Returns:
        ``(sum_r n_r, ...)`` on ``tensor``'s device (``tensor`` itself in one process).
    """
    if not is_distributed():
        return tensor
    device = _comm_device()
    local = tensor.detach().to(device).contiguous()
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor([local.shape[0]], dtype=torch.int64, device=device))
    counts = [int(s.item()) for s in sizes]
    padded = local.new_zeros((max(counts),) + tuple(local.shape[1:]))
    padded[: local.shape[0]] = local
    gathered = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(gathered, padded)
    return torch.cat([g[:n] for g, n in zip(gathered, counts)]).to(tensor.device)


def all_gather_objects(obj: Any) -> list[Any]:
    """Picklable ``obj`` of every rank, in rank order (``[obj]`` in one process)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def gather_in_dataset_order(values: torch.Tensor, indices: torch.Tensor, num_items: int) -> torch.Tensor:
    """Gather per-rank rows and put them back in dataset order.

    ``DistributedSampler`` deals indices round-robin and pads the last round with repeats of
    the first indices; gathering the indices with the values undoes both.

    Args:
        values: ``(n_r, ...)`` rows computed on this rank.
        indices: ``(n_r,)`` dataset index of each row (e.g. the samples' ``video_index``).
        num_items: dataset length ``N``.

    Returns:
        ``(N, ...)``: row ``i`` is the value of dataset item ``i``.

    Raises:
        ValueError: lengths disagree, or an index is out of range / missing on every rank.
    """
    if values.shape[0] != indices.shape[0]:
        raise ValueError(f"{values.shape[0]} values but {indices.shape[0]} indices")
    all_values = all_gather_tensors(values)
    all_indices = all_gather_tensors(indices.to(torch.int64)).cpu()
    if all_indices.numel() and (all_indices.min() < 0 or all_indices.max() >= num_items):
        raise ValueError(f"indices must lie in [0, {num_items}), got [{all_indices.min()}, {all_indices.max()}]")
    out = all_values.new_zeros((num_items,) + tuple(all_values.shape[1:]))
    seen = torch.zeros(num_items, dtype=torch.bool)
    # padding repeats are the same samples, so writing them twice is harmless
    out[all_indices.to(out.device)] = all_values
    seen[all_indices] = True
    if not bool(seen.all()):
        missing = torch.nonzero(~seen).flatten().tolist()
        raise ValueError(f"{len(missing)} of {num_items} dataset items were never computed, e.g. {missing[:10]}")
    return out


def distributed_sampler(dataset: Dataset, shuffle: bool, seed: int, epoch: int = 0,
                        drop_last: bool = False) -> DistributedSampler:
    """A ``DistributedSampler`` for this rank (one replica without a process group).

    Args:
        dataset: the dataset.
        shuffle: permute (seeded by ``seed + epoch``) or keep dataset order.
        seed: base seed, identical on every rank.
        epoch: selects the epoch's permutation.
        drop_last: drop the tail instead of padding it with repeats to equal rank shares.
    """
    sampler = DistributedSampler(dataset, num_replicas=world_size(), rank=rank(), shuffle=shuffle,
                                 seed=seed, drop_last=drop_last)
    sampler.set_epoch(epoch)
    return sampler


def per_rank_batch_size(global_batch_size: int) -> int:
    """``global_batch_size / world_size``; the global batch must split evenly over ranks."""
    n = world_size()
    if global_batch_size < n or global_batch_size % n:
        raise ValueError(f"global batch size {global_batch_size} does not split over {n} ranks")
    return global_batch_size // n


class LoaderFactory:
    """``epoch -> DataLoader`` whose order depends only on ``(seed, epoch)``.

    Calls ``dataset.set_epoch(epoch)`` when the dataset has it, shards with a
    ``DistributedSampler`` (one replica outside torchrun) seeded by ``seed + epoch``, and gives
    the DataLoader a ``torch.Generator`` seeded with ``seed + epoch`` for its worker seeds.

    Args:
        dataset: map-style dataset.
        batch_size: **global** batch size; each of N ranks loads ``batch_size / N``.
        seed: base seed.
        shuffle: permute every epoch.
        drop_last: drop the last incomplete batch (keeps every step the same size, which is
            what makes an N-rank run match a one-process run).
        num_workers, collate_fn, pin_memory: passed to the DataLoader.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int = 0, shuffle: bool = True,
                 drop_last: bool = True, num_workers: int = 0, collate_fn: Callable | None = None,
                 pin_memory: bool = False):
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.pin_memory = pin_memory

    def __call__(self, epoch: int) -> DataLoader:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        sampler = distributed_sampler(self.dataset, self.shuffle, self.seed, epoch)
        return DataLoader(self.dataset, batch_size=per_rank_batch_size(self.batch_size),
                          sampler=sampler, drop_last=self.drop_last, num_workers=self.num_workers,
                          collate_fn=self.collate_fn, pin_memory=self.pin_memory,
                          worker_init_fn=seed_worker, generator=torch_generator(self.seed + epoch))


def tqdm_disable(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: off on ranks > 0; ``None`` lets tqdm hide itself off a TTY."""
    if not is_main_process() or progress is False:
        return True
    return None if progress is None else False


def move_to_device(batch: Any, device: torch.device | str) -> Any:
    """Move every tensor in a (nested) dict / list / tuple to ``device``; other values stay."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device) for v in batch)
    return batch


@torch.no_grad()
def extract_features(encode: Callable[[dict], torch.Tensor], dataset: Dataset, batch_size: int,
                     device: torch.device | str = "cpu", num_workers: int = 0,
                     collate_fn: Callable | None = None, index_key: str = "video_index",
                     progress: bool | None = None) -> torch.Tensor:
    """Encode a whole dataset, sharded over ranks, and return the features in dataset order.

    Args:
        encode: ``batch dict -> (B, D)`` features; receives the batch already moved to
            ``device`` and runs under ``torch.no_grad`` (wrap it in autocast if wanted).
        dataset: map-style dataset whose samples carry ``index_key`` (their position).
        batch_size: per-rank batch size.
        device: where batch tensors are moved before ``encode``.
        num_workers, collate_fn: passed to the DataLoader.
        index_key: the sample key holding the dataset index.
        progress: tqdm bar on rank 0: ``None`` only on a terminal, ``True`` always, ``False`` never.

    Returns:
        ``(len(dataset), D)`` float32 features, identical on every rank.
    """
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                        sampler=distributed_sampler(dataset, shuffle=False, seed=0),
                        collate_fn=collate_fn)
    feats, idx = [], []
    for batch in tqdm(loader, desc="features", disable=tqdm_disable(progress)):
        if index_key not in batch:
            raise KeyError(f"samples lack the index key {index_key!r}; keys: {sorted(batch)}")
        feats.append(encode(move_to_device(batch, device)).float())
        idx.append(torch.as_tensor(batch[index_key]).reshape(-1))
    local = torch.cat(feats) if feats else torch.empty(0)
    return gather_in_dataset_order(local, torch.cat(idx), len(dataset)).cpu()
