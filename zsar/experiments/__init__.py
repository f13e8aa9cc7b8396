"""Experiments: run methods over zero-shot splits and collect metrics for the result tables."""

from zsar.experiments.zero_shot import (METRIC_KEYS, REFERENCE_MARK, DataSource, SplitData, build_split_data,
                                        default_dataset_factory, fit_on_split, load_embedded_source, run_split,
                                        run_splits, split_metrics, temporal_pair_accuracy)
from zsar.experiments.few_shot import (ADAPTATIONS, FewShotNotApplicable, few_shot_eval, few_shot_table,
                                       run_few_shot_split, run_few_shot_splits, summarize_few_shot)
from zsar.experiments.sources import hmdb51_source, load_source, ucf101_source

__all__ = [
    "ADAPTATIONS", "METRIC_KEYS", "REFERENCE_MARK", "DataSource", "FewShotNotApplicable", "SplitData",
    "build_split_data", "default_dataset_factory", "few_shot_eval", "few_shot_table", "fit_on_split",
    "hmdb51_source", "load_embedded_source", "load_source", "run_few_shot_split", "run_few_shot_splits",
    "run_split", "run_splits", "split_metrics", "summarize_few_shot", "temporal_pair_accuracy",
    "ucf101_source",
]
