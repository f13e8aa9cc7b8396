"""Props drawn next to the figures: geometry in body units, drawing with OpenCV.

Every drawer gets an :class:`ObjectPose` (where the object is this frame, in pixels) and
returns the pixel bounding box ``(x0, y0, x1, y1)`` of what it drew. Angles are degrees:
for sticks (bat, broom) the stick direction from straight down, for upright things
(box, hat, cup, chair) the forward tilt from upright; for a ball its spin; for a rope its phase.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from zsar.data.embedded.skeleton import J

SHIFT = 4  # cv2 fixed-point bits: sub-pixel positions keep slow motions smooth
_F = 1 << SHIFT
AA = cv2.LINE_AA

OBJECT_KINDS = ("ball", "bat", "box", "chair", "rope", "stairs", "hat", "cup", "broom", "dumbbell")

_PALETTES = {
    "ball": [(240, 240, 235), (230, 110, 30), (200, 40, 40), (40, 90, 200), (240, 210, 40)],
    "bat": [(190, 140, 80), (170, 170, 180), (150, 95, 50)],
    "box": [(185, 140, 90), (170, 125, 80), (200, 160, 110)],
    "chair": [(130, 80, 45), (180, 40, 40), (40, 90, 170), (90, 90, 95)],
    "rope": [(220, 40, 40), (30, 90, 210), (240, 200, 30), (30, 160, 80)],
    "stairs": [(150, 150, 150), (160, 120, 80), (120, 110, 100)],
    "hat": [(30, 30, 35), (170, 30, 40), (215, 190, 120), (40, 60, 140)],
    "cup": [(245, 245, 240), (200, 50, 50), (50, 110, 200), (240, 200, 60)],
    "broom": [(200, 60, 40), (60, 120, 200), (120, 80, 40)],
    "dumbbell": [(40, 40, 45), (90, 90, 100), (40, 80, 170)],
}


@dataclass
class ObjectPose:
    """Where an object is in one frame.

    Attributes:
        centre: (2,) pixel position of the object's reference point.
        angle: degrees (meaning per kind, see the module docstring), in world orientation.
        scale: pixels per body unit.
        facing: +1 facing right, -1 mirrored.
        joints: (J, 2) pixel positions of the figure's joints (ropes hang between hands).
        style: kind-specific settings, plus ``colour`` and runtime values (e.g. ``seat_h``).
        view: ``side`` or ``front``.
    """

    centre: np.ndarray
    angle: float
    scale: float
    facing: float
    joints: np.ndarray
    style: dict
    view: str = "side"

    def to_px(self, pts) -> np.ndarray:
        """World-unit offsets (N, 2) from the reference point (x forward, y up) -> pixels (N, 2)."""
        pts = np.asarray(pts, float).reshape(-1, 2)
        return self.centre + self.scale * np.stack([self.facing * pts[:, 0], -pts[:, 1]], axis=1)

    def rotated(self, pts, tilt: float) -> np.ndarray:
        """Offsets (N, 2) tilted forward by ``tilt`` degrees (clockwise when facing right), then to pixels."""
        a = np.radians(-tilt)
        c, s = np.cos(a), np.sin(a)
        pts = np.asarray(pts, float).reshape(-1, 2)
        return self.to_px(np.stack([c * pts[:, 0] - s * pts[:, 1], s * pts[:, 0] + c * pts[:, 1]], axis=1))


def sample_object_colour(kind: str, rng: np.random.Generator) -> tuple[int, int, int]:
    """A colour from the kind's palette."""
    pal = _PALETTES[kind]
    return tuple(int(c) for c in pal[rng.integers(len(pal))])


def _fx(pts: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(pts) * _F).astype(np.int32)


def _bbox(pts: np.ndarray, pad: float = 0.0) -> tuple[float, float, float, float]:
    pts = np.asarray(pts).reshape(-1, 2)
    return (float(pts[:, 0].min() - pad), float(pts[:, 1].min() - pad),
            float(pts[:, 0].max() + pad), float(pts[:, 1].max() + pad))


def _shade(colour, k: float) -> tuple[int, ...]:
    return tuple(int(min(255, max(0, c * k))) for c in colour)


def _poly(img, pts, colour, outline: float | None = 0.6) -> None:
    p = _fx(pts)
    cv2.fillPoly(img, [p], colour, AA, SHIFT)
    if outline is not None:
        cv2.polylines(img, [p], True, _shade(colour, outline), 1, AA, SHIFT)


def _line(img, a, b, colour, thickness: float) -> None:
    cv2.line(img, tuple(_fx(a)), tuple(_fx(b)), colour, max(1, int(round(thickness))), AA, SHIFT)


