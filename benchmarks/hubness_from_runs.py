"""Hubness of finished zero-shot runs, from the unseen-class scores of their run artefacts alone.

For every ``<out>/<method>/<split>/run.npz`` that :func:`zsar.experiments.runs.run_split` wrote
(read with :func:`zsar.experiments.read_artifact`; ``(N, U)`` scores the method predicts with):
``S_N10`` (skewness of the 10-occurrence of the classes; the raw row is the same number as the
comparison's S_N10 column), hub and antihub occurrence and top-1, raw and after each hubness
reducer that works on a query x target score matrix, fitted **transductively** on the same test
scores (the test videos are the reducer's reference queries). Mean ± std over the splits.

Notebook 04 is the full analysis (inductive references from held-out seen-class videos, the
square-only reducers, GZSL, text vs transferred prototypes). This script reads any run root,
e.g. that of ``zero_shot_table.py``::

    python benchmarks/hubness_from_runs.py --out runs/zero_shot_table
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from zsar.evaluation.tables import TableHeader, to_markdown
from zsar.experiments.artifact import ARTIFACT_FILE, read_artifact
from zsar.hubness import REDUCERS, SQUARE_ONLY, hub_occurrence, hubness_from_scores, make_reducer

COLUMNS = {"S_Nk": "S_N{k}", "hub occ": "hub occ", "antihub occ": "antihub occ", "top1 %": "top-1 %"}


def analyse(scores: np.ndarray, labels: np.ndarray, k: int, hub_size: float) -> dict[str, dict[str, float]]:
    """``{reducer: measures}`` of one split's ``(N, U)`` scores; ``"none"`` is the raw scores."""
    out = {}
    for name in ("none",) + tuple(r for r in REDUCERS if r not in SQUARE_ONLY):
        s = scores if name == "none" else make_reducer(name).fit(scores).transform(scores)
        rep = hubness_from_scores(s, k=k, hub_size=hub_size)
        mean_nk = rep.k_occurrence.mean()
        out[name] = {"S_Nk": rep.skewness, "hub occ": hub_occurrence(rep.k_occurrence, mean_nk, hub_size),
                     "antihub occ": rep.antihub_occurrence, "top1 %": 100 * float((s.argmax(1) == labels).mean())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/zero_shot_table"), help="run folder")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--hub-size", type=float, default=2.0)
    args = parser.parse_args()
    rows, configs = [], []
    for path in sorted(args.out.glob(f"*/*/{ARTIFACT_FILE}")):
        run = json.loads((path.parent / "metrics.json").read_text())
        configs.append(run["config"])
        artifact = read_artifact(path.parent)
        scores, labels = artifact.unseen_scores.astype(np.float64), artifact.unseen_labels
        k = min(args.k, scores.shape[1] - 1)
        for reducer, measures in analyse(scores, labels, k, args.hub_size).items():
            # one table row per (method, reducer); summarised over the splits
            rows.append({"method": f"{run['method']} · {reducer}", "split": run["split"], "metrics": measures})
    if not rows:
        raise SystemExit(f"no <method>/<split>/{ARTIFACT_FILE} under {args.out}")
    params = configs[0]["params"]
    header = TableHeader(protocol=f"{len(configs[0]['unseen'])} unseen classes, {configs[0]['data']}; k = {args.k} "
                                  f"(capped at U-1), hub: N_k >= {args.hub_size} x mean, reducers fitted on the "
                                  "test scores (transductive)",
                         backbone=params["backbone"], frames=params["frames"],
                         splits=sorted({r["split"] for r in rows}), seeds=sorted({c["seed"] for c in configs}))
    names = {c: n.format(k=args.k) for c, n in COLUMNS.items()}
    print(to_markdown(rows, header, metrics=list(COLUMNS), column_names=names, scale=1.0, decimals=2,
                      lower_is_better=["S_Nk", "hub occ", "antihub occ"]))


if __name__ == "__main__":
    main()
