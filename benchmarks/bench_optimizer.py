"""AdamW: torch's fused kernel (the project's default where it applies) vs the per-tensor loop.

Measured in the same run on the same model, ActionCLIP's trainable CLIP (default backbone
``zsar-RN-T-64``, random init, both towers trained; 12.7 M parameters, 9.5 M of them the token
embedding that AdamW updates in full every step):

* ``optimizer step``  — ``AdamW.step()`` alone, gradients in place;
* ``training step``   — forward over a batch of clips and the class names, cross-entropy,
                        backward, ``step()``: what one iteration of the training loop costs;

each as the median over ``--repeats`` timed runs (after ``--warmup``), per-tensor (the baseline,
torch's default on the CPU) and fused, with the ratio. Both variants alternate within a repeat,
so a load change on the machine hits both. Run it on an otherwise idle machine: a background job
started with ``setsid`` sits in its own scheduler autogroup, where ``nice`` does not lower it, and
takes half the cores.

    python benchmarks/bench_optimizer.py [--backbone zsar-RN-T-64] [--batch 32] [--frames 8]
                                         [--classes 31] [--repeats 7] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from zsar.models.preprocess import clip_preprocess_config
from zsar.methods.actionclip import VideoTextCLIP
from zsar.models import ClipTextSpace, create_model, get_tokenizer
from zsar.training.schedule import build_optimizer, fused_supported


def build(backbone: str, device: str, seed: int = 0) -> VideoTextCLIP:
    torch.manual_seed(seed)
    model = create_model(backbone, None, device=device)
    space = ClipTextSpace(model, get_tokenizer(backbone), templates=["a video of a person {}."], trainable=True)
    return VideoTextCLIP(model, space).to(device)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def step_arguments(doc: str) -> argparse.ArgumentParser:
    """The command line of the training-step benchmarks (this one and ``bench_cpu_bf16.py``)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="zsar-RN-T-64")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--classes", type=int, default=31)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    return parser


def main() -> None:
    parser = step_arguments(__doc__)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    size = clip_preprocess_config(args.backbone, None).size
    video = torch.randn(args.batch, args.frames, 3, size, size, device=args.device)
    labels = torch.randint(0, args.classes, (args.batch,), device=args.device)
    names = [f"action number {i}" for i in range(args.classes)]
    variants = {}
    for name, fused in (("per-tensor", False), ("fused", True)):
        module = build(args.backbone, args.device)
        params = [p for p in module.parameters() if p.requires_grad]
        if fused and not fused_supported(params):
            raise SystemExit(f"the fused AdamW kernel does not apply on {args.device}")
        variants[name] = (module, build_optimizer(module, lr=1e-4, fused=fused))
    n_params = sum(p.numel() for p in variants["fused"][0].parameters() if p.requires_grad)

    def train_step(module, optimizer):
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(module(video, names), labels)
        loss.backward()
        optimizer.step()

    times = {(name, what): [] for name in variants for what in ("optimizer step", "training step")}
    for repeat in range(args.warmup + args.repeats):
        for name, (module, optimizer) in variants.items():
            step_s = timed(lambda: train_step(module, optimizer), args.device)
            opt_s = timed(optimizer.step, args.device)  # gradients of the step above are still there
            if repeat >= args.warmup:
                times[(name, "training step")].append(step_s)
                times[(name, "optimizer step")].append(opt_s)

    print(f"{args.backbone}, {n_params / 1e6:.1f} M trainable parameters, batch {args.batch} x {args.frames} "
          f"frames x {size} px, {args.classes} class names, device {args.device}, "
          f"torch threads {torch.get_num_threads()}, median of {args.repeats}")
    for what in ("optimizer step", "training step"):
        base = statistics.median(times[("per-tensor", what)])
        fused = statistics.median(times[("fused", what)])
        print(f"{what:>15}: fused {fused * 1e3:8.1f} ms | per-tensor (baseline) {base * 1e3:8.1f} ms | "
              f"x{base / fused:.2f} faster")


if __name__ == "__main__":
    main()
