"""Progress while the workbook runs: events written by the code a notebook calls, read by the runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from zsar.progress import ENV, emit, read_events
from zsar.workbook.monitor import ProgressMonitor, ProgressState, Timings, bar, format_duration


def test_emit_appends_lines_only_when_asked(tmp_path, monkeypatch):
    path = tmp_path / "progress.jsonl"
    monkeypatch.delenv(ENV, raising=False)
    emit("split", method="m", split="s", state="start")
    assert not path.exists()
    monkeypatch.setenv(ENV, str(path))
    emit("splits", method="actionclip", total=3)
    # another process (a split worker) appends to the same file
    code = "from zsar.progress import emit; emit('epoch', epoch=1, epochs=4, run='x/random0_seed0/train')"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, ENV: str(path)})
    events, offset = read_events(path)
    assert [e["kind"] for e in events] == ["splits", "epoch"] and offset == path.stat().st_size
    assert events[1]["pid"] != os.getpid()
    with open(path, "a") as f:
        f.write('{"kind": "split", "method": "m"')  # a line still being written is left for later
    assert read_events(path, offset) == ([], offset)


def test_state_follows_methods_splits_and_epochs():
    state = ProgressState()
    for event in [{"kind": "splits", "method": "rest", "total": 10},
                  {"kind": "split", "method": "rest", "split": "random0_seed0", "state": "start"},
                  {"kind": "epoch", "epoch": 3, "epochs": 8, "run": "/r/02/rest/random0_seed0/train"},
                  {"kind": "split", "method": "rest", "split": "random0_seed0", "state": "done"},
                  {"kind": "split", "method": "rest", "split": "random1_seed0", "state": "start"},
                  {"kind": "epoch", "epoch": 5, "epochs": 8, "run": "/r/02/rest/random1_seed0/train"}]:
        state.apply(event)
    assert state.describe() == "rest | splits 1/10 | random1_seed0 epoch 5/8 [#####---]"
    pretraining = ProgressState()
    pretraining.apply({"kind": "epoch", "epoch": 2, "epochs": 8, "run": "/cache/zsar-world-open-abc"})
    assert pretraining.describe() == "zsar-world-open-abc epoch 2/8 [##------]"


def test_time_left_from_earlier_runs(tmp_path):
    timings = Timings("default", tmp_path / "t.json")
    assert "00_pretraining, 01_data_prep (never timed in default mode)" in timings.left(["01_data_prep"], "00_pretraining")
    timings.record("00_pretraining", 600)
    timings.record("01_data_prep", 120)
    again = Timings("default", tmp_path / "t.json")
    assert again.left(["01_data_prep"], "00_pretraining", elapsed=420) == "~5m00s"
    assert Timings("smoke", tmp_path / "t.json").get("00_pretraining") is None
    assert json.loads((tmp_path / "t.json").read_text()) == {"default": {"00_pretraining": 600.0, "01_data_prep": 120.0}}


def test_monitor_prints_status_lines(tmp_path, monkeypatch):
    path = tmp_path / "progress.jsonl"
    monkeypatch.setenv(ENV, str(path))
    lines: list[str] = []
    with ProgressMonitor(path, "02_training (3/8)", workbook_start=0.0, left=lambda s: "~1m00s", interval=0.05,
                         heartbeat=3600, out=lines.append) as monitor:
        emit("splits", method="actionclip", total=2)
        emit("split", method="actionclip", split="random0_seed0", state="start")
        emit("epoch", epoch=1, epochs=2, run=str(tmp_path / "actionclip" / "random0_seed0" / "train"))
        for _ in range(100):
            if lines and "epoch 1/2" in lines[-1]:
                break
            monitor._stop.wait(0.05)
    assert lines and lines[-1].startswith("[zsar.workbook] 02_training (3/8) | actionclip | splits 0/2 | "
                                          "random0_seed0 epoch 1/2 [####----] | notebook ")
    assert "| left ~1m00s" in lines[-1]


def test_formatting():
    assert format_duration(42) == "42s" and format_duration(724) == "12m04s" and format_duration(3725) == "1h02m"
    assert bar(0, 8) == "[--------]" and bar(8, 8) == "[########]" and bar(1, 0) == "[--------]"
