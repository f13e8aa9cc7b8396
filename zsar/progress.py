"""Progress events across processes: a notebook kernel (or a split worker) tells the workbook runner
what it is doing.

When ``$ZSAR_PROGRESS_FILE`` is set (the runner sets it for each notebook it executes), :func:`emit`
appends one JSON object per line to that file: a split starting or finishing, an epoch finished.
Every process that inherits the variable (the papermill kernel, parallel split workers) writes to
the same file; each line is one ``write`` in append mode, so lines from several processes do not
interleave. Without the variable :func:`emit` does nothing. :func:`read_events` reads what was
added since an offset.

Events (all carry ``t``, the wall-clock time, and ``pid``):

* ``{"kind": "splits", "method", "total"}`` — a method is about to run ``total`` splits;
* ``{"kind": "split", "method", "split", "state": "start" | "done"}``;
* ``{"kind": "epoch", "epoch", "epochs", "run"}`` — epoch ``epoch`` of ``epochs`` of a fit finished
  (``run``: the fit's folder, which lies inside its split's folder).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

ENV = "ZSAR_PROGRESS_FILE"


def emit(kind: str, **fields) -> None:
    """Append one event to ``$ZSAR_PROGRESS_FILE`` (nothing when it is unset; a write error is ignored,
    progress must never stop a run)."""
    path = os.environ.get(ENV)
    if not path:
        return
    line = json.dumps({"kind": kind, "t": round(time.time(), 3), "pid": os.getpid(), **fields}, default=str) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
    except OSError:
        pass


def read_events(path: str | os.PathLike, offset: int = 0) -> tuple[list[dict], int]:
    """The complete event lines of ``path`` after byte ``offset``, and the offset after them.

    A last line without its newline (still being written) is left for the next call.
    """
    path = Path(path)
    if not path.is_file():
        return [], offset
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    events = []
    for raw in data[:end].splitlines():
        try:
            events.append(json.loads(raw))
        except json.JSONDecodeError:
            continue
    return events, offset + end
