"""Calibrate the embedded benchmark's difficulty: supervised ceiling vs an order-blind model.

For one :class:`~zsar.data.embedded.BenchmarkConfig` (the defaults plus knob overrides) this

1. generates the benchmark into ``<root>/<fingerprint[:12]>`` (skipped when already there),
2. decodes every clip once into a :class:`~zsar.data.frame_cache.FrameCache`,
3. trains the ``supervised`` ceiling on the train list of **all** classes (minus a stratified
   validation share for best-epoch selection) and tests it on the test list (disjoint groups):
   top-1 over all classes, train-list accuracy (to tell under-training from difficulty) and the
   2-way accuracy on each temporal pair's test clips,
4. fits an order-blind model — a logistic-regression probe on the frame-averaged features of
   the ceiling's trained image tower (``zsar.models.frame_average``: permutation-invariant by
   construction) — and reports the same numbers; its pair accuracy should be near 50 %,
5. appends a row to ``<root>/calibration.jsonl`` and prints every row recorded so far as a
   table (config knobs -> ceiling top-1, order-blind pair accuracy, wall time).

    python benchmarks/calibrate_difficulty.py [--clips-per-class 60] [--epochs 12] [--lr 3e-4]
        [--batch-size 16] [--noise-std 4 --jitter-px 1.5 --distractor-prob 0.3 ...]

The requirement it checks (the embedded benchmark must tell methods apart): with the
default config the ceiling lands in 80–97 % top-1 and the order-blind model near chance on
each temporal pair. Everything here is orchestration of library code.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from zsar.data.embedded import BenchmarkConfig, generate_benchmark, load_catalog
from zsar.data.frame_cache import FrameCache
from zsar.data.protocols import ZeroShotSplit
from zsar.evaluation.metrics import temporal_pair_accuracy
from zsar.experiments.sources import load_embedded_source
from zsar.experiments.split_data import build_split_data, default_dataset_factory
from zsar.methods import make_method
from zsar.models import frame_average
from zsar.paths import data_dir
from zsar.seed import seed_everything
from zsar.training import extract_features

KNOBS = ("noise_std", "jitter_px", "distractor_prob", "occluder_prob", "speed_range", "scale_range", "crf")
METHODS = ("supervised", "order_blind")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--root", type=Path, default=data_dir() / "calibration",
                   help="parent folder of the generated benchmarks (one per config fingerprint)")
    p.add_argument("--clips-per-class", type=int, default=BenchmarkConfig.clips_per_class)
    p.add_argument("--n-classes", type=int, default=None, help="first N classes only (exploration)")
    for knob in ("noise_std", "jitter_px", "distractor_prob", "occluder_prob"):
        p.add_argument("--" + knob.replace("_", "-"), type=float, default=None,
                       help=f"override BenchmarkConfig.{knob} (default {getattr(BenchmarkConfig, knob)})")
    for knob in ("speed_range", "scale_range"):
        p.add_argument("--" + knob.replace("_", "-"), type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                       help=f"override BenchmarkConfig.{knob} (default {getattr(BenchmarkConfig, knob)})")
    p.add_argument("--crf", type=int, default=None, help=f"override BenchmarkConfig.crf ({BenchmarkConfig.crf})")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {METHODS}")
    p.add_argument("--backbone", default="zsar-ViT-T-16-64")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm (0: none)")
    p.add_argument("--width", type=int, default=256, help="temporal head width")
    p.add_argument("--layers", type=int, default=1, help="temporal head layers")
    p.add_argument("--heads", type=int, default=4, help="temporal head attention heads")
    p.add_argument("--val-fraction", type=float, default=0.1, help="train-list share held out for best-epoch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--workers", type=int, default=2, help="processes for generation and the frame cache")
    p.add_argument("--tag", default="", help="free-text label stored with the result row")
    args = p.parse_args(argv)
    unknown = sorted(set(args.methods.split(",")) - set(METHODS))
    if unknown:
        p.error(f"--methods: unknown {unknown}; choose from {METHODS}")
    return args


def config_from_args(args: argparse.Namespace) -> BenchmarkConfig:
    """Default config with the knobs given on the command line."""
    changes = {k: getattr(args, k) for k in KNOBS if getattr(args, k) is not None}
    return BenchmarkConfig(clips_per_class=args.clips_per_class, n_classes=args.n_classes, **changes)


def pair_table(scores: np.ndarray, labels: np.ndarray, pairs, names) -> dict[str, float]:
    """2-way accuracy of each temporal pair, keyed ``"A / B"``."""
    return {f"{names[a]} / {names[b]}": temporal_pair_accuracy(scores, labels, [(a, b)])[0] for a, b in pairs}


def summarize(scores: np.ndarray, labels: np.ndarray, pairs, names) -> dict:
    """Top-1 over all classes, the mean pair accuracy and the per-pair ones."""
    per_pair = pair_table(scores, labels, pairs, names)
    return {"top1": float((scores.argmax(1) == labels).mean()),
            "pair_acc": temporal_pair_accuracy(scores, labels, pairs)[0],
            "pair_acc_min": min(per_pair.values(), default=math.nan),
            "pair_acc_max": max(per_pair.values(), default=math.nan),
            "per_pair": per_pair}


def run_ceiling(args, data, make, run_dir: Path, pairs, names) -> tuple[dict, object]:
    """Train the ``supervised`` method; score test and train lists (eval transform)."""
    method = make_method("supervised", backbone=args.backbone, frames=args.frames, epochs=args.epochs, lr=args.lr,
                         weight_decay=args.weight_decay, batch_size=args.batch_size, grad_clip=args.grad_clip or None, width=args.width,
                         layers=args.layers, heads=args.heads, seed=args.seed, device="cpu", progress=True)
    start = time.perf_counter()
    val = make(data.val, "val") if data.val is not None else None
    method.fit(make(data.train, "train"), data.fit_texts, run_dir / "supervised", val_dataset=val)
    train_s = time.perf_counter() - start
    all_texts = data.fit_texts
    test_scores = method.predict_scores(make(data.gzsl_test, "gzsl_test"), all_texts)
    train_scores = method.predict_scores(make(data.train, "val"), all_texts)
    result = summarize(test_scores, np.asarray(data.gzsl_test.labels), pairs, names)
    train_labels = np.asarray(data.train.labels)
    result.update(train_acc=float((train_scores.argmax(1) == train_labels).mean()),
                  train_time_s=train_s, best_epoch=method.best_epoch_,
                  history=[{k: v for k, v in row.items() if isinstance(v, (int, float))} for row in method.history_],
                  wall_s=time.perf_counter() - start)
    return result, method


def run_order_blind(args, data, make, ceiling, pairs, names) -> dict:
    """Logistic-regression probe on frame-averaged features of the ceiling's image tower."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    start = time.perf_counter()
    encoder = ceiling.module_.encoder.eval()

    def encode(batch: dict) -> torch.Tensor:
        return frame_average(encoder(batch["video"], normalize=True))

    def features(videos):
        return extract_features(encode, make(videos, "val"), 2 * args.batch_size, "cpu", progress=True).numpy()

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    probe.fit(features(data.train), np.asarray(data.train.labels))
    scores = probe.decision_function(features(data.gzsl_test))
    result = summarize(scores, np.asarray(data.gzsl_test.labels), pairs, names)
    result["wall_s"] = time.perf_counter() - start
    return result


