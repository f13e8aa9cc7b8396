"""A fitted method's embeddings of one split, computed once: restored from its run folder, cached on disk.

The training notebook (``02_training``) leaves, per method and split, a run folder
``<training>/<method>/<split>/`` with ``metrics.json`` (the run's configuration: method
parameters, seen/unseen classes, seed, GZSL flag, validation share) and the method's
checkpoints (``train/checkpoints/*.pt``). :func:`collect_split_embeddings` turns such a folder
into a :class:`SplitEmbeddings`:

* the videos: the GZSL test videos of the split (test-list videos of the seen classes + every
  video of the unseen classes), or the unseen videos alone for a run without GZSL;
* the class prototypes the method scores with (seen classes first, then unseen);
* for a method with semantic transfer (``explain_transfer``, e.g. ResT): the text prototypes
  of every class in the same space, and the unseen x seen relatedness and transfer weights.

Each array is one :class:`~zsar.experiments.feature_cache.FeatureCache` entry keyed by the
backbone, a hash of the run's checkpoint files, the sampler and transform, the run's
configuration, the data fingerprint and what the array is. When every entry is on disk no
model is built and no video is encoded; otherwise the method is restored once (its finished
checkpoint is resumed in ``work_dir``, into which the checkpoints are hard-linked so that the
training run is only read) and only the missing entries are computed.
``SplitEmbeddings.encoded_videos`` counts the clips that went through a video encoder meanwhile
(measured by :func:`count_encoded_clips`, not inferred).

Example::

    cache = FeatureCache(cache_dir() / "features")
    emb = collect_split_embeddings("rest", training / "rest" / "random0_seed0", source, split,
                                   work_dir=run / "restored", cache=cache)
    scores = emb.unseen_scores()                      # (N_unseen, U)
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from zsar.experiments.feature_cache import FeatureCache, dataset_fingerprint, file_hash
from zsar.io import link_or_copy

# files of a training run that a restore must not see or overwrite (the restore's own outputs differ)
RUN_OUTPUTS = ("metrics.json", "scores.npz", "embeddings.npz")
TRANSFER_ARRAYS = ("text_prototypes", "relatedness", "transfer_weights")


class RunMismatchError(ValueError):
    """A run folder does not belong to the split, or restoring it would retrain the method."""


@dataclass(frozen=True)
class SplitEmbeddings:
    """Embeddings and prototypes of one fitted method on one split.

    Attributes:
        method: registry name of the method.
        split: split name.
        class_ids: ``(S+U,)`` class indices into the benchmark, seen classes first.
        n_seen: ``S``.
        embeddings: ``(N, D)`` video embeddings in the space the method scores in.
        labels: ``(N,)`` labels in ``0..S+U-1`` (``>= S``: an unseen class).
        video_ids: ``(N,)`` ids of the videos.
        prototypes: ``(S+U, D)`` the method's class prototypes (for ResT: seen visual
            prototypes, unseen transferred ones).
        text_prototypes: ``(S+U, D)`` text prototypes in the same space, or ``None`` for a
            method without semantic transfer.
        relatedness: ``(U, S)`` label relatedness that transfer used, or ``None``.
        transfer_weights: ``(U, S)`` transfer weights (rows sum to 1), or ``None``.
        unseen_pairs: temporal pairs whose both classes are unseen, as positions ``0..U-1``.
        encoded_videos: clips encoded to produce this object (0 when all came from the cache).
    """

    method: str
    split: str
    class_ids: np.ndarray
    n_seen: int
    embeddings: np.ndarray
    labels: np.ndarray
    video_ids: np.ndarray
    prototypes: np.ndarray
    text_prototypes: np.ndarray | None
    relatedness: np.ndarray | None
    transfer_weights: np.ndarray | None
    unseen_pairs: tuple[tuple[int, int], ...]
    encoded_videos: int

    @property
    def n_unseen(self) -> int:
        """``U``."""
        return len(self.class_ids) - self.n_seen

    @property
    def unseen_mask(self) -> np.ndarray:
        """``(N,)`` bool: the video belongs to an unseen class."""
        return self.labels >= self.n_seen

    @property
    def unseen_labels(self) -> np.ndarray:
        """``(N_unseen,)`` labels of the unseen videos in ``0..U-1``."""
        return self.labels[self.unseen_mask] - self.n_seen

    def unseen_scores(self, prototypes: np.ndarray | None = None) -> np.ndarray:
        """``(N_unseen, U)`` cosine scores of the unseen videos against unseen prototypes.

        Args:
            prototypes: ``(S+U, D)`` or ``(U, D)`` prototypes; default :attr:`prototypes`.
        """
        from zsar.evaluation.scores import cosine_scores

        protos = self.prototypes if prototypes is None else np.asarray(prototypes)
        if len(protos) == len(self.class_ids):
            protos = protos[self.n_seen:]
        return cosine_scores(self.embeddings[self.unseen_mask], protos)


def checkpoint_files(run_dir: str | os.PathLike) -> list[Path]:
    """Every ``*.pt`` file under ``run_dir``, sorted by relative path."""
    run_dir = Path(run_dir)
    return sorted(run_dir.rglob("*.pt"), key=lambda p: p.relative_to(run_dir).as_posix())


def run_weights_hash(run_dir: str | os.PathLike) -> str:
    """sha256 over ``(relative path, file sha256)`` of a run's checkpoints.

    A run without checkpoint files (a method that trains nothing, or a closed-form one) is
    determined by its configuration and seed, which the cache key holds anyway: ``"none"``.
    """
    run_dir = Path(run_dir)
    files = checkpoint_files(run_dir)
    if not files:
        return "none"
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(run_dir).as_posix()}\0{file_hash(path)}\n".encode("utf-8"))
    return digest.hexdigest()


def mirror_run(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy a run folder's small files to ``dst`` and hard-link its checkpoints (copy where links fail).

    ``metrics.json``, ``scores.npz`` and ``embeddings.npz`` stay behind: they are the training
    run's results, not inputs of a restore. Checkpoints in ``dst`` that ``src`` lacks are
    removed, so that a restore resumes exactly the mirrored run.
    """
    src, dst = Path(src), Path(dst)
    if dst.exists() and src.resolve() == dst.resolve():
        return
    wanted = {p.relative_to(src) for p in checkpoint_files(src)}
    for stale in checkpoint_files(dst) if dst.is_dir() else []:
        if stale.relative_to(dst) not in wanted:  # a later epoch left by another run would be resumed
            stale.unlink()
    for path in src.rglob("*"):
        if path.is_dir() or path.name in RUN_OUTPUTS:
            continue
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".pt":  # checkpoints are only ever replaced by rename: a link is safe
            link_or_copy(path, target)
        else:
            target.unlink(missing_ok=True)
            shutil.copy2(path, target)


