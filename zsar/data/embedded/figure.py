"""Actors (proportions and clothes) and drawing a posed figure with OpenCV."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from zsar.data.embedded.objects import AA, SHIFT, _fx, _shade
from zsar.data.embedded.skeleton import J, sample_lengths

_SKIN = [(255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (95, 60, 35)]
_HAIR = [(20, 15, 10), (70, 45, 25), (120, 80, 40), (200, 170, 90), (150, 150, 150), (160, 60, 30)]
_CLOTH = [(200, 40, 40), (40, 90, 200), (40, 150, 70), (240, 200, 40), (240, 240, 235), (30, 30, 35),
          (230, 120, 30), (130, 60, 160), (0, 150, 160), (240, 120, 160), (110, 110, 115), (120, 80, 50)]
_PANTS = [(40, 50, 90), (30, 30, 35), (90, 90, 95), (150, 120, 80), (60, 80, 140), (110, 40, 40)]

FAR_SHADE = 0.72  # far-side limbs are darker: a cheap depth cue in side view


@dataclass
class Actor:
    """One person's look.

    Attributes:
        lengths: segment lengths in body units (see ``skeleton.BASE_LENGTHS``).
        skin, hair, shirt, pants, shoes: RGB colours.
        long_sleeves, long_pants: whether forearms / shins are covered by clothes.
    """

    lengths: dict
    skin: tuple
    hair: tuple
    shirt: tuple
    pants: tuple
    shoes: tuple
    long_sleeves: bool
    long_pants: bool

    def to_meta(self) -> dict:
        """Flat arrays for the clip's side metadata."""
        return {"actor_colours": np.array([self.skin, self.hair, self.shirt, self.pants, self.shoes], np.uint8),
                "actor_lengths": np.array([self.lengths[k] for k in sorted(self.lengths)], np.float32),
                "long_sleeves": self.long_sleeves, "long_pants": self.long_pants}


def _pick(rng: np.random.Generator, palette) -> tuple:
    return tuple(int(c) for c in palette[rng.integers(len(palette))])


def sample_actor(rng: np.random.Generator) -> Actor:
    """A random person: proportions +-7 % per segment, skin, hair and clothing colours."""
    shirt = _pick(rng, _CLOTH)
    pants = _pick(rng, _PANTS if rng.random() < 0.75 else _CLOTH)
    return Actor(lengths=sample_lengths(rng), skin=_pick(rng, _SKIN), hair=_pick(rng, _HAIR), shirt=shirt,
                 pants=pants, shoes=_pick(rng, [(30, 30, 30), (240, 240, 240), (120, 70, 40), (60, 60, 150)]),
                 long_sleeves=bool(rng.random() < 0.5), long_pants=bool(rng.random() < 0.7))


def _seg(img, a, b, colour, thickness: int) -> None:
    cv2.line(img, a, b, colour, thickness, AA, SHIFT)


def _limb(img, p, side: str, actor: Actor, widths: dict, shade: float, arm: bool) -> None:
    """Draw one arm (upper, fore, hand) or leg (thigh, shin, foot) from fixed-point joints ``p``."""
    s = side + "_"
    if arm:
        sleeve = actor.shirt if actor.long_sleeves else actor.skin
        _seg(img, p[J[s + "shoulder"]], p[J[s + "elbow"]], _shade(actor.shirt, shade), widths["upper_arm"])
        _seg(img, p[J[s + "elbow"]], p[J[s + "wrist"]], _shade(sleeve, shade), widths["forearm"])
        _seg(img, p[J[s + "wrist"]], p[J[s + "hand"]], _shade(actor.skin, shade), widths["hand"])
    else:
        lower = actor.pants if actor.long_pants else actor.skin
        _seg(img, p[J[s + "hip"]], p[J[s + "knee"]], _shade(actor.pants, shade), widths["thigh"])
        _seg(img, p[J[s + "knee"]], p[J[s + "ankle"]], _shade(lower, shade), widths["shin"])
        _seg(img, p[J[s + "ankle"]], p[J[s + "toe"]], _shade(actor.shoes, shade), widths["foot"])


def limb_widths(scale: float) -> dict:
    """Line thickness in pixels of every body part at ``scale`` pixels per body unit."""
    w = {"upper_arm": 0.052, "forearm": 0.045, "hand": 0.05, "thigh": 0.072, "shin": 0.058, "foot": 0.04}
    return {k: max(1, int(round(v * scale))) for k, v in w.items()}


