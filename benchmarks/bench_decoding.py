"""Decoding throughput: plain decord ``get_batch`` vs the project's loader, on the same files.

Prints clips/s for 8 TSN segments per clip (evaluation indices):

* ``decord``            — ``VideoReader(path, num_threads=1)`` + ``get_batch`` (the baseline);
* ``loader cold``       — ``VideoDataset[i]`` without transform, first pass (PyAV probe + decord);
* ``loader warm``       — the same, next passes (verified frame counts are cached: the steady state);
* ``loader+transform``  — with the CLIP ViT-B/32 eval transform (resize + crop + normalise);

each with its ratio to the baseline, then loader clips/s with DataLoader workers 0..N.
The baseline can only read what decord opens, so every row uses the decord-readable files.

    python benchmarks/bench_decoding.py [--root DIR] [--workers N] [--repeats R] [--tile T] [--worker-list 1,2,4]

``--tile`` repeats the file list in the worker-scaling rows, so passes with many workers last long
enough to time and every worker gets about the same number of batches; the default (``auto``)
gives each worker at least 16 batches at the largest worker count. With too few batches the
scaling rows measure the tail, not the workers: 19 files in batches of 4 are 5 batches, which 2
workers share 3/2, so 2 workers cannot be faster than x1.58 whatever the loader does.
``--worker-list`` picks the worker counts (default ``0..N``).

``--root`` defaults to ``../shared/data/videos`` (the 25 real clips) or, if absent, 40
synthetic 320x240 clips written to a temp folder.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import decord
import numpy as np
import torch
from torch.utils.data import DataLoader

from zsar.data.dataset import VideoDataset
from zsar.data.decoding import clear_cache
from zsar.data.records import VideoList, VideoRecord
from zsar.data.sampling import SegmentSampler
from zsar.models.preprocess import clip_transform
from zsar.data.video_writer import write_video
from zsar.paths import shared_data_dir

BATCH = 4  # clips per DataLoader batch in the scaling rows
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".webm", ".mov", ".gif"}


def synthetic_root(n: int = 40) -> Path:
    """``n`` H.264 clips, 320x240, 90 frames of noise + a moving block (UCF101-like size)."""
    root = Path(tempfile.mkdtemp(prefix="bench_decoding_"))
    for i in range(n):
        rng = np.random.default_rng(i)
        frames = np.repeat(rng.integers(0, 256, (1, 240, 320, 3), dtype=np.uint8), 90, axis=0)
        for t in range(90):
            frames[t, 60:120, 2 * t:2 * t + 60] = 255
        write_video(root / f"clip{i:03d}.mp4", frames, 25)
    return root


def decord_readable(paths: list[Path]) -> list[Path]:
    ok = []
    for p in paths:
        try:
            if len(decord.VideoReader(str(p), num_threads=1)) > 0:
                ok.append(p)
        except (decord.DECORDError, RuntimeError):
            print(f"  (baseline cannot open {p.name}: left out of every row)")
    return ok


def time_per_pass(fn, items, repeats: int) -> float:
    """Median seconds of ``repeats`` passes of ``fn`` over ``items``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            fn(item)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def plain_decord(path: Path, sampler=SegmentSampler(8)) -> np.ndarray:
    vr = decord.VideoReader(str(path), num_threads=1)
    return vr.get_batch(sampler(len(vr)).tolist()).asnumpy()


def loader_rows(videos: VideoList, repeats: int) -> dict[str, float]:
    n = len(videos)
    plain = VideoDataset(videos, SegmentSampler(8))
    clear_cache()
    start = time.perf_counter()
    for i in range(n):
        plain[i]
    cold = time.perf_counter() - start
    warm = time_per_pass(plain.__getitem__, range(n), repeats)
    with_tf = VideoDataset(videos, SegmentSampler(8), transform=clip_transform("ViT-B-32"))
    transformed = time_per_pass(with_tf.__getitem__, range(n), repeats)
    return {"loader cold (probe)": n / cold, "loader warm": n / warm, "loader+transform": n / transformed}


def auto_tile(n_files: int, max_workers: int, batch: int, batches_per_worker: int = 16) -> int:
    """Repeats of the file list that give each of ``max_workers`` workers ``batches_per_worker`` batches."""
    return max(1, math.ceil(batches_per_worker * max(1, max_workers) * batch / max(1, n_files)))


def worker_scaling(videos: VideoList, worker_counts: list[int], repeats: int, tile: int = 1) -> None:
    tiled = VideoList(list(videos.records) * tile, videos.class_names, videos.root)
    ds = VideoDataset(tiled, SegmentSampler(8), transform=clip_transform("ViT-B-32"))
    print(f"\nDataLoader scaling ({len(ds)} clips = files x{tile}, batch {BATCH}, with transform, {repeats} passes, "
          f"median; x = vs the first row; of linear = (rate / rate with the fewest workers) / (workers ratio)):")
    base, ref = None, None  # first row; row with the fewest (>= 1) workers
    for workers in worker_counts:
        loader = DataLoader(ds, batch_size=BATCH, num_workers=workers,
                            persistent_workers=workers > 0)
        for _ in loader:  # warm-up pass: starts workers, fills their frame-count caches
            pass
        seconds = time_per_pass(lambda _: [b for b in loader], [None], repeats)
        rate = len(ds) / seconds
        base = base or rate
        if workers and ref is None:
            ref = (workers, rate)
        linear = f"  {rate / ref[1] * ref[0] / workers:4.2f} of linear" if workers else ""
        print(f"  workers={workers:2d}: {rate:7.1f} clips/s  x{rate / base:4.2f}{linear}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="folder searched recursively for videos")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="max DataLoader workers")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per row (median)")
    parser.add_argument("--tile", default="auto",
                        help="repeat the files this often in the scaling rows; auto: >= 16 batches per worker")
    parser.add_argument("--worker-list", default=None, help="comma-separated worker counts (default 0..--workers)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one core per decoder, as in a DataLoader worker
    root = args.root or (shared_data_dir() / "videos")
    if args.root is None and not root.is_dir():
        root = synthetic_root()
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    print(f"{len(paths)} videos under {root}; 8 TSN segments per clip")
    paths = decord_readable(paths)
    videos = VideoList([VideoRecord(p, 0, p.name) for p in paths], ["any"], root)

    baseline = len(paths) / time_per_pass(plain_decord, paths, args.repeats)
    rows = {"decord get_batch": baseline, **loader_rows(videos, args.repeats)}
    print(f"\n{'on ' + str(len(paths)) + ' decord-readable files':34s} clips/s   vs decord")
    for name, rate in rows.items():
        print(f"  {name:32s} {rate:7.1f}   x{rate / baseline:5.2f}")
    counts = ([int(w) for w in args.worker_list.split(",")] if args.worker_list
              else list(range(0, args.workers + 1)))
    tile = auto_tile(len(paths), max(counts), BATCH) if args.tile == "auto" else int(args.tile)
    worker_scaling(videos, counts, args.repeats, tile)


if __name__ == "__main__":
    main()