@contextlib.contextmanager
def count_encoded_clips() -> Iterator[list[int]]:
    """Count the clips every :class:`~zsar.models.FrameEncoder` encodes inside the block.

    Every method encodes videos through a ``FrameEncoder`` (``(B, T, 3, H, W)`` in,
    ``(B, T, D)`` out), so a global forward hook sees each clip, whichever method, loader or
    worker count produced it.

    Yields:
        A one-element list whose item is the running count.
    """
    from zsar.models import FrameEncoder

    count = [0]

    def hook(module, args, output):
        if isinstance(module, FrameEncoder):
            feats = output[0] if isinstance(output, tuple) else output
            count[0] += int(feats.shape[0])

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield count
    finally:
        handle.remove()


def load_run_config(run_dir: str | os.PathLike, split) -> dict:
    """The ``config`` of a finished run's ``metrics.json``, checked against ``split``.

    Raises:
        FileNotFoundError: no ``metrics.json`` in ``run_dir``.
        RunMismatchError: the run's seen/unseen classes are not ``split``'s.
    """
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {run_dir} is not a finished run of run_split")
    config = json.loads(path.read_text(encoding="utf-8"))["config"]
    if config["seen"] != list(split.seen) or config["unseen"] != list(split.unseen):
        raise RunMismatchError(f"{path}: the run's seen/unseen classes differ from split {split.name!r}")
    return config


