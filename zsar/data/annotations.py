"""Parsers of official annotation, split and class files into :class:`VideoList` s.

Every parser raises :class:`AnnotationError` naming the file and line of malformed input and
never touches the videos: whether the listed files exist is checked separately by
:func:`zsar.data.datasets.resolve_files`, which raises one ``MissingFilesError`` listing all.
That split lets the official lists be parsed (and tested) without the datasets on disk.

Formats handled (all CRLF- and BOM-tolerant, blank lines skipped):

* mmaction2-style lists: ``relative/path label`` (0-based int; the path may contain spaces).
* class lists: one name a line, ``id,name`` csv, or UCF101 ``classInd.txt`` (``1 ApplyEyeMakeup``).
* UCF101 ``trainlistNN.txt`` (``Class/v_Class_gGG_cCC.avi 1``) and ``testlistNN.txt`` (path only).
* HMDB51 ``<class>_test_splitN.txt`` (``name.avi 0|1|2``: 1 = train, 2 = test, 0 = unused).
* Kinetics csvs (``label,youtube_id,time_start,time_end[,split,...]``).
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Mapping, Union

from zsar.data.errors import AnnotationError
from zsar.data.records import VideoList, VideoRecord

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".gif")
"""Suffixes (lower case) treated as videos by folder scans; ``.gif`` is in for kinetics-i3d's sample."""

SUBSETS = ("train", "test", "all")

ClassNameMap = Union[Mapping[str, str], Callable[[str], str], None]
"""User hook from a class folder / identifier to a display name (mapping or callable)."""

# lower->upper and Upper->UpperLower boundaries: "ApplyEyeMakeup" -> "Apply Eye Makeup"
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_UCF_FILE = re.compile(r"^v_(?P<cls>.+?)_g\d+_c\d+", re.IGNORECASE)


# ----------------------------------------------------------------------------- class names
def humanize_class_name(name: str) -> str:
    """Readable lower-case words from a folder-style name.

    ``"ApplyEyeMakeup"`` -> ``"apply eye makeup"``, ``"brush_hair"`` -> ``"brush hair"``.
    """
    return " ".join(_CAMEL_BOUNDARY.sub(" ", name.replace("_", " ")).lower().split())


def normalize_class_name(name: str, compact: bool = False) -> str:
    """Key for matching class names across datasets.

    Lower case, CamelCase split, underscores and punctuation removed, spaces collapsed; with
    ``compact`` the spaces are dropped too, so ``"SkateBoarding"`` matches ``"skateboarding"``.
    """
    words = re.sub(r"[^\w\s]|_", " ", humanize_class_name(name)).split()
    return ("" if compact else " ").join(words)


def display_names(dirs: list[str], class_name_map: ClassNameMap = None) -> list[str]:
    """Display names of class folders: the user map where given, else :func:`humanize_class_name`.

    Raises:
        ValueError: a mapping names folders that are not classes (most likely a typo).
    """
    if callable(class_name_map):
        return [str(class_name_map(d)) for d in dirs]
    mapping = dict(class_name_map or {})
    unknown = sorted(set(mapping) - set(dirs))
    if unknown:
        raise ValueError(f"class_name_map names unknown class folders: {unknown}")
    return [mapping.get(d, humanize_class_name(d)) for d in dirs]


def check_unique_class_names(names: Iterable[str], source: str = "") -> None:
    """Refuse class names that collide once normalised (``"A_b"`` and ``"a b"`` collide too).

    Raises:
        AnnotationError: naming every group of duplicates and ``source``.
    """
    groups: dict[str, list[str]] = defaultdict(list)
    for name in names:
        groups[normalize_class_name(name)].append(name)
    dups = [g for g in groups.values() if len(g) > 1]
    if dups:
        raise AnnotationError(f"{source or 'class list'}: duplicate class names {dups}")


