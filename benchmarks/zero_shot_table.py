"""Methods compared on the embedded benchmark: fit them on seeded splits, then one table.

Fit (one process per split index is how a GPU is kept busy: start several side by side, after
``cache`` has decoded every clip once into the frame cache they all read)::

    python benchmarks/zero_shot_table.py cache
    python benchmarks/zero_shot_table.py fit --methods actionclip,rest --splits 0 --out runs/zero_shot_table
    python benchmarks/zero_shot_table.py fit --methods supervised --splits 0-9 --out runs/zero_shot_table

Report (mean ± std over the splits found, with the run configuration)::

    python benchmarks/zero_shot_table.py report --out runs/zero_shot_table

The splits are those of notebook 01 (``runs/01_data_prep/splits.json``); each method's kwargs are
``zsar.experiments.settings.method_kwargs`` (DeViSE and ESZSL in GloVe); the recipe is notebook
02's default (``zsar-RN-T-64`` random init, 8 frames, 15 epochs, batch 32, lr 1e-3, AMP bf16 on
CUDA); runs resume where their ``metrics.json`` matches. The report also prints two
target figures: ResT + transfer top-1 (test-list clips) over the ceiling's, and ResT's temporal-pair
accuracy minus ActionCLIP's.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from zsar.evaluation.tables import TableHeader, summarize, to_markdown

SCALE = {"top1": 100, "top1_testlist": 100, "gzsl_harmonic": 100, "pair_acc": 100, "train_time_s": 1}
NAMES = {"top1": "unseen top-1 %", "top1_testlist": "top-1 on test list %", "gzsl_harmonic": "GZSL H %",
         "pair_acc": "temporal pair acc %", "train_time_s": "train time s"}


def parse_indices(text: str) -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]``."""
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def fit(args) -> None:
    import torch

    from zsar.data.protocols import ZeroShotSplit
    from zsar.experiments.runs import run_split
    from zsar.experiments.settings import method_kwargs
    from zsar.experiments.sources import load_source
    from zsar.experiments.split_data import default_dataset_factory
    from zsar.models.preprocess import video_pipeline

    torch.set_num_threads(args.threads)
    prep = json.loads((args.prep / "splits.json").read_text())
    n = len(prep["class_names"])
    splits = [ZeroShotSplit(s["seen"], s["unseen"], s.get("seed"), s["name"], n) for s in prep["splits"]]
    source = load_source(prep)
    cache = video_pipeline(args.backbone, None).frame_cache()
    cache.build(source.videos, progress=args.mode == "cache")
    if args.mode == "cache":
        print(f"frame cache ready: {cache.folder}")
        return
    make = default_dataset_factory(args.backbone, args.frames, args.seed, None, frame_cache=cache)
    amp = "bf16" if torch.cuda.is_available() else "none"
    common = dict(backbone=args.backbone, frames=args.frames, batch_size=args.batch_size, amp=amp,
                  num_workers=args.num_workers, progress=False)
    for method in args.methods.split(","):
        # the iterative trainers take epochs and lr; the others keep their own (DeViSE's map, ESZSL)
        kwargs = method_kwargs(method, common=common, trained=dict(epochs=args.epochs, lr=args.lr))
        for i in parse_indices(args.splits):
            start = time.time()
            r = run_split(method, kwargs, source, splits[i], args.out / method / splits[i].name, seed=args.seed,
                          dataset_factory=make)
            print(method, splits[i].name, f"top-1 {r['metrics']['top1']:.4f}", f"pair {r['metrics']['pair_acc']:.4f}",
                  f"{time.time() - start:.0f} s", flush=True)


def report(args) -> None:
    results = [json.loads(p.read_text()) for p in sorted(args.out.glob("*/*/metrics.json"))]
    if not results:
        raise SystemExit(f"no metrics.json under {args.out}/<method>/<split>/")
    params = results[0]["config"]["params"]
    splits = sorted({r["split"] for r in results})
    header = TableHeader(protocol=f"random 50/50 seen/unseen, {len(results[0]['config']['unseen'])} unseen classes, "
                                  f"{results[0]['config']['data']}",
                         backbone=f"{params['backbone']} (random init)", frames=params["frames"], splits=splits,
                         seeds=results[0]["seed"])
    shown = [{**r, "metrics": {k: r["metrics"][k] * s for k, s in SCALE.items()}} for r in results]
    print(to_markdown(shown, header, metrics=list(SCALE), column_names=NAMES, scale=1.0, decimals=1,
                      lower_is_better=["train_time_s"]))
    table = summarize(results, metrics=list(SCALE))
    by_name = {r["method_name"]: r["method"] for r in results}
    if {"rest", "supervised"} <= set(by_name):
        ratio = table.at[by_name["rest"], "top1_testlist_mean"] / table.at[by_name["supervised"], "top1_testlist_mean"]
        print(f"\nResT + transfer / ceiling (top-1 on test-list clips): {ratio:.3f}  (target >= 0.9)")
    if {"rest", "actionclip"} <= set(by_name):
        gap = 100 * (table.at[by_name["rest"], "pair_acc_mean"] - table.at[by_name["actionclip"], "pair_acc_mean"])
        print(f"ResT - ActionCLIP on temporal pairs: {gap:+.1f} points  (target >= +15)")
    per_split = {m: np.round([100 * r["metrics"]["top1"] for r in results if r["method"] == m], 1).tolist()
                 for m in dict.fromkeys(r["method"] for r in results)}
    print("\nper-split unseen top-1 %:", json.dumps(per_split))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["cache", "fit", "report"])
    parser.add_argument("--out", type=Path, default=Path("runs/zero_shot_table"), help="run folder")
    parser.add_argument("--prep", type=Path, default=Path("runs/01_data_prep"), help="notebook 01's run folder")
    parser.add_argument("--methods", default="frame_average,actionclip,rest,supervised")
    parser.add_argument("--splits", default="0-9", help="split positions in splits.json, e.g. 0-9 or 3")
    parser.add_argument("--backbone", default="zsar-RN-T-64")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-workers", type=int, default=1, help="DataLoader workers per fit")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    args = parser.parse_args()
    report(args) if args.mode == "report" else fit(args)


if __name__ == "__main__":
    main()
