"""Write the embedded benchmark to disk in UCF101's layout, in parallel, only when needed.

::

    <root>/videos/<ClassDir>/v_<ClassDir>_g<GG>_c<CC>.mp4
    <root>/splits/classInd.txt, trainlist01.txt, testlist01.txt
    <root>/meta/<ClassDir>/v_<ClassDir>_g<GG>_c<CC>.npz
    <root>/classes.json
    <root>/benchmark.json        written last: its presence marks a complete benchmark
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import shutil
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from zsar.data.embedded.catalog import class_catalog
from zsar.data.embedded.config import GENERATOR_VERSION, BenchmarkConfig
from zsar.data.embedded.render import clip_group, render_clip
from zsar.data.video_writer import write_video
from zsar.io import atomic_path, atomic_write_json, atomic_write_text

_MARKER = ".generating.json"  # fingerprint of an unfinished run, so a restart can resume it
_OWNED = ("videos", "meta", "splits", "classes.json", "benchmark.json", _MARKER)


def clip_name(class_dir: str, group: int, clip_in_group: int) -> str:
    """``v_<ClassDir>_g<GG>_c<CC>`` as in UCF101."""
    return f"v_{class_dir}_g{group:02d}_c{clip_in_group:02d}"


def planned_clips(config: BenchmarkConfig) -> list[tuple[int, int, str]]:
    """(class index, clip index, path relative to ``videos/``) of every clip of ``config``."""
    plan = []
    for c in class_catalog(config.n_classes):
        for k in range(config.clips_per_class):
            g, n = clip_group(k, config)
            plan.append((c.index, k, f"{c.dir}/{clip_name(c.dir, g, n)}.mp4"))
    return plan


def held_out_groups(config: BenchmarkConfig) -> set[int]:
    """Groups (1-based) whose clips form the test list: the first ones, as UCF101 split 1."""
    n_groups = min(config.n_groups, config.clips_per_class)
    if config.test_group_fraction <= 0 or n_groups < 2:
        return set()
    n_test = min(max(1, round(n_groups * config.test_group_fraction)), n_groups - 1)
    return set(range(1, n_test + 1))


def split_files(config: BenchmarkConfig) -> dict[str, str]:
    """Contents of ``classInd.txt``, ``trainlist01.txt`` and ``testlist01.txt``."""
    catalog = class_catalog(config.n_classes)
    test = held_out_groups(config)
    train_lines, test_lines = [], []
    for class_index, clip_index, rel in planned_clips(config):
        if clip_group(clip_index, config)[0] in test:
            test_lines.append(rel)
        else:
            train_lines.append(f"{rel} {class_index + 1}")
    return {"classInd.txt": "".join(f"{c.index + 1} {c.dir}\n" for c in catalog),
            "trainlist01.txt": "".join(line + "\n" for line in train_lines),
            "testlist01.txt": "".join(line + "\n" for line in test_lines)}


def save_npz_deterministic(path: str | os.PathLike, arrays: dict) -> Path:
    """Like ``np.savez_compressed`` but byte-reproducible (fixed zip timestamps) and atomic."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, value in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.asanyarray(value), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, buf.getvalue())
    return Path(path)


def _write_clips(root: str, config_dict: dict, tasks: list[tuple[int, int, str]]) -> int:
    """Worker: render, encode and save the clips of ``tasks``; returns how many."""
    config = BenchmarkConfig.from_dict(config_dict)
    for class_index, clip_index, rel in tasks:
        frames, meta = render_clip(class_index, clip_index, config)
        write_video(Path(root) / "videos" / rel, frames, config.fps, crf=config.crf)
        save_npz_deterministic(Path(root) / "meta" / rel.replace(".mp4", ".npz"), meta)
    return len(tasks)


def _worker_init() -> None:
    import cv2

    cv2.setNumThreads(1)  # parallelism is over clips; OpenCV's own threads would oversubscribe


def _missing(root: Path, plan) -> list:
    return [t for t in plan if not ((root / "videos" / t[2]).is_file()
                                    and (root / "meta" / t[2].replace(".mp4", ".npz")).is_file())]


def is_complete(root: str | os.PathLike, config: BenchmarkConfig) -> bool:
    """Whether ``root`` holds a finished benchmark of exactly ``config`` with all its files."""
    root = Path(root)
    if recorded_fingerprint(root / "benchmark.json") != config.fingerprint():
        return False
    fixed = [root / "classes.json"] + [root / "splits" / n for n in split_files(config)]
    return all(p.is_file() for p in fixed) and not _missing(root, planned_clips(config))


