"""Feature extraction end to end vs its two bounds, measured in the same run.

Three figures in frames/s (a clip is ``--frames`` TSN frames at the model's input size):

* ``model only``  — the image tower on random input already on the device, batch ``--batch``
  clips, under autocast ``--precision`` (the compute bound);
* ``decode only`` — :class:`~zsar.data.dataset.VideoDataset` (decord + CLIP eval transform)
  through a DataLoader with ``--workers`` processes, no model (the decode bound with all cores);
* ``end to end``  — the same loader feeding the tower (pinned memory, non-blocking copies),
  through :func:`zsar.training.distributed.extract_features`.

It prints ``end to end / min(model only, decode only)``: the share of the achievable rate that
the pipeline reaches (the aim: at least 0.8, i.e. the GPU is never starved for lack of
batching or overlap).

    python benchmarks/bench_features.py [--root DIR] [--model ViT-B-16] [--workers N] [--tile T]

``--root`` defaults to ``../shared/data/videos``; ``--tile`` repeats its files so that a pass
lasts long enough to time and every worker gets several batches (by default 4 batches per worker:
with fewer clips than ``workers x batch`` most workers sit idle and the decode row is not the
all-core bound). Random weights (``pretrained=None``): speed does not depend on them.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from zsar.data.dataset import VideoDataset
from zsar.data.records import VideoList, VideoRecord
from zsar.data.sampling import SegmentSampler
from zsar.models.preprocess import clip_transform
from zsar.models import create_model
from zsar.paths import shared_data_dir
from zsar.training.distributed import extract_features

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".webm", ".mov"}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def encoder(model, device: torch.device, precision: str):
    """``batch -> (B, D)``: frame features averaged over time, under autocast."""
    def encode(batch: dict) -> torch.Tensor:
        video = batch["video"] if isinstance(batch, dict) else batch
        b, t = video.shape[:2]
        with torch.autocast(device.type, dtype=DTYPES[precision], enabled=precision != "fp32"):
            feats = model.encode_image(video.flatten(0, 1))
        return feats.view(b, t, -1).float().mean(1)
    return encode


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def model_only(encode, device: torch.device, batch: int, frames: int, size: int, steps: int) -> float:
    x = torch.randn(batch, frames, 3, size, size, device=device)
    for _ in range(2):  # warm-up: kernels chosen, memory pooled
        encode({"video": x})
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        encode({"video": x})
    sync(device)
    return steps * batch * frames / (time.perf_counter() - start)


def decode_only(dataset, batch: int, workers: int) -> float:
    loader = DataLoader(dataset, batch_size=batch, num_workers=workers, persistent_workers=workers > 0,
                        prefetch_factor=4 if workers else None)
    for i, _ in enumerate(loader):  # warm-up: start the workers
        if i >= workers:
            break
    start = time.perf_counter()
    n = sum(b["video"].shape[0] * b["video"].shape[1] for b in loader)
    return n / (time.perf_counter() - start)


def end_to_end(encode, dataset, batch: int, workers: int, device: torch.device, frames: int) -> float:
    # warm-up on the first clips (their video_index is their position, as extract_features needs)
    warm = torch.utils.data.Subset(dataset, range(min(len(dataset), batch * max(workers, 1))))
    extract_features(encode, warm, batch, device, workers, progress=False)
    start = time.perf_counter()
    feats = extract_features(encode, dataset, batch, device, workers, progress=False)
    sync(device)
    return len(feats) * frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="folder searched recursively for videos")
    parser.add_argument("--model", default="ViT-B-16")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32, help="clips per batch")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="DataLoader workers")
    parser.add_argument("--tile", type=int, default=None,
                        help="repeat the files this often; default: enough for 4 batches per worker")
    parser.add_argument("--precision", choices=sorted(DTYPES), default=None, help="default bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--steps", type=int, default=10, help="timed batches of the model-only row")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    root = args.root or shared_data_dir() / "videos"
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not paths:
        raise SystemExit(f"no videos under {root}")
    # every worker must get several batches, or the decode row measures idle workers, not cores
    tile = args.tile or -(-4 * max(args.workers, 1) * args.batch // len(paths))
    videos = VideoList([VideoRecord(p, 0, p.name) for p in paths] * tile, ["any"], root)
    model = create_model(args.model, pretrained=None, device=device).eval()
    size = model.visual.image_size[0] if isinstance(model.visual.image_size, tuple) else model.visual.image_size
    dataset = VideoDataset(videos, SegmentSampler(args.frames), transform=clip_transform(args.model))
    encode = encoder(model, device, precision)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {os.cpu_count()} cores"
    print(f"{args.model}, {args.frames} frames x {size} px, {precision}, batch {args.batch} clips, on {name}; "
          f"{len(paths)} files x{tile} = {len(videos)} clips, {args.workers} DataLoader workers")
    torch.set_num_threads(max(1, (os.cpu_count() or 1) - args.workers) if device.type == "cuda"
                          else torch.get_num_threads())
    rows = {"model only": model_only(encode, device, args.batch, args.frames, size, args.steps),
            "decode only": decode_only(dataset, args.batch, args.workers),
            "end to end": end_to_end(encode, dataset, args.batch, args.workers, device, args.frames)}
    for label, rate in rows.items():
        print(f"  {label:12s} {rate:9.1f} frames/s  ({rate / args.frames:7.1f} clips/s)")
    bound = min(rows["model only"], rows["decode only"])
    limit = "decoding" if rows["decode only"] < rows["model only"] else "the model"
    print(f"end to end / min(bounds) = {rows['end to end'] / bound:.2f}  (the bound is {limit})")
    own, workers = (resource.getrusage(who).ru_maxrss / 2**20 for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    print(f"peak RSS: main process {own:.2f} GB, largest loader worker {workers:.2f} GB "
          "(a forked worker's RSS counts pages it shares with the main process)")


if __name__ == "__main__":
    main()
