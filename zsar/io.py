"""Atomic file writing: write to a temp file in the same folder, then ``os.replace``.

A reader never sees a half-written file, even if the writer is killed mid-write.
:func:`jsonable` turns results (numpy values, paths, NaN) into what JSON can hold.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np


def _read_umask() -> int:
    # os.umask can only be read by setting it; do it once at import, not per write, because
    # setting it is process-wide and would race with files created by other threads meanwhile
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` on success.

    Args:
        path: final destination.
        suffix: suffix of the temp file (default ``.tmp<ext>`` so that writers that
            infer a format from the extension, e.g. PyAV or savefig, still work).

    On an exception the temp file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # keep the real extension last: writers such as PyAV or savefig infer the format from it
    tmp_suffix = suffix if suffix is not None else ".tmp" + path.suffix
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=tmp_suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600 files; give the result the permissions a plain open() would
    os.chmod(tmp_path, 0o666 & ~_UMASK)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> bool:
    """Make ``dst`` a hard link to ``src`` (a copy where links are impossible), atomically.

    The link is made under a temp name beside ``dst`` and moved onto it, so ``dst`` is either
    its old content or ``src``'s, never missing or half-copied. A link costs no disk space; it is
    safe for files that are only ever replaced by rename (checkpoints, run outputs written with
    :func:`atomic_path`), never changed in place.

    Returns:
        ``True`` if ``dst`` is a link, ``False`` if it had to be copied (another file system,
        or a file system without hard links).
    """
    with contextlib.suppress(OSError):  # a missing src or dst: not the same file
        if os.path.samefile(src, dst):
            return True  # rename(2) onto another link of the same file would leave the temp link behind
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
            return True
        except OSError:
            shutil.copy2(src, tmp)
            return False


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    """Serialise ``obj`` as JSON (sorted keys, UTF-8) to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False) + "\n")


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays as Python values, paths as strings and NaN/inf as ``None``."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value) if isinstance(value, Path) else value
