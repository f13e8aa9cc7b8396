"""Data sources of the workbook: the embedded benchmark, UCF101 and HMDB51, behind one dispatcher.

A :class:`DataSource` is what a zero-shot split needs: every video,
the official test list, the classes' texts and the temporal pairs. Notebook ``01_data_prep``
writes a *source spec* into ``splits.json`` (:func:`source_spec`) and the later notebooks call
:func:`load_source` with that file's content::

    {"dataset": "ucf101", "data_root": "/data/UCF-101", "split_dir": "/data/ucfTrainTestlist",
     "descriptions": "/data/ucf101_20_prompts.json", "official_split": 1, "class_names": [...], ...}

A spec without ``"dataset"`` (``splits.json`` files written before real data were supported) is
the embedded benchmark at ``data_root``.

Real datasets (:func:`ucf101_source`, :func:`hmdb51_source`) reuse the factories of
:mod:`zsar.data.datasets`:

* classes in the official order (UCF101 ``classInd.txt``; HMDB51 alphabetical), named by
  :func:`~zsar.models.prompts.readable_class_name` (``ApplyEyeMakeup`` -> ``apply eye makeup``);
* descriptions from a JSON file in a layout :func:`~zsar.models.prompts.load_descriptions` reads
  (ER-ZSAR, GPT4Vis, OST). Keys are matched to classes by normalised name (so ER-ZSAR's UCF101
  list, whose order differs from ``classInd.txt`` in two places, still lands on the right
  classes); index-keyed files (OST) index the classes in label order. A class's texts are joined
  into its one description (CLIP's tokenizer keeps the first 77 tokens of it);
* semantic units extracted per class from its name and every one of its texts
  (:func:`~zsar.text.units.with_extracted_units`; one class at a time, so leak-free);
* test ids = the official test list of ``split``; no temporal pairs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from zsar.data import datasets
from zsar.data.annotations import normalize_class_name
from zsar.data.records import VideoList
from zsar.experiments.parameters import ParameterError
from zsar.models.prompts import load_descriptions, readable_class_name
from zsar.text.class_texts import ClassTexts
from zsar.text.units import with_extracted_units

SOURCE_DATASETS = ("embedded", "ucf101", "hmdb51")
"""Values of a source spec's ``"dataset"`` (and of notebook 01's ``DATASET``)."""

OFFICIAL_SPLITS = (1, 2, 3)
"""UCF101 and HMDB51 each ship three official train/test lists."""

PathLike = str | os.PathLike


@dataclass(frozen=True)
class DataSource:
    """Everything a split needs about a dataset.

    Attributes:
        videos: every video of every class (labels index ``texts``).
        test_ids: ``video_id`` s of the official test list (disjoint groups).
        texts: texts of all classes, in label order.
        pairs: ``(i, j)`` class indices of temporal pairs (time reversals of each other).
        name: for messages and tables.
    """

    videos: VideoList
    test_ids: frozenset[str]
    texts: ClassTexts
    pairs: tuple[tuple[int, int], ...] = ()
    name: str = ""


def load_embedded_source(data_root: str | os.PathLike, split: int = 1) -> DataSource:
    """A :class:`DataSource` of a generated embedded benchmark at ``data_root``."""
    from zsar.data.datasets import embedded
    from zsar.data.embedded import load_catalog, temporal_pairs

    catalog = load_catalog(data_root)
    videos = embedded(data_root, split=split, subset="all")
    if [c.name for c in catalog] != list(videos.class_names):
        raise ValueError(f"{data_root}: classes.json and classInd.txt list different classes")
    test_ids = frozenset(r.video_id for r in embedded(data_root, split=split, subset="test").records)
    return DataSource(videos, test_ids, ClassTexts.from_catalog(catalog), tuple(temporal_pairs(catalog)),
                      f"embedded:{Path(data_root).name}")


# ----------------------------------------------------------------------------- descriptions
def join_texts(texts: Sequence[str]) -> str:
    """One description from several texts: sentences joined by a space, phrases by ``"; "``.

    >>> join_texts(["A person runs.", "bow", "arrow"])
    'A person runs. bow; arrow'
    """
    out = ""
    for text in (str(t).strip() for t in texts):
        if not text:
            continue
        out += ("" if not out else " " if out[-1] in ".!?" else "; ") + text
    return out


def _is_index_keyed(path: Path) -> bool:
    """Whether the JSON at ``path`` is an object keyed by label index (the OST layout)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read descriptions: {err}") from None
    return isinstance(data, Mapping) and bool(data) and all(str(k).isdigit() for k in data)


