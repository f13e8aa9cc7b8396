"""One finished run of a method on one split, on disk: the run artefact and its one reader.

:func:`~zsar.experiments.runs.run_split` encodes the split's test videos once (the GZSL test set:
test-list videos of the seen classes and the unseen test videos; without GZSL the unseen test
videos alone) and writes everything later steps read into ``<run folder>/run.npz``
(:data:`ARTIFACT_FILE`), format :data:`ARTIFACT_VERSION`:

* the videos: ids, labels over seen + unseen classes (``>= S``: unseen), official test-list flags;
* ``embeddings`` ``(N, D)``: the method's video embeddings;
* ``prototypes`` ``(S+U, D)``: the class prototypes the method scores with (seen classes first);
* ``unseen_scores`` ``(N_u, U)``: the scores the method predicts the unseen classes with, for the
  unseen test videos (what top-1 and S_N10 are computed on), and ``gzsl_scores`` ``(N, S+U)``;
* ``val_embeddings``: the held-out videos of the classes the method was fitted on (model selection
  data, never test data), for analyses that need a query bank without test videos;
* ``extras``: method-specific arrays for analyses (ResT: its transfer inputs, see
  :meth:`~zsar.methods.ResT.analysis_arrays`).

Notebooks, benchmarks and the comparison read it with :func:`read_artifact`; nothing else
restores a finished run.

Example::

    run = read_artifact("runs/02_training/rest/random0_seed0")
    run.unseen_scores.shape          # (N_u, U)
    run.unseen_hubness()             # S_N10 of the scores the method predicts with
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zsar.evaluation.scores import cosine_scores, unseen_hubness
from zsar.io import atomic_path

ARTIFACT_FILE = "run.npz"
"""File name of the run artefact inside a run folder."""

ARTIFACT_VERSION = 1
"""Format version; a file of another version is refused by :func:`read_artifact`."""

_EXTRA = "extra__"


class ArtifactError(ValueError):
    """A run folder has no readable run artefact of this format; the message names the file."""


@dataclass(frozen=True)
class RunArtifact:
    """What one finished run leaves for later steps (see the module docstring).

    Attributes:
        method_name: registry name of the method.
        split: split name.
        config: the run's configuration (method parameters, classes, seed, GZSL, validation share).
        class_ids: ``(S+U,)`` class indices into the source's classes, seen classes first.
        n_seen: ``S``.
        video_ids: ``(N,)`` ids of the encoded test videos.
        labels: ``(N,)`` labels in ``0..S+U-1`` (``>= S``: an unseen class).
        testlist: ``(N,)`` bool, the video is in the official test list.
        embeddings: ``(N, D)`` float32 video embeddings of the method.
        prototypes: ``(S+U, D)`` float32 class prototypes of the method.
        unseen_scores: ``(N_u, U)`` float32 scores of the unseen test videos (rows in video order)
            over the unseen classes, as the method predicts.
        gzsl_scores: ``(N, S+U)`` float32 scores over all classes, or ``None`` without GZSL.
        val_embeddings: ``(N_v, D)`` float32 embeddings of the validation videos, or ``None``.
        val_labels: ``(N_v,)`` their labels over the fitted classes (the seen classes; every
            class in index order for the supervised ceiling), or ``None``.
        pairs: temporal pairs whose both classes are unseen, as positions ``0..U-1``.
        extras: method-specific arrays (e.g. ResT's transfer inputs); may be empty.
    """

    method_name: str
    split: str
    config: dict
    class_ids: np.ndarray
    n_seen: int
    video_ids: np.ndarray
    labels: np.ndarray
    testlist: np.ndarray
    embeddings: np.ndarray
    prototypes: np.ndarray
    unseen_scores: np.ndarray
    gzsl_scores: np.ndarray | None
    val_embeddings: np.ndarray | None = None
    val_labels: np.ndarray | None = None
    pairs: tuple[tuple[int, int], ...] = ()
    extras: dict[str, np.ndarray] = field(default_factory=dict)

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
        """``(N_u,)`` labels of the unseen test videos in ``0..U-1``."""
        return self.labels[self.unseen_mask] - self.n_seen

    @property
    def unseen_embeddings(self) -> np.ndarray:
        """``(N_u, D)`` embeddings of the unseen test videos."""
        return self.embeddings[self.unseen_mask]

    def is_of(self, split) -> bool:
        """Whether the run was made on ``split``'s seen and unseen classes (a :class:`~zsar.data.protocols.ZeroShotSplit`)."""
        return list(self.class_ids) == list(split.seen) + list(split.unseen)

    def cosine_unseen_scores(self, prototypes: np.ndarray | None = None) -> np.ndarray:
        """``(N_u, U)`` cosine of the unseen embeddings and unseen prototypes (for swapped prototypes).

        Args:
            prototypes: ``(S+U, D)`` or ``(U, D)``; default :attr:`prototypes`.
        """
        protos = self.prototypes if prototypes is None else np.asarray(prototypes)
        if len(protos) == len(self.class_ids):
            protos = protos[self.n_seen:]
        return cosine_scores(self.unseen_embeddings, protos)

    def unseen_hubness(self, k: int | None = None) -> float:
        """``S_Nk`` of :attr:`unseen_scores` (:func:`~zsar.evaluation.scores.unseen_hubness`)."""
        return unseen_hubness(self.unseen_scores) if k is None else unseen_hubness(self.unseen_scores, k)

    def write(self, run_dir: str | os.PathLike) -> Path:
        """Write ``run_dir/run.npz`` atomically; return its path."""
        arrays = dict(
            version=np.array(ARTIFACT_VERSION), method_name=np.array(self.method_name), split=np.array(self.split),
            config=np.array(json.dumps(self.config, sort_keys=True)), class_ids=np.asarray(self.class_ids),
            n_seen=np.array(self.n_seen), video_ids=np.asarray(self.video_ids).astype(str),
            labels=np.asarray(self.labels, dtype=np.int64), testlist=np.asarray(self.testlist, dtype=bool),
            embeddings=np.asarray(self.embeddings, dtype=np.float32),
            prototypes=np.asarray(self.prototypes, dtype=np.float32),
            unseen_scores=np.asarray(self.unseen_scores, dtype=np.float32),
            pairs=np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2),
            **{_EXTRA + k: np.asarray(v) for k, v in self.extras.items()})
        if self.gzsl_scores is not None:
            arrays["gzsl_scores"] = np.asarray(self.gzsl_scores, dtype=np.float32)
        if self.val_embeddings is not None:
            arrays.update(val_embeddings=np.asarray(self.val_embeddings, dtype=np.float32),
                          val_labels=np.asarray(self.val_labels, dtype=np.int64))
        path = Path(run_dir) / ARTIFACT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:  # the temp name ends in .npz, so numpy adds no suffix
            np.savez_compressed(tmp, **arrays)
        return path