def _circle(img, c, r, colour, thickness: int = -1) -> None:
    cv2.circle(img, tuple(_fx(c)), max(1, int(round(r * _F))), colour, thickness, AA, SHIFT)


def draw_ball(img, p: ObjectPose):
    r = p.style.get("radius", 0.07) * p.scale
    col = p.style["colour"]
    _circle(img, p.centre, r, col)
    a = np.radians(p.angle)
    seam = np.array([np.cos(a), np.sin(a)]) * r * 0.9
    _line(img, p.centre - seam, p.centre + seam, _shade(col, 0.45), max(1, r / 5))
    _circle(img, p.centre, r, _shade(col, 0.5), 1)
    return _bbox(p.centre, r)


def draw_box(img, p: ObjectPose):
    w, h = p.style.get("size", (0.34, 0.26))
    col = p.style["colour"]
    pts = p.rotated([(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)], p.angle)
    _poly(img, pts, col)
    tape = p.rotated([(-0.03, -h / 2), (0.03, -h / 2), (0.03, h / 2), (-0.03, h / 2)], p.angle)
    _poly(img, tape, _shade(col, 1.25), None)
    flap = p.rotated([(-w / 2, h / 2 - 0.04), (w / 2, h / 2 - 0.04)], p.angle)
    _line(img, flap[0], flap[1], _shade(col, 0.7), 1)
    return _bbox(pts)


def draw_chair(img, p: ObjectPose):
    seat_h, depth = p.style["seat_h"], p.style.get("depth", 0.24)
    col, t = p.style["colour"], max(1.0, 0.025 * p.scale)
    back, front = -depth / 2 - 0.02, depth / 2
    pts = p.to_px([(back, 0), (back, seat_h), (front, 0), (front, seat_h),
                   (back, seat_h + 0.32), (back + 0.02, seat_h + 0.32)])
    _line(img, pts[0], pts[1], _shade(col, 0.8), t)  # legs
    _line(img, pts[2], pts[3], _shade(col, 0.8), t)
    _line(img, pts[1], pts[4], col, t * 1.3)  # backrest
    seat = p.to_px([(back, seat_h - 0.03), (front, seat_h - 0.03), (front, seat_h), (back, seat_h)])
    _poly(img, seat, col)
    return _bbox(np.concatenate([pts, seat]))


def stairs_platforms(x0: float, step: tuple[float, float], n: int) -> list[tuple[float, float, float]]:
    """Step tops as ``(x_start, x_end, height)`` platforms; the last one is a long landing."""
    d, h = step
    plats = [(x0 + k * d, x0 + (k + 1) * d, (k + 1) * h) for k in range(n - 1)]
    plats.append((x0 + (n - 1) * d, x0 + (n - 1) * d + 5.0, n * h))
    return plats


def draw_stairs(img, p: ObjectPose):
    d, h = p.style.get("step", (0.26, 0.12))
    n, col = p.style.get("n", 12), p.style["colour"]
    outline = [(0.0, 0.0)]
    for k in range(n):
        outline += [(k * d, (k + 1) * h), ((k + 1) * d if k < n - 1 else k * d + 5.0, (k + 1) * h)]
    outline.append((outline[-1][0], 0.0))
    pts = p.to_px(outline)
    _poly(img, pts, col, 0.7)
    for k in range(n):  # light nosing edges make each step readable
        a, b = p.to_px([(k * d, (k + 1) * h), ((k + 1) * d, (k + 1) * h)])
        _line(img, a, b, _shade(col, 1.3), max(1, 0.015 * p.scale))
    return _bbox(pts)


def draw_hat(img, p: ObjectPose):
    col = p.style["colour"]
    brim = p.rotated([(-0.1, 0.0), (0.1, 0.0), (0.1, 0.018), (-0.1, 0.018)], p.angle)
    crown = p.rotated([(-0.062, 0.01), (0.062, 0.01), (0.05, 0.1), (-0.05, 0.1)], p.angle)
    _poly(img, crown, col)
    band = p.rotated([(-0.06, 0.018), (0.06, 0.018), (0.058, 0.035), (-0.058, 0.035)], p.angle)
    _poly(img, band, _shade(col, 0.55) if sum(col) > 200 else (200, 200, 200), None)
    _poly(img, brim, _shade(col, 0.85))
    return _bbox(np.concatenate([brim, crown]))


def draw_cup(img, p: ObjectPose):
    col = p.style["colour"]
    body = p.rotated([(-0.035, -0.04), (0.035, -0.04), (0.04, 0.045), (-0.04, 0.045)], p.angle)
    handle = p.rotated([(-0.045, 0.0)], p.angle)[0]
    _circle(img, handle, 0.022 * p.scale, _shade(col, 0.8), max(1, int(0.012 * p.scale)))
    _poly(img, body, col)
    return _bbox(np.concatenate([body, handle[None]]), 0.02 * p.scale)