def recorded_fingerprint(path: Path) -> str | None:
    """The ``fingerprint`` a JSON record (``benchmark.json``, ``corpus.json``, ...) holds, or ``None``."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None


def _prepare(root: Path, fingerprint: str, force: bool) -> None:
    """Keep files written for the same config (an interrupted run, or a benchmark missing some
    files); otherwise wipe what we own."""
    resumable = not force and fingerprint in (recorded_fingerprint(root / _MARKER), recorded_fingerprint(root / "benchmark.json"))
    if not resumable:
        for name in _OWNED:
            p = root / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    (root / "benchmark.json").unlink(missing_ok=True)
    atomic_write_json(root / _MARKER, {"fingerprint": fingerprint})


def _pool_context():
    """forkserver (else spawn): workers start clean.

    Forking a parent that has used OpenCV deadlocks the child inside OpenCV's inherited thread
    pool, and a notebook parent may hold torch threads too. As with any spawn-like start, a
    script that calls :func:`generate_benchmark` needs an ``if __name__ == "__main__":`` guard.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["zsar.data.embedded.generate"])  # workers fork with imports done
        return ctx
    return multiprocessing.get_context("spawn")


def render_in_pool(write_chunk, args: tuple, todo: list, workers: int, progress: bool, desc: str) -> None:
    """``write_chunk(*args, chunk) -> clips written`` over chunks of ``todo``, in ``workers`` clean processes.

    The output does not depend on ``workers``: every clip is a function of its task alone.
    """
    chunk = max(1, min(16, len(todo) // (4 * workers)))
    chunks = [todo[i: i + chunk] for i in range(0, len(todo), chunk)]
    with tqdm(total=len(todo), desc=desc, unit="clip", disable=not progress) as bar:
        if workers <= 1:
            for c in chunks:
                bar.update(write_chunk(*args, c))
            return
        with ProcessPoolExecutor(workers, mp_context=_pool_context(), initializer=_worker_init) as pool:
            for f in as_completed([pool.submit(write_chunk, *args, c) for c in chunks]):
                bar.update(f.result())


def generate_benchmark(root: str | os.PathLike, config: BenchmarkConfig | None = None, workers: int | None = None,
                       progress: bool = True, force: bool = False) -> Path:
    """Generate the embedded benchmark under ``root`` unless an identical one is already there.

    Args:
        root: output folder (created if needed); only the paths this function owns are ever
            deleted (``videos``, ``meta``, ``splits``, ``classes.json``, ``benchmark.json``).
        config: the benchmark configuration (default ``BenchmarkConfig()``).
        workers: processes rendering clips in parallel (default ``os.cpu_count()``); the
            output does not depend on it.
        progress: show a tqdm bar.
        force: regenerate even if ``root`` already holds this configuration.

    Returns:
        ``root`` as a Path. If ``benchmark.json`` has the config's fingerprint and every file
        exists, nothing is written. A different fingerprint wipes and regenerates; a run killed
        part-way (no ``benchmark.json`` yet) resumes, keeping the clips already written.
    """
    config = config or BenchmarkConfig()
    root = Path(root)
    if not force and is_complete(root, config):
        return root
    start = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    fingerprint = config.fingerprint()
    _prepare(root, fingerprint, force)
    plan = planned_clips(config)
    todo = _missing(root, plan)
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    render_in_pool(_write_clips, (str(root), config.to_dict()), todo, workers, progress, "embedded benchmark")
    for name, text in split_files(config).items():
        atomic_write_text(root / "splits" / name, text)
    atomic_write_json(root / "classes.json", [c.to_dict() for c in class_catalog(config.n_classes)])
    wall = time.perf_counter() - start
    atomic_write_json(root / "benchmark.json", {
        "config": config.to_dict(), "fingerprint": fingerprint, "generator_version": GENERATOR_VERSION,
        "n_classes": len(class_catalog(config.n_classes)), "n_clips": len(plan), "n_rendered": len(todo),
        "n_frames_per_clip": config.n_frames, "workers": workers, "wall_time_s": round(wall, 3)})
    (root / _MARKER).unlink(missing_ok=True)
    return root
