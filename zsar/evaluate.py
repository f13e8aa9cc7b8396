"""``python -m zsar.evaluate --protocol vificlip-ucf101 --data-root /data/UCF-101 --backbone ViT-B-16 --pretrained /abs/ViT-B-16.pt``

Evaluates a checkpoint under a named protocol (``--list`` shows them; a protocol JSON file works
too), prints top-1 / top-5 per split and mean ± std with a header naming everything that defines
the protocol, and writes the same as JSON (``--out``). Video embeddings go through the feature
cache, so a second run, or another template set, decodes nothing. Refuses, with the list (all of it
in ``<out>.missing.txt``), when a split's videos are missing, and says why when the weights cannot
be loaded offline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zsar.data.errors import MissingFilesError, ZsarDataError
from zsar.data.eval_protocol import get_protocol, list_protocols
from zsar.experiments.protocol_eval import TEXT_KINDS, evaluate_protocol, format_report
from zsar.io import atomic_write_json, atomic_write_text
from zsar.models.pretrained import CheckpointFormatError, PretrainedUnavailableError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m zsar.evaluate", description=__doc__.split("\n\n")[1])
    parser.add_argument("--protocol", help="a protocol name (see --list) or a protocol JSON file")
    parser.add_argument("--data-root", help="folder of the videos (flat, or <class>/<file>)")
    parser.add_argument("--meta-dir", help="folder of the split files, laid out like ../shared/data/meta "
                                            "(default: that folder)")
    parser.add_argument("--backbone", default="ViT-B-16", help="an open_clip or zsar model name")
    parser.add_argument("--pretrained", help="a checkpoint file, an open_clip tag in the local cache, or a "
                                             "zsar-world tag; omitted: random init")
    parser.add_argument("--text", choices=TEXT_KINDS, default="name", help="class names with templates, "
                                                                           "descriptions, or both")
    parser.add_argument("--templates", help="a template set instead of the protocol's")
    parser.add_argument("--descriptions", help="class descriptions JSON (ER-ZSAR, GPT4Vis or OST layout)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--out", help="JSON result path (default: ./zsar-eval-<protocol>-<backbone>.json)")
    parser.add_argument("--list", action="store_true", help="list the protocols and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        for name in list_protocols():
            print(f"{name:<20} {get_protocol(name).title}")
        return 0
    if not args.protocol or not args.data_root:
        build_parser().error("--protocol and --data-root are required")
    out = Path(args.out or f"zsar-eval-{Path(args.protocol).stem}-{args.backbone}.json")
    try:
        protocol = get_protocol(args.protocol)
        result = evaluate_protocol(protocol, args.data_root, args.backbone, args.pretrained, args.meta_dir,
                                   args.text, args.templates, args.descriptions, args.batch_size, args.device)
    except MissingFilesError as err:
        listing = atomic_write_text(out.with_suffix(".missing.txt"), "\n".join(err.missing) + "\n")
        print(f"error: {err}\nthe full list: {listing.resolve()}", file=sys.stderr)
        return 2
    except (ZsarDataError, PretrainedUnavailableError, CheckpointFormatError, FileNotFoundError, KeyError,
            ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_report(result))
    atomic_write_json(out, result)
    print(f"\nwritten: {out.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