# ----------------------------------------------------------------------------- raw reading
def read_lines(path: str | Path) -> list[tuple[int, str]]:
    """``(line number, stripped text)`` of the non-blank lines; CRLF and a UTF-8 BOM tolerated."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"{path}: annotation file not found")
    text = path.read_text(encoding="utf-8-sig")
    return [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_class_list(path: str | Path) -> list[str]:
    """Class names, one a line (mmaction2 ``label_map_*.txt``); duplicates refused."""
    names = [line for _, line in read_lines(path)]
    check_unique_class_names(names, str(path))
    return names


def read_id_name_csv(path: str | Path) -> list[str]:
    """Class names from an ``id,name`` csv (ids ``0..n-1`` in any order), ordered by id."""
    path = Path(path)
    rows = read_lines(path)
    if not rows or [c.strip() for c in rows[0][1].split(",", 1)] != ["id", "name"]:
        raise AnnotationError(f"{path}:1: expected header 'id,name'")
    by_id: dict[int, str] = {}
    for (lineno, _), row in zip(rows[1:], csv.reader(line for _, line in rows[1:])):
        if len(row) != 2 or not row[0].strip().isdigit():
            raise AnnotationError(f"{path}:{lineno}: expected '<int id>,<name>', got {row}")
        idx = int(row[0])
        if idx in by_id:
            raise AnnotationError(f"{path}:{lineno}: id {idx} repeated")
        by_id[idx] = row[1].strip()
    if sorted(by_id) != list(range(len(by_id))):
        raise AnnotationError(f"{path}: ids are not 0..{len(by_id) - 1}")
    names = [by_id[i] for i in range(len(by_id))]
    check_unique_class_names(names, str(path))
    return names


def read_class_index(path: str | Path) -> list[str]:
    """UCF101-style ``classInd.txt`` (``1 ApplyEyeMakeup``, 1-based) -> names by 0-based index."""
    path = Path(path)
    names = []
    for lineno, line in read_lines(path):
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not parts[0].isdigit():
            raise AnnotationError(f"{path}:{lineno}: expected '<index> <ClassName>', got {line!r}")
        if int(parts[0]) != len(names) + 1:
            raise AnnotationError(f"{path}:{lineno}: index {parts[0]} out of order, expected {len(names) + 1}")
        names.append(parts[1].strip())
    check_unique_class_names(names, str(path))
    return names


def read_class_names(path: str | Path) -> list[str]:
    """Any class file: ``id,name`` csv (``.csv``), ``classInd`` style, or one name a line."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return read_id_name_csv(path)
    lines = read_lines(path)
    if lines and all(re.match(r"^\d+\s+\S", line) for _, line in lines):
        return read_class_index(path)
    return read_class_list(path)


# ----------------------------------------------------------------------------- video lists
def read_annotation_list(path: str | Path, root: str | Path, class_names: list[str],
                         label_offset: int = 0) -> VideoList:
    """mmaction2-style ``relative/path label`` lines -> :class:`VideoList`.

    Args:
        path: the list file; the label is the last whitespace-separated token, so paths may
            contain spaces.
        root: folder the relative paths are under.
        class_names: names by label index.
        label_offset: subtracted from every label (1 for 1-based lists).
    """
    path, root = Path(path), Path(root)
    check_unique_class_names(class_names, str(path))
    records = []
    for lineno, line in read_lines(path):
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise AnnotationError(f"{path}:{lineno}: expected '<path> <int label>', got {line!r}")
        label = int(parts[1]) - label_offset
        if not 0 <= label < len(class_names):
            raise AnnotationError(f"{path}:{lineno}: label {parts[1]} outside 0..{len(class_names) - 1}"
                                  f" (offset {label_offset})")
        rel = PurePosixPath(parts[0].replace("\\", "/")).as_posix()
        records.append(VideoRecord(root / rel, label, rel))
    return VideoList(records, list(class_names), root, str(path))


def _check_subset(subset: str) -> tuple[str, ...]:
    if subset not in SUBSETS:
        raise ValueError(f"subset={subset!r}; allowed: {SUBSETS}")
    return ("train", "test") if subset == "all" else (subset,)


def _ucf101_records(path: Path, dirs: list[str], root: Path) -> list[VideoRecord]:
    """Records of one UCF101 train/test list; the label comes from the folder, case-insensitively.

    The official lists put ``v_HandStandPushups_*`` files in folder ``HandstandPushups``, so
    folder and file-name class are compared ignoring case; any other disagreement is an error.
    """
    by_folder = {d.lower(): i for i, d in enumerate(dirs)}
    records = []
    for lineno, line in read_lines(path):
        parts = line.split()
        rel = parts[0].replace("\\", "/")
        folder, _, fname = rel.rpartition("/")
        if len(parts) > 2 or not folder or (len(parts) == 2 and not parts[1].isdigit()):
            raise AnnotationError(f"{path}:{lineno}: expected '<ClassDir>/<file> [<1-based label>]', got {line!r}")
        label = by_folder.get(folder.lower())
        if label is None:
            raise AnnotationError(f"{path}:{lineno}: class folder {folder!r} not in classInd")
        if len(parts) == 2 and int(parts[1]) - 1 != label:
            raise AnnotationError(f"{path}:{lineno}: label {parts[1]} disagrees with folder {folder!r}"
                                  f" (classInd index {label + 1})")
        match = _UCF_FILE.match(fname)
        if match and match["cls"].lower() != dirs[label].lower():
            raise AnnotationError(f"{path}:{lineno}: file {fname!r} is not of class {dirs[label]!r}")
        records.append(VideoRecord(root / rel, label, rel))
    return records


