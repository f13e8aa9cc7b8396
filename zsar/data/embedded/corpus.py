"""A captioned pretraining corpus rendered from the embedded benchmark's primitives.

Each clip is a *composition* of primitive moves (:data:`PRIMITIVES`: a body part moved one way,
e.g. "bends the knees", "spreads both arms out to the sides"), two moves in sequence or two at
once, performed by a rendered actor in a scene, at a speed, sometimes holding an object, with a
bystander in the background now and then. Its captions describe what is rendered, in several
phrasings, built from the same choices that drew it.

Two regimes (:class:`CorpusConfig.regime`):

* ``"disjoint"`` — only compositions of at least two primitive moves; no benchmark action
  program is rendered (every clip's ``source`` is ``"composed"``).
* ``"open"`` — also every benchmark action program, with other actors, props and scenes, like
  the web data behind CLIP; its captions are written from the class's semantic units (body
  parts, motions, objects) and the rendered scene and speed.

In both, no caption contains a benchmark class's name or description (:func:`caption_leaks`,
word-level after normalisation): such a phrasing is never kept. Everything is deterministic in
the config: :func:`plan_corpus` decides every clip and its captions before anything is rendered.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zsar.data.embedded.actions import MotionProgram, action_classes, actions_data_digest, program_from_data
from zsar.data.embedded.config import BenchmarkConfig
from zsar.data.embedded.generate import recorded_fingerprint, render_in_pool, save_npz_deterministic
from zsar.data.embedded.motion import once_start_range
from zsar.data.embedded.render import render_program, sample_program_params
from zsar.data.embedded.scenes import SCENES
from zsar.data.video_writer import write_video
from zsar.io import atomic_write_json, atomic_write_text

REGIMES = ("open", "disjoint")
CORPUS_VERSION = "1.0.0"
"""Bump when the plan or the captions change: a new version names a new cached corpus."""


@dataclass(frozen=True)
class Primitive:
    """One move: target joint angles (degrees, see :mod:`zsar.data.embedded.skeleton`) and its words."""

    name: str
    view: str
    pose: dict
    phrases: tuple[str, ...]
    body_parts: tuple[str, ...]
    motions: tuple[str, ...]


PRIMITIVES: tuple[Primitive, ...] = (
    Primitive("arms_forward", "side", {"rs": 88, "re": 4, "ls": 84, "le": 6},
              ("stretches both arms out in front", "holds both arms straight forward", "reaches forward with both arms"),
              ("arms", "shoulders"), ("reach", "stretch", "forward")),
    Primitive("one_arm_up", "side", {"rs": 168, "re": 6},
              ("lifts one arm high above the head", "reaches up with one hand", "points one arm at the sky"),
              ("arms", "hands"), ("raise", "reach", "upward")),
    Primitive("bend_forward", "side", {"lean": 62, "neck": 18, "rs": 30, "ls": 26},
              ("bends forward at the waist", "leans far forward", "folds the upper body forward"),
              ("back", "torso"), ("bend", "lean", "forward")),
    Primitive("lean_back", "side", {"lean": -16, "neck": -12},
              ("leans back", "tilts the upper body backward", "arches back a little"),
              ("back", "torso"), ("lean", "backward")),
    Primitive("knees_bent", "side", {"rh": 62, "rk": 96, "lh": 58, "lk": 92, "ra": 28, "la": 28, "lean": 24},
              ("bends the knees deeply", "sinks down on bent legs", "drops into a crouch"),
              ("knees", "legs"), ("bend", "lower", "downward")),
    Primitive("knee_up", "side", {"rh": 88, "rk": 96},
              ("pulls one knee up high", "lifts one knee toward the chest", "raises one leg with the knee bent"),
              ("knees", "legs"), ("raise", "bend", "upward")),
    Primitive("leg_forward", "side", {"rh": 72, "rk": 4},
              ("swings one leg straight forward", "kicks one foot out in front", "raises a straight leg forward"),
              ("legs", "feet"), ("swing", "kick", "forward")),
    Primitive("leg_back", "side", {"rh": -38, "rk": 48},
              ("swings one leg backward", "lifts one foot up behind", "kicks back with one leg"),
              ("legs", "feet"), ("swing", "backward")),
    Primitive("head_down", "side", {"neck": 38},
              ("nods the head down", "looks down at the ground", "drops the head forward"),
              ("head", "neck"), ("bend", "downward")),
    Primitive("arms_sideways", "front", {"rs": 88, "re": 4, "ls": 88, "le": 4},
              ("spreads both arms out to the sides", "holds both arms out sideways", "opens both arms wide"),
              ("arms", "shoulders"), ("raise", "stretch")),
    Primitive("one_arm_side", "front", {"rs": 92, "re": 6},
              ("holds one arm out to the side", "points sideways with one arm", "lifts one arm out sideways"),
              ("arms", "hands"), ("raise", "reach")),
    Primitive("hands_on_head", "front", {"rs": 150, "re": 130, "ls": 150, "le": 130},
              ("puts both hands on top of the head", "lays both hands on the head", "touches the head with both hands"),
              ("hands", "arms", "head"), ("raise", "bend", "touch")),
    Primitive("legs_apart", "front", {"rh": 22, "lh": 22},
              ("stands with the feet wide apart", "steps the legs apart", "spreads the legs"),
              ("legs", "feet"), ("step", "stretch")),
    Primitive("side_bend", "front", {"lean": 24, "rs": 40, "ls": 130},
              ("tilts the upper body to one side", "bends sideways at the waist", "leans over to one side"),
              ("torso", "hips"), ("bend", "tilt")),
)
"""The primitive moves of the composed clips (side-view and front-view ones never mix)."""

HELD_OBJECTS = ("ball", "cup", "hat")
SCENE_PHRASES = {"grass field": ("on a grass field", "on the grass", "in a field"),
                 "gym": ("in a gym", "indoors in a gym", "in a sports hall"),
                 "beach": ("on a beach", "on the sand by the sea", "at the beach"),
                 "street": ("in a street", "on a city street", "outside in the street"),
                 "living room": ("in a living room", "at home in a living room", "indoors at home"),
                 "snow": ("in the snow", "on a snowy field", "outside in the snow")}
SUBJECTS = ("a person", "someone", "a figure", "an actor")


@dataclass(frozen=True)
class CorpusConfig:
    """What decides a corpus: its regime, size and the rendering settings.

    Attributes:
        regime: ``"open"`` or ``"disjoint"`` (see the module docstring).
        n_clips: clips in the corpus.
        benchmark_share: in ``open``, the share of clips that play a benchmark action program.
        captions_per_clip: phrasings kept per clip.
        seed: root seed of every choice.
        render: the benchmark's rendering settings (size, fps, duration, noise, ...).
    """

    regime: str = "open"
    n_clips: int = 4000
    benchmark_share: float = 0.5
    captions_per_clip: int = 3
    seed: int = 0
    render: BenchmarkConfig = dataclasses.field(default_factory=lambda: BenchmarkConfig(size=64))

    def __post_init__(self) -> None:
        if self.regime not in REGIMES:
            raise ValueError(f"CorpusConfig.regime={self.regime!r}: choose from {REGIMES}")
        if self.n_clips < 1 or self.captions_per_clip < 1 or not 0 <= self.benchmark_share <= 1:
            raise ValueError(f"CorpusConfig: n_clips and captions_per_clip must be >= 1 and benchmark_share in "
                             f"[0, 1], got {self.n_clips}, {self.captions_per_clip}, {self.benchmark_share}")

    def to_dict(self) -> dict:
        """Plain JSON-able dict (the rendering settings nested)."""
        return {**dataclasses.asdict(self), "render": self.render.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "CorpusConfig":
        """Inverse of :meth:`to_dict`."""
        return cls(**{**d, "render": BenchmarkConfig.from_dict(d["render"])})

    def fingerprint(self) -> str:
        """sha256 prefix of the config, the corpus version and the benchmark's action data."""
        d = {**self.to_dict(), "version": CORPUS_VERSION, "actions": actions_data_digest()}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CorpusClip:
    """One planned clip: what is rendered and how it is described.

    Attributes:
        clip_id: ``c<index>`` (file stem).
        source: ``"composed"`` or ``"benchmark:<class name>"`` (only in ``open``).
        program: the motion program as ``actions.json`` data (keyframes, objects, view, period).
        scene: one of :data:`~zsar.data.embedded.scenes.SCENES`.
        speed: tempo factor.
        captions: the phrasings.
        units: ``{group: words}`` of what is shown (body parts, motions, objects, scenes).
        moves: the primitive moves of a composed clip and how they relate (``then``, ``while``,
            ``repeat``), e.g. ``("knees_bent", "arms_forward", "then")``; empty for a benchmark program.
    """

    clip_id: str
    source: str
    program: dict | None
    scene: str
    speed: float
    captions: tuple[str, ...]
    units: dict
    moves: tuple[str, ...] = ()