def _stick(p: ObjectPose, length: float) -> tuple[np.ndarray, np.ndarray]:
    """Grip pixel position and unit pixel direction of a stick held at the reference point."""
    a = np.radians(p.angle)
    direction = np.array([p.facing * np.sin(a), np.cos(a)])
    return p.centre - direction * 0.08 * p.scale, direction


def draw_bat(img, p: ObjectPose):
    length, col = p.style.get("length", 0.55), p.style["colour"]
    grip, u = _stick(p, length)
    n = np.array([-u[1], u[0]])
    tip = grip + u * length * p.scale
    t0, t1 = 0.012 * p.scale, 0.03 * p.scale
    pts = np.array([grip + n * t0, tip + n * t1, tip - n * t1, grip - n * t0])
    _poly(img, pts, col)
    _circle(img, tip, t1, col)
    return _bbox(pts, t1)


def draw_broom(img, p: ObjectPose):
    length, col = p.style.get("length", 0.7), p.style["colour"]
    grip, u = _stick(p, length)
    n = np.array([-u[1], u[0]])
    end = grip + u * length * p.scale
    _line(img, grip, end, col, max(1, 0.022 * p.scale))
    head = np.array([end - n * 0.03 * p.scale, end + n * 0.03 * p.scale,
                     end + (u * 0.12 + n * 0.08) * p.scale, end + (u * 0.12 - n * 0.08) * p.scale])
    _poly(img, head, (215, 180, 80))
    return _bbox(np.concatenate([grip[None], head]))


def draw_dumbbell(img, p: ObjectPose):
    col = p.style["colour"]
    r = 0.045 * p.scale
    if p.view == "front":  # bar across the hand, a plate on each end
        ends = p.to_px([(-0.08, 0.0), (0.08, 0.0)])
        _line(img, ends[0], ends[1], (150, 150, 155), max(1, 0.02 * p.scale))
        for e in ends:
            _poly(img, e + np.array([[-0.2, -1], [0.2, -1], [0.2, 1], [-0.2, 1]]) * r, col)
        return _bbox(ends, r)
    _circle(img, p.centre, r, col)
    _circle(img, p.centre, r * 0.35, (150, 150, 155))
    return _bbox(p.centre, r)


def _rope_curve(a: np.ndarray, b: np.ndarray, ctrl: np.ndarray, n: int = 9) -> np.ndarray:
    """Quadratic Bezier from ``a`` to ``b`` bent towards ``ctrl``: (n, 2)."""
    s = np.linspace(0, 1, n)[:, None]
    return (1 - s) ** 2 * a + 2 * (1 - s) * s * ctrl + s ** 2 * b


def draw_rope(img, p: ObjectPose):
    col, style = p.style["colour"], p.style.get("style", "jump")
    rh, lh = p.joints[J["r_hand"]], p.joints[J["l_hand"]]
    t = max(1, 0.018 * p.scale)
    a = np.radians(p.angle)
    if style == "jump":  # the loop sweeps over the head and under the feet
        pivot = (p.joints[J["pelvis"]] + p.joints[J["neck"]]) / 2
        radius = p.style.get("radius", 0.62) * p.scale
        ground = p.style.get("ground_px", np.inf)
        apex = pivot + radius * np.array([p.facing * np.sin(a), np.cos(a)])
        apex[1] = min(apex[1], ground)
        curves = [_rope_curve(h, apex, pivot + 1.1 * (apex - pivot) + (h - pivot) * 0.4) for h in (rh, lh)]
    elif style == "tug":  # taut to the far end, out of the frame
        far = p.to_px([(4.0, 0.0)])[0]
        far[1] = rh[1] + 0.05 * p.scale
        curves = [np.array([lh, rh, far])]
    else:  # lasso: a loop circling above the head on a short line
        loop = rh + p.scale * np.array([0.22 * p.facing * np.cos(a), -0.18 - 0.06 * np.sin(a)])
        ang = np.linspace(0, 2 * np.pi, 14)
        ring = loop + p.scale * np.stack([0.2 * np.cos(ang), 0.06 * np.sin(ang)], axis=1)
        curves = [np.array([rh, loop + p.scale * np.array([0.0, 0.06])]), ring]
    for c in curves:
        cv2.polylines(img, [_fx(c)], False, col, int(round(t)), AA, SHIFT)
    return _bbox(np.concatenate(curves))


DRAWERS = {"ball": draw_ball, "bat": draw_bat, "box": draw_box, "chair": draw_chair, "rope": draw_rope,
           "stairs": draw_stairs, "hat": draw_hat, "cup": draw_cup, "broom": draw_broom,
           "dumbbell": draw_dumbbell}
