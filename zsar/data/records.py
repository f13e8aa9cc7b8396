"""The plain records every dataset factory produces and the generic dataset consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class VideoRecord:
    """One labelled video file.

    Attributes:
        path: absolute path of the video file.
        label: class index into the owning :class:`VideoList`'s ``class_names``.
        video_id: stable identifier (path relative to the dataset root, POSIX style).
    """

    path: Path
    label: int
    video_id: str


@dataclass
class VideoList:
    """A labelled list of videos with its class vocabulary.

    Attributes:
        records: the videos.
        class_names: human-readable class names, index = label (e.g. ``"kick a ball"``).
        root: dataset root the ``video_id``s are relative to.
        source: where the list came from (a file path or a description), for error messages.
        class_dirs: folder/identifier name of each class where it differs from the name
            (e.g. UCF101 ``ApplyEyeMakeup``); same length as ``class_names`` or empty.
    """

    records: list[VideoRecord]
    class_names: list[str]
    root: Path
    source: str = ""
    class_dirs: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> list[int]:
        """Label of every record, in order."""
        return [r.label for r in self.records]

    def subset(self, keep_labels) -> "VideoList":
        """Records whose label is in ``keep_labels``; labels and class names are kept unchanged."""
        keep = set(int(k) for k in keep_labels)
        return VideoList([r for r in self.records if r.label in keep], self.class_names, self.root,
                         self.source, self.class_dirs)
