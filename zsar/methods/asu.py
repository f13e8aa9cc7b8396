"""ASU (method B): attentive semantic units (after Chen et al., ICCV 2023; see ``REFERENCE.md``).

Design (the paper's exact formulas are not available; this follows its summary):

* **Semantic units.** A :class:`~zsar.text.units.UnitBank` of body parts, objects, scenes and
  motions, built in ``fit`` from the *seen* classes' units only (declared, or extracted from
  names/descriptions by :func:`~zsar.text.units.with_extracted_units` when a class has none), and
  embedded by a semantic space (``unit_space``: the CLIP text tower, MiniLM or GloVe), projected
  to the model width ``W``.
* **Multi-region attention (MRA).** Besides the global frame embedding, ``R`` learned region
  queries attention-pool the frame's spatial tokens (ViT patch tokens or the ResNet feature map)
  into ``R`` region features: ``Q = 1 + R`` visual tokens per frame.
* **Unit selection.** Per frame and per group, each visual token's softmax attention over the
  group's units is averaged over the ``Q`` tokens (optionally kept to its ``unit_top_k`` largest
  weights, renormalised); the weighted unit values give one *selected unit* token per frame and
  group (``T * 4`` tokens, with group and time embeddings).
* **Cross-modal decoder.** Transformer decoder layers: a ``[CLS]`` video query and the ``T * Q``
  visual tokens (time + slot embeddings, so the model is order-aware) self-attend, then
  cross-attend to the selected unit tokens. The video embedding is
  ``normalize(mean_t f_t + proj([CLS]))`` in the CLIP joint space, matched by cosine to the CLIP
  text embeddings of the class texts (cross-entropy over the seen classes with a learned scale).
* **Unit loss** (a project addition, ``unit_loss_weight``; 0 disables it): per group,
  ``-log`` of the clip's attention mass on its class's declared units, so the selection is
  supervised by the seen classes' units and :meth:`ASU.unit_attention` is interpretable.
* **Ablations.** ``use_mra=False``: global frame features only. ``use_unit_selection=False``:
  the decoder cross-attends to the whole bank, every clip alike (no per-frame selection).
* **Zero-shot inference.** Unseen classes are scored through their text embeddings. The video
  side attends to the seen bank (``inference_units="seen"``, a video's embedding is then
  independent of the test vocabulary) or to the seen bank extended by the target classes' units
  (``"target"``; those texts are test-time knowledge, encoded only in :meth:`predict_scores`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zsar.evaluation.scores import cosine_scores
from zsar.methods.base import ZeroShotMethod, autocast_for
from zsar.methods.rest import CrossModalBlock
from zsar.models import FrameEncoder
from zsar.text.class_texts import ClassTexts
from zsar.text.units import UnitBank, with_extracted_units

UNIT_SPACES = ("clip", "minilm", "glove")
INFERENCE_UNITS = ("seen", "target")


class MultiRegionAttention(nn.Module):
    """``R`` learned queries attention-pool spatial tokens ``(B, T, N, C)`` into ``(B, T, R, W)``."""

    def __init__(self, token_dim: int, width: int, regions: int, heads: int):
        super().__init__()
        self.token_proj = nn.Sequential(nn.LayerNorm(token_dim), nn.Linear(token_dim, width))
        self.queries = nn.Parameter(torch.randn(regions, width) * 0.02)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_out = nn.LayerNorm(width)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Region features ``(B, T, R, W)`` and their attention maps ``(B, T, R, N)``."""
        b, t, n, _ = tokens.shape
        kv = self.token_proj(tokens.flatten(0, 1))
        q = self.queries.unsqueeze(0).expand(b * t, -1, -1).to(kv.dtype)
        out, weights = self.attn(q, kv, kv, need_weights=True)
        return self.ln_out(out).reshape(b, t, -1, out.shape[-1]), weights.reshape(b, t, -1, n)


