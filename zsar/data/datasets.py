"""Thin dataset factories: each returns a :class:`VideoList` for the generic dataset to wrap.

>>> from zsar.data.datasets import ucf101                       # doctest: +SKIP
>>> from zsar.data.dataset import VideoDataset                  # doctest: +SKIP
>>> ds = VideoDataset(ucf101("/data/UCF-101", split=1, subset="test"), sampler=...)  # doctest: +SKIP

``check_files=True`` (the default) checks that every listed video exists and raises one
:class:`~zsar.data.errors.MissingFilesError` listing all missing ones; ``check_files=False``
parses the official lists without the videos. Zero-shot protocols split by class, not by the
official train/test lists, so they want ``subset="all"`` (see :func:`all_videos`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

from zsar.data import annotations as ann
from zsar.data.errors import AnnotationError, MissingFilesError
from zsar.data.records import VideoList, VideoRecord
from zsar.paths import shared_data_dir


# ----------------------------------------------------------------------------- files on disk
def _find_ignoring_case(root: Path, rel: str, listings: dict[Path, dict[str, Path]]) -> Path | None:
    """``root/rel`` matching each path part case-insensitively (folder listings cached)."""
    cur = root
    for part in PurePosixPath(rel).parts:
        if (cur / part).exists():
            cur = cur / part
            continue
        if cur not in listings:
            listings[cur] = {p.name.lower(): p for p in cur.iterdir()} if cur.is_dir() else {}
        hit = listings[cur].get(part.lower())
        if hit is None:
            return None
        cur = hit
    return cur


def resolve_files(video_list: VideoList, case_insensitive: bool = True) -> VideoList:
    """Check every listed file exists; raise ONE :class:`MissingFilesError` listing all missing.

    With ``case_insensitive`` a listed path that differs from the disk only in letter case
    (e.g. UCF101 ``HandstandPushups`` vs ``HandStandPushups`` folders) is resolved to the file
    on disk; ``video_id`` keeps the listed spelling so ids stay stable.
    """
    listings: dict[Path, dict[str, Path]] = {}
    records, missing = [], []
    for rec in video_list.records:
        path = rec.path if rec.path.is_file() else None
        if path is None and case_insensitive:
            path = _find_ignoring_case(video_list.root, rec.video_id, listings)
        if path is None or not path.is_file():
            missing.append(rec.path)
        else:
            records.append(VideoRecord(path, rec.label, rec.video_id))
    if missing:
        raise MissingFilesError(missing, video_list.source)
    return VideoList(records, video_list.class_names, video_list.root, video_list.source,
                     video_list.class_dirs)


def _match_folders(folders: list[str], class_names: list[str], root: Path) -> dict[str, int]:
    """Folder -> class index by compact normalised name (``clean_and_jerk`` ~ ``Clean and jerk``)."""
    index = {ann.normalize_class_name(n, compact=True): i for i, n in enumerate(class_names)}
    matched = {f: index.get(ann.normalize_class_name(f, compact=True)) for f in folders}
    unmatched = sorted(f for f, i in matched.items() if i is None)
    if unmatched:
        raise AnnotationError(f"{root}: folder(s) match no class of the class list: {unmatched}")
    clashes = defaultdict(list)
    for f, i in matched.items():
        clashes[i].append(f)
    double = [fs for fs in clashes.values() if len(fs) > 1]
    if double:
        raise AnnotationError(f"{root}: several folders map to one class: {double}")
    return matched


def scan_class_folders(root: str | Path, class_names: list[str] | None = None,
                       extensions: Iterable[str] = ann.VIDEO_EXTENSIONS,
                       class_name_map: ann.ClassNameMap = None) -> VideoList:
    """``root/<class folder>/**/<video>`` -> :class:`VideoList`.

    Args:
        root: dataset folder; hidden entries (``.*``, e.g. atomic-write temp files) are skipped.
        class_names: fixed vocabulary the folders are matched to by normalised name (folders
            matching none raise); default one class per folder, named by ``class_name_map`` /
            :func:`annotations.humanize_class_name`.
        extensions: file suffixes counted as videos (case-insensitive); other files are ignored.
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingFilesError([root], "scan_class_folders")
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if class_names is None:
        class_dirs, class_names = folders, ann.display_names(folders, class_name_map)
        label_of = {f: i for i, f in enumerate(folders)}
    else:
        class_names = list(class_names)
        label_of = _match_folders(folders, class_names, root)
        class_dirs = list(class_names)
        for f, i in label_of.items():
            class_dirs[i] = f
    ann.check_unique_class_names(class_names, str(root))
    records = []
    for folder in folders:
        for p in sorted((root / folder).rglob("*")):
            rel = p.relative_to(root)
            if p.is_file() and p.suffix.lower() in exts and not any(s.startswith(".") for s in rel.parts):
                records.append(VideoRecord(p, label_of[folder], rel.as_posix()))
    return VideoList(records, class_names, root, f"folder scan of {root}", class_dirs)


