"""Motion prompts (method C): motion-aware dynamic text prompts for a frozen CLIP.

After "Seeing in Flowing: Adapting CLIP for Action Recognition with Motion Prompts Learning"
(Wang et al., ACM MM 2023). Both CLIP towers stay frozen (by default, when the backbone has
pretrained weights: see ``freeze_backbone``); three small blocks train:

* **Two-stream motion block** (:class:`MotionBlock`): per-frame CLIP features ``(B, T, D)`` go
  through a spatial stream (a per-frame MLP) and a motion stream (differences of consecutive
  frame features, then a depthwise temporal 1-D convolution); the fused streams are added to the
  frame features as a residual. The time-pooled motion stream is the video's *motion cue*.
* **Dynamic prompt learner** (:class:`PromptLearner`): ``P`` shared learned context vectors in
  the text tower's token-embedding space (CoOp) plus a per-video shift generated from the motion
  cue by a small meta-net (CoCoOp). They are inserted after the start token of every class text:
  ``[SOS] [ctx_1 + s_1(video)] ... [ctx_P + s_P(video)] <class text tokens> [EOS]``.
* **Multimodal communication block** (:class:`CommunicationBlock`): the video tokens attend to
  the (per-video) class-text features and the class-text features attend to the video tokens.

Cost of the prompt-conditioned text encoder (:func:`encode_prompted_text`): with dynamic
prompts a batch of ``B`` videos over ``C`` classes needs ``B * C`` text-transformer passes (one
per video and class, batched into one call); static prompts need ``C``. The sequences are short:
the text transformer is causal, so the EOS feature depends only on the tokens before it, and each
call is cut to ``L = P + max_c(len(tokens_c)) + 1`` tokens instead of the full context
(``L = 14`` with ``P = 4`` for the embedded benchmark's names, instead of ``32`` / ``77``). A
step therefore costs about ``B * C * L`` token positions through the text tower (plain CLIP
prompts: ``C * 77``); the class tokens are embedded once per call and shared by all videos, and
the per-video shift is one meta-net call per video. Prediction runs in ``eval_batch_size`` chunks.

Scores: :meth:`MotionPrompts.predict_scores` is the method's own score, ``exp(s) * cos`` of each
video with its own (motion-prompted, communicated) class features. The decomposition asked by
the API is an approximation of it: :meth:`~MotionPrompts.video_embeddings` are the visual
branch before communication, :meth:`~MotionPrompts.class_prototypes` the text features with
the shared context only (no per-video shift, no communication).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zsar.methods.base import ZeroShotMethod, autocast_for, cross_entropy_and_accuracy
from zsar.models import FrameEncoder, count_parameters, text_embed_dim
from zsar.text.class_texts import ClassTexts
from zsar.text.semantic import SemanticSpace

MAX_LOGIT_SCALE = math.log(100.0)


def _text_tower(model: nn.Module) -> nn.Module:
    """The module holding the text tower's parts: ``model`` itself for open_clip's ``CLIP``, its
    ``text`` for a ``CustomTextCLIP`` (open_clip's own transformer, or a Hugging Face encoder)."""
    tower = getattr(model, "text", model)
    if not _is_hf(tower) and not (hasattr(tower, "token_embedding") and hasattr(tower, "positional_embedding")):
        raise NotImplementedError(f"prompt learning needs open_clip's text transformer or a Hugging Face text "
                                  f"encoder, got {type(tower).__name__}")
    return tower


def _is_hf(tower: nn.Module) -> bool:
    """A Hugging Face text tower (open_clip's ``HFTextEncoder``: ``transformer``, ``pooler``, ``proj``)."""
    return hasattr(tower, "pooler") and hasattr(getattr(tower, "transformer", None), "get_input_embeddings")


def token_embedding(model: nn.Module) -> nn.Embedding:
    """The text tower's token embedding (prompt vectors live in its space)."""
    tower = _text_tower(model)
    return tower.transformer.get_input_embeddings() if _is_hf(tower) else tower.token_embedding


def context_length(model: nn.Module, tokenizer) -> int:
    """Tokens a class text plus its prompts may take: the tower's positions, or the tokenizer's length."""
    tower = _text_tower(model)
    if _is_hf(tower):
        return int(getattr(tokenizer, "context_length", None) or tower.transformer.config.max_position_embeddings)
    return int(tower.positional_embedding.shape[0])


def eos_positions(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``(C,)`` index of each text's pooled (EOS) token in ``tokens`` ``(C, L)``."""
    tower = _text_tower(model)
    pool = getattr(tower, "text_pool_type", getattr(tower, "pool_type", "argmax"))
    if pool == "argmax":
        return tokens.argmax(dim=-1)
    if pool == "eos":
        eos = getattr(tower, "text_eos_id", getattr(tower, "eos_id", None))
        return (tokens == eos).int().argmax(dim=-1)
    raise NotImplementedError(f"text pool type {pool!r} is not supported by prompt insertion")


def encode_prompted_text(model: nn.Module, prompts: torch.Tensor, tokens: torch.Tensor,
                         token_grad: bool = False) -> torch.Tensor:
    """Text features of ``C`` class texts with ``P`` prompt vectors after the start token.

    open_clip's ``encode_text`` with the embedded sequence built by hand; differentiable in
    ``prompts`` (and in the tower, where its parameters require grad). With open_clip's own
    transformer, sequences are cut after the last EOS (exact: the attention mask is causal); with
    a Hugging Face encoder (e.g. MiniLM) the prompts are attended like tokens and pooled with them.

    Args:
        model: open_clip model (``CLIP`` or ``CustomTextCLIP``).
        prompts: ``(G, P, W)`` prompt vectors in the token-embedding space (``G`` groups, e.g. one
            per video; ``G = 1`` for shared prompts).
        tokens: ``(C, L0)`` tokenised class texts, ``L0 + P <= context_length``.
        token_grad: keep gradients through the class-token embeddings (a trainable tower).

    Returns:
        ``(G, C, D)`` unit text features.
    """
    tower = _text_tower(model)
    if _is_hf(tower):
        return _encode_prompted_hf(tower, prompts, tokens, token_grad)
    g, p, width = prompts.shape
    eos = eos_positions(model, tokens)
    length = int(eos.max()) + 1 + p
    if length > tower.positional_embedding.shape[0]:
        raise ValueError(f"{p} prompts + {int(eos.max()) + 1} tokens exceed the context length "
                         f"{tower.positional_embedding.shape[0]}")
    cast = tower.transformer.get_cast_dtype()
    with torch.set_grad_enabled(token_grad and torch.is_grad_enabled()):
        embedded = tower.token_embedding(tokens[:, :length - p]).to(cast)   # (C, L - P, W)
    c = embedded.shape[0]
    x = torch.cat([embedded[:, :1].expand(g, c, 1, width),
                   prompts.to(cast)[:, None].expand(g, c, p, width),
                   embedded[:, 1:].expand(g, c, length - p - 1, width)], dim=2).reshape(g * c, length, width)
    x = x + tower.positional_embedding[:length].to(cast)
    mask = tower.attn_mask[:length, :length] if tower.attn_mask is not None else None
    x = tower.ln_final(tower.transformer(x, attn_mask=mask))
    x = x[torch.arange(g * c, device=x.device), (eos + p).repeat(g)]
    proj = tower.text_projection
    if proj is not None:
        x = proj(x) if isinstance(proj, nn.Linear) else x @ proj
    return F.normalize(x.reshape(g, c, -1), dim=-1)


def _encode_prompted_hf(tower: nn.Module, prompts: torch.Tensor, tokens: torch.Tensor,
                        token_grad: bool) -> torch.Tensor:
    """:func:`encode_prompted_text` through open_clip's ``HFTextEncoder``: ``[CLS] prompts text [SEP]``.

    The word embeddings of ``tokens`` ``(C, L0)`` get the ``(G, P, W)`` prompts after ``[CLS]``;
    the encoder adds its own position and segment embeddings (``inputs_embeds``), padding is masked
    out, and the tower's pooler and projection give ``(G, C, D)`` unit features.
    """
    g, p, width = prompts.shape
    keep = (tokens != tower.config.pad_token_id)                              # (C, L0)
    length = int(keep.sum(dim=1).max())                                       # drop all-padding columns
    tokens, keep = tokens[:, :length], keep[:, :length].long()
    with torch.set_grad_enabled(token_grad and torch.is_grad_enabled()):
        embedded = tower.transformer.get_input_embeddings()(tokens)           # (C, L, W)
    c = embedded.shape[0]
    x = torch.cat([embedded[:, :1].expand(g, c, 1, width), prompts.to(embedded.dtype)[:, None].expand(g, c, p, width),
                   embedded[:, 1:].expand(g, c, length - 1, width)], dim=2).reshape(g * c, length + p, width)
    mask = torch.cat([keep[:, :1], keep.new_ones(c, p), keep[:, 1:]], dim=1).repeat(g, 1)
    out = tower.transformer(inputs_embeds=x, attention_mask=mask)
    pooled = tower.pooler(out, mask)
    return F.normalize(tower.proj(pooled).reshape(g, c, -1), dim=-1)


class MotionBlock(nn.Module):
    """Two-stream motion modelling: spatial (per frame) + motion (temporal differences, 1-D conv).

    Args:
        dim: ``D``, frame feature size (in and out).
        width: ``W``, hidden width of the streams (and of the motion cue).
        use_motion_stream: ``False`` keeps the spatial stream only (order-invariant).
        kernel_size: odd temporal kernel of the motion stream's depthwise convolution.
        init_scale: initial value of the residual's per-channel scale (LayerScale).
    """

    def __init__(self, dim: int, width: int, use_motion_stream: bool = True, kernel_size: int = 3,
                 init_scale: float = 0.1):
        super().__init__()
        self.use_motion_stream = use_motion_stream
        self.in_proj = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, width))
        self.spatial = nn.Sequential(nn.Linear(width, width), nn.GELU())
        if use_motion_stream:
            self.temporal_conv = nn.Conv1d(width, width, kernel_size, padding=kernel_size // 2, groups=width)
            self.motion = nn.Sequential(nn.GELU(), nn.Linear(width, width), nn.GELU())
        self.fuse = nn.Linear(2 * width if use_motion_stream else width, dim)
        self.scale = nn.Parameter(torch.full((dim,), float(init_scale)))

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, D)`` frame features -> ``((B, T, D)`` video tokens, ``(B, W)`` motion cue)."""
        h = self.in_proj(frames)
        spatial = self.spatial(h)
        if not self.use_motion_stream:
            return frames + self.scale * self.fuse(spatial), spatial.mean(dim=1)
        diff = F.pad(h[:, 1:] - h[:, :-1], (0, 0, 0, 1))  # (B, T, W); the last step has no successor
        motion = self.motion(self.temporal_conv(diff.transpose(1, 2)).transpose(1, 2))
        fused = self.fuse(torch.cat([spatial, motion], dim=-1))
        return frames + self.scale * fused, motion.mean(dim=1)


class PromptLearner(nn.Module):
    """``P`` learned context vectors, shifted per video by a meta-net of the motion cue.

    Args:
        n_prompts: ``P``.
        token_width: width of the text tower's token embeddings.
        cue_dim: size of the motion cue.
        dynamic: per-video shift (CoCoOp); ``False``: the shared context only (CoOp).
        hidden: hidden width of the meta-net.
    """

    def __init__(self, n_prompts: int, token_width: int, cue_dim: int, dynamic: bool = True, hidden: int = 64):
        super().__init__()
        self.n_prompts, self.token_width, self.dynamic = n_prompts, token_width, dynamic
        self.context = nn.Parameter(torch.randn(n_prompts, token_width) * 0.02)
        if dynamic:
            self.meta_net = nn.Sequential(nn.LayerNorm(cue_dim), nn.Linear(cue_dim, hidden), nn.ReLU(),
                                          nn.Linear(hidden, n_prompts * token_width))
            nn.init.normal_(self.meta_net[-1].weight, std=0.01)
            nn.init.zeros_(self.meta_net[-1].bias)

    def forward(self, cue: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, W)`` motion cue -> ``(B, P, token_width)`` prompts (``(1, P, ·)`` if static or no cue)."""
        if not self.dynamic or cue is None:
            return self.context[None]
        shift = self.meta_net(cue).reshape(-1, self.n_prompts, self.token_width)
        return self.context[None] + shift


