"""``python -m zsar.experiments.build_world --tag zsar-world-open``: build (or find) a world model, print its record.

The world model is pretrained with :func:`zsar.experiments.pretrain.pretrain` the first time and
read from the cache after; the printed record holds the loss per epoch, caption -> clip recall on
held-out corpus clips and the render and train times.
"""

from __future__ import annotations

import argparse

from zsar.experiments.pretrain import build_world_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tag", default="zsar-world-open", help="zsar-world-<open|disjoint>[-<preset>]")
    parser.add_argument("--backbone", default="zsar-ViT-T-16-64-minilm", help="a model of zsar.models.list_models")
    args = parser.parse_args(argv)
    path = build_world_model(args.backbone, args.tag)
    print(path)
    print(path.with_suffix(".json").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
