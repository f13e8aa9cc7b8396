"""Evaluate a checkpoint under a named protocol (:mod:`zsar.data.eval_protocol`), as the references score.

Every test video of every split is decoded and encoded once, each of its views (``clips x
crops``) frame-averaged through the image tower, and kept in the :class:`FeatureCache`; class
texts are encoded once per distinct class list. Scores follow the protocol: class prompts from
its templates, averaged as unit embeddings (CLIP) or as softmaxes (ActionCLIP), and views
averaged as softmaxes (ViFi-CLIP / X-CLIP) or as embeddings. Top-1 and top-5 per split, then
mean ± standard deviation over the splits (the protocol's ``std_ddof``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from zsar.data.annotations import normalize_class_name
from zsar.data.dataset import VideoDataset
from zsar.data.datasets import read_embedded_classes
from zsar.data.eval_protocol import EvalProtocol, ProtocolSplit, protocol_splits
from zsar.data.records import VideoList, VideoRecord
from zsar.data.transforms import ClipPreprocessConfig, ClipVideoTransform
from zsar.evaluation.metrics import mean_std, topk_accuracy
from zsar.experiments.feature_cache import FeatureCache, dataset_fingerprint, state_dict_hash
from zsar.models import create_model, encode_video, frame_average, get_tokenizer, load_descriptions
from zsar.models.preprocess import preprocess_config_of
from zsar.models.prompts import build_prompts
from zsar.models.video_encoder import image_tower
from zsar.models.zero_shot import prompt_classifier
from zsar.training import extract_features

TEXT_KINDS = ("name", "description", "both")


def union_videos(splits: Sequence[ProtocolSplit]) -> VideoList:
    """Every distinct test video of ``splits`` once (by file), in first-seen order; labels unused (0)."""
    seen: dict[Path, VideoRecord] = {}
    for split in splits:
        for r in split.videos.records:
            seen.setdefault(r.path, VideoRecord(r.path, 0, r.video_id))
    first = splits[0].videos
    return VideoList(list(seen.values()), ["video"], first.root, "protocol videos")


def view_embeddings(model, videos: VideoList, protocol: EvalProtocol, batch_size: int = 8, device="cpu",
                    cache: FeatureCache | None = None, model_name: str = "", progress: bool | None = None) -> np.ndarray:
    """``(N, V, D)`` unit embeddings of every view of every video (``V = clips * crops``), cached.

    A view is ``protocol.frames`` frames through the image tower, averaged and L2-normalised.
    """
    sampler = protocol.frame_sampler()
    transform = protocol_transform(protocol, preprocess_config_of(model))
    dataset = VideoDataset(videos, sampler=sampler, transform=transform, train=False)
    v, t = protocol.views, protocol.frames

    def encode(batch: dict) -> torch.Tensor:
        clips = batch["video"]  # (B, crops * clips * T, 3, S, S), crop-major then clip then frame
        b = clips.shape[0]
        pooled = frame_average(encode_video(model, clips.reshape(b * v, t, *clips.shape[2:])))
        return pooled.reshape(b, -1)  # (B, V * D)

    def compute() -> torch.Tensor:
        with torch.no_grad():
            return extract_features(encode, dataset, batch_size, device=device, progress=progress)

    parts = dict(model_name=model_name, checkpoint=state_dict_hash(image_tower(model)), sampling=sampler,
                 transform=transform, views=v, pooling="frame_average", data=dataset_fingerprint(videos))
    flat = (cache or FeatureCache()).get_or_compute(parts, [str(r.path) for r in videos.records], compute)
    return flat.reshape(len(videos), v, -1).astype(np.float32)


IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
"""mmaction's ``img_norm_cfg`` (mean 123.675/116.28/103.53, std 58.395/57.12/57.375) on a 0-1 scale."""


def protocol_transform(protocol: EvalProtocol, model_cfg: ClipPreprocessConfig) -> ClipVideoTransform:
    """The evaluation transform of ``protocol`` for a model whose own preprocessing is ``model_cfg``.

    The crop is the model's input size; the shorter side is first resized to
    ``round(size * resize_ratio)``; mean/std and the resize kernel as the protocol says.
    """
    cfg = model_cfg
    if protocol.normalize == "imagenet":
        cfg = dataclasses.replace(cfg, mean=IMAGENET_MEAN_STD[0], std=IMAGENET_MEAN_STD[1])
    if protocol.interpolation:
        cfg = dataclasses.replace(cfg, interpolation=protocol.interpolation)
    cfg = dataclasses.replace(cfg, resize_mode="shortest")
    short = None if protocol.crops == 3 else round(cfg.size * protocol.resize_ratio)
    return ClipVideoTransform(cfg, train=False, crops=protocol.crops, short_side=short)


