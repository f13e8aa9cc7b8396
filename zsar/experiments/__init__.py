"""Experiments: run methods over zero-shot splits and collect metrics for the result tables."""

from zsar.experiments.zero_shot import (METRIC_KEYS, REFERENCE_MARK, DataSource, SplitData, build_split_data,
                                        default_dataset_factory, load_embedded_source, run_split, run_splits,
                                        split_metrics, temporal_pair_accuracy)

__all__ = [
    "METRIC_KEYS", "REFERENCE_MARK", "DataSource", "SplitData", "build_split_data", "default_dataset_factory",
    "load_embedded_source", "run_split", "run_splits", "split_metrics", "temporal_pair_accuracy",
]
