"""Backbones on open_clip: registry and factory, video/text encoders, prompts, zero-shot head.

Importing this package registers the project's ``zsar-*`` model configs with open_clip.
:mod:`zsar.models.preprocess` reads the preprocessing a model needs (transforms, sampler, frame
cache) from the model.
"""

from zsar.models.preprocess import (
    VideoPipeline,
    clip_preprocess_config,
    clip_transform,
    create_model_and_transforms,
    preprocess_config_of,
    video_pipeline,
)
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
    get_model_config,
    get_tokenizer,
    list_models,
    list_project_models,
    register_model_configs,
)
from zsar.models.text_encoder import ClipTextSpace, encode_text_tokens, text_embed_dim
from zsar.models.video_encoder import FrameEncoder, encode_video, frame_average
from zsar.models.zero_shot import build_zero_shot_classifier, zero_shot_logits

__all__ = [
    "CheckpointFormatError",
    "ClipTextSpace",
    "FrameEncoder",
    "ModelConfigError",
    "PretrainedUnavailableError",
    "UnknownModelError",
    "UnknownPretrainedTagError",
    "VideoPipeline",
    "build_prompts",
    "build_zero_shot_classifier",
    "clip_preprocess_config",
    "clip_transform",
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
    "preprocess_config_of",
    "readable_class_name",
    "register_model_configs",
    "resolve_pretrained",
    "save_checkpoint",
    "text_embed_dim",
    "video_pipeline",
    "zero_shot_logits",
]