def read_ucf101_split(split_dir: str | Path, root: str | Path, split: int = 1, subset: str = "train",
                      class_name_map: ClassNameMap = None) -> VideoList:
    """UCF101 ``classInd.txt`` + ``trainlist0N.txt`` / ``testlist0N.txt`` -> :class:`VideoList`.

    Args:
        split_dir: folder with the official list files.
        root: folder holding ``<ClassDir>/<file>`` videos.
        split: official split number (1-3).
        subset: ``"train"``, ``"test"`` or ``"all"`` (train + test = every video).
        class_name_map: display-name hook; default ``"ApplyEyeMakeup"`` -> ``"apply eye makeup"``.
    """
    split_dir, root = Path(split_dir), Path(root)
    dirs = read_class_index(split_dir / "classInd.txt")
    records = []
    for part in _check_subset(subset):
        records += _ucf101_records(split_dir / f"{part}list{split:02d}.txt", dirs, root)
    names = display_names(dirs, class_name_map)
    check_unique_class_names(names, f"class names of {split_dir}")
    source = f"{split_dir} split {split} {subset}"
    return VideoList(records, names, root, source, list(dirs))


def read_hmdb51_split(split_dir: str | Path, root: str | Path, split: int = 1, subset: str = "train",
                      class_name_map: ClassNameMap = None, class_order: list[str] | None = None) -> VideoList:
    """HMDB51 ``<class>_test_split<N>.txt`` files -> :class:`VideoList` (videos at ``root/<class>/<file>``).

    Classes are the file-name prefixes (51 for the official release); id 1 = train, 2 = test,
    0 = not used in this split (``subset="all"`` takes all three = every video).

    HMDB51 has no official class index. Default order is alphabetical (mmaction2
    ``label_map_hmdb51.txt``); TSN's ``class_list.txt``, which ViFi-CLIP's label csv follows,
    differs (``kick_ball`` before ``kick``, ``sword_exercise`` before ``sword``): pass it as
    ``class_order`` to match such lists. Caution: ViFi-CLIP's HMDB51 ``val*.txt`` indices are
    alphabetical while its ``hmdb_51_labels.csv`` is in TSN order, so those 4 names swap.
    """
    split_dir, root = Path(split_dir), Path(root)
    suffix = f"_test_split{split}.txt"
    by_class = {f.name[: -len(suffix)]: f for f in split_dir.glob(f"*{suffix}")}
    if not by_class:
        raise AnnotationError(f"{split_dir}: no '*{suffix}' split files")
    dirs = sorted(by_class) if class_order is None else list(class_order)
    if sorted(dirs) != sorted(by_class):
        raise AnnotationError(f"{split_dir}: class_order differs from the split files: missing"
                              f" {sorted(set(by_class) - set(dirs))}, extra {sorted(set(dirs) - set(by_class))}")
    files = [by_class[d] for d in dirs]
    _check_subset(subset)
    wanted = {"train": {"1"}, "test": {"2"}, "all": {"0", "1", "2"}}[subset]
    records = []
    for label, (folder, file) in enumerate(zip(dirs, files)):
        for lineno, line in read_lines(file):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise AnnotationError(f"{file}:{lineno}: expected '<file> 0|1|2', got {line!r}")
            if parts[1] in wanted:
                rel = f"{folder}/{parts[0]}"
                records.append(VideoRecord(root / rel, label, rel))
    names = display_names(dirs, class_name_map)
    check_unique_class_names(names, str(split_dir))
    return VideoList(records, names, root, f"{split_dir} split {split} {subset}", dirs)


