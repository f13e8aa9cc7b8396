"""Backbones on open_clip: registry and factory, video/text encoders, prompts, zero-shot head.

Importing this package registers the project's ``zsar-*`` model configs with open_clip and the
``"clip"`` semantic space with :func:`zsar.text.semantic.get_semantic_space`.
"""

from zsar.models.pretrained import (
    CheckpointFormatError,
    PretrainedUnavailableError,
    UnknownPretrainedTagError,
    is_offline,
    load_checkpoint,
    load_state_dict,
    resolve_pretrained,
    save_checkpoint,
)
from zsar.models.prompts import (
    build_prompts,
    get_templates,
    list_template_sets,
    load_descriptions,
    readable_class_name,
)
from zsar.models.registry import (
    ModelConfigError,
    UnknownModelError,
    count_parameters,
    create_model,
    create_model_and_transforms,
    get_model_config,
    get_tokenizer,
    list_models,
    list_project_models,
    register_model_configs,
)
from zsar.models.text_encoder import ClipTextSpace, encode_text_tokens, register_clip_space, text_embed_dim
from zsar.models.video_encoder import FrameEncoder, encode_video, frame_average
from zsar.models.zero_shot import build_zero_shot_classifier, zero_shot_logits

register_clip_space()

__all__ = [
    "CheckpointFormatError",
    "ClipTextSpace",
    "FrameEncoder",
    "ModelConfigError",
    "PretrainedUnavailableError",
    "UnknownModelError",
    "UnknownPretrainedTagError",
    "build_prompts",
    "build_zero_shot_classifier",
    "count_parameters",
    "create_model",
    "create_model_and_transforms",
    "encode_text_tokens",
    "encode_video",
    "frame_average",
    "get_model_config",
    "get_templates",
    "get_tokenizer",
    "is_offline",
    "list_models",
    "list_project_models",
    "list_template_sets",
    "load_checkpoint",
    "load_descriptions",
    "load_state_dict",
    "readable_class_name",
    "register_clip_space",
    "register_model_configs",
    "resolve_pretrained",
    "save_checkpoint",
    "text_embed_dim",
    "zero_shot_logits",
]
