"""Decode once: evaluation passes from decoded video vs the frame cache vs the feature cache.

Measured in the same run, on the same videos (TSN segments, evaluation views, CLIP eval transform):

* ``(a) decode``        — ``VideoDataset`` pass, decoding every clip (the baseline; warm: the
                          per-file probe is cached, so this is the steady state);
* ``frame cache build`` — decoding every frame once, resized, in ``--workers`` processes;
* ``(b) frame cache``   — the same pass through ``CachedVideoDataset`` (checked identical to (a));
* ``(c) feature cache`` — a repeated evaluation of the same model: ``FeatureCache`` hit, with
                          the key already computed, and with it computed (hashing the image
                          tower's weights, stat'ing every file);

each with its ratio to (a). For context it also times a full feature pass with a randomly
initialised ``zsar-ViT-T-16-64``-style tower, decoding vs from the frame cache (a feature-cache miss).

    python benchmarks/bench_cache.py [--root DIR] [--size 64] [--segments 8] [--workers 2]

``--root``: an embedded benchmark root (``classes.json`` + ``splits/``), or any folder searched
recursively for videos. Without it a small embedded benchmark is generated in a temp folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from zsar.data.dataset import VideoDataset
from zsar.data.datasets import all_videos
from zsar.data.decoding import clear_cache
from zsar.data.embedded import BenchmarkConfig, generate_benchmark
from zsar.data.frame_cache import CachedVideoDataset, FrameCache
from zsar.data.records import VideoList, VideoRecord
from zsar.data.sampling import SegmentSampler
from zsar.data.transforms import ClipPreprocessConfig, ClipVideoTransform
from zsar.experiments.feature_cache import FeatureCache, dataset_fingerprint, state_dict_hash
from zsar.models.registry import create_model
from zsar.models.video_encoder import encode_video, frame_average, image_tower
from zsar.training.distributed import extract_features

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".webm", ".mov", ".gif"}


def load_videos(root: Path) -> VideoList:
    """The embedded benchmark's every clip, or every video file under ``root`` (label = folder)."""
    if (root / "classes.json").is_file() and (root / "splits").is_dir():
        return all_videos("embedded", root=root)
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not paths:
        raise FileNotFoundError(f"--root {root}: no video files ({sorted(VIDEO_SUFFIXES)}) found")
    classes = sorted({p.parent.name for p in paths})
    records = [VideoRecord(p, classes.index(p.parent.name), p.relative_to(root).as_posix()) for p in paths]
    return VideoList(records, classes, root, source=str(root))


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def full_pass(dataset) -> list:
    return [dataset[i] for i in range(len(dataset))]


def make_encoder(size: int):
    """A randomly initialised tiny CLIP tower at ``size`` px and ``batch -> (B, D)`` features."""
    torch.manual_seed(0)
    model = create_model("zsar-ViT-T-16-64", image_size=size)

    def encode(batch: dict) -> torch.Tensor:
        return frame_average(encode_video(model, batch["video"]))
    return model, encode


def data_rows(videos: VideoList, args, cache_root: Path) -> tuple[dict, CachedVideoDataset, VideoDataset]:
    """Rows (a), build and (b): seconds per pass, and the two datasets."""
    transform = ClipVideoTransform(ClipPreprocessConfig(size=args.size))
    sampler = SegmentSampler(args.segments)
    decoding = VideoDataset(videos, sampler, transform)
    clear_cache()
    rows = {"(a) decode, first pass (probes files)": median_seconds(lambda: full_pass(decoding), 1),
            "(a) decode (baseline)": median_seconds(lambda: full_pass(decoding), args.repeats)}
    cache = FrameCache.for_transform(transform.cfg, cache_root, max_frames=args.max_frames)
    start = time.perf_counter()
    report = cache.build(videos, workers=args.workers, progress=False)
    rows[f"frame cache build ({args.workers} workers, once)"] = time.perf_counter() - start
    cached = CachedVideoDataset(videos, cache, sampler, transform)
    rows["(b) frame cache"] = median_seconds(lambda: full_pass(cached), args.repeats)
    same = all(torch.equal(a["video"], b["video"]) and torch.equal(a["frame_indices"], b["frame_indices"])
               for a, b in zip(full_pass(decoding), full_pass(cached)))
    size_mb = sum(p.stat().st_size for p in cache.folder.rglob("*.npy")) / 2**20
    note = " (expected: --max-frames keeps the nearest frames)" if args.max_frames and not same else ""
    print(f"frame cache: {report.built} clips decoded, {size_mb:.1f} MiB at {args.size}px; "
          f"(b) samples identical to (a): {same}{note}")
    return rows, cached, decoding


