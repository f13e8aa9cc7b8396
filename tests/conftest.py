"""Shared fixtures: small real videos written on the fly, and the optional shared real data.

Frames are made so that a decoded frame tells which frame it is: frame ``t`` is filled with grey
level ``GREY0 + GREY_STEP * t`` (a moving white square gives the encoder some motion). After
H.264 / MPEG-4 compression the median grey still identifies ``t``; see ``frame_index_of``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zsar.data.records import VideoList, VideoRecord
from zsar.data.video_writer import write_video
from zsar.paths import shared_data_dir

GREY0, GREY_STEP = 8, 9  # 26 frames fit below 240; MPEG-4 may shift grey by ~3


def indexed_frames(num_frames: int = 24, height: int = 48, width: int = 64) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 frames whose median grey encodes their index."""
    if GREY0 + GREY_STEP * (num_frames - 1) > 240:
        raise ValueError(f"at most 26 indexed frames, asked for {num_frames}")
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    side = max(4, min(height, width) // 4)
    for t in range(num_frames):
        frames[t] = GREY0 + GREY_STEP * t
        x = (2 * t) % (width - side)
        frames[t, 2:2 + side, x:x + side] = 255
    return frames


@pytest.fixture(scope="session")
def make_frames():
    """``f(num_frames=24, height=48, width=64) -> (T, H, W, 3)`` uint8 indexed frames."""
    return indexed_frames


@pytest.fixture(scope="session")
def frame_index_of():
    """``f(frames (N, H, W, 3)) -> (N,) int``: the frame index each decoded frame encodes."""
    def index_of(frames: np.ndarray) -> np.ndarray:
        grey = np.median(np.asarray(frames).reshape(len(frames), -1), axis=1)
        return np.rint((grey - GREY0) / GREY_STEP).astype(int)
    return index_of


@pytest.fixture(scope="session")
def make_video(tmp_path_factory):
    """``f(name, num_frames=24, height=48, width=64, fps=25, codec="libx264") -> Path``.

    Writes an indexed clip (the container follows the name's suffix) into a session folder;
    the same arguments return the same file.
    """
    root = tmp_path_factory.mktemp("videos")
    made: dict[tuple, Path] = {}

    def make(name: str, num_frames: int = 24, height: int = 48, width: int = 64, fps: float = 25,
             codec: str = "libx264") -> Path:
        key = (name, num_frames, height, width, fps, codec)
        if key not in made:
            made[key] = write_video(root / name, indexed_frames(num_frames, height, width), fps, codec=codec)
        return made[key]

    return make


@pytest.fixture(scope="session")
def small_mp4(make_video) -> Path:
    """A 24-frame 64x48 H.264 mp4 at 25 fps."""
    return make_video("small.mp4")


@pytest.fixture
def small_video_list(tmp_path) -> VideoList:
    """Six indexed clips in two classes (``a``: 24 frames, ``b``: 12 frames), fresh per test."""
    records = []
    for label, (cls, n) in enumerate([("a", 24), ("b", 12)]):
        for k in range(3):
            path = write_video(tmp_path / cls / f"{cls}{k}.mp4", indexed_frames(n), 25)
            records.append(VideoRecord(path, label, f"{cls}/{cls}{k}.mp4"))
    return VideoList(records, ["class a", "class b"], tmp_path, source="conftest")


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (the real clips and split files), or skip the test."""
    root = shared_data_dir()
    if not (root / "videos").is_dir():
        pytest.skip(f"../shared/data not present: {root}")
    return root


# One tiny embedded benchmark per test session, shared by the method / experiment / leakage tests.
TINY_BENCH_CONFIG = dict(clips_per_class=4, n_classes=12, size=64, duration=1.0)


@pytest.fixture(scope="session")
def tiny_bench(tmp_path_factory) -> Path:
    """12 classes x 4 clips, 64 px, 1 s, generated once per session."""
    from zsar.data.embedded import BenchmarkConfig, generate_benchmark

    return generate_benchmark(tmp_path_factory.getbasetemp() / "zsar_tiny_bench",
                              BenchmarkConfig(**TINY_BENCH_CONFIG), workers=1, progress=False)


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory):
    """Run every notebook in order in smoke mode; return ``(runs, figures, failures)``.

    Shared by the notebook tests (tests/test_notebooks.py, test_notebook_05/06/07.py) so the
    smoke workbook runs once per session; a failing notebook is recorded, the next ones still run.
    It runs the ``paper`` preset's parameters (both regimes, the few-shot column, ablations) at
    smoke size, so every part of the notebooks is exercised.
    """
    from zsar.workbook import list_notebooks, run_notebook
    from zsar.workbook.presets import get_preset

    runs = tmp_path_factory.mktemp("runs")
    figures = runs / "figures"
    failures = {}
    for nb in list_notebooks():
        try:
            run_notebook(nb, runs, figures, {**get_preset("paper").parameters, "SMOKE": True, "SEED": 0})
        except Exception as exc:  # keep going: later notebooks' tests report their own state
            failures[nb.stem] = exc
    return runs, figures, failures


@pytest.fixture(scope="session")
def source(tiny_bench):
    """The tiny benchmark as a :class:`~zsar.experiments.sources.DataSource`."""
    from zsar.experiments.sources import load_embedded_source

    return load_embedded_source(tiny_bench)


@pytest.fixture(scope="session")
def split(tiny_bench):
    """Half the tiny benchmark's classes unseen, including both classes of one temporal pair."""
    from zsar.data.embedded import load_catalog, temporal_pairs
    from zsar.data.protocols import ZeroShotSplit

    catalog = load_catalog(tiny_bench)
    pair = temporal_pairs(catalog)[0]
    others = [c.index for c in catalog if c.index not in pair]
    unseen = list(pair) + others[: len(catalog) // 2 - 2]
    seen = [c.index for c in catalog if c.index not in unseen]
    return ZeroShotSplit(seen, unseen, name="with_pair", n_classes=len(catalog))

