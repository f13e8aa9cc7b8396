"""The API every zero-shot method shares, and the plumbing they have in common.

A method is an estimator in scikit-learn's style: ``__init__`` only stores its configuration,
``fit`` learns on the seen classes and returns ``self`` (learned attributes end in ``_``), and
``predict_scores`` scores videos against any class vocabulary::

    method = make_method("rest", epochs=5, frames=8, seed=0)
    method.fit(seen_train, seen_texts, run_dir, val_dataset=seen_val)
    scores = method.predict_scores(unseen_test, unseen_texts, seen_texts)   # (N, C_unseen)

Datasets are any torch ``Dataset`` yielding the sample dicts of
:class:`~zsar.data.dataset.VideoDataset` (``video`` ``(T, 3, H, W)``, ``label``, ``video_index``);
in ``fit`` the labels index ``seen_texts``. Every text encoder a method uses is listed by
:meth:`ZeroShotMethod.text_spaces`, whose ``encoded_texts`` the leakage audit reads.
"""

from __future__ import annotations

import copy
import inspect
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zsar.evaluation.scores import cosine_scores
from zsar.text.class_texts import TEXT_KINDS, ClassTexts
from zsar.text.semantic import SemanticSpace, get_semantic_space

METHOD_CONFIG_FILE = "method.json"


class NotFittedError(RuntimeError):
    """A method was asked to predict before ``fit``."""


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device``; ``None``: this rank's GPU under torchrun, else CUDA or CPU."""
    if device is None:
        from zsar.training import init_distributed

        return init_distributed().device
    return torch.device(device)


def autocast_for(amp: str, device: torch.device):
    """The training loop's autocast context (``"none"`` | ``"bf16"`` | ``"fp16"``)."""
    from zsar.training import autocast

    return autocast(amp, device)


def cross_entropy_and_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """``(loss, {"acc": float})`` for the training loop from ``(B, C)`` logits and ``(B,)`` labels."""
    loss = F.cross_entropy(logits, labels)
    return loss, {"acc": float((logits.argmax(1) == labels).float().mean())}