def print_table(rows: list[dict]) -> None:
    """Markdown table of every calibration row recorded so far."""
    print("\n| tag | classes | clips/class | noise | jitter | distr. | occl. | speed | scale | epochs | lr | bs "
          "| ceiling top-1 | train acc | ceiling pair | blind top-1 | blind pair (min–max) | train s | total s |")
    print("|" + "---|" * 19)
    pct = lambda v: "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"  # noqa: E731
    for r in rows:
        c, s, b, rc = r["config"], r.get("supervised") or {}, r.get("order_blind") or {}, r["recipe"]
        blind_pair = (f"{pct(b.get('pair_acc'))} ({pct(b.get('pair_acc_min'))}–{pct(b.get('pair_acc_max'))})"
                      if b else "—")
        print(f"| {r.get('tag', '')} | {c['n_classes'] or 61} | {c['clips_per_class']} | {c['noise_std']:g} | {c['jitter_px']:g} "
              f"| {c['distractor_prob']:g} | {c['occluder_prob']:g} | {c['speed_range'][0]:g}–{c['speed_range'][1]:g} "
              f"| {c['scale_range'][0]:g}–{c['scale_range'][1]:g} | {rc['epochs']} | {rc['lr']:g} | {rc['batch_size']} "
              f"| {pct(s.get('top1'))} | {pct(s.get('train_acc'))} | {pct(s.get('pair_acc'))} | {pct(b.get('top1'))} "
              f"| {blind_pair} | {s.get('train_time_s', float('nan')):.0f} | {r['wall_s']:.0f} |")


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    start = time.perf_counter()
    config = config_from_args(args)
    root = generate_benchmark(args.root / config.fingerprint()[:12], config, workers=args.workers)
    gen_s = time.perf_counter() - start
    source = load_embedded_source(root)
    names = [c.name for c in load_catalog(root)]
    cache = FrameCache(size=64)  # the backbone's input size: the eval transform leaves frames untouched
    cache.build(source.videos, workers=args.workers)
    cache_s = time.perf_counter() - start - gen_s
    # seen = class 0 only so that seen + unseen is the identity order and the GZSL list is every
    # test-list clip of every class; zero_shot=False trains on the train list of all classes
    n = len(names)
    split = ZeroShotSplit(seen=(0,), unseen=tuple(range(1, n)), name="calibration")
    data = build_split_data(source, split, zero_shot=False, gzsl=True, val_fraction=args.val_fraction, seed=args.seed)
    make = default_dataset_factory(args.backbone, args.frames, args.seed, frame_cache=cache)
    pairs = list(source.pairs)
    recipe = {k: getattr(args, k) for k in ("backbone", "frames", "epochs", "lr", "weight_decay", "batch_size",
                                            "grad_clip", "width", "layers", "heads", "val_fraction", "seed")}
    run_dir = root / "runs" / (f"e{args.epochs}_lr{args.lr:g}_bs{args.batch_size}_gc{args.grad_clip:g}_wd{args.weight_decay:g}"
                               f"_w{args.width}_l{args.layers}_s{args.seed}")
    row = {"tag": args.tag, "config": config.to_dict(), "fingerprint": config.fingerprint(), "recipe": recipe,
           "n_train": len(data.train), "n_val": len(data.val) if data.val is not None else 0,
           "n_test": len(data.gzsl_test), "generate_s": gen_s, "frame_cache_s": cache_s}
    methods = args.methods.split(",")
    ceiling = None
    if "supervised" in methods or "order_blind" in methods:
        row["supervised"], ceiling = run_ceiling(args, data, make, run_dir, pairs, names)
        print(json.dumps({k: v for k, v in row["supervised"].items() if k != "history"}, indent=1))
    if "order_blind" in methods:
        row["order_blind"] = run_order_blind(args, data, make, ceiling, pairs, names)
        print(json.dumps(row["order_blind"], indent=1))
    row["wall_s"] = time.perf_counter() - start
    log = args.root / "calibration.jsonl"
    with open(log, "a", encoding="utf-8") as f:  # append-only log of runs; a torn last line is skipped below
        f.write(json.dumps(row) + "\n")
    rows = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    print_table(rows)


if __name__ == "__main__":
    main()