def feature_rows(videos: VideoList, cached: CachedVideoDataset, decoding: VideoDataset, args,
                 cache_root: Path) -> dict:
    """Model passes (decode vs frame cache) and the feature-cache hit (c)."""
    model, encode = make_encoder(args.size)
    batch = args.batch_size
    rows = {"model pass, decoding": median_seconds(lambda: extract_features(encode, decoding, batch), 1),
            "model pass, frame cache": median_seconds(lambda: extract_features(encode, cached, batch), 1)}
    features = FeatureCache(cache_root / "features")
    ids = [r.video_id for r in videos.records]

    def key_parts() -> dict:  # video features depend on the image tower only: hash just its weights
        return dict(model_name="zsar-ViT-T-16-64", checkpoint=state_dict_hash(image_tower(model)),
                    sampling=cached.sampler, transform=cached.transform, data=dataset_fingerprint(videos))

    def lookup(parts: dict):
        return features.get_or_compute(parts, ids, lambda: extract_features(encode, cached, batch))
    parts = key_parts()
    lookup(parts)  # the miss: computes and stores
    rows["(c) feature cache hit"] = median_seconds(lambda: lookup(parts), args.repeats)
    with_key = median_seconds(lambda: lookup(key_parts()), args.repeats)
    rows["(c) feature cache hit, key computed too"] = with_key
    assert features.misses == 1 and features.hits == 2 * args.repeats
    return rows


def print_rows(rows: dict, n: int) -> None:
    base = rows["(a) decode (baseline)"]
    print(f"\n{'pass over ' + str(n) + ' clips':44s} {'seconds':>9s} {'clips/s':>10s} {'vs (a)':>9s}")
    for name, seconds in rows.items():
        if "build" in name:
            print(f"  {name:42s} {seconds:9.3f} {n / seconds:10.1f}   (= {seconds / base:.1f} decode passes)")
        else:
            print(f"  {name:42s} {seconds:9.4f} {n / seconds:10.1f} {base / seconds:8.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="embedded benchmark root or a video folder")
    parser.add_argument("--size", type=int, default=64, help="model input side S (frames cached at S x S)")
    parser.add_argument("--segments", type=int, default=8, help="TSN segments per clip")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="frame cache build processes")
    parser.add_argument("--max-frames", type=int, default=None, help="frames kept per video (default all)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per row (median)")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per model batch")
    parser.add_argument("--clips-per-class", type=int, default=4, help="generated benchmark only")
    parser.add_argument("--n-classes", type=int, default=10, help="generated benchmark only")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one core per pass, as in a DataLoader worker; ratios compare like with like
    with tempfile.TemporaryDirectory(prefix="bench_cache_") as tmp:
        root = args.root
        if root is None:
            root = generate_benchmark(Path(tmp) / "embedded", BenchmarkConfig(
                clips_per_class=args.clips_per_class, n_classes=args.n_classes), workers=args.workers,
                progress=False)
        videos = load_videos(root)
        print(f"{len(videos)} videos under {root}; {args.segments} TSN segments, eval views, {args.size}px")
        rows, cached, decoding = data_rows(videos, args, Path(tmp) / "cache")
        rows.update(feature_rows(videos, cached, decoding, args, Path(tmp) / "cache"))
        print_rows(rows, len(videos))
        ratio = rows["(a) decode (baseline)"] / rows["(c) feature cache hit, key computed too"]
        print(f"\nrepeated evaluation (feature cache hit) vs decoding again: {ratio:.0f}x "
              f"(target >= 20x): {'met' if ratio >= 20 else 'NOT met'}")


if __name__ == "__main__":
    main()
