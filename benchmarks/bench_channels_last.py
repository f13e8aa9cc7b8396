"""ModifiedResNet image tower: channels-last frames (the project's default) vs contiguous frames.

Measured in the same run, on the same randomly initialised tower and the same batch of frames:
forward + backward of ``tower(frames).sum()`` (what a training step of a method that fine-tunes the
image tower costs on that side), median over ``--repeats`` after ``--warmup``, contiguous (the
baseline: what ``encode_video`` passed before) and channels-last, alternating within each repeat,
with the ratio and the largest difference between the two outputs. Run it on an otherwise idle
machine (see ``bench_optimizer.py``).

    python benchmarks/bench_channels_last.py [--backbone zsar-RN-T-64] [--frames 256] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from zsar.models.preprocess import clip_preprocess_config
from zsar.models import create_model
from zsar.models.video_encoder import image_tower


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="zsar-RN-T-64")
    parser.add_argument("--frames", type=int, default=256, help="frames per batch (32 clips x 8 frames)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    tower = image_tower(create_model(args.backbone, None, device=args.device))
    size = clip_preprocess_config(args.backbone, None).size
    frames = {"contiguous": torch.randn(args.frames, 3, size, size, device=args.device)}
    frames["channels-last"] = frames["contiguous"].contiguous(memory_format=torch.channels_last)
    times = {name: [] for name in frames}
    for repeat in range(args.warmup + args.repeats):
        for name, x in frames.items():
            tower.zero_grad(set_to_none=True)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            tower(x).sum().backward()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            if repeat >= args.warmup:
                times[name].append(time.perf_counter() - start)
    with torch.no_grad():
        diff = (tower(frames["contiguous"]) - tower(frames["channels-last"])).abs().max().item()
    base, fast = statistics.median(times["contiguous"]), statistics.median(times["channels-last"])
    print(f"{args.backbone} image tower, {args.frames} frames x {size} px, device {args.device}, "
          f"torch threads {torch.get_num_threads()}, median of {args.repeats}")
    print(f"forward + backward: channels-last {fast * 1e3:.1f} ms | contiguous (baseline) {base * 1e3:.1f} ms | "
          f"x{base / fast:.2f} faster; largest output difference {diff:.3g}")


if __name__ == "__main__":
    main()