def normalise_words(text: str) -> list[str]:
    """Lower-case word tokens (letters and digits)."""
    return re.findall(r"[a-z0-9]+", text.lower())


def _contains(words: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return n > 0 and any(words[i:i + n] == phrase for i in range(len(words) - n + 1))


def caption_leaks(caption: str, class_texts: list[str]) -> list[str]:
    """The class names or descriptions that ``caption`` contains, as word sequences after normalisation."""
    words = normalise_words(caption)
    return [t for t in class_texts if _contains(words, normalise_words(t))]


def benchmark_texts() -> list[str]:
    """Every benchmark class's name and description: what no caption may contain."""
    return [t for c in action_classes() for t in (c.name, c.description)]


_STREAMS = {"plan": 1, "group": 2, "clip": 3}


def _rng(config: CorpusConfig, stream: str, index: int) -> np.random.Generator:
    """The generator of one clip's ``stream`` (plan, shared group draws, clip draws)."""
    return np.random.default_rng(np.random.SeedSequence(entropy=config.seed, spawn_key=(_STREAMS[stream], index)))


DIRECTIONS = ("forward", "backward", "upward", "downward")


def _words(words, drop: set[str]) -> list[str]:
    """``words`` without those that are themselves a benchmark class name (e.g. ``run``, ``squat``)."""
    return [w for w in dict.fromkeys(words) if w not in drop]


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _composed(rng: np.random.Generator) -> tuple[dict, list[Primitive], str]:
    """A program of two primitive moves (in sequence, at once, or repeated in turn) and how they relate."""
    view = str(rng.choice(["side", "front"]))
    pool = [p for p in PRIMITIVES if p.view == view]
    first = pool[rng.integers(len(pool))]
    free = [p for p in pool if p is not first and not set(p.pose) & set(first.pose)]
    relation = str(rng.choice(["then", "while", "repeat"] if free else ["then", "repeat"]))
    second = (free if relation == "while" else [p for p in pool if p is not first])
    second = second[rng.integers(len(second))]
    if relation == "while":
        keys = [[0.0, {"pose": "stand"}], [0.35, {**first.pose, **second.pose}], [0.7, {**first.pose, **second.pose}],
                [1.0, {"pose": "stand"}]]
        program = {"view": view, "cyclic": False, "period": 2.4, "keyframes": keys}
    elif relation == "then":
        keys = [[0.0, {"pose": "stand"}], [0.22, dict(first.pose)], [0.42, dict(first.pose)],
                [0.62, {"pose": "stand", **second.pose}], [0.82, {"pose": "stand", **second.pose}],
                [1.0, {"pose": "stand"}]]
        program = {"view": view, "cyclic": False, "period": 2.8, "keyframes": keys}
    else:  # the two moves in turn, over and over
        keys = [[0.0, {"pose": "stand"}], [0.25, dict(first.pose)], [0.5, {"pose": "stand"}],
                [0.75, {"pose": "stand", **second.pose}]]
        program = {"view": view, "cyclic": True, "period": 2.0, "keyframes": keys}
    return program, [first, second], relation


def _composed_captions(moves: list[Primitive], relation: str, rng: np.random.Generator) -> list[str]:
    a, b = (m.phrases[rng.integers(len(m.phrases))] for m in moves)
    a2, b2 = (m.phrases[rng.integers(len(m.phrases))] for m in moves)
    return {"then": [f"{a}, then {b}", f"first {a2} and then {b2}", f"{a2} and afterwards {b}"],
            "while": [f"{a} and at the same time {b}", f"{b2} while it {a2}", f"{a} and {b2} together"],
            "repeat": [f"{a} and {b} in turn, again and again", f"keeps alternating: {a2}, then {b2}",
                       f"repeatedly {a}, then {b2}"]}[relation]


def _benchmark_captions(cls, drop: set[str], rng: np.random.Generator) -> list[str]:
    """Captions of a benchmark program from its units, never its name or description."""
    parts = _words(cls.units["body_parts"], drop) or ["body"]
    verbs = _words([m for m in cls.units["motions"] if m not in DIRECTIONS], drop) or ["move"]
    way = next((f", moving {m}" for m in cls.units["motions"] if m in DIRECTIONS), "")
    things = f" and a {_join(cls.units['objects'])}" if cls.units["objects"] else ""
    rng.shuffle(parts)
    rng.shuffle(verbs)
    return [f"moves the {_join(parts)}{things} to {_join(verbs)}{way}",
            f"uses the {_join(parts[:2])}{things} to {_join(verbs[:2])}{way}",
            f"is in motion with the {_join(parts[:2])}{things}: {_join(verbs)}{way}"]


def _dress(core: list[str], scene: str, speed: float, held: str | None, rng: np.random.Generator) -> list[str]:
    """Whole captions: a subject, the speed, the held object and the scene around each core phrase."""
    adverb = "slowly " if speed < 0.85 else "quickly " if speed > 1.15 else ""
    out = []
    for core_phrase in core:
        subject = SUBJECTS[rng.integers(len(SUBJECTS))]
        obj = f", holding a {held}," if held else ""
        place = SCENE_PHRASES[scene][rng.integers(3)]
        out.append(f"{subject}{obj} {adverb}{core_phrase} {place}".replace(" ,", ","))
    return out


def plan_corpus(config: CorpusConfig) -> list[CorpusClip]:
    """Every clip of the corpus and its captions, decided before anything is rendered (deterministic)."""
    classes = action_classes()
    texts = benchmark_texts()
    drop = {c.name for c in classes if len(normalise_words(c.name)) == 1}
    share = config.benchmark_share if config.regime == "open" else 0.0
    plan, n_bench = [], 0
    for i in range(config.n_clips):
        rng = _rng(config, "plan", i)
        speed = float(rng.uniform(*config.render.speed_range))
        if int((i + 1) * share) > int(i * share):  # benchmark programs spread evenly over the corpus
            cls = classes[n_bench % len(classes)]
            n_bench += 1
            scene, held = SCENES[rng.integers(len(SCENES))], None
            program, source, composed = None, f"benchmark:{cls.name}", ()
            core = _benchmark_captions(cls, drop, rng)
            units = {"body_parts": list(cls.units["body_parts"]), "motions": list(cls.units["motions"]),
                     "objects": list(cls.units["objects"])}
        else:
            program, moves, relation = _composed(rng)
            scene = SCENES[rng.integers(len(SCENES))]
            held = HELD_OBJECTS[rng.integers(len(HELD_OBJECTS))] if rng.random() < 0.3 else None
            if held:
                program["objects"] = [{"kind": held, "anchors": ["r_hand"], "layer": "front",
                                       "style": {"offset": [0.0, 0.03]}}]
            source, core = "composed", _composed_captions(moves, relation, rng)
            composed = (moves[0].name, moves[1].name, relation)
            units = {"body_parts": sorted({w for m in moves for w in m.body_parts}),
                     "motions": sorted({w for m in moves for w in m.motions}), "objects": [held] if held else []}
        captions = [c for c in _dress(core, scene, speed, held, rng) if not caption_leaks(c, texts)]
        plan.append(CorpusClip(f"c{i:06d}", source, program, scene, speed, tuple(captions[:config.captions_per_clip]),
                               {**units, "scenes": [scene]}, composed))
    return plan


def clip_program(clip: CorpusClip) -> tuple[MotionProgram, bool]:
    """``(program, played reversed)`` of a planned clip."""
    if clip.source == "composed":
        return program_from_data(clip.program, clip.clip_id), False
    cls = next(c for c in action_classes() if c.name == clip.source.split(":", 1)[1])
    return cls.program, cls.reversed


def render_corpus_clip(clip: CorpusClip, index: int, config: CorpusConfig) -> tuple[np.ndarray, dict]:
    """``(frames (T, H, W, 3) uint8, metadata)`` of one planned clip: its scene and speed as planned, the
    actor, camera and bystander drawn from the clip's own seeds."""
    program, reverse = clip_program(clip)
    params = sample_program_params(program, [clip.scene], _rng(config, "group", index), _rng(config, "clip", index),
                                   config.render)
    params.speed = clip.speed
    if not program.cyclic:  # the start time must fit the planned speed
        params.phase0 = float(_rng(config, "clip", index).uniform(
            *once_start_range(program, config.render.n_frames, config.render.fps, clip.speed)))
    frames, meta = render_program(program, params, config.render)
    if reverse:
        frames = np.ascontiguousarray(frames[::-1])
        meta["joints"], meta["boxes"] = meta["joints"][::-1].copy(), meta["boxes"][::-1].copy()
    meta.update({"clip_id": clip.clip_id, "source": clip.source, "scene": clip.scene, "speed": clip.speed,
                 "captions": np.array(clip.captions), "units": json.dumps(clip.units, sort_keys=True),
                 "bystander": params.distractor["kind"] if params.distractor else "none", **params.actor.to_meta()})
    return frames, meta


def _write_corpus_clips(root: str, config_dict: dict, tasks: list[tuple[int, CorpusClip]]) -> int:
    """Worker: render, encode and save planned clips; returns how many."""
    config = CorpusConfig.from_dict(config_dict)
    for index, clip in tasks:
        frames, meta = render_corpus_clip(clip, index, config)
        write_video(Path(root) / "videos" / f"{clip.clip_id}.mp4", frames, config.render.fps, crf=config.render.crf)
        save_npz_deterministic(Path(root) / "meta" / f"{clip.clip_id}.npz", meta)
    return len(tasks)


def generate_corpus(root: str | os.PathLike, config: CorpusConfig | None = None, workers: int | None = None,
                    progress: bool = True) -> Path:
    """Render the corpus under ``root`` unless the same one is there; resumes an interrupted run.

    Writes ``videos/<clip id>.mp4``, ``meta/<clip id>.npz`` (joints, boxes, captions, units, actor),
    ``captions.jsonl`` (one clip a line: id, video path, source, captions, units, scene, speed) and,
    last, ``corpus.json`` (config, fingerprint, counts, wall time), which marks it complete.
    """
    config = config or CorpusConfig()
    root, fingerprint = Path(root), config.fingerprint()
    if recorded_fingerprint(root / "corpus.json") == fingerprint:
        return root
    start = time.perf_counter()
    plan = plan_corpus(config)
    if recorded_fingerprint(root / "plan.json") != fingerprint:  # another corpus, or none: start clean
        for name in ("videos", "meta", "captions.jsonl", "corpus.json"):
            if (root / name).is_dir():
                shutil.rmtree(root / name)
            else:
                (root / name).unlink(missing_ok=True)
        atomic_write_json(root / "plan.json", {"fingerprint": fingerprint})
    todo = [(i, c) for i, c in enumerate(plan)
            if not ((root / "videos" / f"{c.clip_id}.mp4").is_file() and (root / "meta" / f"{c.clip_id}.npz").is_file())]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    render_in_pool(_write_corpus_clips, (str(root), config.to_dict()), todo, workers, progress, f"corpus ({config.regime})")
    lines = [json.dumps({"clip_id": c.clip_id, "video": f"videos/{c.clip_id}.mp4", "source": c.source,
                         "captions": list(c.captions), "units": c.units, "scene": c.scene, "speed": c.speed,
                         "moves": list(c.moves)})
             for c in plan]
    atomic_write_text(root / "captions.jsonl", "\n".join(lines) + "\n")
    counts = {"composed": sum(c.source == "composed" for c in plan)}
    counts["benchmark"] = len(plan) - counts["composed"]
    atomic_write_json(root / "corpus.json", {"config": config.to_dict(), "fingerprint": fingerprint,
                                             "version": CORPUS_VERSION, "n_clips": len(plan), "clips": counts,
                                             "n_rendered": len(todo), "wall_time_s": round(time.perf_counter() - start, 3)})
    return root


def load_corpus(root: str | os.PathLike) -> list[dict]:
    """The clips of a generated corpus (``captions.jsonl``), video paths made absolute.

    Raises:
        FileNotFoundError: ``root`` holds no complete corpus (run :func:`generate_corpus`).
    """
    root = Path(root)
    if recorded_fingerprint(root / "corpus.json") is None:
        raise FileNotFoundError(f"{root / 'corpus.json'} not found: no complete corpus in {root}; run generate_corpus")
    clips = [json.loads(line) for line in (root / "captions.jsonl").read_text(encoding="utf-8").splitlines() if line]
    return [{**c, "video": str(root / c["video"])} for c in clips]