class UnitSelection(nn.Module):
    """Visual tokens attend to each group's units; one selected-unit token per frame and group.

    Args:
        width: model width ``W``.
        top_k: keep each frame's ``k`` largest weights per group (renormalised); ``None``: all.
    """

    def __init__(self, width: int, top_k: int | None = None):
        super().__init__()
        self.ln = nn.LayerNorm(width)
        self.query, self.key, self.value = (nn.Linear(width, width) for _ in range(3))
        self.top_k = top_k

    def forward(self, visual: torch.Tensor, units: torch.Tensor,
                sizes: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """``visual`` ``(B, T, Q, W)``, ``units`` ``(U, W)`` grouped by ``sizes`` ->
        selected tokens ``(B, T, G, W)`` and frame weights ``(B, T, U)`` (each group sums to 1)."""
        logits = self.query(self.ln(visual)) @ self.key(units).T / math.sqrt(units.shape[-1])
        values = self.value(units)
        selected, weights, start = [], [], 0
        for size in sizes:
            a = logits[..., start:start + size].float().softmax(-1).mean(2)  # (B, T, U_g)
            if self.top_k is not None and 0 < self.top_k < size:
                kept = torch.zeros_like(a).scatter(-1, a.topk(self.top_k, dim=-1).indices, 1.0)
                a = a * kept / (a * kept).sum(-1, keepdim=True)
            selected.append(a.to(values.dtype) @ values[start:start + size])
            weights.append(a)
            start += size
        return torch.stack(selected, dim=2), torch.cat(weights, dim=-1)


class ASUNetwork(nn.Module):
    """CLIP towers + MRA + unit selection + cross-modal decoder (see the module docstring).

    Args:
        model: open_clip model; its image tower encodes frames, its text tower the class texts.
        text_space: :class:`~zsar.models.ClipTextSpace` of the class texts over ``model``.
        unit_dim: size of the unit embeddings given to :meth:`embed_video`.
        width, layers, heads, regions, max_frames, dropout: network size.
        use_mra, use_unit_selection, unit_top_k: the switches of :class:`ASU`.
        groups: number of unit groups ``G``.
        unit_space: a trainable :class:`~zsar.models.ClipTextSpace` over ``model`` when units are
            given to :meth:`forward` as strings (encoded inside the forward pass, as DDP needs).
    """

    def __init__(self, model: nn.Module, text_space, unit_dim: int, width: int = 256, layers: int = 2,
                 heads: int = 4, regions: int = 4, max_frames: int = 32, dropout: float = 0.0,
                 use_mra: bool = True, use_unit_selection: bool = True, unit_top_k: int | None = None,
                 groups: int = 4, unit_space=None):
        super().__init__()
        # the spaces are not Modules: their tower is model's
        self.model, self.text_space, self.unit_space = model, text_space, unit_space
        self.encoder = FrameEncoder(model)
        dim = self.encoder.output_dim or text_space.dim
        if use_mra and self.encoder.token_dim is None:
            raise ValueError(f"use_mra needs spatial tokens; {type(self.encoder.visual).__name__} has none")
        self.frame_proj = nn.Linear(dim, width)
        self.mra = MultiRegionAttention(self.encoder.token_dim, width, regions, heads) if use_mra else None
        self.slot_embedding = nn.Parameter(torch.randn(1 + (regions if use_mra else 0), width) * 0.02)
        self.time_embedding = nn.Parameter(torch.randn(max_frames, width) * 0.02)
        self.unit_proj = nn.Sequential(nn.LayerNorm(unit_dim), nn.Linear(unit_dim, width))
        self.group_embedding = nn.Parameter(torch.randn(groups, width) * 0.02)
        self.selection = UnitSelection(width, unit_top_k) if use_unit_selection else None
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.blocks = nn.ModuleList(CrossModalBlock(width, heads, True, dropout) for _ in range(layers))
        self.ln_out = nn.LayerNorm(width)
        self.out_proj = nn.Linear(width, text_space.dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def visual_tokens(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit frame embeddings ``(B, T, D)`` and visual tokens ``(B, T, Q, W)`` (global [+ regions])."""
        if self.mra is None:
            frames = self.encoder(video, normalize=True)
            return frames, self.frame_proj(frames).unsqueeze(2)
        frames, tokens = self.encoder(video, return_tokens=True, normalize=True)
        regions, _ = self.mra(tokens)
        glob = self.frame_proj(frames).unsqueeze(2)
        return frames, torch.cat([glob, regions.to(glob.dtype)], dim=2)

    def embed_video(self, video: torch.Tensor, unit_features: torch.Tensor,
                    sizes: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(B, T, 3, H, W)`` + units ``(U, D_u)`` grouped by ``sizes`` -> ``(B, D)`` unit vectors
        and the clip-level unit attention ``(B, U)`` (``None`` without unit selection)."""
        return self.decode(*self.visual_tokens(video), unit_features, sizes)

    def decode(self, frames: torch.Tensor, visual: torch.Tensor, unit_features: torch.Tensor,
               sizes: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`embed_video` from :meth:`visual_tokens`' ``(B, T, D)`` frames and ``(B, T, Q, W)`` tokens."""
        b, t = visual.shape[:2]
        if t > self.time_embedding.shape[0]:
            raise ValueError(f"clip has {t} frames, ASU at most {self.time_embedding.shape[0]} (max_frames)")
        units = self.unit_proj(unit_features.to(self.unit_proj[1].weight.dtype))
        time = self.time_embedding[:t].to(visual.dtype)
        attention = None
        if self.selection is not None:
            selected, frame_weights = self.selection(visual, units, sizes)
            memory = (selected + self.group_embedding.to(selected.dtype) + time[None, :, None]).flatten(1, 2)
            attention = frame_weights.mean(1)
        else:
            group_of = torch.repeat_interleave(torch.arange(len(sizes), device=units.device),
                                               torch.as_tensor(sizes, device=units.device))
            memory = (units + self.group_embedding[group_of].to(units.dtype)).unsqueeze(0).expand(b, -1, -1)
        x = (visual + self.slot_embedding.to(visual.dtype) + time[None, :, None]).flatten(1, 2)
        x = torch.cat([self.cls_token.expand(b, -1, -1).to(x.dtype), x], dim=1)
        for block in self.blocks:
            x = block(x, memory.to(x.dtype))
        z = frames.float().mean(1) + self.out_proj(self.ln_out(x[:, 0])).float()
        return F.normalize(z, dim=-1), attention

    def forward(self, video: torch.Tensor, class_texts: list[str], units: torch.Tensor | list[str],
                sizes: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Training pass: logits ``(B, C)`` over ``class_texts`` and the unit attention ``(B, U)``.

        ``units`` are fixed embeddings ``(U, D_u)`` or unit strings for ``unit_space``. Texts are
        encoded here, inside the forward pass, so that DDP sees the text tower's use.
        """
        if not isinstance(units, torch.Tensor):
            units = self.unit_space.encode_torch(list(units)).float()
        class_features = self.text_space.encode_torch(list(class_texts)).float()
        z, attention = self.embed_video(video, units, sizes)
        scale = self.logit_scale.clamp(max=math.log(100)).exp()
        return scale * z @ F.normalize(class_features, dim=-1).T, attention


def unit_selection_loss(attention: torch.Tensor, membership: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """Mean over groups of ``-log`` (attention mass on the clip's own units).

    Args:
        attention: ``(B, U)`` clip-level unit attention (each group sums to 1).
        membership: ``(B, U)`` 1 where the clip's class declares the unit.
        sizes: ``U_g`` per group. Clips whose class has no unit in a group do not count there.
    """
    losses, start = [], 0
    for size in sizes:
        mask = membership[:, start:start + size]
        valid = mask.sum(-1) > 0
        if size and valid.any():
            mass = (attention[:, start:start + size] * mask).sum(-1)[valid]
            losses.append(-mass.clamp_min(1e-6).log().mean())
        start += size
    return torch.stack(losses).mean() if losses else attention.sum() * 0.0


class ASU(ZeroShotMethod):
    """Attentive semantic units (method B): region-aware video features decoded with selected units.

    Args:
        width, layers, heads, dropout: cross-modal decoder size (``width`` divisible by ``heads``).
        regions: ``R``, the region queries of multi-region attention.
        max_frames: time embeddings (default: ``frames``).
        use_mra: multi-region attention (``False``: the global frame features only).
        use_unit_selection: per-frame unit selection (``False``: the decoder attends to the whole
            bank alike for every clip, and :meth:`unit_attention` is unavailable).
        unit_top_k: keep the ``k`` most attended units per group and frame; ``None``: soft attention.
        unit_space: semantic space of the unit embeddings: ``"clip"`` (the model's text tower,
            trained with it when ``train_text``), ``"minilm"`` or ``"glove"`` (fixed).
        unit_loss_weight: weight of :func:`unit_selection_loss` (``0``: class cross-entropy only).
        inference_units: ``"seen"`` (the fitted bank) or ``"target"`` (plus the target classes'
            units, in :meth:`predict_scores` and :meth:`unit_attention` with ``target_texts``).
        max_units_per_group: units kept per group when they are extracted from texts (classes
            without declared units, see :func:`~zsar.text.units.with_extracted_units`).
        train_backbone: fine-tune the CLIP image tower.
        train_text: fine-tune the CLIP text tower.
        **kwargs: the :class:`~zsar.methods.base.ZeroShotMethod` arguments.

    Attributes:
        bank_: the :class:`~zsar.text.units.UnitBank` of the seen classes (fitted).
        module_: the :class:`ASUNetwork`.
    """

    name = "asu"
    display_name = "ASU (attentive semantic units)"

    def __init__(self, width: int = 256, layers: int = 2, heads: int = 4, regions: int = 4, dropout: float = 0.0,
                 max_frames: int | None = None, use_mra: bool = True, use_unit_selection: bool = True,
                 unit_top_k: int | None = None, unit_space: str = "clip", unit_loss_weight: float = 0.1,
                 inference_units: str = "seen", max_units_per_group: int = 4, train_backbone: bool = True,
                 train_text: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.width, self.layers, self.heads, self.regions = width, layers, heads, regions
        self.dropout, self.max_frames = dropout, max_frames
        self.use_mra, self.use_unit_selection, self.unit_top_k = use_mra, use_unit_selection, unit_top_k
        self.unit_space, self.unit_loss_weight = unit_space, unit_loss_weight
        self.inference_units, self.max_units_per_group = inference_units, max_units_per_group
        self.train_backbone, self.train_text = train_backbone, train_text

    def _check_params(self) -> None:
        super()._check_params()
        if self.unit_space not in UNIT_SPACES:
            raise ValueError(f"unit_space={self.unit_space!r}; choose from {UNIT_SPACES}")
        if self.inference_units not in INFERENCE_UNITS:
            raise ValueError(f"inference_units={self.inference_units!r}; choose from {INFERENCE_UNITS}")
        if self.unit_top_k is not None and (not isinstance(self.unit_top_k, int) or self.unit_top_k < 1):
            raise ValueError(f"unit_top_k must be a positive int or None, got {self.unit_top_k!r}")
        if self.width % self.heads:
            raise ValueError(f"width={self.width} must be divisible by heads={self.heads}")

    def _with_units(self, texts: ClassTexts) -> ClassTexts:
        return with_extracted_units(texts, max_per_group=self.max_units_per_group)

    def _build_module(self, seen: ClassTexts) -> ASUNetwork:
        """The unit bank of the seen classes' units only, then the network on a fresh backbone."""
        self.bank_ = UnitBank.from_texts(seen)
        if len(self.bank_) == 0:
            raise ValueError("ASU: the seen classes have no semantic units (none declared, none found in "
                             "their names/descriptions with the unit vocabulary)")
        self.seen_texts_ = seen
        model, tokenizer = self._build_clip()
        for name, p in model.named_parameters():
            is_visual = name.startswith("visual.")
            p.requires_grad_((is_visual and self.train_backbone) or (not is_visual and self.train_text))
        model.logit_scale.requires_grad_(False)  # ASU has its own scale; DDP rejects unused trainables
        space = self._text_space("clip", model, tokenizer, trainable=self.train_text)
        # units are words, not class names: no prompt template
        self.unit_space_ = self._text_space(self.unit_space, model, tokenizer, trainable=self.train_text,
                                            class_texts=False)
        return ASUNetwork(model, space, self.unit_space_.dim, self.width, self.layers, self.heads, self.regions,
                          self.max_frames or self.frames, self.dropout, self.use_mra, self.use_unit_selection,
                          self.unit_top_k, unit_space=self.unit_space_ if self._units_trained() else None)

    def _units_trained(self) -> bool:
        """Whether unit embeddings change in training (CLIP unit space with a trainable text tower)."""
        return self.unit_space == "clip" and self.train_text

    def _unit_features(self, bank: UnitBank) -> torch.Tensor:
        """``(U, D_u)`` embeddings of ``bank``'s units, without gradients."""
        return torch.from_numpy(bank.embed(self.unit_space_)).to(self.device_)

    def _fit_texts(self, seen_texts: ClassTexts) -> ClassTexts:
        """The seen classes with their units (extracted where none are declared); the bank is built
        from these only."""
        return self._with_units(seen_texts)

    def _loss_fn(self, seen: ClassTexts):
        texts = seen.texts(self.text_kind)
        membership = self.bank_.membership(seen)
        membership = torch.from_numpy(np.concatenate([membership[g] for g in self.bank_.groups], axis=1))
        sizes = self.bank_.sizes
        units = self.bank_.all_units if self._units_trained() else self._unit_features(self.bank_)

        def loss_fn(module: nn.Module, batch: dict):
            logits, attention = module(batch["video"], texts, units, sizes)
            labels = batch["label"]
            ce = F.cross_entropy(logits, labels)
            logs = {"acc": float((logits.argmax(1) == labels).float().mean()), "ce": float(ce.detach())}
            if attention is None or not self.unit_loss_weight:
                return ce, logs
            unit = unit_selection_loss(attention, membership.to(labels.device)[labels], sizes)
            return ce + self.unit_loss_weight * unit, {**logs, "unit": float(unit.detach())}
        return loss_fn

    def _val_scores(self, module: ASUNetwork, dataset, texts: ClassTexts) -> np.ndarray:
        units = self._unit_features(self.bank_)
        z = self._extract(lambda b: module.embed_video(b["video"], units, self.bank_.sizes)[0], dataset)
        return cosine_scores(z, module.text_space.encode(texts.texts(self.text_kind)))

    def inference_bank(self, target_texts: ClassTexts | None = None) -> UnitBank:
        """The bank videos attend to: ``bank_``, plus ``target_texts``' units if ``inference_units="target"``."""
        self.check_is_fitted()
        if target_texts is None or self.inference_units == "seen":
            return self.bank_
        return self.bank_.union(UnitBank.from_texts(self._with_units(target_texts)))

    def _embed(self, dataset, bank: UnitBank, attention: bool = False) -> np.ndarray:
        units = self._unit_features(bank)
        pick = 1 if attention else 0
        return self._extract(lambda b: self.module_.embed_video(b["video"], units, bank.sizes)[pick], dataset)

    def video_embeddings(self, dataset) -> np.ndarray:
        """``(N, D)`` unit video embeddings, attending to the seen bank ``bank_``."""
        self.check_is_fitted()
        return self._embed(dataset, self.bank_)

    def class_prototypes(self, target_texts: ClassTexts, seen_texts: ClassTexts | None = None) -> np.ndarray:
        """``(C, D)`` CLIP text embeddings of the target classes' texts (``text_kind``)."""
        self.check_is_fitted()
        texts = self._with_units(target_texts) if self.text_kind == "units" else target_texts
        return self.module_.text_space.encode(texts.texts(self.text_kind))

    def video_features(self, dataset) -> dict[str, np.ndarray]:
        """``{"embedding"}`` (attending to the seen bank); with ``inference_units="target"`` also the
        ``"frames"`` ``(N, T, D)`` and ``"visual"`` ``(N, T, Q, W)`` tokens the decoder attends from,
        so that a test-time bank is applied in :meth:`scores_from_features` without decoding again."""
        if self.inference_units == "seen":
            return super().video_features(dataset)
        self.check_is_fitted()
        tokens = self._extract(lambda b: torch.cat([t.flatten(2) for t in self.module_.visual_tokens(b["video"])], -1),
                               dataset)
        frames, visual = self._split_tokens(torch.from_numpy(tokens))
        units = self._unit_features(self.bank_)
        embedding = self._decode(frames, visual, units, self.bank_.sizes)
        return {"embedding": embedding, "frames": frames.numpy(), "visual": visual.numpy()}

    def _split_tokens(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dim = self.module_.frame_proj.in_features
        n, t = tokens.shape[:2]
        return tokens[..., :dim], tokens[..., dim:].reshape(n, t, -1, self.module_.frame_proj.out_features)

    def _decode(self, frames, visual, units: torch.Tensor, sizes) -> np.ndarray:
        """``(N, D)`` embeddings decoded from stored tokens, in batches of :meth:`_eval_batch`."""
        device, step, out = self.device_, self._eval_batch(), []
        with torch.no_grad():
            for i in range(0, len(frames), step):
                f, v = (torch.as_tensor(x[i:i + step]).to(device) for x in (frames, visual))
                with autocast_for(self.amp, device):
                    out.append(self.module_.decode(f, v, units, sizes)[0].float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, self.module_.text_space.dim), np.float32)

    def scores_from_features(self, features: dict[str, np.ndarray], target_texts: ClassTexts,
                             seen_texts: ClassTexts | None = None) -> np.ndarray:
        """``(N, C)`` cosine scores; videos attend to :meth:`inference_bank` of ``target_texts``."""
        if self.inference_units == "seen":
            return super().scores_from_features(features, target_texts, seen_texts)
        bank = self.inference_bank(target_texts)
        embedding = self._decode(features["frames"], features["visual"], self._unit_features(bank), bank.sizes)
        return cosine_scores(embedding, self.class_prototypes(target_texts))

    def unit_attention(self, dataset, target_texts: ClassTexts | None = None) -> dict[str, np.ndarray]:
        """Per-clip attention over each group's units, averaged over frames and visual tokens.

        Args:
            dataset: the clips.
            target_texts: with ``inference_units="target"``, attend to their units too.

        Returns:
            ``{group: (N, U_g)}`` float32, rows summing to 1 (empty groups: ``(N, 0)``); column
            ``j`` is unit ``self.inference_bank(target_texts).units[group][j]``.

        Raises:
            ValueError: the method was built with ``use_unit_selection=False``.
        """
        self.check_is_fitted()
        if not self.use_unit_selection:
            raise ValueError("unit_attention needs use_unit_selection=True (no unit is selected otherwise)")
        bank = self.inference_bank(target_texts)
        weights = self._embed(dataset, bank, attention=True)
        return {g: weights[:, s] for g, s in bank.slices().items()}


def declared_attention_mass(attention: dict[str, np.ndarray], units: dict[str, tuple[str, ...]],
                            declared: list[dict[str, tuple[str, ...]]]) -> tuple[dict[str, float], dict[str, float]]:
    """Per group: the mean attention mass on the units of the clip's own class, and what uniform attention gives.

    Args:
        attention: ``{group: (N, U_g)}`` clip-level unit attention (:meth:`ASU.unit_attention`).
        units: ``{group: unit names}`` of the bank the clips attended to.
        declared: per clip ``{group: units of its class}``.

    Returns:
        ``(mass, uniform)``, each ``{group: float}``, over the clips whose class has a unit of the
        bank in that group (groups without such clips are left out).
    """
    mass, uniform = {}, {}
    for g, w in attention.items():
        mask = np.array([[u in d.get(g, ()) for u in units[g]] for d in declared], dtype=bool).reshape(len(declared), -1)
        rows = mask.any(1)
        if w.shape[1] and rows.any():
            mass[g] = float((w * mask).sum(1)[rows].mean())
            uniform[g] = float((mask.sum(1) / w.shape[1])[rows].mean())
    return mass, uniform
