"""The benchmark configuration: one frozen dataclass whose fingerprint names a generated copy."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

# Bump whenever the renderer changes what it draws: a new version forces regeneration.
GENERATOR_VERSION = "1.0.0"


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything that decides the bytes of a generated benchmark.

    Attributes:
        seed: root seed; each clip's RNG is derived from (seed, class index, clip index).
        clips_per_class: clips rendered per class (spread over UCF101-style groups).
        size: frame height = width in pixels (even, for yuv420p).
        fps: frames per second (16–25).
        duration: clip length in seconds; a clip has ``round(fps * duration)`` frames.
        n_classes: render only the first ``n_classes`` classes of the catalog (None = all).
        n_groups: at most this many groups per class (UCF101 has 25); a group shares actor and scene.
        test_group_fraction: share of groups (the first ones) that go to the test list, as
            UCF101 split 1 puts groups 1–7 of 25 in the test list.
        noise_std: std of additive Gaussian pixel noise, in 8-bit grey levels.
        jitter_px: amplitude of hand-held camera shake, in pixels at 128 px frame size.
        distractor_prob: chance of a distractor (a second idle person or a moving blob).
        occluder_prob: chance of a static foreground occluder (a pole or a bush).
        speed_range: (min, max) factor on the action's tempo.
        scale_range: (min, max) body height as a fraction of the frame height.
        crf: x264 constant rate factor of the written videos.
    """

    seed: int = 0
    clips_per_class: int = 150
    size: int = 128
    fps: int = 16
    duration: float = 3.0
    n_classes: int | None = None
    n_groups: int = 25
    test_group_fraction: float = 7 / 25
    noise_std: float = 4.0
    jitter_px: float = 1.5
    distractor_prob: float = 0.3
    occluder_prob: float = 0.15
    speed_range: tuple[float, float] = (0.7, 1.3)
    scale_range: tuple[float, float] = (0.7, 0.85)
    crf: int = 23

    def __post_init__(self) -> None:
        # JSON round trips give lists; keep the dataclass hashable and the fingerprint stable
        for name in ("speed_range", "scale_range"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        checks = [
            ("size", self.size >= 32 and self.size % 2 == 0, "an even int >= 32"),
            ("fps", 1 <= self.fps <= 60, "in 1..60"),
            ("duration", 0.25 <= self.duration <= 30, "in 0.25..30 s"),
            ("clips_per_class", self.clips_per_class >= 1, ">= 1"),
            ("n_classes", self.n_classes is None or self.n_classes >= 1, "None or >= 1"),
            ("n_groups", self.n_groups >= 1, ">= 1"),
            ("test_group_fraction", 0 <= self.test_group_fraction < 1, "in [0, 1)"),
            ("noise_std", self.noise_std >= 0, ">= 0"),
            ("jitter_px", self.jitter_px >= 0, ">= 0"),
            ("distractor_prob", 0 <= self.distractor_prob <= 1, "in [0, 1]"),
            ("occluder_prob", 0 <= self.occluder_prob <= 1, "in [0, 1]"),
            ("speed_range", 0 < self.speed_range[0] <= self.speed_range[1], "0 < min <= max"),
            ("scale_range", 0.1 <= self.scale_range[0] <= self.scale_range[1] <= 0.9,
             "0.1 <= min <= max <= 0.9"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"BenchmarkConfig.{name}={getattr(self, name)!r}: must be {allowed}")

    @property
    def n_frames(self) -> int:
        """Frames per clip, ``round(fps * duration)``."""
        return max(1, int(round(self.fps * self.duration)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field."""
        d = dataclasses.asdict(self)
        d["speed_range"], d["scale_range"] = list(self.speed_range), list(self.scale_range)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BenchmarkConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown BenchmarkConfig field(s) {unknown}; known: {sorted(names)}")
        return cls(**d)

    def replace(self, **changes: Any) -> "BenchmarkConfig":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def fingerprint(self) -> str:
        """sha256 over the canonical JSON of the config, the generator version and the action data."""
        from zsar.data.embedded.actions import actions_data_digest

        payload = json.dumps(
            {"config": self.to_dict(), "generator_version": GENERATOR_VERSION,
             "actions": actions_data_digest()},
            sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    @classmethod
    def smoke(cls, **overrides: Any) -> "BenchmarkConfig":
        """CI preset: all classes, 4 clips per class (4 groups, 1 test group), 2 s clips."""
        return cls(**{"clips_per_class": 4, "duration": 2.0, **overrides})
