"""Named evaluation protocols as data: which classes, which test videos, how many frames and views.

A protocol is one entry of ``eval_protocols.json`` (or a JSON file of the same shape): its
source, the class list and test videos of each split, the frames and views, the frame sampler,
the class text (prompt templates) and how scores are averaged over templates and views. Split
files are named relative to a *meta* folder laid out like ``../shared/data/meta`` (each file's
origin is in that folder's ``SOURCES.tsv``); videos are looked up under a data root.

Three kinds of split:

* ``"lists"`` — mmaction-style ``<path> <label>`` test lists, labels indexing a class file (one
  class file for all lists, or one per list), e.g. ViFi-CLIP's ``zeroshot_eval/ucf_splits/val1.txt``.
* ``"all_classes"`` — every video of every class of a dataset with official splits (one split).
* ``"random_halves"`` — ``n_splits`` random class halves; each split tests all videos of its
  test half against those classes only. ``"draw": "e2e"`` is the draw of Brattoli et al.'s code
  (split ``i``: ``np.random.seed(i)``, the first ``C // 2`` of ``np.random.permutation(C)``);
  ``"draw": "zsar"`` the workbook's (:func:`zsar.data.protocols.random_class_splits`).

>>> protocol = get_protocol("vificlip-ucf101")  # doctest: +SKIP
>>> splits = protocol_splits(protocol, "/data/UCF-101")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from zsar.data import annotations as ann
from zsar.data import datasets
from zsar.data.errors import AnnotationError, MissingFilesError
from zsar.data.protocols import random_class_splits, restrict_classes
from zsar.data.records import VideoList, VideoRecord
from zsar.data.sampling import FrameSampler, MMActionSampler, make_sampler
from zsar.paths import shared_data_dir

PROTOCOLS_FILE = Path(__file__).resolve().parent / "eval_protocols.json"
SPLIT_KINDS = ("lists", "all_classes", "random_halves")
AVERAGES = ("embedding", "softmax")


@dataclass(frozen=True)
class EvalProtocol:
    """One evaluation protocol (an entry of ``eval_protocols.json``).

    Attributes:
        name, title, source: what it is and where every choice comes from (papers, repos, files).
        dataset: ``"ucf101"``, ``"hmdb51"``, ``"kinetics600"`` or ``"embedded"``.
        splits: how the splits are made (``{"kind": ..., ...}``, see the module docstring).
        frames: frames per view; ``sampler``: ``"mmaction"`` (``SampleFrames(test_mode=True)``),
            ``"actionclip"`` or ``"tsn"`` (:mod:`zsar.data.sampling`).
        clips, crops: temporal clips (1, or 2 = mmaction's ``twice_sample``) and spatial crops
            (1 centre, or 3 along the longer side) per video; views = clips x crops.
        class_text: ``"listed"`` (the class name exactly as the class file writes it) or
            ``"readable"`` (``ApplyEyeMakeup`` -> ``apply eye makeup``).
        templates: a bundled template set (:func:`zsar.models.prompts.get_templates`).
        template_average: ``"embedding"`` (CLIP: mean of unit text embeddings) or ``"softmax"``
            (ActionCLIP: mean over templates of the softmax of the logits).
        view_average: ``"softmax"`` (mean over views of the softmax) or ``"embedding"``.
        resize_ratio: the shorter side is resized to ``round(input * resize_ratio)`` before the
            centre crop of ``input`` px (mmaction's ``Resize(-1, 256)`` + ``CenterCrop(224)``: 256/224).
        normalize: ``"model"`` (the model's mean/std) or ``"imagenet"`` (mmaction's
            ``img_norm_cfg``, mean 123.675/116.28/103.53, std 58.395/57.12/57.375 on 0-255).
        interpolation: resize kernel, ``None`` for the model's.
        std_ddof: degrees of freedom of the std over splits (0: numpy's default, as the
            references' scripts compute it).
        report: how the splits' numbers are summarised.
    """

    name: str
    title: str
    source: str
    dataset: str
    splits: dict = field(hash=False)
    frames: int
    sampler: str = "mmaction"
    clips: int = 1
    crops: int = 1
    class_text: str = "listed"
    templates: str = "photo"
    template_average: str = "embedding"
    view_average: str = "softmax"
    resize_ratio: float = 1.0
    normalize: str = "model"
    interpolation: str | None = None
    std_ddof: int = 0
    report: str = "top-1 / top-5, mean ± std over the splits"

    def __post_init__(self):
        kind = self.splits.get("kind")
        problems = [f"splits kind {kind!r} not in {SPLIT_KINDS}"] if kind not in SPLIT_KINDS else []
        problems += [f"{k}={getattr(self, k)!r} not in {AVERAGES}" for k in ("template_average", "view_average")
                     if getattr(self, k) not in AVERAGES]
        problems += [f"clips={self.clips}: 1 or 2"] if self.clips not in (1, 2) else []
        problems += [f"crops={self.crops}: 1 or 3"] if self.crops not in (1, 3) else []
        problems += [f"class_text={self.class_text!r}: listed or readable"] if self.class_text not in ("listed", "readable") else []
        problems += [f"clips=2 needs sampler mmaction, not {self.sampler!r}"] if self.clips == 2 and self.sampler != "mmaction" else []
        problems += [f"normalize={self.normalize!r}: model or imagenet"] if self.normalize not in ("model", "imagenet") else []
        problems += [f"resize_ratio={self.resize_ratio}: >= 1"] if self.resize_ratio < 1 else []
        if self.frames < 1:
            problems.append(f"frames={self.frames}")
        if problems:
            raise ValueError(f"protocol {self.name!r}: " + "; ".join(problems))

    @property
    def views(self) -> int:
        """Views per video: ``clips * crops``."""
        return self.clips * self.crops

    def frame_sampler(self) -> FrameSampler:
        """The evaluation frame sampler (``clips`` temporal views of ``frames`` frames)."""
        if self.sampler == "mmaction":
            return MMActionSampler(self.frames, twice_sample=self.clips == 2)
        if self.sampler == "actionclip":
            return make_sampler("actionclip", num_segments=self.frames)
        return make_sampler(self.sampler, num_segments=self.frames, num_clips=self.clips)

    def describe(self) -> dict:
        """Everything that defines the protocol, as a JSON-ready dict."""
        return {"name": self.name, "title": self.title, "source": self.source, "dataset": self.dataset,
                "splits": self.splits, "frames": self.frames, "sampler": repr(self.frame_sampler()),
                "views": f"{self.clips} clip(s) x {self.crops} crop(s)", "class_text": self.class_text,
                "templates": self.templates, "template_average": self.template_average,
                "view_average": self.view_average, "resize_ratio": self.resize_ratio, "normalize": self.normalize,
                "interpolation": self.interpolation, "std_ddof": self.std_ddof, "report": self.report}


@dataclass(frozen=True)
class ProtocolSplit:
    """One split of a protocol: the classes scored and the test videos (labels index ``class_names``).

    ``vocabulary`` is the whole class list the split's classes were taken from (the dataset's, in
    its label order), which index-keyed description files refer to.
    """

    name: str
    class_names: tuple[str, ...]
    videos: VideoList
    vocabulary: tuple[str, ...] = ()


@lru_cache(maxsize=1)
def _bundled() -> dict[str, dict]:
    data = json.loads(PROTOCOLS_FILE.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


def list_protocols() -> list[str]:
    """Names of the bundled protocols."""
    return sorted(_bundled())


def get_protocol(name_or_path: str | os.PathLike) -> EvalProtocol:
    """A bundled protocol by name, or one read from a JSON file (``{"name": ..., ...}`` fields).

    Raises:
        KeyError: neither a bundled name nor a file (the message lists the names).
        ValueError: a field is missing or invalid.
    """
    if str(name_or_path) in _bundled():
        entry = {"name": str(name_or_path), **_bundled()[str(name_or_path)]}
    elif Path(name_or_path).is_file():
        entry = json.loads(Path(name_or_path).read_text(encoding="utf-8"))
        entry.setdefault("name", Path(name_or_path).stem)
    else:
        raise KeyError(f"unknown protocol {str(name_or_path)!r}: not a file, and not one of {list_protocols()}")
    try:
        return EvalProtocol(**entry)
    except TypeError as err:
        raise ValueError(f"protocol {entry.get('name')!r}: {err}") from None


def default_meta_dir() -> Path:
    """Where split files are looked up by default: ``../shared/data/meta``."""
    return shared_data_dir() / "meta"


def protocol_splits(protocol: EvalProtocol, data_root: str | os.PathLike, meta_dir: str | os.PathLike | None = None,
                    check_files: bool = True) -> list[ProtocolSplit]:
    """The splits of ``protocol`` with their videos under ``data_root``.

    A listed video is found at ``data_root/<listed path>``, or else by its file name anywhere
    under ``data_root`` (so a flat folder and a ``<class>/<file>`` folder both work).

    Raises:
        MissingFilesError: listing every missing video of every split (with ``check_files``).
        AnnotationError: a split file is missing or malformed.
    """
    root, meta = Path(data_root), Path(meta_dir) if meta_dir else default_meta_dir()
    kind = protocol.splits["kind"]
    splits = (_list_splits(protocol, root, meta) if kind == "lists" else
              _class_splits(protocol, root, meta))
    if protocol.class_text == "readable":
        splits = [ProtocolSplit(s.name, _readable(s.class_names), s.videos, _readable(s.vocabulary)) for s in splits]
    return _located(splits, root, protocol.name) if check_files else splits


def _readable(names: tuple[str, ...]) -> tuple[str, ...]:
    """``ApplyEyeMakeup`` / ``apply_eye_makeup`` -> ``apply eye makeup``."""
    from zsar.text.semantic import tokenize_words

    return tuple(" ".join(tokenize_words(n)) or n for n in names)


def _meta_file(meta: Path, rel: str) -> Path:
    path = meta / rel
    if not path.is_file():
        raise AnnotationError(f"split file {rel} not found under {meta}; pass --meta-dir (a folder laid out "
                              "like ../shared/data/meta, see its SOURCES.tsv for where each file comes from)")
    return path


def _list_splits(protocol: EvalProtocol, root: Path, meta: Path) -> list[ProtocolSplit]:
    spec = protocol.splits
    lists = spec["lists"]
    classes = spec["classes"] if isinstance(spec["classes"], list) else [spec["classes"]] * len(lists)
    if len(classes) != len(lists):
        raise ValueError(f"protocol {protocol.name!r}: {len(classes)} class files for {len(lists)} lists")
    out = []
    for i, (class_file, list_file) in enumerate(zip(classes, lists)):
        names = ann.read_class_names(_meta_file(meta, class_file))
        videos = ann.read_annotation_list(_meta_file(meta, list_file), root, names, spec.get("label_offset", 0))
        out.append(ProtocolSplit(spec.get("names", [f"split{j + 1}" for j in range(len(lists))])[i],
                                 tuple(names), videos, tuple(names)))
    return out


def _all_videos(protocol: EvalProtocol, root: Path, meta: Path) -> VideoList:
    spec = protocol.splits
    if protocol.dataset == "embedded":
        return datasets.all_videos("embedded", root=root, check_files=False)
    split_dir = meta / spec["split_dir"] if spec.get("split_dir") else None
    return datasets.all_videos(protocol.dataset, root=root, split_dir=split_dir, check_files=False)


def _class_splits(protocol: EvalProtocol, root: Path, meta: Path) -> list[ProtocolSplit]:
    spec, everything = protocol.splits, _all_videos(protocol, root, meta)
    if spec["kind"] == "all_classes":
        return [ProtocolSplit("all", tuple(everything.class_names), everything, tuple(everything.class_names))]
    out = []
    for i, classes in enumerate(half_class_draws(len(everything.class_names), spec)):
        test = restrict_classes(everything, classes)
        out.append(ProtocolSplit(f"half{i}", tuple(test.class_names), test, tuple(everything.class_names)))
    return out


def half_class_draws(n_classes: int, spec: dict) -> list[list[int]]:
    """The test classes of each split of a ``random_halves`` spec, in the order they are scored.

    ``draw="e2e"``: split ``i`` takes the first ``n // 2`` of ``RandomState(i).permutation(n)``
    (``np.random.seed(i); np.random.permutation(n)`` in Brattoli et al.'s ``main.py``, reused by
    Text4Vis); ``draw="zsar"``: the unseen side of :func:`random_class_splits` (``seed``,
    ``seen_fraction``).
    """
    n_splits, draw = spec.get("n_splits", 10), spec.get("draw", "zsar")
    if draw == "e2e":
        return [np.random.RandomState(i).permutation(n_classes)[: n_classes // 2].tolist() for i in range(n_splits)]
    if draw != "zsar":
        raise ValueError(f"random_halves draw {draw!r}: e2e or zsar")
    return [list(s.unseen) for s in random_class_splits(n_classes, n_splits, spec.get("seen_fraction", 0.5),
                                                        spec.get("seed", 0))]


def _located(splits: list[ProtocolSplit], root: Path, name: str) -> list[ProtocolSplit]:
    """The splits with every record pointing at its file; one error listing all missing files."""
    by_name: dict[str, list[Path]] | None = None
    found: dict[Path, Path] = {}
    missing: list[Path] = []
    for record in {r.path: r for s in splits for r in s.videos.records}.values():
        if record.path.is_file():
            found[record.path] = record.path
            continue
        if by_name is None:
            by_name = _files_by_name(root)
        hits = by_name.get(record.path.name, [])
        if len(hits) == 1:
            found[record.path] = hits[0]
        else:
            missing.append(record.path)
    if missing:
        raise MissingFilesError(sorted(missing), f"protocol {name} (data root {root})")
    return [ProtocolSplit(s.name, s.class_names, VideoList(
        [VideoRecord(found[r.path], r.label, r.video_id) for r in s.videos.records], list(s.class_names),
        s.videos.root, s.videos.source, s.videos.class_dirs), s.vocabulary) for s in splits]


def _files_by_name(root: Path) -> dict[str, list[Path]]:
    """Every video file under ``root`` by file name (one walk)."""
    out: dict[str, list[Path]] = {}
    if root.is_dir():
        for dirpath, _, files in os.walk(root):
            for f in files:
                if f.lower().endswith(ann.VIDEO_EXTENSIONS):
                    out.setdefault(f, []).append(Path(dirpath) / f)
    return out
