"""ResT (method A): a cross-modal transformer over video and label text, plus semantic transfer.

Design (from ``REFERENCE.md``; the paper's exact formulas are not available):

* **Video tokens.** Per-frame CLIP image embeddings ``(B, T, D)`` are projected to the
  transformer width, a learnable ``[CLS]`` token is prepended and learned temporal position
  embeddings are added, so the encoder is order-aware (it can tell "sit down" from its time
  reversal "stand up").
* **Label-text tokens.** The CLIP text embeddings of the seen class vocabulary, computed by the
  text tower *inside* the training graph, are projected to the same width. Each block does
  temporal self-attention over the video tokens, then cross-attention from the video tokens
  to the label-text tokens, then an MLP. The ``[CLS]`` output, projected and normalised, is the
  video embedding ``z`` in the joint space.
* **Joint space and losses** (visual structure and visual–semantic structure learned together):
  ``L = CE(s_v z·P) + λ_t CE(s_t z·E) + λ_s ||cos(P, P) − cos(E, E)||²``, where ``P`` are
  learnable visual prototypes of the seen classes and ``E`` the projected label embeddings.
  The first term makes ``z`` discriminative; the second ties it to the label semantics; the
  third keeps the geometry of the visual prototypes consistent with that of the labels, which
  is what semantic transfer relies on.
* **Inference.** Video tokens always cross-attend to the *seen* vocabulary (the one the model
  was trained with), so a video's embedding does not depend on the test vocabulary. Seen classes
  keep their visual prototype (class mean of training embeddings, or the learned ``P``); each
  unseen class gets :func:`~zsar.methods.transfer.semantic_transfer` of the seen prototypes,
  weighted by label relatedness in a selectable text space, optionally fused with ``E_u``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zsar.evaluation.scores import cosine_scores, l2_normalize
from zsar.methods.base import ZeroShotMethod, dataset_labels, evaluation_view
from zsar.methods.transfer import TransferResult, relatedness_matrix, semantic_transfer
from zsar.models import FrameEncoder
from zsar.text.class_texts import ClassTexts

TRANSFER_SPACES = ("model", "clip", "minilm", "glove")
PROTOTYPE_SOURCES = ("mean", "learned")


class CrossModalBlock(nn.Module):
    """Pre-norm block: self-attention over video tokens, optional cross-attention to text, MLP."""

    def __init__(self, width: int, heads: int, cross_attention: bool, dropout: float = 0.0):
        super().__init__()
        self.ln_self = nn.LayerNorm(width)
        self.self_attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.cross_attention = cross_attention
        if cross_attention:
            self.ln_cross = nn.LayerNorm(width)
            self.ln_memory = nn.LayerNorm(width)
            self.cross_attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.ln_mlp = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(B, L, W)`` video tokens; ``memory`` ``(B, M, W)`` label-text tokens."""
        h = self.ln_self(x)
        x = x + self.self_attn(h, h, h, need_weights=False)[0]
        if self.cross_attention and memory is not None:
            m = self.ln_memory(memory)
            x = x + self.cross_attn(self.ln_cross(x), m, m, need_weights=False)[0]
        return x + self.mlp(self.ln_mlp(x))


