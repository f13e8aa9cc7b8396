"""Training on the CPU: bf16 autocast (``AMP=bf16``, opt-in) vs fp32 (``AMP=auto`` on a CPU).

On a CPU the notebooks' ``AMP="auto"`` means fp32: results then do not depend on whether the
machine has bf16 matrix units. Where it has them (Intel AMX / AVX512-BF16, listed in the first
line), ``-p AMP bf16`` runs the convolutions and matrix products in bf16. Measured in the same run
on the same model, ActionCLIP's trainable CLIP (default backbone ``zsar-RN-T-64``, random init,
fused AdamW as in the training loop):

* ``training step``  — forward over a batch of clips and the class names, cross-entropy,
                       backward, ``step()`` (one iteration of the training loop);
* ``inference``      — the clips' embeddings under ``no_grad`` (feature extraction, evaluation);

each as the median over ``--repeats`` timed runs after ``--warmup``, fp32 (the baseline) and bf16,
alternating within each repeat so that a load change hits both, with the ratio; then how far
bf16 moves the numbers: the largest difference of the cosine logits and of the loss on one
batch (same weights). Run it on an otherwise idle machine (see ``bench_optimizer.py``).

    python benchmarks/bench_cpu_bf16.py [--backbone zsar-RN-T-64] [--batch 32] [--frames 8] [--repeats 7]
"""

from __future__ import annotations

import statistics
from pathlib import Path

import torch

from bench_optimizer import build, step_arguments, timed  # the sibling script: same model, timing, options
from zsar.models.preprocess import clip_preprocess_config
from zsar.training import autocast
from zsar.training.schedule import build_optimizer


def cpu_flags() -> str:
    """The bf16-related flags of this CPU (``/proc/cpuinfo``), or ``unknown``."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    wanted = [f for f in flags.split(":", 1)[1].split() if "bf16" in f or f.startswith("amx")]
    return " ".join(wanted) or "none (no bf16 units: expect no gain)"


def precision(amp: str):
    """The training loop's own AMP context on the CPU (what ``-p AMP bf16`` / ``none`` run under)."""
    return autocast("bf16" if amp == "bf16" else "none", torch.device("cpu"))


def main() -> None:
    args = step_arguments(__doc__).parse_args()

    size = clip_preprocess_config(args.backbone, None).size
    torch.manual_seed(1)
    video = torch.randn(args.batch, args.frames, 3, size, size)
    labels = torch.randint(0, args.classes, (args.batch,))
    names = [f"action number {i}" for i in range(args.classes)]
    modules = {amp: build(args.backbone, "cpu") for amp in ("fp32", "bf16")}  # same seed: same weights
    optimizers = {amp: build_optimizer(m, lr=1e-4) for amp, m in modules.items()}
    logits = {}
    for amp, module in modules.items():
        with torch.no_grad(), precision(amp):
            logits[amp] = module(video, names).float()
    loss = {amp: float(torch.nn.functional.cross_entropy(v, labels)) for amp, v in logits.items()}

    def train_step(amp: str) -> None:
        optimizers[amp].zero_grad(set_to_none=True)
        with precision(amp):
            step_loss = torch.nn.functional.cross_entropy(modules[amp](video, names).float(), labels)
        step_loss.backward()
        optimizers[amp].step()

    def inference(amp: str) -> None:
        with torch.no_grad(), precision(amp):
            modules[amp].embed_video(video)

    times = {(amp, what): [] for amp in modules for what in ("training step", "inference")}
    for repeat in range(args.warmup + args.repeats):
        for amp in modules:
            step_s = timed(lambda: train_step(amp), "cpu")
            infer_s = timed(lambda: inference(amp), "cpu")
            if repeat >= args.warmup:
                times[(amp, "training step")].append(step_s)
                times[(amp, "inference")].append(infer_s)

    print(f"CPU bf16 flags: {cpu_flags()}")
    print(f"{args.backbone}, batch {args.batch} x {args.frames} frames x {size} px, {args.classes} class names, "
          f"torch threads {torch.get_num_threads()}, median of {args.repeats}")
    for what in ("training step", "inference"):
        base = statistics.median(times[("fp32", what)])
        fast = statistics.median(times[("bf16", what)])
        print(f"{what:>14}: bf16 {fast * 1e3:8.1f} ms | fp32 (baseline) {base * 1e3:8.1f} ms | x{base / fast:.2f} faster")
    print(f"one batch, same weights: largest |logit| difference {float((logits['bf16'] - logits['fp32']).abs().max()):.4f} "
          f"(fp32 logits span {float(logits['fp32'].min()):.3f} .. {float(logits['fp32'].max()):.3f}); "
          f"loss fp32 {loss['fp32']:.5f}, bf16 {loss['bf16']:.5f}")


if __name__ == "__main__":
    main()
