"""What the workbook runner prints while a notebook runs: notebook, method, split, epoch, time left.

The runner points ``$ZSAR_PROGRESS_FILE`` at ``<run folder>/progress.jsonl`` before it executes a
notebook; the code the notebook calls appends events there (:mod:`zsar.progress`). A
:class:`ProgressMonitor` thread reads them and prints one status line when something changed (at
most every ``interval`` seconds) and at least every ``heartbeat`` seconds, e.g.::

    [zsar.workbook] 06_methods (7/8) | actionclip | splits 3/10 | random3_seed0 epoch 5/8 [#####---] | notebook 12m04s | total 1h02m | left ~25m

Time left comes from :class:`Timings`: each notebook's wall time in earlier runs of the same
mode, kept in ``<cache>/workbook_timings.json``; a notebook never timed in that mode is named
instead of guessed.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Callable

from zsar import paths
from zsar.io import atomic_write_json
from zsar.progress import read_events


def format_duration(seconds: float) -> str:
    """``3725`` -> ``"1h02m"``, ``724`` -> ``"12m04s"``, ``42`` -> ``"42s"``."""
    s = int(round(max(seconds, 0)))
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def bar(done: int, total: int, width: int = 8) -> str:
    """``[#####---]`` for 5 of 8."""
    filled = 0 if total <= 0 else round(width * min(done, total) / total)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


class Timings:
    """Wall time of each notebook in earlier runs, per mode (e.g. ``"smoke"``, ``"default"``)."""

    def __init__(self, mode: str, path: Path | None = None):
        self.mode = mode
        self.path = path or paths.cache_dir() / "workbook_timings.json"
        try:
            self.all = json.loads(self.path.read_text()) if self.path.is_file() else {}
        except (OSError, json.JSONDecodeError):
            self.all = {}

    def get(self, stem: str) -> float | None:
        return self.all.get(self.mode, {}).get(stem)

    def record(self, stem: str, seconds: float) -> None:
        """Keep ``seconds`` as this notebook's time in this mode (written at once)."""
        self.all.setdefault(self.mode, {})[stem] = round(float(seconds), 1)
        try:
            atomic_write_json(self.path, self.all)
        except OSError:
            pass

    def left(self, remaining: list[str], current: str | None = None, elapsed: float = 0.0) -> str:
        """``"~25m"``, or ``"~25m + 02_training (never timed)"``: the notebooks after the current one
        plus what the current one took last time beyond ``elapsed``."""
        known, unknown = 0.0, []
        for stem in ([current] if current else []) + remaining:
            previous = self.get(stem)
            if previous is None:
                unknown.append(stem)
            else:
                known += max(previous - elapsed, 0.0) if stem == current else previous
        text = f"~{format_duration(known)}" if known or not unknown else ""
        if unknown:
            text += (" + " if text else "") + f"{', '.join(unknown)} (never timed in {self.mode} mode)"
        return text


class ProgressState:
    """What the events of one notebook say so far: the method, its splits, each running fit's epoch."""

    def __init__(self):
        self.method: str | None = None
        self.total = 0
        self.done: set[str] = set()
        self.running: dict[str, str] = {}  # split -> its last epoch text
        self.last_epoch: dict | None = None  # the last epoch of a fit outside any split

    def apply(self, event: dict) -> None:
        kind = event.get("kind")
        if kind == "splits":
            self.method, self.total, self.done, self.running = event.get("method"), int(event.get("total", 0)), set(), {}
        elif kind == "split":
            self.method = event.get("method", self.method)
            name = str(event.get("split"))
            if event.get("state") == "done":
                self.done.add(name)
                self.running.pop(name, None)
            else:
                self.running.setdefault(name, "")
        elif kind == "epoch":
            epoch, epochs = int(event.get("epoch", 0)), int(event.get("epochs", 0))
            parts = Path(str(event.get("run", "fit"))).parts
            split = next((name for name in self.running if name in parts), None)
            if split is None:  # a fit outside a split (e.g. pretraining)
                self.last_epoch = event
            else:
                self.running[split] = f"epoch {epoch}/{epochs} {bar(epoch, epochs)}"

    def describe(self) -> str:
        parts = [self.method] if self.method else []
        if self.total:
            parts.append(f"splits {len(self.done)}/{self.total}")
        parts += [f"{split} {text}".strip() for split, text in list(self.running.items())[:3]]
        if not self.running and self.last_epoch:
            e = self.last_epoch
            parts.append(f"{Path(str(e.get('run', 'fit'))).name} epoch {e.get('epoch')}/{e.get('epochs')} "
                         f"{bar(int(e.get('epoch', 0)), int(e.get('epochs', 0)))}")
        return " | ".join(parts)


class ProgressMonitor:
    """A thread that follows ``events_path`` and prints status lines for one notebook."""

    def __init__(self, events_path: Path, label: str, workbook_start: float, left: Callable[[float], str],
                 interval: float = 5.0, heartbeat: float = 60.0, out: Callable[[str], None] | None = None):
        self.events_path, self.label, self.workbook_start, self.left = events_path, label, workbook_start, left
        self.interval, self.heartbeat = interval, heartbeat
        self.out = out or (lambda text: print(text, flush=True))
        self.state, self.offset, self.start = ProgressState(), 0, time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "ProgressMonitor":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def poll(self) -> bool:
        """Read new events; whether any arrived."""
        events, self.offset = read_events(self.events_path, self.offset)
        for event in events:
            self.state.apply(event)
        return bool(events)

    def line(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        inside = now - self.start
        parts = [self.label, self.state.describe(), f"notebook {format_duration(inside)}",
                 f"total {format_duration(now - self.workbook_start)}", f"left {self.left(inside)}"]
        return "[zsar.workbook] " + " | ".join(p for p in parts if p)

    def _run(self) -> None:
        last_print = time.time()
        while not self._stop.wait(self.interval):
            changed = self.poll()
            if changed or time.time() - last_print >= self.heartbeat:
                self.out(self.line())
                last_print = time.time()