def class_prompts(protocol: EvalProtocol, names: Sequence[str], text: str = "name",
                  templates: str | None = None, descriptions: Mapping[str, Sequence[str]] | None = None) -> list[list[str]]:
    """Prompt strings per class: the templates on the names, descriptions alone, or both.

    Raises:
        ValueError: descriptions asked for but some classes have none (named in the message).
    """
    if text not in TEXT_KINDS:
        raise ValueError(f"text={text!r}; choose from {TEXT_KINDS}")
    if text == "name":
        return build_prompts(names, templates or protocol.templates)
    by_key = {normalize_class_name(k, True): list(v) for k, v in (descriptions or {}).items()}
    missing = [n for n in names if normalize_class_name(n, True) not in by_key]
    if missing:
        raise ValueError(f"no description for {len(missing)} of {len(names)} classes, e.g. {missing[:5]}")
    own = {n: by_key[normalize_class_name(n, True)] for n in names}
    if text == "description":
        return [own[n] for n in names]
    return build_prompts(names, templates or protocol.templates, own)


def class_classifiers(prompts: list[list[str]], protocol: EvalProtocol, model, tokenizer) -> list[torch.Tensor]:
    """The ``(D, C)`` classifiers of ``C`` classes' prompts, encoded once per class list.

    ``template_average="embedding"``: one, each class vector its prompts' mean unit embedding;
    ``"softmax"``: one per template (every class needs the same number of prompts).
    """
    if protocol.template_average == "softmax":
        counts = {len(p) for p in prompts}
        if len(counts) != 1:
            raise ValueError("template_average='softmax' needs the same number of prompts for every class")
        groups = [[[p[i]] for p in prompts] for i in range(counts.pop())]  # one prompt per class, per template
    else:
        groups = [prompts]
    with torch.no_grad():
        return [prompt_classifier(model, tokenizer, group).cpu().float() for group in groups]


def split_scores(views: np.ndarray, classifiers: list[torch.Tensor], protocol: EvalProtocol,
                 logit_scale: float) -> np.ndarray:
    """``(N, C)`` class probabilities from ``N`` videos' view embeddings ``(N, V, D)``.

    The softmaxes of the ``classifiers`` (:func:`class_classifiers`) are averaged. Views are
    averaged as softmaxes, or (``view_average="embedding"``) as one renormalised mean embedding.
    """
    feats = torch.from_numpy(views)
    if protocol.view_average == "embedding":
        feats = torch.nn.functional.normalize(feats.mean(dim=1, keepdim=True), dim=-1)
    probs = torch.zeros(feats.shape[0], classifiers[0].shape[1])
    for classifier in classifiers:
        probs += (logit_scale * feats @ classifier).softmax(dim=-1).mean(dim=1)  # (N, V, C) -> (N, C)
    return (probs / len(classifiers)).numpy()


def protocol_descriptions(protocol: EvalProtocol, data_root: str | os.PathLike, vocabulary: Sequence[str],
                          path: str | os.PathLike | None) -> dict[str, list[str]] | None:
    """Class descriptions of ``vocabulary`` (the dataset's classes in label order): from ``path``
    (ER-ZSAR / GPT4Vis / OST JSON, see :func:`~zsar.models.prompts.load_descriptions`), or the
    embedded benchmark's own ``classes.json``."""
    if path is not None:
        return load_descriptions(path, list(vocabulary))
    if protocol.dataset == "embedded":
        return {c["name"]: [c["description"]] for c in read_embedded_classes(Path(data_root) / "classes.json")
                if c.get("description")}
    return None