# ----------------------------------------------------------------------------- Kinetics
KINETICS_LAYOUTS = ("auto", "underscore", "label", "flat")
"""Where a Kinetics clip lives under ``root``: ``underscore`` = ``<label, spaces -> _>/<file>``
(mmaction2's ``rename_classnames.sh``), ``label`` = ``<label as in the csv>/<file>`` (the
ActivityNet crawler), ``flat`` = ``<file>``; ``auto`` picks the one whose class folders exist."""


def kinetics_file_name(youtube_id: str, time_start: float, time_end: float, ext: str = ".mp4") -> str:
    """Official clip file name ``<youtube_id>_<start:06d>_<end:06d><ext>``."""
    return f"{youtube_id}_{int(time_start):06d}_{int(time_end):06d}{ext}"


def kinetics_class_folder(label: str, layout: str) -> str:
    """Folder of class ``label`` in ``layout`` (``""`` for ``flat``)."""
    if layout not in KINETICS_LAYOUTS[1:]:
        raise ValueError(f"layout={layout!r}; allowed: {KINETICS_LAYOUTS}")
    return {"underscore": label.replace(" ", "_"), "label": label, "flat": ""}[layout]


def detect_kinetics_layout(root: str | Path, labels: Iterable[str]) -> str:
    """The layout whose class folders exist most often under ``root``.

    With no class folder present it is ``flat`` when ``root`` holds video files directly, else
    ``underscore`` (the most common prepared layout), so lists still parse without the videos.
    """
    root, labels = Path(root), list(labels)
    counts = {lay: sum((root / kinetics_class_folder(lab, lay)).is_dir() for lab in labels)
              for lay in ("underscore", "label")}
    best = max(counts, key=counts.get)  # ties keep dict order: underscore first
    if counts[best]:
        return best
    has_files = root.is_dir() and any(p.suffix.lower() in VIDEO_EXTENSIONS for p in root.iterdir())
    return "flat" if has_files else "underscore"


def _read_kinetics_rows(path: Path) -> list[tuple[int, str, str, int, int]]:
    """``(line, label, youtube_id, start, end)`` of every csv row; extra columns ignored."""
    if not path.is_file():
        raise AnnotationError(f"{path}: annotation file not found")
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        need = {"label", "youtube_id", "time_start", "time_end"}
        if not need <= set(reader.fieldnames or ()):
            raise AnnotationError(f"{path}:1: header {reader.fieldnames} lacks {sorted(need)}")
        for row in reader:
            try:
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            except (TypeError, ValueError):
                raise AnnotationError(f"{path}:{reader.line_num}: bad times {row['time_start']!r},"
                                      f" {row['time_end']!r}") from None
            if not row["label"] or not row["youtube_id"]:
                raise AnnotationError(f"{path}:{reader.line_num}: empty label or youtube_id")
            rows.append((reader.line_num, row["label"].strip(), row["youtube_id"].strip(), start, end))
    return rows


def read_kinetics_csv(path: str | Path, root: str | Path, class_names: list[str] | None = None,
                      layout: str = "auto", ext: str = ".mp4") -> VideoList:
    """Kinetics csv -> :class:`VideoList` of ``root/<class folder>/<id>_<start>_<end><ext>``.

    Args:
        path: ``label,youtube_id,time_start,time_end[,split,is_cc]`` csv.
        root: folder of the clips of this csv (e.g. ``.../kinetics400/val``).
        class_names: label map (index = label); default the sorted labels of the csv. Every
            csv label must be in it, exactly.
        layout: one of :data:`KINETICS_LAYOUTS`.
        ext: clip file extension.
    """
    path, root = Path(path), Path(root)
    rows = _read_kinetics_rows(path)
    csv_labels = sorted({r[1] for r in rows})
    class_names = list(csv_labels if class_names is None else class_names)
    check_unique_class_names(class_names, str(path))
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted({r[1] for r in rows if r[1] not in index})
    if unknown:
        first = next(r[0] for r in rows if r[1] in unknown)
        raise AnnotationError(f"{path}:{first}: {len(unknown)} label(s) not in the class map: {unknown[:20]}")
    layout = detect_kinetics_layout(root, csv_labels) if layout == "auto" else layout
    records = []
    for _, label, yid, start, end in rows:
        folder, fname = kinetics_class_folder(label, layout), kinetics_file_name(yid, start, end, ext)
        rel = f"{folder}/{fname}" if folder else fname
        records.append(VideoRecord(root / rel, index[label], rel))
    return VideoList(records, class_names, root, f"{path} ({layout} layout)")
