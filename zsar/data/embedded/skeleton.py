"""A 2-D articulated human: keyframe interpolation and forward kinematics, vectorised over time.

Coordinates are in *body units* (standing height ~= 1), x forward, y up, origin on the ground
below the pelvis. Angles are degrees measured from "straight down", positive towards the
figure's front (side view) or outwards (front view)::

    torso      up from the pelvis, tilted forward by ``lean``
    arms       shoulder angle relative to the torso, elbow flexion adds forwards/upwards
    legs       hip angle relative to the world vertical, knee flexion bends the shin back
    head       tilted forward by ``neck`` relative to the torso
"""

from __future__ import annotations

import numpy as np

JOINT_NAMES = (
    "head", "neck", "pelvis",
    "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "r_toe", "l_hip", "l_knee", "l_ankle", "l_toe",
    "r_hand", "l_hand",
)
J = {name: i for i, name in enumerate(JOINT_NAMES)}

# Pose parameters animated by keyframes; object parameters are added per action.
BODY_PARAMS = ("x", "lift", "lean", "neck", "rs", "re", "ls", "le", "rh", "rk", "lh", "lk", "ra", "la")
NEUTRAL_POSE = {"x": 0.0, "lift": 0.0, "lean": 0.0, "neck": 0.0, "rs": 6.0, "re": 12.0,
                "ls": 6.0, "le": 12.0, "rh": 0.0, "rk": 0.0, "lh": 0.0, "lk": 0.0, "ra": 0.0, "la": 0.0}

# Segment lengths of an average adult, in body heights (head top at ~0.98 when standing).
BASE_LENGTHS = {"torso": 0.30, "neck": 0.09, "head_r": 0.068, "upper_arm": 0.17, "forearm": 0.145,
                "hand": 0.045, "thigh": 0.245, "shin": 0.235, "ankle": 0.04, "foot": 0.085,
                "shoulder_w": 0.10, "hip_w": 0.05, "shoulder_drop": 0.035}


def sample_lengths(rng: np.random.Generator, spread: float = 0.07) -> dict[str, float]:
    """Per-actor limb proportions: every segment scaled by an independent ``1 +- spread``."""
    return {k: float(v * rng.uniform(1 - spread, 1 + spread)) for k, v in BASE_LENGTHS.items()}


