"""Throughput of the embedded benchmark generator: clips/s and frames/s, 1 worker vs N workers.

The baseline is one worker (in-process) measured in the same run, so the printed ratio is the
parallel speed-up on this machine. Each run writes a full benchmark (render, H.264 encode,
side metadata, split files) into a fresh temporary folder and checks the two outputs agree.

Usage::

    python benchmarks/bench_generation.py --clips-per-class 4 --workers 2 --size 128
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

from zsar.data.embedded import BenchmarkConfig, class_catalog, generate_benchmark
from zsar.data.embedded.render import render_clip


def _digest(root: Path) -> str:
    """Hash of every generated file except benchmark.json (which records wall time)."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "benchmark.json":
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def _time_generation(config: BenchmarkConfig, workers: int, tmp: Path) -> tuple[float, str]:
    root = tmp / f"w{workers}"
    start = time.perf_counter()
    generate_benchmark(root, config, workers=workers, progress=False, force=True)
    return time.perf_counter() - start, _digest(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips-per-class", type=int, default=4, help="clips per class (default 4)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="parallel workers (default: all cores)")
    parser.add_argument("--size", type=int, default=BenchmarkConfig.size, help="frame size in pixels (default 128)")
    parser.add_argument("--n-classes", type=int, default=None, help="first N classes only (default: all)")
    parser.add_argument("--duration", type=float, default=BenchmarkConfig.duration, help="clip length in seconds")
    args = parser.parse_args()
    config = BenchmarkConfig(clips_per_class=args.clips_per_class, size=args.size, n_classes=args.n_classes,
                             duration=args.duration)
    n_clips = len(class_catalog(config.n_classes)) * config.clips_per_class
    render_clip(0, 0, config)  # warm the per-process caches (textures, noise bank) outside the timing
    print(f"{n_clips} clips of {config.n_frames} frames at {config.size}x{config.size}, "
          f"{os.cpu_count()} CPUs visible")
    with tempfile.TemporaryDirectory() as tmp:
        results = {w: _time_generation(config, w, Path(tmp)) for w in sorted({1, args.workers})}
    base = results[1][0]
    for workers, (seconds, _) in results.items():
        print(f"workers={workers:2d}: {seconds:7.2f} s  {n_clips / seconds:7.1f} clips/s  "
              f"{n_clips * config.n_frames / seconds:8.0f} frames/s  x{base / seconds:.2f} vs 1 worker")
    same = len({d for _, d in results.values()}) == 1
    print(f"outputs identical across worker counts: {same}")


if __name__ == "__main__":
    main()