class TemporalTransformer(nn.Module):
    """Order-aware temporal encoder: ``(B, T, D)`` frame features -> ``(B, out_dim)``.

    Args:
        in_dim: frame feature size ``D``.
        width, layers, heads: transformer size.
        max_frames: number of temporal position embeddings (clips may be shorter).
        out_dim: output size.
        cross_attention: blocks also attend to a memory of ``(M, D_mem)`` tokens (``memory_dim``).
        memory_dim: size of the memory tokens before projection (default ``in_dim``).
        dropout: attention/MLP dropout.
    """

    def __init__(self, in_dim: int, width: int = 256, layers: int = 2, heads: int = 4, max_frames: int = 32,
                 out_dim: int | None = None, cross_attention: bool = False, memory_dim: int | None = None,
                 dropout: float = 0.0):
        super().__init__()
        if width % heads:
            raise ValueError(f"width={width} must be divisible by heads={heads}")
        self.max_frames = max_frames
        self.input_proj = nn.Linear(in_dim, width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        # std 0.02 (ViT's init) breaks permutation symmetry from the first step
        self.pos_embedding = nn.Parameter(torch.randn(1, max_frames + 1, width) * 0.02)
        self.memory_proj = nn.Linear(memory_dim or in_dim, width) if cross_attention else None
        self.blocks = nn.ModuleList(CrossModalBlock(width, heads, cross_attention, dropout) for _ in range(layers))
        self.ln_out = nn.LayerNorm(width)
        self.out_proj = nn.Linear(width, out_dim or in_dim)

    def forward(self, frames: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        """``frames`` ``(B, T, D)``, ``memory`` ``(M, D_mem)`` or ``(B, M, D_mem)`` -> ``(B, out_dim)``."""
        b, t, _ = frames.shape
        if t > self.max_frames:
            raise ValueError(f"clip has {t} frames, the temporal encoder at most {self.max_frames}")
        x = self.input_proj(frames)
        x = torch.cat([self.cls_token.expand(b, -1, -1).to(x.dtype), x], dim=1)
        x = x + self.pos_embedding[:, : t + 1].to(x.dtype)
        mem = None
        if self.memory_proj is not None and memory is not None:
            mem = self.memory_proj(memory.to(x.dtype))
            mem = mem.unsqueeze(0).expand(b, -1, -1) if mem.ndim == 2 else mem
        for block in self.blocks:
            x = block(x, mem)
        return self.out_proj(self.ln_out(x[:, 0]))


class ResTModule(nn.Module):
    """Backbone + cross-modal temporal transformer + joint-space heads (see the module docstring).

    Args:
        model: open_clip model (image tower encodes frames; text tower encodes labels).
        text_space: :class:`~zsar.models.ClipTextSpace` over ``model`` (trainable or not).
        num_seen: number of seen classes (learnable prototypes).
        width, layers, heads, max_frames, dropout: temporal transformer settings.
        joint_dim: size of the joint space.
    """

    def __init__(self, model: nn.Module, text_space, num_seen: int, width: int = 256, layers: int = 2,
                 heads: int = 4, max_frames: int = 32, joint_dim: int = 256, dropout: float = 0.0):
        super().__init__()
        self.model = model
        self.encoder = FrameEncoder(model)
        self.text_space = text_space  # not a Module: its tower is self.model's
        dim = self.encoder.output_dim or text_space.dim
        self.temporal = TemporalTransformer(dim, width, layers, heads, max_frames, joint_dim,
                                            cross_attention=True, memory_dim=text_space.dim, dropout=dropout)
        self.text_proj = nn.Sequential(nn.LayerNorm(text_space.dim), nn.Linear(text_space.dim, joint_dim))
        self.prototypes = nn.Parameter(torch.randn(num_seen, joint_dim) / math.sqrt(joint_dim))
        self.logit_scale_v = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.logit_scale_t = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def label_features(self, texts: list[str], grad: bool = True) -> torch.Tensor:
        """``(C, D_text)`` CLIP text features of ``texts`` (recorded by the text space)."""
        if grad:
            return self.text_space.encode_torch(texts).float()
        return torch.from_numpy(self.text_space.encode(texts)).to(self.prototypes.device)

    def joint_labels(self, label_features: torch.Tensor) -> torch.Tensor:
        """``(C, J)`` unit label embeddings ``E`` in the joint space."""
        return F.normalize(self.text_proj(label_features.to(self.prototypes.dtype)), dim=-1)

    def embed_video(self, video: torch.Tensor, label_features: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3, H, W)`` + vocabulary features ``(M, D_text)`` -> ``(B, J)`` unit vectors."""
        frames = self.encoder(video, normalize=True)
        return F.normalize(self.temporal(frames, label_features).float(), dim=-1)

    def forward(self, video: torch.Tensor, texts: list[str]):
        """Training pass: ``(prototype logits (B, S), text logits (B, S), P·P (S, S), E·E (S, S))``."""
        feats = self.label_features(texts)
        z = self.embed_video(video, feats)
        protos = F.normalize(self.prototypes.float(), dim=-1)
        labels = self.joint_labels(feats).float()
        scale_v = self.logit_scale_v.clamp(max=math.log(100)).exp()
        scale_t = self.logit_scale_t.clamp(max=math.log(100)).exp()
        return scale_v * z @ protos.T, scale_t * z @ labels.T, protos @ protos.T, labels @ labels.T


class ResT(ZeroShotMethod):
    """Cross-modal representation learning + semantic transfer (method A).

    Args:
        width, layers, heads, joint_dim, dropout: cross-modal transformer size.
        max_frames: position embeddings (default: ``frames``).
        text_weight: ``λ_t``, weight of the visual–semantic (label) cross-entropy.
        structure_weight: ``λ_s``, weight of the prototype/label geometry consistency term.
        train_backbone: fine-tune the CLIP image tower (else frozen).
        train_text: fine-tune the CLIP text tower.
        prototype_source: ``"mean"`` (class means of the training videos' embeddings after
            training) or ``"learned"`` (the classifier's prototypes ``P``).
        transfer_k, transfer_temperature, transfer_alpha: semantic transfer's ``k``, ``τ``, ``α``.
        transfer_space: label relatedness space: ``"model"`` (the joint label embeddings ``E``),
            ``"clip"`` (the trained text tower), ``"minilm"`` or ``"glove"``.
        transfer_text_kind: which class text the relatedness compares (see ``TEXT_KINDS``).
        **kwargs: the :class:`~zsar.methods.base.ZeroShotMethod` arguments.
    """

    name = "rest"
    display_name = "ResT (cross-modal + transfer)"

    def __init__(self, width: int = 256, layers: int = 2, heads: int = 4, joint_dim: int = 256,
                 dropout: float = 0.0, max_frames: int | None = None, text_weight: float = 1.0,
                 structure_weight: float = 0.1, train_backbone: bool = True, train_text: bool = True,
                 prototype_source: str = "mean", transfer_k: int = 5, transfer_temperature: float = 0.1,
                 transfer_alpha: float = 1.0, transfer_space: str = "model", transfer_text_kind: str = "name",
                 **kwargs):
        super().__init__(**kwargs)
        self.width, self.layers, self.heads, self.joint_dim = width, layers, heads, joint_dim
        self.dropout, self.max_frames = dropout, max_frames
        self.text_weight, self.structure_weight = text_weight, structure_weight
        self.train_backbone, self.train_text = train_backbone, train_text
        self.prototype_source = prototype_source
        self.transfer_k, self.transfer_temperature = transfer_k, transfer_temperature
        self.transfer_alpha, self.transfer_space = transfer_alpha, transfer_space
        self.transfer_text_kind = transfer_text_kind

    def _check_params(self) -> None:
        super()._check_params()
        if self.transfer_space not in TRANSFER_SPACES:
            raise ValueError(f"transfer_space={self.transfer_space!r}; choose from {TRANSFER_SPACES}")
        if self.prototype_source not in PROTOTYPE_SOURCES:
            raise ValueError(f"prototype_source={self.prototype_source!r}; choose from {PROTOTYPE_SOURCES}")

    def _build_module(self, seen_texts: ClassTexts) -> ResTModule:
        self.seen_texts_ = seen_texts
        model, tokenizer = self._build_clip()
        for name, p in model.named_parameters():
            is_visual = name.startswith("visual.")
            p.requires_grad_((is_visual and self.train_backbone) or (not is_visual and self.train_text))
        # CLIP's own logit scale is unused here (ResT has its own); a trainable unused parameter
        # would make DDP fail to find its gradient
        model.logit_scale.requires_grad_(False)
        space = self._text_space("clip", model, tokenizer, trainable=self.train_text)
        return ResTModule(model, space, len(seen_texts), self.width, self.layers, self.heads,
                          self.max_frames or self.frames, self.joint_dim, self.dropout)

    def _loss_fn(self, seen_texts: ClassTexts):
        texts = seen_texts.texts(self.text_kind)

        def loss_fn(module: nn.Module, batch: dict):
            proto_logits, text_logits, pp, ee = module(batch["video"], texts)
            labels = batch["label"]
            visual = F.cross_entropy(proto_logits, labels)
            semantic = F.cross_entropy(text_logits, labels)
            structure = (pp - ee.detach()).pow(2).mean()
            loss = visual + self.text_weight * semantic + self.structure_weight * structure
            acc = (proto_logits.argmax(1) == labels).float().mean()
            return loss, {"visual": float(visual.detach()), "semantic": float(semantic.detach()),
                          "structure": float(structure.detach()), "acc": float(acc)}
        return loss_fn

    def _after_training(self, train_dataset, seen_texts: ClassTexts) -> None:
        """The seen vocabulary as memory, and the seen visual prototypes (learned, or class means)."""
        self.memory_ = self.module_.label_features(seen_texts.texts(self.text_kind), grad=False)
        if self.prototype_source == "learned":
            self.seen_prototypes_ = F.normalize(self.module_.prototypes.detach().float(), dim=-1).cpu().numpy()
        else:
            self.seen_prototypes_ = self._class_means(evaluation_view(train_dataset), len(seen_texts))

    def _val_scores(self, module: ResTModule, dataset, texts: ClassTexts) -> np.ndarray:
        memory = module.label_features(texts.texts(self.text_kind), grad=False)
        z = self._extract(lambda b: module.embed_video(b["video"], memory), dataset)
        return cosine_scores(z, module.prototypes.detach().float().cpu().numpy())

    def _class_means(self, dataset, num_classes: int) -> np.ndarray:
        z = self._embed(dataset)
        labels = dataset_labels(dataset)
        missing = sorted(set(range(num_classes)) - set(labels.tolist()))
        if missing:
            raise ValueError(f"seen classes {missing} have no training video to build a prototype from")
        means = np.stack([z[labels == c].mean(axis=0) for c in range(num_classes)])
        return l2_normalize(means)

    def _embed(self, dataset) -> np.ndarray:
        return self._extract(self._embed_batch, dataset)

    def _embed_batch(self, batch: dict) -> torch.Tensor:
        """``(B, J)`` unit video embeddings (video tokens attend to the seen vocabulary)."""
        return self.module_.embed_video(batch["video"], self.memory_)

    @torch.no_grad()
    def _joint_label_embeddings(self, texts: ClassTexts) -> np.ndarray:
        feats = self.module_.label_features(texts.texts(self.text_kind), grad=False)
        return self.module_.joint_labels(feats).float().cpu().numpy()

    def _relatedness_embeddings(self, texts: ClassTexts) -> np.ndarray:
        """``(C, E)`` label embeddings in ``transfer_space`` of ``texts.texts(transfer_text_kind)``."""
        strings = texts.texts(self.transfer_text_kind)
        if self.transfer_space == "model":
            with torch.no_grad():
                feats = self.module_.label_features(strings, grad=False)
                return self.module_.joint_labels(feats).float().cpu().numpy()
        if self.transfer_space == "clip":
            return self.module_.text_space.encode(strings)
        if getattr(self, "relatedness_space_", None) is None:
            self.relatedness_space_ = self._text_space(self.transfer_space, class_texts=False)
        return self.relatedness_space_.encode(strings)

    @torch.no_grad()
    def label_embeddings(self, texts: ClassTexts, space: str, kind: str) -> np.ndarray:
        """``(C, E)`` embeddings of ``texts.texts(kind)`` in the fitted model's ``"model"`` (joint) or ``"clip"`` space."""
        self.check_is_fitted()
        strings = texts.texts(kind)
        if space == "model":
            return self.module_.joint_labels(self.module_.label_features(strings, grad=False)).float().cpu().numpy()
        if space == "clip":
            return self.module_.text_space.encode(strings)
        raise ValueError(f"space={space!r}: only the fitted model's spaces 'model' and 'clip' (the others need no model)")

    def analysis_arrays(self, seen_texts: ClassTexts, unseen_texts: ClassTexts) -> dict[str, np.ndarray]:
        """What a transfer analysis needs of the fitted model, for the run artefact (test-time texts).

        Returns:
            ``labels_<space>_<kind>`` ``(S+U, E)`` for the spaces ``model``/``clip`` and the kinds
            ``name``, ``description`` and the method's own; ``text_prototypes`` ``(S+U, J)`` (joint
            label embeddings of ``text_kind``); ``relatedness`` and ``transfer_weights`` ``(U, S)``
            of the transfer the method predicts with.
        """
        texts = seen_texts + unseen_texts
        kinds = dict.fromkeys(("name", "description", self.text_kind, self.transfer_text_kind))
        arrays = {f"labels_{space}_{kind}": self.label_embeddings(texts, space, kind)
                  for space in ("model", "clip") for kind in kinds}
        transfer = self.explain_transfer(unseen_texts)
        return {**arrays, "text_prototypes": arrays[f"labels_model_{self.text_kind}"],
                "relatedness": transfer.relatedness, "transfer_weights": transfer.weights}

    def explain_transfer(self, target_texts: ClassTexts) -> TransferResult:
        """Semantic transfer of ``target_texts`` from the fitted seen classes (weights included)."""
        self.check_is_fitted()
        rel = relatedness_matrix(self._relatedness_embeddings(target_texts),
                                 self._relatedness_embeddings(self.seen_texts_))
        text = self._joint_label_embeddings(target_texts) if self.transfer_alpha < 1 else None
        return semantic_transfer(self.seen_prototypes_, rel, self.transfer_k, self.transfer_temperature,
                                 text, self.transfer_alpha)

    def class_prototypes(self, target_texts: ClassTexts, seen_texts: ClassTexts | None = None) -> np.ndarray:
        """``(C, J)`` prototypes: a seen class keeps its own, the others are transferred.

        ``seen_texts`` is not needed: the method remembers the vocabulary it was fitted on.
        The last transfer is kept in ``transfer_`` (for notebooks).
        """
        self.check_is_fitted()
        own = self.seen_texts_.index_of(target_texts.names)
        novel = [i for i, s in enumerate(own) if s is None]
        protos = np.zeros((len(target_texts), self.seen_prototypes_.shape[1]), dtype=np.float32)
        for i, s in enumerate(own):
            if s is not None:
                protos[i] = self.seen_prototypes_[s]
        if novel:
            self.transfer_ = self.explain_transfer(target_texts.subset(novel))
            protos[novel] = self.transfer_.prototypes
        return protos
