"""Play a motion program: keyframes -> joint and object trajectories in world body units."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zsar.data.embedded.actions import MotionProgram, ObjectSpec
from zsar.data.embedded.objects import stairs_platforms
from zsar.data.embedded.skeleton import BODY_PARAMS, J, forward_kinematics, ground_pelvis, interpolate_keyframes


@dataclass
class Motion:
    """World trajectories of one figure and its objects (body units, x forward, y up).

    Attributes:
        joints: (T, J, 2) joint positions.
        objects: object id -> (positions (T, 2), angles (T,)).
        platforms: surfaces one can stand on, ``(x0, x1, height)``.
        phase: (T,) the program phase of each frame.
    """

    joints: np.ndarray
    objects: dict
    platforms: list
    phase: np.ndarray


def frame_phases(program: MotionProgram, n_frames: int, fps: float, speed: float, phase0: float) -> np.ndarray:
    """Phase of every frame.

    Cyclic programs start at cycle phase ``phase0`` and advance ``speed / period`` cycles per
    second. One-off programs start at time ``phase0`` (seconds) and take ``period / speed``
    seconds, shortened to fit 85 % of the clip.
    """
    t = np.arange(n_frames) / fps
    if program.cyclic:
        return phase0 + t * speed / program.period
    dur = min(program.period / speed, 0.85 * n_frames / fps)
    return (t - phase0) / dur


def once_start_range(program: MotionProgram, n_frames: int, fps: float, speed: float) -> tuple[float, float]:
    """Feasible start times (s) of a one-off action: it begins and ends inside the clip."""
    clip = n_frames / fps
    dur = min(program.period / speed, 0.85 * clip)
    lo, hi = 0.05 * clip, clip - dur - 0.05 * clip
    return (lo, hi) if hi > lo else ((clip - dur) / 2, (clip - dur) / 2)


def _angle_from_down(v: np.ndarray) -> np.ndarray:
    """Direction (deg from straight down, towards +x) of vectors (T, 2)."""
    return np.degrees(np.arctan2(v[:, 0], -v[:, 1]))


def anchor_point(joints: np.ndarray, name: str, lengths: dict) -> np.ndarray:
    """(T, 2) position of an anchor: a joint, ``hands`` (between the hands) or ``head_top``."""
    if name == "hands":
        return (joints[:, J["r_hand"]] + joints[:, J["l_hand"]]) / 2
    if name == "head_top":
        up = joints[:, J["head"]] - joints[:, J["neck"]]
        up /= np.linalg.norm(up, axis=1, keepdims=True) + 1e-9
        return joints[:, J["head"]] + up * lengths["head_r"] * 0.7
    return joints[:, J[name]]


def align_angle(joints: np.ndarray, segment: str | None) -> np.ndarray:
    """Angle an object inherits from a body segment.

    Forearms give their direction from straight down (sticks extend along them); ``head`` and
    ``torso`` give their forward tilt from upright (hats and boxes tilt with them).
    """
    T = len(joints)
    if segment is None:
        return np.zeros(T)
    if segment in ("r_forearm", "l_forearm"):
        s = segment[0]
        return _angle_from_down(joints[:, J[s + "_wrist"]] - joints[:, J[s + "_elbow"]])
    a, b = {"head": ("neck", "head"), "torso": ("pelvis", "neck")}[segment]
    return 180.0 - _angle_from_down(joints[:, J[b]] - joints[:, J[a]])


def _reference_phase(program: MotionProgram, phase: np.ndarray, p: float) -> np.ndarray:
    """Phase ``p`` of the current cycle (cyclic programs) or ``p`` itself, for every frame (T,)."""
    return (np.floor(phase) + p) if program.cyclic else np.full_like(phase, p)


def _free_position(spec: ObjectSpec, values: dict) -> np.ndarray:
    """(T, 2) keyframed free position of an object in world coordinates."""
    free = np.stack([values[spec.id + "_x"], values[spec.id + "_y"]], axis=1)
    if spec.frame == "body":  # moves along with the (walking) figure
        free[:, 0] += values["x"]
    return free


def _object_track(spec: ObjectSpec, program: MotionProgram, phase: np.ndarray, values: dict,
                  joints: np.ndarray, lengths: dict) -> tuple[np.ndarray, np.ndarray]:
    """Position (T, 2) and angle (T,) of one object: its free position blended with its anchors.

    Style keys tie the free position to the anchors without hand-measured coordinates:
    ``launch_phase`` p makes the free position relative to the first anchor at phase p
    (a thrown ball leaves the hand exactly where the hand was); ``attach_phase`` p makes the
    first anchor hold the object where it lay at phase p (a box is picked up where it stands).
    """
    free = _free_position(spec, values)
    raw = spec.style.get("offset", (0.0, 0.0))
    offsets = [np.asarray(o, float) for o in raw] if np.ndim(raw) == 2 else [np.asarray(raw, float)] * len(spec.anchors)
    if "launch_phase" in spec.style:
        _, ref_joints = _pose(program, _reference_phase(program, phase, spec.style["launch_phase"]), lengths)
        free = anchor_point(ref_joints, spec.anchors[0], lengths) + offsets[0] + np.stack(
            [values[spec.id + "_x"], values[spec.id + "_y"]], axis=1)
    points = [free] + [anchor_point(joints, a, lengths) + off for a, off in zip(spec.anchors, offsets, strict=True)]
    if "attach_phase" in spec.style:
        ref_vals, ref_joints = _pose(program, _reference_phase(program, phase, spec.style["attach_phase"]), lengths)
        ref_free = _free_position(spec, ref_vals)
        points[1] = anchor_point(joints, spec.anchors[0], lengths) + (
            ref_free - anchor_point(ref_joints, spec.anchors[0], lengths))
    at = np.clip(values[spec.id + "_at"], 0, len(points) - 1)
    stack = np.stack(points)  # (A, T, 2)
    k = np.minimum(np.floor(at).astype(int), max(len(points) - 2, 0))
    frac = (at - k)[:, None]
    rows = np.arange(len(at))
    pos = stack[k, rows] * (1 - frac) + stack[np.minimum(k + 1, len(points) - 1), rows] * frac
    return pos, values[spec.id + "_rot"] + align_angle(joints, spec.align)


def _platforms(program: MotionProgram, values: dict, root_x: np.ndarray, lengths: dict) -> list:
    """Support surfaces from the program's objects, placed where they are at the first frame."""
    plats = []
    for o in program.objects:
        if not o.support:
            continue
        x = values[o.id + "_x"][0] + (root_x[0] if o.frame == "body" else 0.0)
        if o.kind == "stairs":
            plats += stairs_platforms(x, tuple(o.style.get("step", (0.26, 0.12))), o.style.get("n", 12))
        elif o.kind == "box":
            w, h = o.style.get("size", (0.34, 0.26))
            plats.append((x - w / 2, x + w / 2, h))
        elif o.kind == "chair":
            d = o.style.get("depth", 0.24)
            plats.append((x - d / 2, x + d / 2, lengths["shin"] + lengths["ankle"]))
    return plats


