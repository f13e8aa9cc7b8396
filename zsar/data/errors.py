"""Exception types of the data layer. Each message names the offending path or value."""

from __future__ import annotations


class ZsarDataError(Exception):
    """Base class of every data-layer error."""


class VideoDecodeError(ZsarDataError):
    """A video file cannot be decoded (corrupt, truncated, empty, not a video, unreadable)."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MissingFilesError(ZsarDataError):
    """A split or annotation list names files that do not exist; lists all of them."""

    def __init__(self, missing: list, source: str = ""):
        self.missing = [str(m) for m in missing]
        head = "\n  ".join(self.missing[:50])
        more = f"\n  ... and {len(self.missing) - 50} more" if len(self.missing) > 50 else ""
        where = f" named in {source}" if source else ""
        super().__init__(f"{len(self.missing)} missing file(s){where}:\n  {head}{more}")


class SplitError(ZsarDataError):
    """A zero-shot split is invalid (seen and unseen overlap, unknown or duplicate classes)."""


class AnnotationError(ZsarDataError):
    """An annotation / split / class-index file cannot be parsed; names file and line."""