def evaluate_protocol(protocol: EvalProtocol, data_root: str | os.PathLike, backbone: str,
                      pretrained: str | os.PathLike | None, meta_dir: str | os.PathLike | None = None,
                      text: str = "name", templates: str | None = None,
                      descriptions: str | os.PathLike | None = None, batch_size: int = 8, device=None,
                      cache: FeatureCache | None = None, progress: bool | None = None) -> dict:
    """Top-1 / top-5 of ``backbone`` + ``pretrained`` on every split of ``protocol``.

    The videos are checked before the model is built, the model before anything is decoded.

    Returns:
        ``{"protocol", "model", "text", "splits": [{"split", "n_videos", "n_classes", "top1",
        "top5"}], "summary": {"top1_mean", "top1_std", "top5_mean", "top5_std", "n_splits"},
        "seconds"}`` (accuracies in [0, 1]; std over splits with the protocol's ``std_ddof``, 0 for one split).

    Raises:
        MissingFilesError: videos of a split are missing (all listed).
        PretrainedUnavailableError, FileNotFoundError, CheckpointFormatError: the weights
            cannot be loaded offline.
    """
    start = time.perf_counter()
    splits = protocol_splits(protocol, data_root, meta_dir)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(0)  # a random-init model (pretrained=None) is the same on every run
    model = create_model(backbone, pretrained, device=device).eval()
    tokenizer = get_tokenizer(backbone)
    union = union_videos(splits)
    views = view_embeddings(model, union, protocol, batch_size, device, cache, backbone, progress)
    row_of = {r.path: i for i, r in enumerate(union.records)}
    scale = float(model.logit_scale.detach().exp()) if hasattr(model, "logit_scale") else 100.0
    rows, text_memo, desc_memo = [], {}, {}
    for split in splits:
        if text != "name" and split.vocabulary not in desc_memo:
            desc_memo[split.vocabulary] = protocol_descriptions(protocol, data_root, split.vocabulary, descriptions)
        if split.class_names not in text_memo:  # splits over the same classes share their classifiers
            prompts = class_prompts(protocol, split.class_names, text, templates, desc_memo.get(split.vocabulary))
            text_memo[split.class_names] = class_classifiers(prompts, protocol, model, tokenizer)
        index = np.array([row_of[r.path] for r in split.videos.records])
        probs = split_scores(views[index], text_memo[split.class_names], protocol, scale)
        labels = np.asarray(split.videos.labels)
        rows.append({"split": split.name, "n_videos": len(index), "n_classes": len(split.class_names),
                     "top1": topk_accuracy(probs, labels, 1),
                     "top5": topk_accuracy(probs, labels, min(5, len(split.class_names)))})
    return {"protocol": protocol.describe(), "text": {"kind": text, "templates": templates or protocol.templates,
                                                     "descriptions": str(descriptions) if descriptions else None},
            "model": {"backbone": backbone, "pretrained": str(pretrained) if pretrained else None,
                      "input_size": preprocess_config_of(model).size, "logit_scale": round(scale, 3),
                      "device": str(device)},
            "data_root": str(data_root), "splits": rows, "summary": summarise(rows, protocol.std_ddof),
            "seconds": round(time.perf_counter() - start, 1)}


def summarise(rows: Sequence[Mapping], ddof: int = 0) -> dict:
    """Mean and std (``ddof``; 0 for a single split) of top-1 and top-5 over the splits."""
    out = {"n_splits": len(rows), "std_ddof": ddof}
    for k in ("top1", "top5"):
        v = [r[k] for r in rows]
        mean, std = mean_std(v, ddof) if len(v) > ddof else (float(np.mean(v)), 0.0)
        out[f"{k}_mean"], out[f"{k}_std"] = mean, std
    return out


def format_report(result: Mapping) -> str:
    """The printed report: a header naming everything that defines the protocol, then the numbers (%)."""
    p, m, t, s = result["protocol"], result["model"], result["text"], result["summary"]
    splits = p["splits"]
    what = {"lists": f"{len(splits.get('lists', []))} test list(s)", "all_classes": "every video of every class",
            "random_halves": f"{splits.get('n_splits', 10)} draws of half the classes ({splits.get('draw', 'zsar')})"
            }.get(splits["kind"], splits["kind"])
    head = [f"protocol   {p['name']}: {p['title']}", f"source     {p['source']}",
            f"splits     {what}; {p['report']}",
            f"frames     {p['frames']} per view, {p['sampler']}; views {p['views']}, averaged as {p['view_average']}",
            f"text       {t['kind']}; class names {p['class_text']}; templates {t['templates']}, averaged as "
            f"{p['template_average']}" + (f"; descriptions {t['descriptions']}" if t["descriptions"] else ""),
            (f"model      {m['backbone']} + {m['pretrained']} (input {m['input_size']} px, logit scale "
             f"{m['logit_scale']}, {m['device']})"), f"data       {result['data_root']}", ""]
    table = [f"{'split':<10} {'videos':>7} {'classes':>8} {'top-1':>7} {'top-5':>7}"]
    table += [f"{r['split']:<10} {r['n_videos']:>7} {r['n_classes']:>8} {100 * r['top1']:>7.2f} {100 * r['top5']:>7.2f}"
              for r in result["splits"]]
    table.append(f"{'mean ± std':<27} {100 * s['top1_mean']:.2f} ± {100 * s['top1_std']:.2f}  "
                 f"top-5 {100 * s['top5_mean']:.2f} ± {100 * s['top5_std']:.2f}  over {s['n_splits']} split(s)")
    return "\n".join(head + table)
