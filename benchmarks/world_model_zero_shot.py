"""Frozen zero-shot of the world models against the supervised ceiling of the same backbone.

    python benchmarks/world_model_zero_shot.py --pretrained zsar-world-open zsar-world-disjoint
    python benchmarks/world_model_zero_shot.py --pretrained /abs/world.pt --ceiling-epochs 8

On the embedded benchmark (the default one at ``data/embedded``, 150 clips of each of the 61
classes, or ``--clips-per-class N`` clips at ``data/embedded_<N>``, generated once) and its 10 seeded 50/50 splits (``random_class_splits(61, 10, seed=0)``, the
workbook's): every model named by ``--pretrained`` (world tags are built first when missing; the
random-init model is always measured beside them) is scored frozen, no fine-tuning, as notebook 00
scores it (frame-averaged video embedding against class-text prototypes: the name in the CLIP
video template, or the description). Then the supervised ceiling of the same backbone (the
workbook's ``supervised`` method, random init, trained on the train list of all classes) is fitted
once and scored on each split's unseen classes' test-list videos. Printed: mean ± std over the
splits of each, on all unseen videos and on the test-list videos, and the ratio frozen /
ceiling on the test-list videos (the aims: >= 0.75 for ``open``, >= 0.5 for ``disjoint``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path



def frozen_rows(backbone: str, models: list[str | None], source, splits, frames: int, cache) -> dict:
    """``{model label: {(text kind, "top1" | "top1_testlist"): (mean, std)}}`` and the seconds."""
    from zsar.evaluation.metrics import mean_std
    from zsar.experiments.frozen import frozen_zero_shot

    out = {}
    for pretrained in models:
        start = time.perf_counter()
        rows = frozen_zero_shot(backbone, pretrained, source, splits, frames, frame_cache=cache, progress=False)
        label = str(pretrained) if pretrained else "random init"
        out[label] = {(kind, metric): mean_std([r[metric] for r in rows if r["text_kind"] == kind])
                      for kind in ("name", "description") for metric in ("top1", "top1_testlist")}
        out[label]["seconds"] = round(time.perf_counter() - start, 1)
        out[label]["chance"] = rows[0]["chance"]
    return out


def ceiling(backbone: str, source, splits, frames: int, epochs: int, run_root: Path, cache) -> tuple[float, float, float]:
    """(mean, std) of the ceiling's test-list top-1 over the splits, and its training seconds."""
    from zsar.evaluation.metrics import mean_std
    from zsar.experiments.runs import run_split
    from zsar.experiments.settings import method_kwargs
    from zsar.experiments.split_data import default_dataset_factory

    make = default_dataset_factory(backbone, frames, 0, None, frame_cache=cache)
    kwargs = method_kwargs("supervised", common=dict(backbone=backbone, frames=frames, progress=False),
                           trained=dict(epochs=epochs, lr=1e-4))  # the base class's rate, as measured
    results = [run_split("supervised", kwargs, source, split, run_root / "supervised" / split.name, seed=0,
                         dataset_factory=make) for split in splits]
    mean, std = mean_std([r["metrics"]["top1_testlist"] for r in results])
    return mean, std, float(results[0]["metrics"]["train_time_s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretrained", nargs="*", default=["zsar-world-open"], help="world tags or checkpoint files")
    parser.add_argument("--backbone", default="zsar-ViT-T-16-64-minilm")
    parser.add_argument("--clips-per-class", type=int, default=150, help="150: the default benchmark, data/embedded")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--ceiling-epochs", type=int, default=8, help="0: skip the ceiling")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/world_model_zero_shot"))
    args = parser.parse_args(argv)

    import torch

    from zsar import paths
    from zsar.data.embedded import BenchmarkConfig, generate_benchmark
    from zsar.data.protocols import random_class_splits
    from zsar.experiments.sources import load_embedded_source
    from zsar.models.preprocess import video_pipeline

    torch.set_num_threads(args.threads)
    config = BenchmarkConfig(clips_per_class=args.clips_per_class)
    folder = "embedded" if config == BenchmarkConfig() else f"embedded_{args.clips_per_class}"
    root = generate_benchmark(paths.data_dir() / folder, config, progress=False)
    source = load_embedded_source(root)
    splits = random_class_splits(len(source.texts), 10, seed=0)
    cache = video_pipeline(args.backbone).frame_cache()
    cache.build(source.videos)
    frozen = frozen_rows(args.backbone, [None, *args.pretrained], source, splits, args.frames, cache)
    ceil = (ceiling(args.backbone, source, splits, args.frames, args.ceiling_epochs, args.out, cache)
            if args.ceiling_epochs else None)
    print(report(args, root, frozen, ceil))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "world_model_zero_shot.json").write_text(json.dumps(
        {"frozen": {m: {f"{k[0]}/{k[1]}" if isinstance(k, tuple) else k: v for k, v in d.items()}
                    for m, d in frozen.items()}, "ceiling": ceil, "args": {**vars(args), "out": str(args.out)}},
        indent=1))
    return 0


def report(args, root: Path, frozen: dict, ceil: tuple | None) -> str:
    """The table: one row per model and text kind, then the ceiling and the ratios."""
    chance = next(iter(frozen.values()))["chance"]
    lines = [f"Protocol: 50/50 x 10 seeded splits (seed 0) of {root.name} (61 classes x {args.clips_per_class} clips); "
             f"backbone {args.backbone}; frozen: frame average of {args.frames} TSN frames vs class-text prototypes, "
             f"no fine-tuning; chance {100 * chance:.2f} %.", "",
             "| model | class text | unseen top-1 % (all videos) | unseen top-1 % (test list) |", "|:--|:--|--:|--:|"]
    for model, d in frozen.items():
        for kind in ("name", "description"):
            (a, sa), (t, st) = d[(kind, "top1")], d[(kind, "top1_testlist")]
            lines.append(f"| {model} | {kind} | {100 * a:.2f} ± {100 * sa:.2f} | {100 * t:.2f} ± {100 * st:.2f} |")
    if ceil:
        lines += [f"| supervised ceiling ({args.ceiling_epochs} epochs, random init, all classes) | – | – | "
                  f"{100 * ceil[0]:.2f} ± {100 * ceil[1]:.2f} |", "",
                  f"ceiling train time {ceil[2]:.0f} s (one fit, shared by the splits)"]
        for model, d in frozen.items():
            best = max(d[(k, "top1_testlist")][0] for k in ("name", "description"))
            lines.append(f"frozen / ceiling (test list, best text): {model}: {best / ceil[0]:.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
