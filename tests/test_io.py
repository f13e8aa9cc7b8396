"""zsar.io: atomic writes and link_or_copy (hard link, atomic replace, copy fallback)."""

import os

import pytest

import zsar.io as zio


def test_link_or_copy_links_and_replaces_atomically(tmp_path):
    src, dst = tmp_path / "a.pt", tmp_path / "b.pt"
    src.write_bytes(b"new")
    dst.write_bytes(b"old content")
    assert zio.link_or_copy(src, dst) is True
    assert os.path.samefile(src, dst) and dst.read_bytes() == b"new"
    # linking again onto an existing link is a no-op in effect, and leaves no temp files
    assert zio.link_or_copy(src, dst) is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.pt"]
    # a source replaced by rename (how checkpoints are written) does not change the link
    zio.atomic_write_bytes(src, b"newer")
    assert dst.read_bytes() == b"new" and not os.path.samefile(src, dst)


def test_link_or_copy_copies_where_links_fail(tmp_path, monkeypatch):
    src, dst = tmp_path / "a.pt", tmp_path / "sub" / "b.pt"
    src.write_bytes(b"payload")

    def no_links(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(zio.os, "link", no_links)
    assert zio.link_or_copy(src, dst) is False
    assert dst.read_bytes() == b"payload" and not os.path.samefile(src, dst)
    assert sorted(p.name for p in dst.parent.iterdir()) == ["b.pt"]


def test_link_or_copy_leaves_dst_untouched_when_src_is_missing(tmp_path):
    dst = tmp_path / "b.pt"
    dst.write_bytes(b"kept")
    with pytest.raises(FileNotFoundError):
        zio.link_or_copy(tmp_path / "missing.pt", dst)
    assert dst.read_bytes() == b"kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.pt"]