class CommunicationBlock(nn.Module):
    """Video tokens attend to class-text features and class-text features to video tokens.

    Both directions read the block's inputs (not each other's outputs); each adds its output
    to its stream through a per-channel scale initialised to ``init_scale``.
    """

    def __init__(self, dim: int, heads: int = 4, init_scale: float = 0.1):
        super().__init__()
        self.norm_video, self.norm_text = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.video_to_text = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.text_to_video = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.scale_video = nn.Parameter(torch.full((dim,), float(init_scale)))
        self.scale_text = nn.Parameter(torch.full((dim,), float(init_scale)))

    def forward(self, video: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, D)`` video tokens, ``(B, C, D)`` text features -> updated, same shapes."""
        v, t = self.norm_video(video), self.norm_text(text.to(video.dtype))
        video_out = self.video_to_text(v, t, t, need_weights=False)[0]
        text_out = self.text_to_video(t, v, v, need_weights=False)[0]
        return video + self.scale_video * video_out, text + self.scale_text * text_out


class MotionPromptsModule(nn.Module):
    """Frozen CLIP + motion block + prompt learner + communication block.

    Args:
        model: open_clip model (its parameters' ``requires_grad`` decide what trains).
        n_prompts, width, kernel_size, heads, prompt_hidden, init_scale: block sizes.
        use_motion_stream, dynamic_prompts, use_communication: the ablation switches.
    """

    def __init__(self, model: nn.Module, n_prompts: int = 4, width: int = 256, kernel_size: int = 3,
                 heads: int = 4, prompt_hidden: int = 64, init_scale: float = 0.1, use_motion_stream: bool = True,
                 dynamic_prompts: bool = True, use_communication: bool = True):
        super().__init__()
        self.model = model
        self.encoder = FrameEncoder(model)
        dim = text_embed_dim(model)
        if (self.encoder.output_dim or dim) != dim:
            raise ValueError(f"image ({self.encoder.output_dim}) and text ({dim}) embeddings differ in size")
        if use_communication and dim % heads:
            raise ValueError(f"heads={heads} does not divide the embedding size {dim}")
        token_width = token_embedding(model).weight.shape[1]
        self.motion = MotionBlock(dim, width, use_motion_stream, kernel_size, init_scale)
        self.prompts = PromptLearner(n_prompts, token_width, width, dynamic_prompts, prompt_hidden)
        self.communication = CommunicationBlock(dim, heads, init_scale) if use_communication else None
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def train(self, mode: bool = True) -> "MotionPromptsModule":
        """As ``nn.Module.train``, but a frozen backbone stays in eval mode (BatchNorm statistics)."""
        super().train(mode)
        if not any(p.requires_grad for p in self.model.parameters()):
            self.model.eval()
        return self

    def video_tokens(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, 3, H, W)`` -> ``((B, T, D)`` video tokens, ``(B, W)`` motion cue)."""
        visual_grad = any(p.requires_grad for p in self.encoder.parameters())
        with torch.set_grad_enabled(visual_grad and torch.is_grad_enabled()):
            frames = self.encoder(video, normalize=True)
        return self.motion(frames.float())

    def embed_video(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` unit video embeddings of the visual branch (before communication)."""
        return F.normalize(self.video_tokens(video)[0].mean(dim=1), dim=-1)

    def class_features(self, tokens: torch.Tensor, cue: torch.Tensor | None = None) -> torch.Tensor:
        """``(G, C, D)`` prompted text features; ``G = B`` with a cue and dynamic prompts, else 1."""
        token_grad = token_embedding(self.model).weight.requires_grad
        return encode_prompted_text(self.model, self.prompts(cue), tokens, token_grad).float()

    def forward(self, video: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3, H, W)`` videos, ``(C, L0)`` class tokens -> ``(B, C)`` logits."""
        return self.score_tokens(*self.video_tokens(video), tokens)

    def score_tokens(self, tokens_v: torch.Tensor, cue: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` from :meth:`video_tokens`' ``(B, T, D)`` tokens and ``(B, W)`` cue: ``(B, C)`` logits."""
        text = self.class_features(tokens.to(tokens_v.device), cue)              # (G, C, D)
        text = text.expand(tokens_v.shape[0], *text.shape[1:])
        if self.communication is not None:
            tokens_v, text = self.communication(tokens_v, text)
        v = F.normalize(tokens_v.mean(dim=1).float(), dim=-1)
        t = F.normalize(text.float(), dim=-1)
        scale = self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
        return scale * torch.einsum("bd,bcd->bc", v, t)


class PromptTextSpace(SemanticSpace):
    """The semantic space of the prompt-conditioned text encoder (records what it tokenises).

    :meth:`tokenize` is the only way class texts reach the prompted encoder; it records each text
    in ``encoded_texts`` (as :class:`~zsar.models.ClipTextSpace` does, before templating).
    :meth:`encode` gives the shared-context (no per-video shift) features of ``texts``.

    Args:
        tokenizer: open_clip tokenizer accepting ``context_length=``.
        context_length: the text tower's context length.
        n_prompts: ``P``, positions left free for the prompts.
        template: format string with one ``{}`` wrapped around each class text.
        dim: text embedding size ``D``.
    """

    name = "motion_prompts_text"

    def __init__(self, tokenizer, context_length: int, n_prompts: int, template: str, dim: int):
        super().__init__()
        self.tokenizer, self.template, self.dim = tokenizer, template, dim
        self.token_length = context_length - n_prompts
        if self.token_length < 2:
            raise ValueError(f"n_prompts={n_prompts} leaves no room in the context length {context_length}")
        self.module: MotionPromptsModule | None = None

    def _tokens(self, texts: Sequence[str]) -> torch.Tensor:
        return self.tokenizer([self.template.format(t) for t in texts], context_length=self.token_length)

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """``(C, L0)`` tokens of ``texts`` (recorded in ``encoded_texts``)."""
        texts = [str(t) for t in texts]
        self.encoded_texts.extend(texts)
        return self._tokens(texts)

    @torch.no_grad()
    def _encode(self, texts: list[str]) -> np.ndarray:
        if self.module is None:
            raise RuntimeError("PromptTextSpace has no module to encode with (fit the method first)")
        device = self.module.logit_scale.device
        return self.module.class_features(self._tokens(texts).to(device))[0].cpu().numpy()


class MotionPrompts(ZeroShotMethod):
    """Motion-aware dynamic prompts over a CLIP, frozen when pretrained (method C).

    Args:
        n_prompts: ``P``, learned prompt tokens inserted before every class text.
        width: hidden width of the motion block (and size of the motion cue).
        kernel_size: odd temporal kernel of the motion stream.
        heads: attention heads of the communication block (must divide the embedding size).
        prompt_hidden: hidden width of the prompt meta-net.
        init_scale: initial residual scale of the motion and communication blocks.
        use_motion_stream: ``False`` drops the motion stream (spatial stream only).
        dynamic_prompts: ``False`` uses static learned prompts shared by all videos (CoOp).
        use_communication: ``False`` drops the multimodal communication block.
        freeze_backbone: keep both CLIP towers frozen (only the three blocks train). ``None``
            (default) freezes them when ``pretrained`` is given and trains them with random
            initial weights: a frozen random-init CLIP gives near-constant features that the three
            small blocks cannot learn from (measured: unseen top-1 at exact chance on 6 of 10
            reduced-size splits, training loss flat at ``ln C``). The choice made is
            ``backbone_frozen_`` after ``fit``.
        class_template: format string (one ``{}``) around each class text after the prompts;
            the learned prompts replace the hand templates, so ``templates`` is not used.
        lr: default ``1e-3`` (only small blocks train).
        **kwargs: the :class:`~zsar.methods.base.ZeroShotMethod` arguments.
    """

    name = "motion_prompts"
    display_name = "Motion prompts (dynamic prompts + communication)"

    def __init__(self, n_prompts: int = 4, width: int = 256, kernel_size: int = 3, heads: int = 4,
                 prompt_hidden: int = 64, init_scale: float = 0.1, use_motion_stream: bool = True,
                 dynamic_prompts: bool = True, use_communication: bool = True, freeze_backbone: bool | None = None,
                 class_template: str = "{}.", lr: float = 1e-3, **kwargs):
        super().__init__(lr=lr, **kwargs)
        self.n_prompts, self.width, self.kernel_size, self.heads = n_prompts, width, kernel_size, heads
        self.prompt_hidden, self.init_scale = prompt_hidden, init_scale
        self.use_motion_stream, self.dynamic_prompts = use_motion_stream, dynamic_prompts
        self.use_communication, self.freeze_backbone = use_communication, freeze_backbone
        self.class_template = class_template
        if not dynamic_prompts:  # the table says which prompts it ran
            self.display_name = "Motion prompts (static prompts + communication)"

    def _check_params(self) -> None:
        super()._check_params()
        for name in ("n_prompts", "width", "heads", "prompt_hidden"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(self.kernel_size, int) or self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int, got {self.kernel_size!r}")
        if not isinstance(self.class_template, str) or self.class_template.count("{}") != 1:
            raise ValueError(f"class_template={self.class_template!r} must contain exactly one '{{}}'")
        if self.freeze_backbone not in (None, True, False):
            raise ValueError(f"freeze_backbone must be None, True or False, got {self.freeze_backbone!r}")

    def _resolve_freeze(self) -> bool:
        """``freeze_backbone``, with ``None`` resolved to "frozen iff pretrained weights are given"."""
        if self.freeze_backbone is None:
            return self.pretrained is not None
        return bool(self.freeze_backbone)

    def _build_module(self, seen_texts: ClassTexts | None = None) -> MotionPromptsModule:
        model, tokenizer = self._build_clip()
        self.backbone_frozen_ = self._resolve_freeze()
        for p in model.parameters():
            p.requires_grad_(not self.backbone_frozen_)
        # CLIP's own logit scale is unused (the module has its own); DDP needs no unused trainables
        model.logit_scale.requires_grad_(False)
        module = MotionPromptsModule(model, self.n_prompts, self.width, self.kernel_size, self.heads,
                                     self.prompt_hidden, self.init_scale, self.use_motion_stream,
                                     self.dynamic_prompts, self.use_communication).to(self.device_)
        context = context_length(model, tokenizer)
        self.space_ = PromptTextSpace(tokenizer, context, self.n_prompts, self.class_template, text_embed_dim(model))
        self.space_.module = module
        self.spaces_.append(self.space_)
        return module

    def _loss_fn(self, seen_texts: ClassTexts):
        tokens = self.space_.tokenize(seen_texts.texts(self.text_kind))

        def loss_fn(module: nn.Module, batch: dict):
            return cross_entropy_and_accuracy(module(batch["video"], tokens), batch["label"])
        return loss_fn

    def _after_training(self, train_dataset, seen_texts: ClassTexts) -> None:
        self.total_parameters_ = count_parameters(self.module_)

    def _val_scores(self, module: MotionPromptsModule, dataset, texts: ClassTexts) -> np.ndarray:
        tokens = self.space_.tokenize(texts.texts(self.text_kind)).to(self.device_)
        return self._extract(lambda b: module(b["video"], tokens), dataset)

    def video_features(self, dataset) -> dict[str, np.ndarray]:
        """``{"embedding" (N, D), "tokens" (N, T, D), "cue" (N, W)}``: the visual branch once per video;
        class texts are prompted per video from the cue in :meth:`scores_from_features`."""
        self.check_is_fitted()
        packed = self._extract(lambda b: torch.cat([t.flatten(1) for t in self.module_.video_tokens(b["video"])], -1),
                               dataset)
        # (N, T*D + W): the tokens flattened, then the cue (its width is the motion block's)
        tokens = packed[:, :-self.width].reshape(len(packed), -1, self.space_.dim)
        embedding = F.normalize(torch.from_numpy(tokens).mean(dim=1), dim=-1).numpy()
        return {"embedding": embedding, "tokens": tokens, "cue": packed[:, -self.width:]}

    def scores_from_features(self, features: dict[str, np.ndarray], target_texts: ClassTexts,
                             seen_texts: ClassTexts | None = None) -> np.ndarray:
        """``(N, C)`` logits ``exp(s) * cos(video, class | video)``: per-video prompted class texts.

        ``seen_texts`` is not needed (each video is scored against ``target_texts`` only).
        """
        self.check_is_fitted()
        class_tokens = self.space_.tokenize(target_texts.texts(self.text_kind)).to(self.device_)
        step, out = self._eval_batch(), []
        with torch.no_grad():
            for i in range(0, len(features["tokens"]), step):
                tokens_v, cue = (torch.as_tensor(features[k][i:i + step]).to(self.device_) for k in ("tokens", "cue"))
                with autocast_for(self.amp, self.device_):
                    out.append(self.module_.score_tokens(tokens_v, cue, class_tokens).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, len(target_texts.names)), np.float32)

    def _embed_batch(self, batch: dict) -> torch.Tensor:
        """``(B, D)`` unit embeddings of the visual branch (motion block, before communication)."""
        return self.module_.embed_video(batch["video"])

    def class_prototypes(self, target_texts: ClassTexts, seen_texts: ClassTexts | None = None) -> np.ndarray:
        """``(C, D)`` text features with the shared learned context (no per-video shift)."""
        self.check_is_fitted()
        return self.space_.encode(target_texts.texts(self.text_kind))