def class_descriptions(path: PathLike, class_names: Sequence[str],
                       class_dirs: Sequence[str] = ()) -> list[list[str]]:
    """The description texts of each class, in label order (``[]`` for a class the file lacks).

    Args:
        path: JSON in a layout of :func:`~zsar.models.prompts.load_descriptions`.
        class_names: ``C`` class names in label order (index-keyed files index these).
        class_dirs: ``C`` folder names (``ApplyEyeMakeup``); keys may match either spelling.

    Returns:
        ``C`` lists of texts.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a key that matches no class (the message lists some), or two keys for one class.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"descriptions file not found: {path}")
    by_key = load_descriptions(path, list(class_names) if _is_index_keyed(path) else None)
    label_of: dict[str, int] = {}
    for label, spellings in enumerate(zip(class_names, class_dirs or class_names)):
        for spelling in spellings:
            label_of[normalize_class_name(spelling, compact=True)] = label
    texts: list[list[str]] = [[] for _ in class_names]
    unknown, doubled = [], []
    for key, values in by_key.items():
        label = label_of.get(normalize_class_name(key, compact=True))
        if label is None:
            unknown.append(key)
        elif texts[label]:
            doubled.append(key)
        else:
            texts[label] = [str(v) for v in values]
    if unknown:
        raise ValueError(f"{path}: {len(unknown)} description key(s) match no class, e.g. {sorted(unknown)[:5]}; "
                         f"classes are e.g. {list(class_names)[:3]}")
    if doubled:
        raise ValueError(f"{path}: several keys describe one class: {doubled[:5]}")
    return texts


def real_class_texts(class_dirs: Sequence[str], descriptions: PathLike | None = None) -> ClassTexts:
    """Readable names, descriptions and extracted semantic units of a real dataset's classes.

    Args:
        class_dirs: ``C`` class folder names in label order.
        descriptions: optional descriptions JSON (see :func:`class_descriptions`).

    Returns:
        :class:`ClassTexts` of ``C`` classes; units come from each class's name and own texts.
    """
    names = [readable_class_name(d) for d in class_dirs]
    per_class = class_descriptions(descriptions, names, class_dirs) if descriptions else [[] for _ in names]
    extracted = with_extracted_units(ClassTexts(tuple(names)), {n: t for n, t in zip(names, per_class) if t})
    return ClassTexts(tuple(names), tuple(join_texts(t) for t in per_class), extracted.units)


# ----------------------------------------------------------------------------- real datasets
def _real_source(dataset: str, factory: Callable[..., VideoList], video_root: PathLike,
                 split_dir: PathLike | None, split: int, descriptions: PathLike | None, check_files: bool,
                 **factory_kwargs: Any) -> DataSource:
    if split not in OFFICIAL_SPLITS:
        raise ValueError(f"{dataset}: official split {split!r} does not exist; allowed: {OFFICIAL_SPLITS}")
    common = dict(split=split, split_dir=split_dir, **factory_kwargs)
    everything = factory(video_root, subset="all", check_files=check_files, **common)
    test_list = factory(video_root, subset="test", check_files=False, **common)
    texts = real_class_texts(everything.class_dirs, descriptions)
    videos = VideoList(everything.records, list(texts.names), everything.root, everything.source,
                       list(everything.class_dirs))
    name = f"{dataset}:split{split}" + (f":{Path(descriptions).stem}" if descriptions else "")
    return DataSource(videos, frozenset(r.video_id for r in test_list.records), texts, (), name)


def ucf101_source(video_root: PathLike, split_dir: PathLike | None, split: int = 1,
                  descriptions: PathLike | None = None, check_files: bool = True) -> DataSource:
    """UCF101 as a :class:`DataSource` (every video of the 101 classes, official test list ``split``).

    Args:
        video_root: folder of ``<ClassDir>/v_<ClassDir>_gGG_cCC.avi``.
        split_dir: folder with ``classInd.txt``, ``trainlist0N.txt``, ``testlist0N.txt``
            (``ucfTrainTestlist``); ``None``: ``video_root/ucfTrainTestlist`` or the shared copy.
        split: official split 1-3; its test list gives ``test_ids``.
        descriptions: optional class descriptions JSON (ER-ZSAR, GPT4Vis or OST layout).
        check_files: raise one error listing every listed video missing under ``video_root``.

    Raises:
        MissingFilesError: listed videos are missing (``check_files``).
        AnnotationError: a split file cannot be parsed.
        ValueError: bad ``split`` or a description key that matches no class.
    """
    return _real_source("ucf101", datasets.ucf101, video_root, split_dir, split, descriptions, check_files)


def hmdb51_source(video_root: PathLike, split_dir: PathLike | None, split: int = 1,
                  descriptions: PathLike | None = None, check_files: bool = True) -> DataSource:
    """HMDB51 as a :class:`DataSource` (every video of the 51 classes, official test list ``split``).

    Classes are alphabetical (mmaction2's ``label_map_hmdb51.txt``, the order OST's index-keyed
    descriptions use). Arguments and errors as :func:`ucf101_source`, with ``split_dir`` the
    ``testTrainMulti_7030_splits`` folder of ``<class>_test_split<N>.txt`` files and videos at
    ``video_root/<class>/<file>.avi``.
    """
    return _real_source("hmdb51", datasets.hmdb51, video_root, split_dir, split, descriptions, check_files)


REAL_SOURCES: dict[str, Callable[..., DataSource]] = {"ucf101": ucf101_source, "hmdb51": hmdb51_source}


# ----------------------------------------------------------------------------- the spec
def source_spec(dataset: str, data_root: PathLike, split_dir: PathLike | None = None,
                descriptions: PathLike | None = None, official_split: int = 1) -> dict:
    """The keys of ``splits.json`` that :func:`load_source` reads (paths made absolute)."""
    if dataset not in SOURCE_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {list(SOURCE_DATASETS)}")
    return {"dataset": dataset, "data_root": _absolute(data_root), "split_dir": _absolute(split_dir),
            "descriptions": _absolute(descriptions), "official_split": int(official_split)}


def _absolute(path: PathLike | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def load_source(spec: Mapping[str, Any]) -> DataSource:
    """The :class:`DataSource` a ``splits.json`` (or any :func:`source_spec` dict) describes.

    Args:
        spec: ``dataset`` (one of :data:`SOURCE_DATASETS`; missing = ``"embedded"``),
            ``data_root``, and for real data ``split_dir``, ``descriptions``, ``official_split``
            (default 1). With ``class_names`` (as ``splits.json`` has), the source's classes must
            be exactly those, in that order, since the splits index them.

    Raises:
        ValueError: unknown dataset, no ``data_root``, or class names that differ from the spec's.
    """
    if not isinstance(spec, Mapping):
        raise TypeError(f"a source spec is a dict (splits.json content), got {type(spec).__name__}")
    dataset = spec.get("dataset") or "embedded"
    if dataset not in SOURCE_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r} in the source spec; allowed: {list(SOURCE_DATASETS)}")
    if not spec.get("data_root"):
        raise ValueError(f"the source spec of dataset {dataset!r} has no 'data_root'")
    split = int(spec.get("official_split") or 1)
    if dataset == "embedded":
        source = load_embedded_source(spec["data_root"], split=split)
    else:
        source = REAL_SOURCES[dataset](spec["data_root"], spec.get("split_dir"), split, spec.get("descriptions"))
    expected = spec.get("class_names")
    if expected is not None and list(expected) != list(source.texts.names):
        diff = [(i, a, b) for i, (a, b) in enumerate(zip(expected, source.texts.names)) if a != b][:3]
        raise ValueError(f"{source.name}: classes differ from the spec's class_names ({len(expected)} vs "
                         f"{len(source.texts)} classes; first differences (index, spec, source): {diff}); "
                         "re-run 01_data_prep")
    return source


def check_source_parameters(dataset: str, data_root: PathLike | None, split_dir: PathLike | None,
                            descriptions: PathLike | None, official_split: int = 1) -> None:
    """Validate notebook 01's data parameters; the error names the bad parameter.

    Real data need an existing ``DATA_ROOT`` and ``SPLIT_DIR`` folder, an existing
    ``DESCRIPTIONS`` file if given and ``OFFICIAL_SPLIT`` in 1-3; the embedded benchmark takes
    neither ``SPLIT_DIR`` nor ``DESCRIPTIONS`` (it has its own split files and descriptions).

    Raises:
        ParameterError: naming the parameter, its value and what is allowed.
    """
    if dataset not in SOURCE_DATASETS:
        raise ParameterError(f"parameter DATASET={dataset!r} is not allowed; choose one of {list(SOURCE_DATASETS)}")
    if dataset == "embedded":
        for name, value in (("SPLIT_DIR", split_dir), ("DESCRIPTIONS", descriptions)):
            if value is not None:
                raise ParameterError(f"parameter {name}={value!r} is for DATASET ucf101 or hmdb51; the embedded "
                                     f"benchmark has its own; leave {name} = None")
        return
    what = {"DATA_ROOT": "the folder of the videos, <class folder>/<video file>",
            "SPLIT_DIR": "the folder of the official split files, "
                         + ("ucfTrainTestlist" if dataset == "ucf101" else "testTrainMulti_7030_splits")}
    for name, value in (("DATA_ROOT", data_root), ("SPLIT_DIR", split_dir)):
        if not value:
            raise ParameterError(f"parameter {name} is required for DATASET={dataset!r}: {what[name]}")
        if not Path(value).expanduser().is_dir():
            raise ParameterError(f"parameter {name}={str(value)!r} is not a folder; expected {what[name]}")
    if descriptions is not None and not Path(descriptions).expanduser().is_file():
        raise ParameterError(f"parameter DESCRIPTIONS={str(descriptions)!r} is not a file; expected a JSON of "
                             "class descriptions, ER-ZSAR, GPT4Vis or OST layout, or None")
    if official_split not in OFFICIAL_SPLITS or isinstance(official_split, bool):
        raise ParameterError(f"parameter OFFICIAL_SPLIT={official_split!r} is not allowed; choose one of "
                             f"{list(OFFICIAL_SPLITS)}")