def _pose(program: MotionProgram, phase: np.ndarray, lengths: dict) -> tuple[dict, np.ndarray]:
    """Parameter values (name -> (T,)) and grounded world joints (T, J, 2) at ``phase`` (T,)."""
    table = interpolate_keyframes(program.times, program.values, phase, program.cyclic,
                                  program.cycle_offsets, program.linear)
    values = {p: table[:, i] for i, p in enumerate(program.params)}
    rel = forward_kinematics({p: values[p] for p in BODY_PARAMS}, lengths, program.view)
    plats = _platforms(program, values, values["x"], lengths)
    pelvis_y = ground_pelvis(rel, values["x"], values["lift"], lengths, plats)
    return values, rel + np.stack([values["x"], pelvis_y], axis=1)[:, None, :]


def play_program(program: MotionProgram, phase: np.ndarray, lengths: dict) -> Motion:
    """Interpolate the keyframes at ``phase`` (T,), pose the skeleton, rest it on its support.

    Returns:
        The figure's and objects' world trajectories.
    """
    values, joints = _pose(program, phase, lengths)
    objects = {o.id: _object_track(o, program, phase, values, joints, lengths) for o in program.objects}
    return Motion(joints=joints, objects=objects, platforms=_platforms(program, values, values["x"], lengths),
                  phase=phase)