def _torso_polygon(pts: np.ndarray, view: str, scale: float) -> np.ndarray:
    """Torso outline (N, 2) in pixels from float joint positions (J, 2)."""
    pelvis, neck = pts[J["pelvis"]], pts[J["neck"]]
    if view == "front":
        hw, sw = 0.035 * scale, 0.035 * scale
        rh, lh, rsh, lsh = pts[J["r_hip"]], pts[J["l_hip"]], pts[J["r_shoulder"]], pts[J["l_shoulder"]]
        out_r = np.sign(rh[0] - lh[0]) or 1.0
        return np.array([rh + [out_r * hw, 0], rsh + [out_r * sw, 0], neck + [out_r * 0.03 * scale, 0],
                         neck - [out_r * 0.03 * scale, 0], lsh - [out_r * sw, 0], lh - [out_r * hw, 0]])
    u = neck - pelvis
    n = np.array([-u[1], u[0]]) / (np.linalg.norm(u) + 1e-9)
    chest = pelvis + 0.72 * u
    wh, wc, wn = 0.058 * scale, 0.07 * scale, 0.04 * scale
    return np.array([pelvis + n * wh, chest + n * wc, neck + n * wn, neck - n * wn, chest - n * wc, pelvis - n * wh])


def _head(img, pts: np.ndarray, actor: Actor, scale: float, facing: float, view: str) -> None:
    """Head: a skin disc with a hair cap on its back (side view) or top (front view)."""
    head, neck = pts[J["head"]], pts[J["neck"]]
    r = actor.lengths["head_r"] * scale
    up = (head - neck) / (np.linalg.norm(head - neck) + 1e-9)
    back = np.array([up[1], -up[0]]) * facing  # perpendicular to the neck, pointing behind the face
    if view == "front":
        back = np.zeros(2)
    cv2.circle(img, tuple(_fx(head + up * 0.18 * r + back * 0.22 * r)), int(r * 1.02 * 16), actor.hair, -1, AA, SHIFT)
    cv2.circle(img, tuple(_fx(head - up * 0.08 * r - back * 0.1 * r)), int(r * 0.9 * 16), actor.skin, -1, AA, SHIFT)
    if view != "front":  # a nose bump shows where the face is
        cv2.circle(img, tuple(_fx(head - back * 0.95 * r)), max(1, int(r * 0.22 * 16)), actor.skin, -1, AA, SHIFT)


def draw_figure(img: np.ndarray, pts: np.ndarray, actor: Actor, scale: float, facing: float, view: str,
                widths: dict, before_near_arm: Callable[[], None] | None = None) -> None:
    """Draw a posed figure in place.

    Args:
        img: (H, W, 3) uint8 canvas.
        pts: (J, 2) float pixel positions of the joints.
        actor: the person's look.
        scale: pixels per body unit.
        facing: +1 (faces right) or -1.
        view: ``side`` or ``front``.
        widths: limb thicknesses from :func:`limb_widths`.
        before_near_arm: callback drawing held objects between the body and the near arm.
    """
    p = [tuple(q) for q in _fx(pts).tolist()]
    if view == "front":
        for side in ("r", "l"):
            _limb(img, p, side, actor, widths, 1.0, arm=False)
        cv2.fillPoly(img, [_fx(_torso_polygon(pts, view, scale))], actor.shirt, AA, SHIFT)
        _head(img, pts, actor, scale, facing, view)
        if before_near_arm:
            before_near_arm()
        for side in ("r", "l"):
            _limb(img, p, side, actor, widths, 1.0, arm=True)
        return
    _limb(img, p, "l", actor, widths, FAR_SHADE, arm=True)
    _limb(img, p, "l", actor, widths, FAR_SHADE, arm=False)
    cv2.fillPoly(img, [_fx(_torso_polygon(pts, view, scale))], actor.shirt, AA, SHIFT)
    _limb(img, p, "r", actor, widths, 1.0, arm=False)
    _head(img, pts, actor, scale, facing, view)
    if before_near_arm:
        before_near_arm()
    _limb(img, p, "r", actor, widths, 1.0, arm=True)
