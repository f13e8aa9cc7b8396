"""Load the action classes declared as data in ``actions.json``.

Each class is a name, a description, semantic units and a *motion program*: keyframed joint
angles (plus object parameters) that :mod:`zsar.data.embedded.render` plays back. A class
with ``reverse_of`` reuses its partner's program played backwards, so the two classes of a
temporal pair have identical per-frame appearance distributions.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from zsar.data.embedded.skeleton import BODY_PARAMS, NEUTRAL_POSE

UNIT_GROUPS = ("body_parts", "objects", "scenes", "motions")
OBJECT_PARAMS = ("x", "y", "at", "rot")  # an object's own keyframed parameters, prefixed "<id>_"


@dataclass(frozen=True)
class ObjectSpec:
    """An object in an action: what it is and how it is placed.

    Attributes:
        id: parameter prefix, unique in the action (defaults to ``kind``).
        kind: a key of :data:`zsar.data.embedded.objects.OBJECT_KINDS`.
        anchors: joints (or ``hands``/``head_top``) the object can be attached to; the
            keyframed ``<id>_at`` blends the free position (0) and anchor k (k).
        align: segment whose direction is added to ``<id>_rot`` (``r_forearm``, ``head``, ...).
        frame: ``body`` (free position moves with the walking figure) or ``world``.
        layer: draw order, ``back`` (behind the figure), ``mid`` (before the near arm), ``front``.
        support: whether one can stand or sit on it (it becomes a platform for grounding).
        style: kind-specific settings (size, rope style, step size, ...).
    """

    id: str
    kind: str
    anchors: tuple[str, ...] = ()
    align: str | None = None
    frame: str = "body"
    layer: str = "mid"
    support: bool = False
    style: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class MotionProgram:
    """A keyframed motion, interpolated by :func:`zsar.data.embedded.skeleton.interpolate_keyframes`.

    Attributes:
        view: ``side`` or ``front``.
        cyclic: loops (phase counts cycles) or plays once (phase in [0, 1]).
        period: seconds per cycle, or duration of a one-off action, at speed 1.
        mirror: whether the figure may be mirrored (faces left, left-handed).
        params: names of the P animated parameters (body then object parameters).
        times: (K,) keyframe phases.
        values: (K, P) parameter values.
        cycle_offsets: (P,) increment per cycle (walking distance, rope turns).
        linear: (P,) bool, parameters interpolated linearly.
        objects: the objects.
    """

    view: str
    cyclic: bool
    period: float
    mirror: bool
    params: tuple[str, ...]
    times: np.ndarray = field(hash=False, compare=False)
    values: np.ndarray = field(hash=False, compare=False)
    cycle_offsets: np.ndarray = field(hash=False, compare=False)
    linear: np.ndarray = field(hash=False, compare=False)
    objects: tuple[ObjectSpec, ...] = ()


@dataclass(frozen=True)
class ActionClass:
    """One class: its words and its motion."""

    index: int
    name: str
    dir: str
    description: str
    units: dict = field(hash=False, compare=False)
    program: MotionProgram = field(hash=False, compare=False)
    reversed: bool = False
    temporal_pair: str | None = None


def class_dir_name(name: str) -> str:
    """UCF101-style folder name: ``"kick a ball"`` -> ``"KickABall"``, ``"do push-ups"`` -> ``"DoPushUps"``."""
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"[^A-Za-z0-9]+", name) if w)


@functools.lru_cache(maxsize=1)
def _raw_data() -> bytes:
    return resources.files("zsar.data.embedded").joinpath("actions.json").read_bytes()


def actions_data_digest() -> str:
    """sha256 of ``actions.json``: part of the config fingerprint, so edits regenerate data."""
    return hashlib.sha256(_raw_data()).hexdigest()


def _object_spec(d: dict, where: str) -> ObjectSpec:
    keys = {"id", "kind", "anchors", "align", "frame", "layer", "support", "style"}
    if set(d) - keys:
        raise ValueError(f"{where}: unknown object keys {sorted(set(d) - keys)}")
    return ObjectSpec(id=d.get("id", d["kind"]), kind=d["kind"], anchors=tuple(d.get("anchors", ())),
                      align=d.get("align"), frame=d.get("frame", "body"), layer=d.get("layer", "mid"),
                      support=bool(d.get("support", False)), style=dict(d.get("style", {})))


def _mirror_half_cycle(keyframes: list) -> list:
    """Append the second half of a symmetric gait: each keyframe at t + 0.5 with sides swapped."""
    swap = {"rs": "ls", "ls": "rs", "re": "le", "le": "re", "rh": "lh", "lh": "rh",
            "rk": "lk", "lk": "rk", "ra": "la", "la": "ra"}
    second = [[t + 0.5, {swap.get(k, k): v for k, v in kf.items()}] for t, kf in keyframes]
    return keyframes + second


def _program(d: dict, poses: dict, where: str) -> MotionProgram:
    """Build a :class:`MotionProgram` from its JSON; keyframes inherit unspecified values."""
    objects = tuple(_object_spec(o, where) for o in d.get("objects", ()))
    params = list(BODY_PARAMS) + [f"{o.id}_{p}" for o in objects for p in OBJECT_PARAMS]
    current = dict(NEUTRAL_POSE)
    for o in objects:
        x, y = o.style.get("pos", (0.3, 0.0))
        current.update({f"{o.id}_x": x, f"{o.id}_y": y, f"{o.id}_at": 1.0 if o.anchors else 0.0,
                        f"{o.id}_rot": 0.0})
    keyframes = d["keyframes"]
    if d.get("mirror_half_cycle"):
        keyframes = _mirror_half_cycle(keyframes)
    times, rows = [], []
    for t, kf in keyframes:
        kf = dict(kf)
        if "pose" in kf:
            current.update(NEUTRAL_POSE)
            current.update(poses[kf.pop("pose")])
        unknown = set(kf) - set(params)
        if unknown:
            raise ValueError(f"{where}: unknown keyframe parameter(s) {sorted(unknown)}")
        current.update(kf)
        times.append(float(t))
        rows.append([current[p] for p in params])
    times_a = np.array(times)
    if np.any(np.diff(times_a) <= 0) or times_a[0] < 0 or times_a[-1] > 1:
        raise ValueError(f"{where}: keyframe times must increase within [0, 1], got {times}")
    offsets = d.get("cycle_offsets", {})
    return MotionProgram(
        view=d.get("view", "side"), cyclic=bool(d.get("cyclic", False)), period=float(d["period"]),
        mirror=bool(d.get("mirror", True)), params=tuple(params), times=times_a,
        values=np.array(rows, float), cycle_offsets=np.array([float(offsets.get(p, 0.0)) for p in params]),
        linear=np.array([p.endswith("_at") for p in params]), objects=objects)


@functools.lru_cache(maxsize=1)
def action_classes() -> tuple[ActionClass, ...]:
    """All classes in catalog order, parsed and validated from ``actions.json``."""
    data = json.loads(_raw_data())
    programs, entries = {}, []
    for i, d in enumerate(data["actions"]):
        where = f"actions.json action {i} ({d.get('name')!r})"
        for group in UNIT_GROUPS:
            if group not in d.get("units", {}):
                raise ValueError(f"{where}: units lack group {group!r}")
        if "reverse_of" not in d:
            programs[d["name"]] = _program(d, data["poses"], where)
        entries.append(d)
    by_name = {d["name"]: d for d in entries}
    partner = {d["name"]: d["reverse_of"] for d in entries if "reverse_of" in d}
    partner.update({v: k for k, v in list(partner.items())})
    classes = []
    for i, d in enumerate(entries):
        source = d.get("reverse_of")
        if source is not None and source not in programs:
            raise ValueError(f"actions.json action {i}: reverse_of {source!r} is not a forward class")
        pair = partner.get(d["name"])
        classes.append(ActionClass(
            index=i, name=d["name"], dir=class_dir_name(d["name"]), description=d["description"],
            units={g: list(d["units"][g]) for g in UNIT_GROUPS},
            program=programs[source or d["name"]], reversed=source is not None,
            temporal_pair=class_dir_name(by_name[pair]["name"]) if pair else None))
    return tuple(classes)


def program_from_data(d: dict, where: str = "program") -> MotionProgram:
    """A :class:`MotionProgram` from data in ``actions.json``'s format (keyframes may use its named poses)."""
    return _program(d, json.loads(_raw_data())["poses"], where)


def extra_program(name: str) -> MotionProgram:
    """A non-class motion from ``actions.json``'s ``extras`` (e.g. ``idle`` for distractor people)."""
    data = json.loads(_raw_data())
    return _program(data["extras"][name], data["poses"], f"actions.json extras.{name}")