def _check_restorable(method, work_dir: Path) -> None:
    """Refuse a restore that would train: the stored ``method.json`` must match ``method``."""
    from zsar.experiments.zero_shot import RESULT_NEUTRAL_PARAMS

    path = work_dir / "method.json"
    params = {k: v for k, v in method.get_params().items() if k not in RESULT_NEUTRAL_PARAMS}
    stored = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    if checkpoint_files(work_dir) and stored != {"method": type(method).__name__, "params": params}:
        raise RunMismatchError(f"{path}: the checkpoints were trained with another configuration; "
                               "restoring would train again")


def restore_method(method_name: str, run_dir: str | os.PathLike, source, split, work_dir: str | os.PathLike,
                   dataset_factory: Callable):
    """Rebuild a fitted method from a finished run without training it again.

    The run's checkpoints are mirrored into ``work_dir`` and ``fit`` resumes the final one
    (methods without checkpoints are refitted deterministically from their configuration).

    Returns:
        ``(method, data)``: the fitted method and the split's
        :class:`~zsar.experiments.zero_shot.SplitData`.

    Raises:
        RunMismatchError: see :func:`load_run_config` and :func:`_check_restorable`.
        LeakageError: the method encoded text of an unseen class while fitting.
    """
    from zsar.experiments.zero_shot import build_split_data
    from zsar.methods import check_no_leaks, make_method

    config = load_run_config(run_dir, split)
    work_dir = Path(work_dir)
    mirror_run(run_dir, work_dir)
    method = make_method(method_name, **{**config["params"], "resume": True})
    _check_restorable(method, work_dir)
    data = build_split_data(source, split, method.is_zero_shot, gzsl=config["gzsl"],
                            val_fraction=config["val_fraction"], seed=config["seed"])
    val = dataset_factory(data.val, "val") if data.val is not None else None
    method.fit(dataset_factory(data.train, "train"), data.fit_texts, work_dir, val_dataset=val)
    if method.is_zero_shot:
        check_no_leaks(method.encoded_texts(), data.seen_texts, data.unseen_texts, f"{method_name}.fit (restore)")
    return method, data


def _text_prototypes(method, texts) -> np.ndarray:
    """``(C, J)`` text prototypes of a ResT-like method: its label embeddings in the joint space."""
    module = method.module_
    with torch.no_grad():
        feats = module.label_features(texts.texts(method.text_kind), grad=False)
        return module.joint_labels(feats).float().cpu().numpy()


def _key_parts(config: dict, weights: str, data_print: str, frame_cache) -> dict:
    """What the arrays of a run depend on, as :class:`FeatureCache` key parts (``what`` added per array)."""
    from zsar.models.preprocess import video_pipeline

    params = config["params"]
    pipeline = video_pipeline(params["backbone"], params["pretrained"], params["frames"])
    return dict(model_name=params["backbone"], checkpoint=weights, sampling=pipeline.sampler,
                transform=pipeline.preprocess,
                config=config, data=data_print,
                frames_from=getattr(frame_cache, "config", None) or "decoder")


class _LazyRestore:
    """The arrays of a restored run; the method is restored on the first call that needs it."""

    def __init__(self, method_name: str, run_dir: Path, source, split, work_dir: Path, make: Callable):
        self.args = (method_name, run_dir, source, split, work_dir, make)
        self.make = make

    @functools.cached_property
    def fitted(self):
        return restore_method(*self.args)

    def video_embeddings(self, videos, role: str) -> np.ndarray:
        return self.fitted[0].video_embeddings(self.make(videos, role))

    def prototypes(self) -> np.ndarray:
        method, data = self.fitted
        return method.class_prototypes(data.seen_texts + data.unseen_texts, data.seen_texts)

    @functools.cached_property
    def transfer(self) -> dict[str, np.ndarray]:
        method, data = self.fitted
        result = method.explain_transfer(data.unseen_texts)
        return {"text_prototypes": _text_prototypes(method, data.seen_texts + data.unseen_texts),
                "relatedness": result.relatedness, "transfer_weights": result.weights}


