"""LSS (method D): self-distillation of an image CLIP into a video model in an action concept space.

Design (from ``REFERENCE.md``, Ranasinghe & Ryoo, NeurIPS 2023; the paper's code is not available):

* **Action concept space.** The frozen CLIP text tower embeds many action *concepts* built from
  the **seen** classes only: every class name filled into prompt templates, the names alone, the
  descriptions (alone and as ``"name: description"``), the semantic units and each class's unit
  phrase. After removing duplicates (identical strings, or vectors with cosine >= ``dedup_cosine``)
  the ``K`` unit vectors form ``A`` ``(K, D)``; ``concepts_`` keeps the strings. A ``(C, K)``
  mask records which concepts are attributes of which seen class (units shared by classes are
  attributes of each).
* **Teacher / student.** The student is the image tower applied per frame plus temporal
  modelling: ``z = normalize(mean_t f_t + TemporalTransformer(f))``, the transformer's output
  projection initialised to zero so that the student starts as the frame average. The teacher is
  an exponential moving average (EMA) of the student's image tower with no temporal modelling:
  ``y = normalize(mean_t g_t)``. With a frozen backbone the teacher is the (same) frozen tower.
* **Losses.** ``L = λ_c CE(s z·Eᵀ) + λ_d KL(softmax(y·Aᵀ/τ_t) || softmax(z·Aᵀ/τ_s))
  + λ_a H(q_c, softmax(z·Aᵀ/τ_a))``: cross-entropy over the seen class texts ``E``; concept
  distillation (the student matches the teacher's distribution over concepts, keeping CLIP's
  image-level knowledge while it learns time); concept alignment, a multi-positive contrastive
  loss whose target ``q_c`` is uniform over the attribute concepts of the video's class.
* **EMA update.** :class:`~zsar.training.Trainer` has no per-step callback (only
  ``loss_fn(model, batch)`` and a per-epoch ``eval_fn``), so the loss function updates the
  teacher from the student's current weights **before** each forward pass, i.e. with the weights
  the previous optimiser step produced; ``fit`` folds in the last step after training. That is
  exactly an update after every optimiser step, and it resumes exactly (the teacher is a frozen
  submodule, so it is in every checkpoint).
* **Inference.** Cosine of the student embedding ``z`` and the class text prototypes (frozen
  text tower, ``text_kind`` + ``templates``); ``video_embeddings`` also feed linear probes
  (:func:`zsar.experiments.linear_probe.linear_probe`).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zsar.evaluation.scores import cosine_scores
from zsar.methods.base import ZeroShotMethod
from zsar.methods.rest import TemporalTransformer
from zsar.models import FrameEncoder, frame_average
from zsar.models.prompts import apply_template, get_templates
from zsar.models.video_encoder import encode_video
from zsar.text.class_texts import UNIT_GROUPS, ClassTexts

CONCEPT_SOURCES = ("names", "descriptions", "units")
MAX_LOGIT_SCALE = math.log(100.0)


# --------------------------------------------------------------------------- concept space
@dataclass(frozen=True)
class ConceptVocabulary:
    """Concept strings and which class each belongs to.

    Attributes:
        concepts: ``K`` distinct concept strings.
        class_mask: ``(C, K)`` bool, ``True`` where concept ``k`` is an attribute of class ``c``.
    """

    concepts: tuple[str, ...]
    class_mask: np.ndarray


def _class_concepts(texts: ClassTexts, c: int, templates: Sequence[str], sources: Sequence[str]) -> list[str]:
    """Concept strings of class ``c``: templated name, description, units (as ``sources`` ask)."""
    name, description, units = texts.names[c], texts.descriptions[c], texts.units[c]
    out: list[str] = []
    if "names" in sources:
        out += [apply_template(t, name) for t in templates] + [name]
    if "descriptions" in sources and description:
        out += [description, f"{name}: {description}"]
    if "units" in sources:
        groups = list(UNIT_GROUPS) + sorted(g for g in units if g not in UNIT_GROUPS)
        words = [u for g in groups for u in units.get(g, ())]
        out += words + ([", ".join(words)] if words else [])
    return out


def build_concept_vocabulary(texts: ClassTexts, templates: str | Sequence[str] = "clip_kinetics700",
                             sources: Sequence[str] = CONCEPT_SOURCES) -> ConceptVocabulary:
    """The action concepts of ``texts`` (pass the **seen** classes only), strings deduplicated.

    Args:
        texts: the class vocabulary the concepts come from.
        templates: a bundled template set name or format strings with one ``{}`` (class names).
        sources: any of ``CONCEPT_SOURCES``.

    Raises:
        ValueError: an unknown source, or a class left without any concept.
    """
    bad = [s for s in sources if s not in CONCEPT_SOURCES]
    if bad or not len(sources):
        raise ValueError(f"concept sources {list(sources)!r}; choose a non-empty subset of {CONCEPT_SOURCES}")
    templates = get_templates(templates) if isinstance(templates, str) else list(templates)
    index: dict[str, int] = {}
    members: list[list[str]] = []
    for c in range(len(texts)):
        members.append(_class_concepts(texts, c, templates, sources))
        for concept in members[-1]:
            index.setdefault(concept, len(index))
    empty = [texts.names[c] for c, m in enumerate(members) if not m]
    if empty:
        raise ValueError(f"classes {empty} have no concept from sources {list(sources)}")
    mask = np.zeros((len(texts), len(index)), dtype=bool)
    for c, concepts in enumerate(members):
        mask[c, [index[s] for s in concepts]] = True
    return ConceptVocabulary(tuple(index), mask)


def deduplicate_concepts(features: np.ndarray, vocab: ConceptVocabulary,
                         max_cosine: float = 0.9999, block: int = 1024) -> tuple[np.ndarray, ConceptVocabulary]:
    """Drop concepts whose vector repeats an earlier one (cosine >= ``max_cosine``).

    A dropped concept's classes are merged into the concept that is kept.

    Args:
        features: ``(K, D)`` unit vectors of ``vocab.concepts``.
        vocab: the concepts and their ``(C, K)`` class mask.
        max_cosine: similarity from which two concepts count as one.
        block: rows of the similarity matrix computed at once.

    Returns:
        ``(K', D)`` features and the matching vocabulary, ``K' <= K``, first occurrences kept.
    """
    if features.shape[0] != len(vocab.concepts):
        raise ValueError(f"{features.shape[0]} feature rows for {len(vocab.concepts)} concepts")
    keep = np.zeros(len(features), dtype=bool)
    mask = vocab.class_mask.copy()
    for start in range(0, len(features), block):  # blocks of rows: no (K, K) matrix in memory
        sims = features[start:start + block] @ features.T
        for row, k in enumerate(range(start, start + len(sims))):
            twins = np.flatnonzero(keep[:k] & (sims[row, :k] >= max_cosine))
            if twins.size:
                mask[:, twins[0]] |= mask[:, k]
            else:
                keep[k] = True
    kept = np.flatnonzero(keep)
    return features[kept], ConceptVocabulary(tuple(vocab.concepts[k] for k in kept), mask[:, kept])


# --------------------------------------------------------------------------------- losses
def concept_distillation_loss(student: torch.Tensor, teacher: torch.Tensor, concepts: torch.Tensor,
                              student_temperature: float, teacher_temperature: float) -> torch.Tensor:
    """``KL(p_teacher || p_student)`` over the concept space, averaged over the batch.

    Args:
        student, teacher: ``(B, D)`` unit embeddings (the teacher's receive no gradient).
        concepts: ``(K, D)`` unit concept vectors.
    """
    log_p_student = F.log_softmax(student @ concepts.T / student_temperature, dim=-1)
    p_teacher = F.softmax(teacher.detach() @ concepts.T / teacher_temperature, dim=-1)
    return F.kl_div(log_p_student, p_teacher, reduction="batchmean")


def concept_alignment_loss(embeddings: torch.Tensor, concepts: torch.Tensor, positives: torch.Tensor,
                           temperature: float) -> torch.Tensor:
    """Multi-positive contrastive loss: ``-mean_{k in P_i} log softmax(z_i·Aᵀ/τ)_k``, batch-averaged.

    Args:
        embeddings: ``(B, D)`` unit video embeddings.
        concepts: ``(K, D)`` unit concept vectors.
        positives: ``(B, K)`` bool, each row with at least one ``True`` (the class's attributes).
    """
    target = positives.float()
    target = target / target.sum(dim=1, keepdim=True)
    return F.cross_entropy(embeddings @ concepts.T / temperature, target)


# --------------------------------------------------------------------------------- module
class LSSModule(nn.Module):
    """Student (image tower + temporal transformer), EMA teacher, concept and class-text buffers.

    Args:
        model: open_clip model; its image tower is the student's backbone (its text tower is
            kept for the checkpoint, frozen).
        concepts: ``(K, D)`` concept vectors; ``class_concepts``: ``(C, K)`` bool attribute mask.
        class_text: ``(C, D)`` seen class text prototypes.
        width, layers, heads, max_frames, dropout: temporal transformer settings.
        ema_teacher: keep an EMA copy of the image tower as teacher; ``False``: the teacher is
            the student's own (frozen or not) tower, frame-averaged, without gradient.
    """

    def __init__(self, model: nn.Module, concepts: torch.Tensor, class_concepts: torch.Tensor,
                 class_text: torch.Tensor, width: int = 256, layers: int = 1, heads: int = 4,
                 max_frames: int = 32, dropout: float = 0.0, ema_teacher: bool = True):
        super().__init__()
        self.model = model
        self.encoder = FrameEncoder(model)
        dim = self.encoder.output_dim or concepts.shape[1]
        self.temporal = TemporalTransformer(dim, width, layers, heads, max_frames, dim, dropout=dropout)
        # zero output: the student starts as the teacher's frame average (a residual temporal branch)
        nn.init.zeros_(self.temporal.out_proj.weight)
        nn.init.zeros_(self.temporal.out_proj.bias)
        self.teacher = copy.deepcopy(self.encoder.visual).requires_grad_(False) if ema_teacher else None
        self.register_buffer("concepts", concepts.float(), persistent=False)
        self.register_buffer("class_concepts", class_concepts.bool(), persistent=False)
        self.register_buffer("class_text", class_text.float(), persistent=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def train(self, mode: bool = True) -> "LSSModule":
        """As ``nn.Module.train``, but the teacher always stays in eval mode."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def embed_video(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, 3, H, W)`` -> student ``(B, D)`` unit embeddings and frame features ``(B, T, D)``."""
        frames = self.encoder(video, normalize=True)
        z = frames.float().mean(dim=1) + self.temporal(frames).float()
        return F.normalize(z, dim=-1), frames

    @torch.no_grad()
    def embed_teacher(self, video: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, D)`` teacher embeddings: frame average of the EMA tower (or of ``frames``)."""
        if self.teacher is None:
            if frames is None:
                frames = self.encoder(video, normalize=True)
            return frame_average(frames.detach().float())
        return frame_average(encode_video(self.teacher, video, normalize=True).float())

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """``θ_teacher <- m θ_teacher + (1 - m) θ_student`` (buffers, e.g. BatchNorm stats, copied)."""
        if self.teacher is None:
            return
        student = dict(self.encoder.visual.named_parameters())
        for name, t in self.teacher.named_parameters():
            t.lerp_(student[name].detach().to(t.dtype), 1.0 - momentum)
        buffers = dict(self.encoder.visual.named_buffers())
        for name, b in self.teacher.named_buffers():
            b.copy_(buffers[name])

    def class_logits(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, C)`` scaled cosine logits of student embeddings over the seen class texts."""
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp() * z @ self.class_text.T

    def forward(self, video: torch.Tensor, with_teacher: bool = True):
        """Training pass: student ``(B, D)``, teacher ``(B, D)`` (``None`` if not asked), class logits ``(B, C)``.

        Every trainable parameter is used inside ``forward`` (as DDP expects).
        """
        z, frames = self.embed_video(video)
        teacher = self.embed_teacher(video, frames) if with_teacher else None
        return z, teacher, self.class_logits(z)


# --------------------------------------------------------------------------------- method
class LSS(ZeroShotMethod):
    """Concept-space self-distillation of an image CLIP into a video model (method D).

    Args:
        width, layers, heads, dropout: the student's temporal transformer.
        max_frames: position embeddings (default: ``frames``).
        concept_templates: template set (or list) filled with seen class names for the concepts.
        concept_sources: which seen texts make concepts, a subset of ``CONCEPT_SOURCES``.
        dedup_cosine: concepts whose vectors are at least this similar count as one.
        class_weight, distillation_weight, alignment_weight: ``λ_c``, ``λ_d``, ``λ_a``.
        student_temperature, teacher_temperature: ``τ_s``, ``τ_t`` of the distillation softmaxes.
        alignment_temperature: ``τ_a`` of the alignment softmax.
        ema_momentum: teacher EMA momentum ``m`` per optimiser step.
        use_distillation, use_alignment: ablation switches (the teacher is not even built
            without distillation).
        train_backbone: fine-tune the image tower (else frozen, and the teacher is that tower).
        **kwargs: the :class:`~zsar.methods.base.ZeroShotMethod` arguments.

    Attributes (after ``fit``): ``module_`` (:class:`LSSModule`), ``concepts_`` (``K`` strings),
    ``concept_features_`` ``(K, D)``, ``class_concepts_`` ``(C_seen, K)`` bool, ``seen_texts_``,
    ``text_space_`` (class prototypes), ``concept_space_`` (concepts), ``history_``.
    """

    name = "lss"
    display_name = "LSS (concept-space distillation)"

    def __init__(self, width: int = 256, layers: int = 1, heads: int = 4, dropout: float = 0.0,
                 max_frames: int | None = None, concept_templates: str | list = "clip_kinetics700",
                 concept_sources: Sequence[str] = CONCEPT_SOURCES, dedup_cosine: float = 0.9999,
                 class_weight: float = 1.0, distillation_weight: float = 1.0, alignment_weight: float = 0.5,
                 student_temperature: float = 0.1, teacher_temperature: float = 0.04,
                 alignment_temperature: float = 0.07, ema_momentum: float = 0.996,
                 use_distillation: bool = True, use_alignment: bool = True, train_backbone: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        self.width, self.layers, self.heads, self.dropout = width, layers, heads, dropout
        self.max_frames = max_frames
        self.concept_templates, self.concept_sources = concept_templates, concept_sources
        self.dedup_cosine = dedup_cosine
        self.class_weight, self.distillation_weight = class_weight, distillation_weight
        self.alignment_weight = alignment_weight
        self.student_temperature, self.teacher_temperature = student_temperature, teacher_temperature
        self.alignment_temperature, self.ema_momentum = alignment_temperature, ema_momentum
        self.use_distillation, self.use_alignment = use_distillation, use_alignment
        self.train_backbone = train_backbone

    def _check_params(self) -> None:
        super()._check_params()
        for name in ("student_temperature", "teacher_temperature", "alignment_temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.ema_momentum <= 1.0:
            raise ValueError(f"ema_momentum must lie in [0, 1], got {self.ema_momentum!r}")
        if not 0.0 < self.dedup_cosine <= 1.0:
            raise ValueError(f"dedup_cosine must lie in (0, 1], got {self.dedup_cosine!r}")

    def _build_concepts(self, model: nn.Module, tokenizer, seen_texts: ClassTexts) -> np.ndarray:
        """Embed the seen classes' concepts (recorded by ``concept_space_``); ``(K, D)``."""
        self.concept_space_ = self._text_space("clip", model, tokenizer, class_texts=False)  # strings are final
        vocab = build_concept_vocabulary(seen_texts, self.concept_templates, self.concept_sources)
        feats, vocab = deduplicate_concepts(self.concept_space_.encode(vocab.concepts), vocab, self.dedup_cosine)
        self.concepts_, self.class_concepts_, self.concept_features_ = vocab.concepts, vocab.class_mask, feats
        return feats

    def _build_module(self, seen_texts: ClassTexts) -> LSSModule:
        """The seen concept space, then the student and its EMA teacher on a fresh backbone."""
        self.seen_texts_ = seen_texts
        model, tokenizer = self._build_clip()
        for name, p in model.named_parameters():  # text tower and CLIP's logit scale stay frozen
            p.requires_grad_(self.train_backbone and name.startswith("visual."))
        self.text_space_ = self._text_space("clip", model, tokenizer)
        concepts = self._build_concepts(model, tokenizer, seen_texts)
        class_text = self.text_space_.encode(seen_texts.texts(self.text_kind))
        device = self.device_
        return LSSModule(model, torch.from_numpy(concepts).to(device),
                         torch.from_numpy(self.class_concepts_).to(device), torch.from_numpy(class_text).to(device),
                         self.width, self.layers, self.heads, self.max_frames or self.frames, self.dropout,
                         ema_teacher=self.use_distillation and self.train_backbone)

    def _loss_fn(self, seen_texts: ClassTexts):
        from zsar.training.checkpoint import unwrap_model

        def loss_fn(module: nn.Module, batch: dict):
            lss = unwrap_model(module)
            if lss.training:  # the EMA step for the previous optimiser step (no per-step hook)
                lss.update_teacher(self.ema_momentum)
            z, teacher, logits = module(batch["video"], with_teacher=self.use_distillation)
            labels = batch["label"]
            class_ce = F.cross_entropy(logits, labels)
            loss = self.class_weight * class_ce
            logs = {"class_ce": float(class_ce.detach()), "acc": float((logits.argmax(1) == labels).float().mean())}
            if self.use_distillation:
                distill = concept_distillation_loss(z, teacher, lss.concepts, self.student_temperature,
                                                    self.teacher_temperature)
                loss = loss + self.distillation_weight * distill
                logs["distill"] = float(distill.detach())
            if self.use_alignment:
                align = concept_alignment_loss(z, lss.concepts, lss.class_concepts[labels],
                                               self.alignment_temperature)
                loss = loss + self.alignment_weight * align
                logs["align"] = float(align.detach())
            return loss, logs

        return loss_fn

    def _after_training(self, train_dataset, seen_texts: ClassTexts) -> None:
        self.module_.update_teacher(self.ema_momentum)  # fold in the last optimiser step

    def _val_scores(self, module: LSSModule, dataset, texts: ClassTexts) -> np.ndarray:
        z = self._extract(lambda b: module.embed_video(b["video"])[0], dataset)
        return cosine_scores(z, module.class_text.cpu().numpy())

    def _embed_batch(self, batch: dict) -> torch.Tensor:
        """``(B, D)`` unit student embeddings (frame average + temporal transformer)."""
        return self.module_.embed_video(batch["video"])[0]

    def teacher_embeddings(self, dataset) -> np.ndarray:
        """``(N, D)`` unit teacher embeddings (frame average of the EMA image tower)."""
        self.check_is_fitted()
        return self._extract(lambda b: self.module_.embed_teacher(b["video"]), dataset)

    def concept_scores(self, dataset) -> np.ndarray:
        """``(N, K)`` cosine of the student embeddings and the seen concept space (``concepts_``)."""
        return cosine_scores(self.video_embeddings(dataset), self.concept_features_)

    def class_prototypes(self, target_texts: ClassTexts, seen_texts: ClassTexts | None = None) -> np.ndarray:
        """``(C, D)`` frozen CLIP text embeddings of the target classes (``text_kind``, ``templates``)."""
        self.check_is_fitted()
        return self.text_space_.encode(target_texts.texts(self.text_kind))