def _finish(video_list: VideoList, check_files: bool) -> VideoList:
    return resolve_files(video_list) if check_files else video_list


def _class_names(class_names: list[str] | str | Path) -> list[str]:
    """A list of names as given, or read from a class file (see :func:`annotations.read_class_names`)."""
    if isinstance(class_names, (str, Path)):
        return ann.read_class_names(class_names)
    return list(class_names)


def _default_dir(root: Path, name: str, shared_rel: str) -> Path:
    """``root/name`` if present, else the official copy under the shared data folder.

    The official split files are identical everywhere, so the shared copy is a safe fallback.
    """
    for cand in (root / name, shared_data_dir() / shared_rel):
        if cand.is_dir():
            return cand
    raise AnnotationError(f"no split folder: neither {root / name} nor {shared_data_dir() / shared_rel}"
                          " exists; pass split_dir=")


def annotation_list(root: str | Path, list_file: str | Path, class_names: list[str] | str | Path,
                    label_offset: int = 0, check_files: bool = True) -> VideoList:
    """mmaction2-style ``relative/path label`` list (e.g. ViFi-CLIP ``val1.txt``).

    Args:
        root: folder the listed paths are relative to.
        list_file: the list.
        class_names: names by label, or a class file (``.txt`` one a line, ``id,name`` csv).
        label_offset: 1 for 1-based labels.
        check_files: raise one error listing all missing videos.
    """
    vl = ann.read_annotation_list(list_file, root, _class_names(class_names), label_offset)
    return _finish(vl, check_files)


def ucf101(root: str | Path, split: int = 1, subset: str = "train", split_dir: str | Path | None = None,
           check_files: bool = True, class_name_map: ann.ClassNameMap = None) -> VideoList:
    """UCF101 official split ``split`` (1-3); videos at ``root/<ClassDir>/v_*.avi``.

    ``split_dir`` defaults to ``root/ucfTrainTestlist`` or the shared official copy. Class
    names are humanised (``"apply eye makeup"``) unless ``class_name_map`` says otherwise.
    """
    root = Path(root)
    split_dir = Path(split_dir) if split_dir else _default_dir(root, "ucfTrainTestlist",
                                                               "meta/ucf101/ucfTrainTestlist")
    return _finish(ann.read_ucf101_split(split_dir, root, split, subset, class_name_map), check_files)


def hmdb51(root: str | Path, split: int = 1, subset: str = "train", split_dir: str | Path | None = None,
           check_files: bool = True, class_name_map: ann.ClassNameMap = None,
           class_order: list[str] | str | Path | None = None) -> VideoList:
    """HMDB51 official split ``split`` (1-3); videos at ``root/<class>/<file>.avi``.

    ``split_dir`` defaults to ``root/testTrainMulti_7030_splits`` or the shared official copy.
    Classes are alphabetical unless ``class_order`` (folder names, or a file such as TSN's
    ``class_list.txt``) fixes another order, see :func:`annotations.read_hmdb51_split`.
    """
    root = Path(root)
    split_dir = Path(split_dir) if split_dir else _default_dir(root, "testTrainMulti_7030_splits",
                                                               "meta/hmdb51/testTrainMulti_7030_splits")
    order = None if class_order is None else _class_names(class_order)
    vl = ann.read_hmdb51_split(split_dir, root, split, subset, class_name_map, order)
    return _finish(vl, check_files)


def kinetics(root: str | Path, csv_file: str | Path, class_map: list[str] | str | Path | None = None,
             layout: str = "auto", ext: str = ".mp4", check_files: bool = True) -> VideoList:
    """Kinetics-400/600/700 clips of one csv; see :data:`annotations.KINETICS_LAYOUTS`.

    Args:
        root: folder of this csv's clips (``<root>/<class folder>/<id>_<start>_<end>.mp4``).
        csv_file: official ``label,youtube_id,time_start,time_end,...`` csv.
        class_map: label map (list or ``label_map_k400.txt``); default the csv's sorted labels.
    """
    names = None if class_map is None else _class_names(class_map)
    return _finish(ann.read_kinetics_csv(csv_file, root, names, layout, ext), check_files)