class ZeroShotMethod:
    """Base class of the methods; see the module docstring.

    Args:
        backbone: model name for :func:`zsar.models.create_model` (e.g. ``"zsar-ViT-T-16-64"``).
        pretrained: ``None`` (random init, offline), a checkpoint path or an open_clip tag.
        frames: frames per clip the datasets should sample (read by the experiment runner;
            temporal heads size their position embeddings with it).
        epochs: training epochs (0 where the method does not train).
        lr: peak learning rate of AdamW.
        weight_decay: AdamW decoupled weight decay.
        batch_size: global training batch size (clipped to the training set size).
        eval_batch_size: batch size of feature extraction (default ``2 * batch_size``).
        text_kind: which class text the method embeds: one of ``TEXT_KINDS``.
        templates: prompt template set (or list) applied to class names in the CLIP text space.
        seed: seeds model initialisation and data order.
        device: ``None`` (CUDA if available), ``"cpu"``, ``"cuda"``, ...
        amp: ``"none"``, ``"bf16"`` or ``"fp16"`` (CUDA only).
        grad_clip: max gradient norm, ``None`` for no clipping.
        num_workers: DataLoader workers.
        progress: tqdm bars (``None``: only on a terminal).
        resume: continue from checkpoints in ``run_dir`` (a finished run is not retrained).
    """

    name = "base"
    display_name = "base"
    is_zero_shot = True

    def __init__(self, backbone: str = "zsar-RN-T-64", pretrained: str | None = None, frames: int = 8,
                 epochs: int = 1, lr: float = 1e-4, weight_decay: float = 0.05, batch_size: int = 8,
                 eval_batch_size: int | None = None, text_kind: str = "name",
                 templates: str | list | None = "video_person", seed: int = 0,
                 device: str | torch.device | None = None, amp: str = "none", grad_clip: float | None = 1.0,
                 num_workers: int = 0, progress: bool | None = None, resume: bool = True):
        self.backbone, self.pretrained, self.frames = backbone, pretrained, frames
        self.epochs, self.lr, self.weight_decay = epochs, lr, weight_decay
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.text_kind, self.templates, self.seed = text_kind, templates, seed
        self.device, self.amp, self.grad_clip = device, amp, grad_clip
        self.num_workers, self.progress, self.resume = num_workers, progress, resume

    # ----------------------------------------------------------------- params
    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (as scikit-learn's ``get_params``), JSON-friendly."""
        names: dict[str, None] = {}
        for cls in type(self).__mro__:
            init = cls.__dict__.get("__init__")
            if init is None or cls is object:
                continue
            for p in inspect.signature(init).parameters.values():
                if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                    names.setdefault(p.name)
        return {n: _plain(getattr(self, n)) for n in names if hasattr(self, n)}

    def _check_params(self) -> None:
        if self.text_kind not in TEXT_KINDS:
            raise ValueError(f"text_kind={self.text_kind!r}; choose from {TEXT_KINDS}")
        if not isinstance(self.frames, int) or self.frames < 1:
            raise ValueError(f"frames must be a positive int, got {self.frames!r}")
        if self.amp not in ("none", "bf16", "fp16"):
            raise ValueError(f"amp={self.amp!r}; choose from ('none', 'bf16', 'fp16')")

    # -------------------------------------------------------------------- API
    def fit(self, train_dataset, seen_texts: ClassTexts, run_dir: str | os.PathLike,
            val_dataset=None) -> "ZeroShotMethod":
        """Learn from videos of the seen classes only; return ``self``.

        The one fit of every trained method: start (seed, device, run folder) → build the module
        (:meth:`_build_module`) → the validation scorer (:meth:`_val_scores` on held-out seen
        videos) → train with :meth:`_loss_fn` on the training loop (best epoch reloaded) →
        :meth:`_after_training` → finish (trainable parameters, train time). Methods without an
        iterative training loop override ``fit`` itself.

        Args:
            train_dataset: samples whose ``label`` indexes ``seen_texts``.
            seen_texts: texts of the seen classes (the only class texts allowed here).
            run_dir: folder for checkpoints and histories.
            val_dataset: held-out videos of the **seen** classes, for model selection.
        """
        from zsar.models import count_parameters

        run_dir = self._start_fit(run_dir)
        texts = self._fit_texts(seen_texts)
        self.module_ = self._build_module(texts)
        eval_fn = self._seen_eval_fn(val_dataset, texts, self._val_scores)
        self._train(self.module_, self._loss_fn(texts), train_dataset, run_dir, eval_fn)
        self.module_.eval()
        self._after_training(train_dataset, texts)
        return self._finish_fit(count_parameters(self.module_, trainable_only=True))

    # ------------------------------------------------- what a trained method supplies
    def _fit_texts(self, seen_texts: ClassTexts) -> ClassTexts:
        """The seen classes' texts as the method trains on them (e.g. with extracted units)."""
        return seen_texts

    def _build_module(self, seen_texts: ClassTexts) -> nn.Module:
        """The module trained by ``fit`` (on ``device_``), built from a fresh backbone."""
        raise NotImplementedError(f"{type(self).__name__} has no trainable module")

    def _loss_fn(self, seen_texts: ClassTexts) -> Callable[[nn.Module, dict], tuple[torch.Tensor, dict]]:
        """``loss_fn(module, batch) -> (loss, logs)`` for :func:`zsar.training.fit`."""
        raise NotImplementedError(f"{type(self).__name__} has no training loss")

    def _val_scores(self, module: nn.Module, dataset, texts: ClassTexts) -> np.ndarray:
        """``(N, C)`` scores of held-out seen videos by the module being trained (model selection)."""
        raise NotImplementedError(f"{type(self).__name__} has no validation scorer")

    def _after_training(self, train_dataset, seen_texts: ClassTexts) -> None:
        """What the fitted module still needs after training (e.g. seen prototypes); nothing by default."""

    def _embed_batch(self, batch: dict) -> torch.Tensor:
        """``(B, D)`` video embeddings of one batch by the fitted module."""
        raise NotImplementedError

    def predict_scores(self, dataset, target_texts: ClassTexts,
                       seen_texts: ClassTexts | None = None) -> np.ndarray:
        """``(N, C)`` scores (higher = more likely) of ``dataset``'s videos for ``target_texts``.

        Always :meth:`scores_from_features` of :meth:`video_features`: a caller that scores the
        same videos against several vocabularies (GZSL and unseen-only) encodes them once.
        """
        return self.scores_from_features(self.video_features(dataset), target_texts, seen_texts)

    def video_features(self, dataset) -> dict[str, np.ndarray]:
        """Everything the method scores a video from, encoded once: ``{"embedding": (N, D), ...}``.

        Every method gives ``"embedding"`` (:meth:`video_embeddings`); a method whose scores need
        more of a video (per-frame tokens for a test-time vocabulary) adds arrays with ``N`` rows.
        """
        return {"embedding": self.video_embeddings(dataset)}

    def scores_from_features(self, features: dict[str, np.ndarray], target_texts: ClassTexts,
                             seen_texts: ClassTexts | None = None) -> np.ndarray:
        """``(N, C)`` scores of videos given by :meth:`video_features` (rows may be a subset)."""
        return self.scores_from_embeddings(features["embedding"], self.class_prototypes(target_texts, seen_texts))

    def scores_from_embeddings(self, embeddings: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
        """``(N, C)`` scores of ``(N, D)`` embeddings against ``(C, D)`` prototypes: cosine by default."""
        return cosine_scores(embeddings, prototypes)

    def video_embeddings(self, dataset) -> np.ndarray:
        """``(N, D)`` float32 video embeddings in dataset order (:meth:`_embed_batch` over the dataset)."""
        self.check_is_fitted()
        return self._extract(self._embed_batch, dataset)

    def class_prototypes(self, target_texts: ClassTexts, seen_texts: ClassTexts | None = None) -> np.ndarray:
        """``(C, D)`` float32 class prototypes in the space of :meth:`video_embeddings`."""
        raise NotImplementedError

    def trainable_parameters(self) -> int:
        """Number of parameters updated by ``fit``."""
        self.check_is_fitted()
        return int(getattr(self, "trainable_parameters_", 0))

    def text_spaces(self) -> list[SemanticSpace]:
        """Every text encoder this method has used (each records ``encoded_texts``)."""
        return [s for s in getattr(self, "spaces_", []) if s is not None]

    def encoded_texts(self) -> list[str]:
        """All strings any of :meth:`text_spaces` has encoded so far, in order per space."""
        return [t for s in self.text_spaces() for t in s.encoded_texts]

    def check_is_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless ``fit`` has run."""
        if not getattr(self, "fitted_", False):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")

    # ---------------------------------------------------------------- helpers
    def _start_fit(self, run_dir) -> Path:
        from zsar.seed import seed_everything

        self._check_params()
        seed_everything(self.seed, deterministic=False)
        self.device_ = resolve_device(self.device)
        self.spaces_ = []
        self._fit_start = time.perf_counter()
        self._restored_time_s = 0.0  # epochs a resumed training did not run again (see _train)
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self._resume_ok = self._same_config_as_before(run_dir)
        return run_dir

    def _same_config_as_before(self, run_dir: Path) -> bool:
        """Record this fit's configuration in ``run_dir``; say whether a previous one matched.

        The training loop only checks optimiser settings before resuming; a checkpoint of a
        model with another configuration (say another loss weight) must not be resumed.
        """
        import json

        from zsar.io import atomic_write_json
        from zsar.training import barrier, is_main_process

        path = run_dir / METHOD_CONFIG_FILE
        params = {k: v for k, v in self.get_params().items() if k not in ("resume", "progress", "num_workers")}
        current = {"method": type(self).__name__, "params": params}
        try:
            same = json.loads(path.read_text(encoding="utf-8")) == current
        except (OSError, ValueError):
            same = False
        barrier()  # every rank has read the old file before rank 0 replaces it
        if is_main_process():
            atomic_write_json(path, current)
        return same

    def _finish_fit(self, trainable: int) -> "ZeroShotMethod":
        self.trainable_parameters_ = int(trainable)
        # a fit resumed from checkpoints counts the recorded time of the epochs it restored, so
        # an interrupted (or already finished) fit reports what training cost, not the restore
        self.train_time_s_ = time.perf_counter() - self._fit_start + self._restored_time_s
        self.fitted_ = True
        return self

    def _build_clip(self) -> tuple[nn.Module, Callable]:
        """A fresh CLIP model (on ``device_``) and its tokenizer."""
        from zsar.models import create_model, get_tokenizer

        model = create_model(self.backbone, self.pretrained, device=self.device_)
        return model, get_tokenizer(self.backbone)

    def _text_space(self, name: str = "clip", model: nn.Module | None = None, tokenizer=None,
                     trainable: bool = False, class_texts: bool = True) -> SemanticSpace:
        """The text space ``name`` (:func:`make_text_space`), recorded in ``spaces_`` for the leakage audit.

        ``class_texts``: the space embeds this method's class texts, so the CLIP space applies
        ``templates`` when those texts are names; other strings (units, concepts) go in as they are.
        """
        templates = self.templates if class_texts and self.text_kind == "name" else None
        space = make_text_space(name, model, tokenizer, templates=templates, trainable=trainable)
        self.spaces_.append(space)
        return space

    def _eval_batch(self) -> int:
        return self.eval_batch_size or 2 * self.batch_size

    def _extract(self, encode: Callable[[dict], torch.Tensor], dataset) -> np.ndarray:
        """``encode(batch) -> (B, D)`` over ``dataset`` under no_grad/autocast: ``(N, D)`` float32."""
        from zsar.training import extract_features

        device = getattr(self, "device_", resolve_device(self.device))

        def run(batch: dict) -> torch.Tensor:
            with autocast_for(self.amp, device):
                return encode(batch).float()

        feats = extract_features(run, dataset, self._eval_batch(), device, self.num_workers,
                                 progress=self.progress)
        return feats.numpy().astype(np.float32)

    def _train(self, module: nn.Module, loss_fn, train_dataset, run_dir: Path, eval_fn=None,
               epochs: int | None = None, subdir: str = "train"):
        """Run :func:`zsar.training.fit`; with ``eval_fn``, reload the best epoch's weights."""
        from zsar.training import LoaderFactory, OptimConfig, fit, load_checkpoint

        if len(train_dataset) == 0:
            raise ValueError(f"{type(self).__name__}.fit: the training set is empty")
        batch = min(self.batch_size, len(train_dataset))
        factory = LoaderFactory(train_dataset, batch, seed=self.seed, num_workers=self.num_workers)
        result = fit(module, loss_fn, factory, epochs or self.epochs, run_dir / subdir,
                     optim=OptimConfig(lr=self.lr, weight_decay=self.weight_decay), grad_clip=self.grad_clip,
                     amp=self.amp, eval_fn=eval_fn, monitor="val_top1" if eval_fn else None,
                     seed=self.seed, progress=self.progress, keep_last=1, device=self.device_,
                     resume=self.resume and self._resume_ok)
        if result.best_checkpoint is not None:
            load_checkpoint(result.best_checkpoint, module, restore_rng=False)
        self._restored_time_s = getattr(self, "_restored_time_s", 0.0) + result.restored_time_s
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        return result

    def _seen_eval_fn(self, val_dataset, seen_texts: ClassTexts,
                      scores_fn: Callable[[nn.Module, Any, ClassTexts], np.ndarray]):
        """``eval_fn`` for the training loop: top-1 over the seen classes on held-out seen videos."""
        if val_dataset is None or len(val_dataset) == 0:
            return None
        from zsar.evaluation.metrics import top1_accuracy

        labels = dataset_labels(val_dataset)

        def evaluate(model: nn.Module, epoch: int) -> dict:
            return {"val_top1": top1_accuracy(scores_fn(model, val_dataset, seen_texts), labels)}

        return evaluate


def make_text_space(name: str, model: nn.Module | None = None, tokenizer=None, templates=None,
                    trainable: bool = False) -> SemanticSpace:
    """The one place a method's text space is built.

    ``"clip"`` is the text tower of ``model`` (:class:`~zsar.models.ClipTextSpace`; ``templates``
    fill class names, ``trainable`` keeps its graph for joint training); any other name is an
    offline space of :mod:`zsar.text` (``"minilm"``, ``"glove"``; ``model`` unused).

    Raises:
        ValueError: ``"clip"`` without a model, or an unknown name.
    """
    if name == "clip":
        if model is None:
            raise ValueError("the 'clip' text space is a model's text tower: pass the model")
        from zsar.models import ClipTextSpace

        return ClipTextSpace(model, tokenizer, templates=templates, trainable=trainable)
    return get_semantic_space(name)


def evaluation_view(dataset):
    """A shallow copy of ``dataset`` that samples and transforms deterministically (eval mode).

    Prototypes built from training videos must not depend on which epoch's random clips and
    crops the dataset last served (a resumed fit would otherwise differ from an uninterrupted one).
    """
    view = copy.copy(dataset)
    if hasattr(view, "train"):
        view.train = False
    transform = getattr(view, "transform", None)
    if transform is not None and getattr(transform, "train", False):
        view.transform = copy.copy(transform)
        view.transform.train = False
    return view


def dataset_labels(dataset) -> np.ndarray:
    """``(N,)`` int64 labels of a dataset, read from its records when it has them (no decoding)."""
    videos = getattr(dataset, "videos", None)
    if videos is not None and hasattr(videos, "records"):
        return np.array([r.label for r in videos.records], dtype=np.int64)
    return np.array([int(dataset[i]["label"]) for i in range(len(dataset))], dtype=np.int64)


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)
