"""Benchmark the chunked, exact k-occurrence against a naive full-matrix computation.

Each case runs in a fresh subprocess so that its peak RSS (``ru_maxrss``) is its own.
Cases, in order:

1. ``explore``: per-chunk cost of the building blocks on this CPU (float32 vs bfloat16
   matmul, fresh vs reused output buffer, ``torch.topk`` vs ``np.argpartition``, 1 vs 2
   threads), extrapolated to the full size.
2. ``compare`` at ``--naive-n`` (default 10,000): naive full matrix (torch float32 + topk,
   and float64 + stable argsort, the exact reference) vs chunked; ratio and an identity check.
3. ``chunked`` at ``--n`` (default 100,000): time and peak memory.

Example::

    nice python benchmarks/bench_hubness.py --n 100000 --d 512 --k 10 --chunk 1024
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def make_data(n, d, seed):
    """Queries and targets ``(n, d)`` float32; a shared offset gives realistic hubs."""
    rng = np.random.default_rng(seed)
    offset = rng.standard_normal(d, dtype=np.float32)
    q = rng.standard_normal((n, d), dtype=np.float32)
    q += 0.3 * offset  # in place: no temporary copy inflating the peak RSS
    t = rng.standard_normal((n, d), dtype=np.float32)
    t += 0.3 * offset
    return q, t


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def naive_fast(q, t, k):
    """What one writes first: the full float32 cosine matrix and ``torch.topk``."""
    import torch

    qn = torch.nn.functional.normalize(torch.from_numpy(q), dim=1)
    tn = torch.nn.functional.normalize(torch.from_numpy(t), dim=1)
    return torch.topk(qn @ tn.T, k, dim=1).indices.numpy()


def naive_exact(q, t, k):
    """The exact reference: full float64 cosine matrix, stable sort (ties -> lower index)."""
    q64, t64 = q.astype(np.float64), t.astype(np.float64)
    scores = q64 @ t64.T
    scores *= (1 / np.linalg.norm(q64, axis=1))[:, None]
    scores *= (1 / np.linalg.norm(t64, axis=1))[None, :]
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def case_compare(args):
    from zsar.hubness import knn_from_embeddings

    q, t = make_data(args.naive_n, args.d, args.seed)
    fast, t_fast = timed(naive_fast, q, t, args.k)
    exact, t_exact = timed(naive_exact, q, t, args.k)
    stats = {}
    chunked, t_chunk = timed(knn_from_embeddings, q, t, k=args.k, chunk_size=args.chunk,
                             precision=args.precision, num_threads=args.threads, stats=stats,
                             n_candidates=args.candidates or None)
    n_occ = lambda idx: np.bincount(idx.ravel(), minlength=len(t))  # noqa: E731
    return {"n": args.naive_n, "naive_fast_s": t_fast, "naive_exact_s": t_exact,
            "chunked_s": t_chunk, "speedup_vs_fast": t_fast / t_chunk,
            "speedup_vs_exact": t_exact / t_chunk,
            "identical_neighbours_vs_exact": bool((chunked == exact).all()),
            "identical_k_occurrence_vs_exact": bool((n_occ(chunked) == n_occ(exact)).all()),
            "rows_differing_from_fast_float32": int((np.sort(chunked, 1)
                                                     != np.sort(fast, 1)).any(1).sum()),
            "retried_rows": stats["retried_rows"], "peak_rss_mib": peak_rss_mib()}


def case_chunked(args):
    from zsar.hubness import knn_from_embeddings

    q, t = make_data(args.n, args.d, args.seed)
    base = peak_rss_mib()  # interpreter + torch + numpy + the data
    stats, cpu, load = {}, cpu_seconds(), os.getloadavg()[0]
    idx, seconds = timed(knn_from_embeddings, q, t, k=args.k, chunk_size=args.chunk,
                         precision=args.precision, num_threads=args.threads, stats=stats,
                             n_candidates=args.candidates or None)
    k_occ = np.bincount(idx.ravel(), minlength=len(t))
    return {"n": args.n, "d": args.d, "k": args.k, "chunk": args.chunk, "seconds": seconds,
            "cpu_seconds": cpu_seconds() - cpu, "load_average_before": load,
            "peak_rss_mib": peak_rss_mib(), "rss_before_call_mib": base,
            "retried_rows": stats["retried_rows"], "max_k_occurrence": int(k_occ.max())}


def case_explore(args):
    """Cost of one ``chunk x n`` block for each variant, extrapolated to ``n`` queries."""
    import torch

    torch.set_num_threads(args.threads)
    q, t = make_data(args.chunk, args.d, args.seed)[0], make_data(args.n, args.d, 1)[1]
    blocks = args.n / args.chunk
    out = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        qc, tc_t = torch.from_numpy(q).to(dtype), torch.from_numpy(t).to(dtype).T.contiguous()
        buf = torch.empty((len(q), len(t)), dtype=dtype)
        torch.mm(qc, tc_t, out=buf)  # warm-up
        _, fresh = timed(torch.mm, qc, tc_t)
        _, reused = timed(torch.mm, qc, tc_t, out=buf)
        _, topk = timed(torch.topk, buf, 2 * args.k + 12, dim=1)
        out[f"matmul_{name}_fresh_s"] = fresh * blocks
        out[f"matmul_{name}_reused_buffer_s"] = reused * blocks
        out[f"topk_{name}_s"] = topk * blocks
        if name == "float32":
            _, part = timed(np.argpartition, -buf.numpy(), args.k, axis=1)
            out["argpartition_float32_s"] = part * blocks
    torch.set_num_threads(1)
    _, one = timed(torch.mm, qc, tc_t, out=buf)
    out["matmul_bfloat16_1_thread_s"] = one * blocks
    return out


def run_case(case, argv):
    """Run one case in a fresh interpreter; return its JSON result."""
    proc = subprocess.run([sys.executable, __file__, "--case", case, *argv],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="queries = targets")
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=1024, help="queries per block")
    parser.add_argument("--naive-n", type=int, default=10_000)
    parser.add_argument("--precision", default="bfloat16", choices=("bfloat16", "float32"))
    parser.add_argument("--candidates", type=int, default=0,
                        help="coarse candidates per query (0: the library default)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", default="explore,compare,chunked")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(globals()[f"case_{args.case}"](args)))
        return
    argv = [f"--{name.replace('_', '-')}={value}" for name, value in vars(args).items()
            if name not in ("case", "cases")]
    for case in args.cases.split(","):
        result = run_case(case, argv)
        print(f"[{case}]")
        for key, value in result.items():
            print(f"  {key:34s} {value:.3f}" if isinstance(value, float)
                  else f"  {key:34s} {value}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
