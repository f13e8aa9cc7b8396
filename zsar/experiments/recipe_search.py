"""Choose a method's training recipe on seen classes only: zero-shot accuracy on held-out *seen* classes.

A recipe (learning rate, and any other constructor argument) is scored on *seen-class folds*:
the seen classes of one benchmark split are halved at random; the method is fitted on one half
and evaluated zero-shot on the other half's videos (its own held-out videos, never trained on).
The split's unseen classes, their names, descriptions and units, take no part. A method that is
not zero-shot (the supervised ceiling) is scored by its top-1 on test-list videos of the
classes of the fold (all of them seen classes of the split).

Usage::

    python -m zsar.experiments.recipe_search --data-root data/embedded_40 \\
        --pretrained zsar-world-open --methods actionclip rest --grid lr=1e-5,1e-4,1e-3 --epochs 4

prints one row per method and value with the mean top-1 over the folds, marks the best, and
writes ``<out>/recipes.json`` and ``<out>/recipes.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from zsar.data.protocols import ZeroShotSplit, random_class_splits, seen_halving
from zsar.io import atomic_write_json, atomic_write_text


def seen_class_folds(split: ZeroShotSplit, n_folds: int, seed: int = 0) -> list[ZeroShotSplit]:
    """``n_folds`` halvings of ``split.seen`` as splits: fitted on one half, scored on the other.

    Fold ``f`` is seeded by ``(seed, f)``; its pseudo-unseen half is ``len(seen) // 2`` classes.
    Class indices stay those of the benchmark, so the fold reads the same data source.
    """
    seen = np.asarray(split.seen)
    folds = []
    for f in range(n_folds):
        fit, held = (seen[half] for half in seen_halving(len(seen), (seed, f)))
        folds.append(ZeroShotSplit([int(c) for c in fit], [int(c) for c in held], seed,
                                   f"{split.name or 'split'}-seenfold{f}", split.n_classes))
    return folds


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["lr=1e-5,1e-4", "text_kind=name"]`` -> ``{"lr": [1e-05, 0.0001], "text_kind": ["name"]}``.

    Values are Python literals where they parse, else strings.
    """
    import ast

    def value(text: str) -> Any:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text

    grid: dict[str, list[Any]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name or not values:
            raise ValueError(f"grid item {item!r} must read NAME=V1,V2,...")
        grid[name] = [value(v) for v in values.split(",")]
    return grid


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of ``grid``'s values, in order."""
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]


def score_recipe(method: str, kwargs: dict, source, folds: list[ZeroShotSplit], out: Path, seed: int,
                 dataset_factory) -> list[float]:
    """Top-1 of ``method`` with ``kwargs`` on each fold's held-out seen classes (runs cached in ``out``)."""
    from zsar.experiments.runs import run_split

    scores = []
    for fold in folds:
        result = run_split(method, kwargs, source, fold, out / fold.name, seed=seed, gzsl=False,
                           dataset_factory=dataset_factory)
        scores.append(float(result["metrics"]["top1"]))
    return scores


def point_name(point: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in point.items()) or "default"


def search(methods: Sequence[str], grid: dict[str, list[Any]], source, split: ZeroShotSplit, out: Path,
           common: dict, epochs: int, n_folds: int = 2, seed: int = 0, pretrained: bool = True,
           dataset_factory=None) -> dict[str, dict]:
    """Score every grid point of every method on the seen-class folds of ``split``.

    Returns:
        ``{method: {"points": [{"params", "top1" (per fold), "mean"}], "best": params}}``.
    """
    from zsar.experiments.settings import method_kwargs

    folds = seen_class_folds(split, n_folds, seed)
    results: dict[str, dict] = {}
    jobs = [(m, p) for m in methods for p in grid_points(grid)]
    for method, point in tqdm(jobs, desc="recipes", unit="recipe"):
        kwargs = {**method_kwargs(method, common=common, trained=dict(epochs=epochs), pretrained=pretrained),
                  **point}
        start = time.perf_counter()
        top1 = score_recipe(method, kwargs, source, folds, out / method / point_name(point), seed, dataset_factory)
        entry = results.setdefault(method, {"points": []})
        entry["points"].append({"params": point, "top1": top1, "mean": float(np.mean(top1)),
                                "seconds": round(time.perf_counter() - start, 1)})
    for entry in results.values():
        entry["best"] = max(entry["points"], key=lambda p: p["mean"])["params"]
    return results


def format_results(results: dict[str, dict], header: str) -> str:
    """A markdown table: method, grid point, top-1 per fold, mean (the best point in bold)."""
    lines = [header, "", "| method | recipe | top-1 per fold (%) | mean (%) |", "|---|---|---|---|"]
    for method, entry in results.items():
        for p in entry["points"]:
            mean = f"{100 * p['mean']:.2f}"
            best = p["params"] == entry["best"]
            lines.append(f"| {method} | {point_name(p['params'])} | "
                         f"{' / '.join(f'{100 * t:.2f}' for t in p['top1'])} | {f'**{mean}**' if best else mean} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from zsar.experiments.sources import load_embedded_source
    from zsar.experiments.split_data import default_dataset_factory
    from zsar.models.preprocess import video_pipeline

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default="data/embedded_40")
    parser.add_argument("--backbone", default="zsar-ViT-T-16-64-minilm")
    parser.add_argument("--pretrained", default="zsar-world-open", help="weights; 'none' for random init")
    parser.add_argument("--methods", nargs="+", default=["actionclip", "rest", "asu", "lss", "supervised"])
    parser.add_argument("--grid", nargs="+", default=["lr=1e-5,1e-4,1e-3"], help="NAME=V1,V2,... per argument")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--folds", type=int, default=2, help="halvings of the seen classes")
    parser.add_argument("--split", type=int, default=0, help="which seeded 50/50 split's seen classes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/recipes"))
    args = parser.parse_args(argv)

    pretrained = None if args.pretrained.lower() == "none" else args.pretrained
    source = load_embedded_source(args.data_root)
    split = random_class_splits(len(source.texts), args.split + 1, seed=args.seed)[args.split]
    cache = video_pipeline(args.backbone, pretrained).frame_cache()
    cache.build(source.videos)
    factory = default_dataset_factory(args.backbone, args.frames, args.seed, pretrained, frame_cache=cache)
    common = dict(backbone=args.backbone, pretrained=pretrained, frames=args.frames, batch_size=args.batch_size,
                  progress=False)
    results = search(args.methods, parse_grid(args.grid), source, split, args.out, common, args.epochs,
                     args.folds, args.seed, pretrained is not None, factory)
    header = (f"Recipe search on seen-class folds: {source.name}, split {args.split} (seed {args.seed}), "
              f"{args.folds} halvings of its {len(split.seen)} seen classes; {args.backbone} + {pretrained}; "
              f"{args.epochs} epochs, {args.frames} frames, batch {args.batch_size}; zero-shot top-1 on the "
              "held-out seen classes (the ceiling: top-1 on their test-list videos)")
    table = format_results(results, header)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "recipes.json", {"header": header, "args": {k: str(v) for k, v in vars(args).items()},
                                                 "results": results})
    atomic_write_text(args.out / "recipes.md", table)
    print(table)
    print(json.dumps({m: e["best"] for m, e in results.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