def collect_split_embeddings(method_name: str, run_dir: str | os.PathLike, source, split,
                             work_dir: str | os.PathLike | None = None, cache: FeatureCache | None = None,
                             frame_cache=None) -> SplitEmbeddings:
    """Embeddings and prototypes of a finished run on ``split``, from the cache or computed once.

    Args:
        method_name: registry name of the method that ran (``metrics.json``'s ``method_name``).
        run_dir: the run folder ``<training>/<method>/<split>`` of
            :func:`~zsar.experiments.zero_shot.run_split`; only read unless it is ``work_dir``.
        source: the :class:`~zsar.experiments.zero_shot.DataSource` the run used.
        split: the :class:`~zsar.data.protocols.ZeroShotSplit` of the run.
        work_dir: folder of a restore (default ``run_dir`` itself, whose ``method.json`` the
            restore rewrites unchanged).
        cache: where the arrays live (default ``FeatureCache()`` under ``cache_dir()``).
        frame_cache: a :class:`~zsar.data.frame_cache.FrameCache` the restored method reads
            clips from (default: decode the videos).

    Returns:
        A :class:`SplitEmbeddings`; ``encoded_videos`` is 0 when every array was cached.

    Raises:
        FileNotFoundError, RunMismatchError: see :func:`load_run_config` and :func:`restore_method`.
    """
    from zsar.experiments.zero_shot import build_split_data, default_dataset_factory
    from zsar.methods import METHODS

    run_dir, cache = Path(run_dir), cache or FeatureCache()
    config = load_run_config(run_dir, split)
    params = config["params"]
    data = build_split_data(source, split, METHODS[method_name].is_zero_shot, gzsl=config["gzsl"],
                            val_fraction=config["val_fraction"], seed=config["seed"])
    # without GZSL there are no seen test videos: the unseen ones alone, labels shifted past the seen classes
    videos, role, offset = ((data.gzsl_test, "gzsl_test", 0) if data.gzsl_test is not None
                            else (data.unseen_test, "unseen_test", len(split.seen)))
    class_ids = [str(c) for c in list(split.seen) + list(split.unseen)]
    base = _key_parts(config, run_weights_hash(run_dir), dataset_fingerprint(source.videos), frame_cache)
    make = default_dataset_factory(params["backbone"], params["frames"], config["seed"], params["pretrained"],
                                   frame_cache=frame_cache)
    run = _LazyRestore(method_name, run_dir, source, split, Path(work_dir or run_dir), make)

    def entry(what: str, ids: list[str], compute: Callable[[], np.ndarray]) -> np.ndarray:
        return np.asarray(cache.get_or_compute({**base, "what": what}, ids, compute))

    with count_encoded_clips() as encoded:
        embeddings = entry("video_embeddings", [r.video_id for r in videos.records],
                           lambda: run.video_embeddings(videos, role))
        prototypes = entry("prototypes", class_ids, run.prototypes)
        transfer = {}
        if hasattr(METHODS[method_name], "explain_transfer"):
            for name in TRANSFER_ARRAYS:
                ids = class_ids if name == "text_prototypes" else class_ids[len(split.seen):]
                transfer[name] = entry(name, ids, functools.partial(lambda n: run.transfer[n], name))
    return SplitEmbeddings(
        method=method_name, split=split.name, class_ids=np.array(class_ids, dtype=np.int64), n_seen=len(split.seen),
        embeddings=embeddings, labels=np.asarray(videos.labels, dtype=np.int64) + offset,
        video_ids=np.array([r.video_id for r in videos.records]), prototypes=prototypes,
        text_prototypes=transfer.get("text_prototypes"), relatedness=transfer.get("relatedness"),
        transfer_weights=transfer.get("transfer_weights"), unseen_pairs=tuple(map(tuple, data.pairs)),
        encoded_videos=encoded[0])