def find_artifacts(root: str | os.PathLike, splits) -> dict[str, RunArtifact] | None:
    """``{split name: artefact}`` of ``root/<split name>`` for every split, or ``None`` when one is
    missing, unreadable or was made on other classes (the caller then runs those splits)."""
    found = {}
    for split in splits:
        try:
            run = read_artifact(Path(root) / split.name)
        except ArtifactError:
            return None
        if not run.is_of(split):
            return None
        found[split.name] = run
    return found


def read_artifact(run_dir: str | os.PathLike, config: dict | None = None) -> RunArtifact:
    """The :class:`RunArtifact` of a finished run folder.

    Args:
        run_dir: a run folder of :func:`~zsar.experiments.runs.run_split`.
        config: when given, the run must have been made with exactly this configuration.

    Raises:
        ArtifactError: no ``run.npz``, another format version, or another configuration.
    """
    path = Path(run_dir) / ARTIFACT_FILE
    if not path.is_file():
        raise ArtifactError(f"{path} not found: {run_dir} is not a finished run of run_split")
    with np.load(path, allow_pickle=False) as f:
        stored = {k: f[k] for k in f.files}
    if int(stored.get("version", -1)) != ARTIFACT_VERSION:
        raise ArtifactError(f"{path}: format version {int(stored.get('version', -1))}, this reader reads "
                            f"{ARTIFACT_VERSION}; run the split again")
    stored_config = json.loads(str(stored["config"]))
    if config is not None and stored_config != json.loads(json.dumps(config, sort_keys=True)):
        raise ArtifactError(f"{path}: made with another configuration than the one asked for")
    return RunArtifact(
        method_name=str(stored["method_name"]), split=str(stored["split"]), config=stored_config,
        class_ids=stored["class_ids"], n_seen=int(stored["n_seen"]), video_ids=stored["video_ids"],
        labels=stored["labels"], testlist=stored["testlist"], embeddings=stored["embeddings"],
        prototypes=stored["prototypes"], unseen_scores=stored["unseen_scores"],
        gzsl_scores=stored.get("gzsl_scores"), val_embeddings=stored.get("val_embeddings"),
        val_labels=stored.get("val_labels"), pairs=tuple(tuple(int(i) for i in p) for p in stored["pairs"]),
        extras={k[len(_EXTRA):]: v for k, v in stored.items() if k.startswith(_EXTRA)})
