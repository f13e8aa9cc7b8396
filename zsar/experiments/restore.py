"""A fitted method back from its finished run folder, for analyses that need the model itself.

Everything a finished run computed (embeddings, prototypes, scores) is in its run artefact
(:func:`~zsar.experiments.artifact.read_artifact`); only an analysis that runs the model on new
inputs (ASU's unit attention on chosen clips) needs the fitted method. :func:`restore_fitted`
rebuilds it from the artefact's configuration and resumes the run's final checkpoint: nothing is
trained again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from zsar.data.protocols import ZeroShotSplit
from zsar.experiments.artifact import read_artifact
from zsar.experiments.sources import DataSource
from zsar.experiments.split_data import DatasetFactory, SplitData, build_split_data
from zsar.methods import ZeroShotMethod, check_no_leaks, make_method


def restore_fitted(run_dir: str | os.PathLike, source: DataSource, split: ZeroShotSplit,
                   dataset_factory: DatasetFactory, **overrides: Any) -> tuple[ZeroShotMethod, SplitData]:
    """The fitted zero-shot method of a finished ``run_split`` folder (its checkpoints resumed, not retrained).

    Args:
        run_dir: the run folder ``<run root>/<method>/<split>``.
        source, split: the data source and split the run used.
        dataset_factory: ``(video_list, role) -> Dataset`` (the run's sampler and transforms).
        overrides: constructor arguments that do not change the result (``progress``, ``num_workers``).

    Returns:
        ``(method, data)``: the fitted method and the split's :class:`~zsar.experiments.split_data.SplitData`.

    Raises:
        ArtifactError: ``run_dir`` holds no finished run.
        ValueError: the method is not zero-shot (the ceiling's fit lives in a shared folder), or the
            run was made on other classes than ``split``'s.
    """
    config = read_artifact(run_dir).config
    if config["seen"] != list(split.seen) or config["unseen"] != list(split.unseen):
        raise ValueError(f"{run_dir}: the run's seen/unseen classes differ from split {split.name!r}")
    method = make_method(config["method_name"], **{**config["params"], "resume": True, **overrides})
    if not method.is_zero_shot:
        raise ValueError(f"{config['method_name']}: only zero-shot methods are restored from their split folder")
    data = build_split_data(source, split, True, config["gzsl"], config["val_fraction"], config["seed"])
    val = dataset_factory(data.val, "val") if data.val is not None else None
    method.fit(dataset_factory(data.train, "train"), data.fit_texts, Path(run_dir), val_dataset=val)
    check_no_leaks(method.encoded_texts(), data.seen_texts, data.unseen_texts, f"{config['method_name']}.fit (restore)")
    return method, data