def _pchip_slopes(t: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shape-preserving (PCHIP) slopes at knots ``t`` (N,) of values ``v`` (N, P); 0 at the ends.

    Keyframed poses often hold a value and then move; plain Catmull-Rom overshoots on such
    plateaus (a sitting figure would sink into the chair), PCHIP never does.
    """
    h = np.diff(t)[:, None]
    d = np.diff(v, axis=0) / h
    m = np.zeros_like(v)
    if len(t) > 2:
        h0, h1, d0, d1 = h[:-1], h[1:], d[:-1], d[1:]
        w1, w2 = 2 * h1 + h0, h1 + 2 * h0
        same_sign = d0 * d1 > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            inner = (w1 + w2) / (w1 / d0 + w2 / d1)
        m[1:-1] = np.where(same_sign, inner, 0.0)
    return m


def _hermite(t: np.ndarray, v: np.ndarray, m: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Evaluate the cubic Hermite spline (knots ``t`` (N,), values/slopes (N, P)) at ``x`` (T,)."""
    i = np.clip(np.searchsorted(t, x, side="right") - 1, 0, len(t) - 2)
    h = (t[i + 1] - t[i])[:, None]
    u = ((x - t[i])[:, None] / h).clip(0, 1)
    u2, u3 = u * u, u * u * u
    return ((2 * u3 - 3 * u2 + 1) * v[i] + (u3 - 2 * u2 + u) * h * m[i]
            + (-2 * u3 + 3 * u2) * v[i + 1] + (u3 - u2) * h * m[i + 1])


def interpolate_keyframes(times: np.ndarray, values: np.ndarray, phase: np.ndarray, cyclic: bool,
                          cycle_offsets: np.ndarray, linear: np.ndarray) -> np.ndarray:
    """Smoothly interpolate keyframed parameters.

    Args:
        times: (K,) increasing keyframe phases in [0, 1] (cyclic: in [0, 1), 1 wraps to 0).
        values: (K, P) parameter values at the keyframes.
        phase: (T,) phase of every frame; for cyclic actions it counts cycles (may exceed 1).
        cyclic: whether the motion loops.
        cycle_offsets: (P,) per-cycle increment of each parameter (e.g. walking distance); such a
            parameter advances uniformly, ``offset * phase``, plus its keyframed deviation.
        linear: (P,) bool, parameters interpolated linearly (grips switch, they must not ring).

    Returns:
        (T, P) parameter values.
    """
    times = np.asarray(times, float)
    values = np.asarray(values, float)
    trend = phase[:, None] * cycle_offsets if cyclic else 0.0
    if len(times) == 1:
        return np.repeat(values, len(phase), axis=0) + trend
    if cyclic:
        x = phase - np.floor(phase)
        # two wrapped knots on each side give the boundary segments proper neighbours
        t_ext = np.concatenate([times[-2:] - 1, times, times[:2] + 1])
        v_ext = np.concatenate([values[-2:], values, values[:2]])
    else:
        x = np.clip(phase, times[0], times[-1])
        t_ext, v_ext = times, values
    out = _hermite(t_ext, v_ext, _pchip_slopes(t_ext, v_ext), x)
    if linear.any():
        lin = np.stack([np.interp(x, t_ext, v_ext[:, p]) for p in np.flatnonzero(linear)], axis=1)
        out[:, linear] = lin
    return out + trend


def _direction(angle_deg: np.ndarray, outward: float = 1.0) -> np.ndarray:
    """Unit vectors (T, 2) for angles from straight down, rotating towards ``outward * x``."""
    a = np.radians(angle_deg)
    return np.stack([outward * np.sin(a), -np.cos(a)], axis=-1)


def forward_kinematics(pose: dict[str, np.ndarray], lengths: dict[str, float], view: str) -> np.ndarray:
    """Joint positions relative to the pelvis.

    Args:
        pose: body parameter name -> (T,) values (see :data:`BODY_PARAMS`).
        lengths: segment lengths in body units (see :func:`sample_lengths`).
        view: ``"side"`` (limbs swing forward/back) or ``"front"`` (limbs swing outwards).

    Returns:
        (T, J, 2) joint coordinates in body units, pelvis at the origin, y up.
    """
    T = len(pose["lean"])
    L = lengths
    out = np.zeros((T, len(JOINT_NAMES), 2))
    lean = pose["lean"]
    up = _direction(180.0 - lean)
    neck = up * (L["torso"])
    out[:, J["neck"]] = neck
    out[:, J["head"]] = neck + _direction(180.0 - lean - pose["neck"]) * L["neck"]
    front = view == "front"
    # in front view the two sides mirror each other; in side view both swing forwards
    for side, sign in (("r", -1.0), ("l", 1.0)):
        outward = sign if front else 1.0
        lateral = np.array([sign * L["shoulder_w"], 0.0]) if front else np.zeros(2)
        shoulder = neck - up * L["shoulder_drop"] + lateral
        arm_rel = pose[side + "s"] - outward * lean
        upper = _direction(arm_rel, outward)
        elbow = shoulder + upper * L["upper_arm"]
        fore_dir = _direction(arm_rel + pose[side + "e"], outward)
        wrist = elbow + fore_dir * L["forearm"]
        hip = np.array([sign * L["hip_w"], 0.0]) if front else np.zeros(2)
        thigh_a = pose[side + "h"]
        knee = hip + _direction(thigh_a, outward) * L["thigh"]
        shin_a = thigh_a - pose[side + "k"]
        ankle = knee + _direction(shin_a, outward) * L["shin"]
        # side view: the foot points forward; front view: slightly outward and foreshortened
        foot_a = shin_a + (90.0 + pose[side + "a"] if not front else 60.0)
        foot_len = L["foot"] * (1.0 if not front else 0.5)
        toe = ankle + _direction(foot_a, outward) * foot_len
        rows = {"shoulder": shoulder, "elbow": elbow, "wrist": wrist, "hip": hip, "knee": knee,
                "ankle": ankle, "toe": toe, "hand": wrist + fore_dir * L["hand"]}
        for name, value in rows.items():
            out[:, J[f"{side}_{name}"]] = value
    return out


def contact_points(joints: np.ndarray, lengths: dict[str, float]) -> np.ndarray:
    """Points that may touch the ground: (T, C, 2), the joints plus the head's bottom and the soles."""
    head_bottom = joints[:, J["head"]] - np.array([0.0, lengths["head_r"]])
    soles = joints[:, [J["r_ankle"], J["l_ankle"], J["r_toe"], J["l_toe"]]] - np.array([0.0, lengths["ankle"]])
    return np.concatenate([joints, head_bottom[:, None], soles], axis=1)


def support_height(x: np.ndarray, platforms: list[tuple[float, float, float]]) -> np.ndarray:
    """Height of the supporting surface under ``x`` (any shape): the highest platform, else 0.

    Args:
        x: horizontal world positions in body units.
        platforms: ``(x0, x1, height)`` boxes one can stand on (stairs, a box, a chair seat).
    """
    h = np.zeros_like(x)
    for x0, x1, height in platforms:
        h = np.where((x >= x0) & (x <= x1), np.maximum(h, height), h)
    return h


def ground_pelvis(joints_rel: np.ndarray, root_x: np.ndarray, lift: np.ndarray,
                  lengths: dict[str, float], platforms: list[tuple[float, float, float]]) -> np.ndarray:
    """Pelvis height (T,) that rests the lowest contact point on its support, plus ``lift``.

    Gravity without physics: every contact point must stay on or above the surface under it,
    and at least one touches, so walking, sitting, lying and stair climbing need no
    hand-tuned root height.
    """
    pts = contact_points(joints_rel, lengths)
    surface = support_height(pts[..., 0] + root_x[:, None], platforms)
    return (surface - pts[..., 1]).max(axis=1) + lift