def kinetics600_zeroshot(root: str | Path, split: int = 1, split_dir: str | Path | None = None,
                         check_files: bool = True) -> VideoList:
    """Test videos of K600 zero-shot split ``split`` (160 classes, ``ZS_split{N}_K600_eval.txt``).

    The eval list holds ``train/<id>_<start>_<end>.mp4 <label>`` with labels indexing
    ``ZS_split{N}_K600.csv``; ``root`` is the folder holding ``train/`` and ``val/``.
    """
    split_dir = Path(split_dir) if split_dir else _default_dir(Path(root), "k600_zeroshot_splits",
                                                               "meta/kinetics/k600_zeroshot_splits")
    names = ann.read_id_name_csv(split_dir / f"ZS_split{split}_K600.csv")
    return annotation_list(root, split_dir / f"ZS_split{split}_K600_eval.txt", names, 0, check_files)


def video_folder(root: str | Path, extensions: Iterable[str] = ann.VIDEO_EXTENSIONS,
                 class_names: list[str] | str | Path | None = None,
                 class_name_map: ann.ClassNameMap = None) -> VideoList:
    """Every video under ``root/<class>/``; one class per folder unless ``class_names`` is given."""
    names = None if class_names is None else _class_names(class_names)
    return scan_class_folders(root, names, extensions, class_name_map)


def activitynet(root: str | Path, class_file: str | Path | None = None,
                extensions: Iterable[str] = ann.VIDEO_EXTENSIONS) -> VideoList:
    """ActivityNet videos in ``root/<class folder>/...`` with the 200-class vocabulary.

    Folders match classes by normalised name (``walking_the_dog`` -> ``"Walking the dog"``);
    classes without a folder keep their index (so labels agree across subsets).
    ``class_file`` defaults to the shared ``anet1.3_labels.csv``.
    """
    class_file = class_file or shared_data_dir() / "meta/activitynet/anet1.3_labels.csv"
    return scan_class_folders(root, ann.read_class_names(class_file), extensions)


def read_embedded_classes(path: str | Path) -> list[dict]:
    """The embedded benchmark's ``classes.json``: a list of ``{index, dir, name, ...}`` dicts."""
    path = Path(path)
    try:
        classes = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise AnnotationError(f"{path}: cannot read class metadata: {err}") from None
    if not isinstance(classes, list) or not all(isinstance(c, dict) and "dir" in c and "name" in c
                                                for c in classes):
        raise AnnotationError(f"{path}: expected a list of objects with 'dir' and 'name'")
    return classes


def embedded(root: str | Path, split: int = 1, subset: str = "train", check_files: bool = True) -> VideoList:
    """The generated embedded benchmark (UCF101 layout) with names from ``classes.json``.

    Layout: ``root/videos/<ClassDir>/v_<ClassDir>_gGG_cCC.mp4``, ``root/splits/classInd.txt``,
    ``trainlist0N.txt``, ``testlist0N.txt`` and ``root/classes.json``.
    """
    root = Path(root)
    classes = read_embedded_classes(root / "classes.json")
    names = {c["dir"]: c["name"] for c in classes}
    vl = ann.read_ucf101_split(root / "splits", root / "videos", split, subset)
    missing = sorted(set(vl.class_dirs) - set(names))
    if missing:
        raise AnnotationError(f"{root / 'classes.json'}: no entry for class folders {missing}")
    vl.class_names = [names[d] for d in vl.class_dirs]
    ann.check_unique_class_names(vl.class_names, str(root / "classes.json"))
    return _finish(vl, check_files)


DATASETS: dict[str, Callable[..., VideoList]] = {
    "annotation_list": annotation_list,
    "ucf101": ucf101,
    "hmdb51": hmdb51,
    "kinetics": kinetics,
    "kinetics600_zeroshot": kinetics600_zeroshot,
    "activitynet": activitynet,
    "embedded": embedded,
    "video_folder": video_folder,
}
"""Name -> factory; :func:`make_video_list` looks names up here."""

_SPLIT_DATASETS = ("ucf101", "hmdb51", "embedded")


def make_video_list(name: str, **kwargs) -> VideoList:
    """Build the :class:`VideoList` of dataset ``name`` (a key of :data:`DATASETS`)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; allowed: {sorted(DATASETS)}")
    return DATASETS[name](**kwargs)


def all_videos(name: str, **kwargs) -> VideoList:
    """Train + test videos of every class (``subset="all"``), as class-split protocols need."""
    if name not in _SPLIT_DATASETS:
        raise ValueError(f"all_videos({name!r}): only for datasets with official splits {_SPLIT_DATASETS};"
                         " the others already return every listed video")
    if kwargs.get("subset", "all") != "all":
        raise ValueError(f"all_videos takes every video; got subset={kwargs['subset']!r}")
    return make_video_list(name, **{**kwargs, "subset": "all"})
