"""The embedded benchmark: procedurally rendered human actions for zero-shot recognition.

Articulated 2-D figures animated by keyframed joint angles (``actions.json``) act with props
(ball, bat, box, chair, rope, stairs, hat, cup, broom, dumbbell) in six scenes. Classes share
semantic units (body parts, objects, scenes, motions) so unseen classes are composed of seen
units, and temporal pairs (sit down / stand up, ...) are exact time reversals of each other.
The output mimics UCF101's layout, so the UCF101 loader reads it unchanged.

Example::

    from zsar.data.embedded import BenchmarkConfig, generate_benchmark, load_catalog
    root = generate_benchmark(paths.data_dir() / "embedded", BenchmarkConfig.smoke())
    catalog = load_catalog(root)
"""

from zsar.data.embedded.catalog import (
    ClassInfo,
    class_catalog,
    coverage_under_random_splits,
    load_catalog,
    temporal_pairs,
    unit_coverage,
)
from zsar.data.embedded.config import GENERATOR_VERSION, BenchmarkConfig
from zsar.data.embedded.generate import generate_benchmark, is_complete
from zsar.data.embedded.objects import OBJECT_KINDS
from zsar.data.embedded.render import render_clip
from zsar.data.embedded.scenes import SCENES

__all__ = [
    "BenchmarkConfig", "ClassInfo", "GENERATOR_VERSION", "OBJECT_KINDS", "SCENES", "class_catalog",
    "coverage_under_random_splits", "generate_benchmark", "is_complete", "load_catalog", "render_clip",
    "temporal_pairs", "unit_coverage",
]
