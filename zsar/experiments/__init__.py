"""Experiments: run methods over zero-shot splits, record their run artefacts, compare them.

* :mod:`~zsar.experiments.sources` — data sources (embedded benchmark, UCF101, HMDB51).
* :mod:`~zsar.experiments.split_data` — one split's data and the datasets a method reads.
* :mod:`~zsar.experiments.runs` — :func:`run_split` / :func:`run_splits`, metrics, adoption.
* :mod:`~zsar.experiments.artifact` — the run artefact and its reader :func:`read_artifact`.
* :mod:`~zsar.experiments.parallel` — split runs in fresh worker processes.
* :mod:`~zsar.experiments.pretrain` — contrastive pretraining of the ``zsar-world-*`` models.
* :mod:`~zsar.experiments.few_shot`, :mod:`~zsar.experiments.compare`, :mod:`~zsar.experiments.settings`.
"""

from zsar.experiments import pretrain  # noqa: F401  registers the zsar-world-* pretrained tags
from zsar.experiments.artifact import ARTIFACT_FILE, ArtifactError, RunArtifact, read_artifact
from zsar.experiments.few_shot import (ADAPTATIONS, FewShotNotApplicable, few_shot_eval, few_shot_table,
                                       run_few_shot_split, run_few_shot_splits, summarize_few_shot)
from zsar.experiments.runs import METRIC_KEYS, REFERENCE_MARK, fit_on_split, run_split, run_splits, split_metrics
from zsar.experiments.sources import DataSource, hmdb51_source, load_embedded_source, load_source, ucf101_source
from zsar.experiments.split_data import SplitData, build_split_data, default_dataset_factory

__all__ = [
    "ADAPTATIONS", "ARTIFACT_FILE", "ArtifactError", "METRIC_KEYS", "REFERENCE_MARK", "DataSource",
    "FewShotNotApplicable", "RunArtifact", "SplitData", "build_split_data", "default_dataset_factory",
    "few_shot_eval", "few_shot_table", "fit_on_split", "hmdb51_source", "load_embedded_source", "load_source",
    "read_artifact", "run_few_shot_split", "run_few_shot_splits", "run_split", "run_splits", "split_metrics",
    "summarize_few_shot", "ucf101_source",
]
