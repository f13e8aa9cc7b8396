"""Procedural background textures, one per scene, horizontally tileable for panning cameras.

A texture is ``(Ht, Wt, 3)`` uint8 RGB with ``Ht = 1.75 * size`` and ``Wt = 4 * size``; the
horizon lies at row ``1.12 * size`` and a clip normally shows rows ``0.6 * size`` to
``1.6 * size``, so a climbing camera can tilt up. Textures depend only on (scene, size), are
built from fixed seeds and cached per process.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

SCENES = ("grass field", "gym", "beach", "street", "living room", "snow")
CROP_TOP = 0.6  # nominal first visible texture row, in frame heights
HORIZON = 1.12  # horizon row, in frame heights


def texture_shape(size: int) -> tuple[int, int, int]:
    """(Ht, Wt, horizon row) of the textures for frames of ``size`` pixels."""
    return int(round(1.75 * size)), 4 * size, int(round(HORIZON * size))


def _blur_wrap(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur that wraps around horizontally, so the texture stays tileable."""
    pad = int(3 * sigma) + 1
    padded = np.concatenate([img[:, -pad:], img, img[:, :pad]], axis=1)
    out = cv2.GaussianBlur(padded, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return out[:, pad:-pad]


def _noise(rng: np.random.Generator, h: int, w: int, sigma: float, amp: float) -> np.ndarray:
    """Smooth tileable noise (h, w, 1) float32 with std ~ ``amp``."""
    n = _blur_wrap(rng.standard_normal((h, w)).astype(np.float32), sigma)
    return (n / (n.std() + 1e-6) * amp)[..., None]


def _gradient(h: int, w: int, top, bottom) -> np.ndarray:
    """Vertical colour gradient (h, w, 3) float32 from ``top`` to ``bottom`` RGB."""
    a = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to((1 - a) * np.float32(top) + a * np.float32(bottom), (h, w, 3)).copy()


def _tiled(x: float, wt: int) -> tuple[float, float, float]:
    """``x`` and its copies one texture width left and right: draw at all three to stay tileable."""
    return x - wt, x, x + wt


def _perspective_rows(top: int, bottom: int, n: int) -> np.ndarray:
    """Row positions of n floor lines whose spacing grows towards the viewer (fake perspective)."""
    return (top + (bottom - top) * np.linspace(0, 1, n + 1)[1:] ** 1.6).astype(int)


def _grass_field(rng, ht, wt, hz, s):
    img = _gradient(ht, wt, (70, 130, 215), (185, 215, 240))
    for _ in range(7):  # clouds
        cx, cy, r = rng.uniform(0, wt), rng.uniform(0.1, 0.8) * hz, rng.uniform(0.08, 0.16) * s
        for x in _tiled(cx, wt):
            cv2.ellipse(img, (int(x), int(cy)), (int(2.2 * r), int(r)), 0, 0, 360, (245, 247, 250), -1)
    img = _blur_wrap(img, 0.02 * s)
    trees = np.zeros((ht, wt), np.float32)
    for x in np.arange(0, wt, 0.05 * s):  # tree line on the horizon
        r = rng.uniform(0.04, 0.09) * s
        for xx in _tiled(x, wt):
            cv2.circle(trees, (int(xx), int(hz - 0.3 * r)), int(r), 1.0, -1)
    img[trees > 0] = (35, 80, 40)
    ground = _gradient(ht - hz, wt, (95, 150, 60), (60, 135, 45))
    rows = _perspective_rows(0, ht - hz, 7)
    for i, (a, b) in enumerate(zip(np.r_[0, rows[:-1]], rows, strict=True)):  # mowing stripes
        ground[a:b] *= 1.08 if i % 2 else 0.94
    ground += _noise(rng, ht - hz, wt, 0.8, 14)
    img[hz:] = ground
    cv2.line(img, (0, hz + int(0.3 * s)), (wt, hz + int(0.3 * s)), (235, 240, 235), max(1, s // 64))
    return img


def _gym(rng, ht, wt, hz, s):
    img = _gradient(hz, wt, (225, 222, 205), (205, 200, 185))
    for x in np.arange(0, wt, 0.4 * s):  # wall panels
        cv2.line(img, (int(x), 0), (int(x), hz), (175, 170, 160), max(1, s // 96))
    img[hz - int(0.18 * s): hz - int(0.1 * s)] = (40, 75, 150)  # painted band
    for x in rng.uniform(0, wt, 3):  # high windows
        for xx in _tiled(x, wt):
            cv2.rectangle(img, (int(xx), int(0.45 * s)), (int(xx + 0.3 * s), int(0.7 * s)), (200, 225, 245), -1)
    floor = _gradient(ht - hz, wt, (185, 130, 75), (215, 160, 95))
    rows = _perspective_rows(0, ht - hz, 14)
    for i, r in enumerate(rows):  # planks with staggered seams
        cv2.line(floor, (0, int(r)), (wt, int(r)), (150, 100, 55), 1)
        for x in np.arange((i * 0.37 * s) % (0.9 * s), wt, 0.9 * s):
            a = rows[i - 1] if i else 0
            cv2.line(floor, (int(x), int(a)), (int(x), int(r)), (160, 110, 60), 1)
    floor += _noise(rng, ht - hz, wt, 0.6, 6)
    line_row = int(0.42 * s)
    floor[line_row: line_row + max(2, s // 40)] = (235, 235, 230)  # court line
    img = np.concatenate([img, floor])
    return img


def _beach(rng, ht, wt, hz, s):
    img = _gradient(ht, wt, (90, 170, 240), (215, 235, 250))
    sea_end = hz + int(0.14 * s)
    sea = _gradient(sea_end - hz, wt, (25, 85, 160), (45, 130, 185))
    for _ in range(40):  # wave crests
        x, y = rng.uniform(0, wt), rng.uniform(0, sea_end - hz)
        for xx in _tiled(x, wt):
            cv2.line(sea, (int(xx), int(y)), (int(xx + 0.12 * s), int(y)), (200, 225, 240), 1)
    img[hz:sea_end] = sea
    sand = _gradient(ht - sea_end, wt, (200, 175, 125), (235, 210, 160))
    sand[: int(0.05 * s)] *= 0.8  # wet strip
    sand += _noise(rng, ht - sea_end, wt, 0.5, 9) + _noise(rng, ht - sea_end, wt, 4.0, 8)
    img[sea_end:] = sand
    return img


def _street(rng, ht, wt, hz, s):
    img = _gradient(ht, wt, (150, 175, 205), (205, 215, 225))
    x = 0.0
    while x < wt:  # buildings with windows; the last one is clipped to keep the tile seamless
        w, h = rng.uniform(0.3, 0.6) * s, rng.uniform(0.35, 0.75) * s
        colour = np.array([(170, 90, 70), (200, 185, 150), (140, 140, 150), (120, 100, 90)][rng.integers(4)])
        x1 = min(x + w, wt)
        cv2.rectangle(img, (int(x), int(hz - h)), (int(x1) - 1, hz), colour.tolist(), -1)
        for wy in np.arange(hz - h + 0.06 * s, hz - 0.1 * s, 0.13 * s):
            for wx in np.arange(x + 0.05 * s, x1 - 0.1 * s, 0.12 * s):
                lit = (235, 220, 150) if rng.random() < 0.3 else (60, 75, 100)
                cv2.rectangle(img, (int(wx), int(wy)), (int(wx + 0.06 * s), int(wy + 0.07 * s)), lit, -1)
        x = x1 + rng.uniform(0, 0.05) * s
    walk_end = hz + int(0.34 * s)
    img[hz:walk_end] = _gradient(walk_end - hz, wt, (165, 165, 160), (185, 185, 180))
    for r in _perspective_rows(hz, walk_end, 4):
        cv2.line(img, (0, int(r)), (wt, int(r)), (140, 140, 138), 1)
    for xx in np.arange(0, wt, 0.3 * s):
        cv2.line(img, (int(xx), hz), (int(xx), walk_end), (145, 145, 142), 1)
    img[walk_end: walk_end + max(2, s // 40)] = (120, 120, 118)  # curb
    road = _gradient(ht - walk_end - 3, wt, (75, 75, 80), (55, 55, 60))
    road += _noise(rng, *road.shape[:2], 0.5, 7)
    img[walk_end + 3:] = road
    dash = walk_end + int(0.28 * s)
    for xx in np.arange(0, wt, 0.5 * s):
        cv2.rectangle(img, (int(xx), dash), (int(xx + 0.25 * s), dash + max(2, s // 50)), (230, 230, 220), -1)
    return img


def _living_room(rng, ht, wt, hz, s):
    img = _gradient(hz, wt, (220, 195, 155), (200, 175, 135))
    stripe = max(2, s // 16)
    for x in range(0, wt, 2 * stripe):  # wallpaper
        img[:, x: x + stripe] *= 0.93
    for k, kind in enumerate(("window", "frame", "shelf", "frame")):
        x = 0.2 * s + k * wt / 4
        if kind == "window":
            cv2.rectangle(img, (int(x), int(0.55 * s)), (int(x + 0.45 * s), int(0.95 * s)), (245, 245, 240), -1)
            cv2.rectangle(img, (int(x + 3), int(0.55 * s + 3)), (int(x + 0.45 * s - 3), int(0.95 * s - 3)),
                          (150, 200, 240), -1)
            cv2.line(img, (int(x + 0.225 * s), int(0.55 * s)), (int(x + 0.225 * s), int(0.95 * s)), (245, 245, 240), 2)
        elif kind == "frame":
            cv2.rectangle(img, (int(x), int(0.7 * s)), (int(x + 0.2 * s), int(0.85 * s)), (90, 60, 30), -1)
            cv2.rectangle(img, (int(x + 2), int(0.7 * s + 2)), (int(x + 0.2 * s - 2), int(0.85 * s - 2)),
                          tuple(int(c) for c in rng.integers(60, 200, 3)), -1)
        else:
            cv2.rectangle(img, (int(x), int(0.65 * s)), (int(x + 0.5 * s), hz), (110, 70, 40), -1)
            for bx in np.arange(x + 2, x + 0.5 * s - 3, 0.035 * s):
                for by in (0.68, 0.85):
                    cv2.rectangle(img, (int(bx), int((by + 0.02) * s)), (int(bx + 0.025 * s), int((by + 0.12) * s)),
                                  tuple(int(c) for c in rng.integers(40, 220, 3)), -1)
    floor = _gradient(ht - hz, wt, (120, 50, 45), (150, 65, 55))
    floor += _noise(rng, ht - hz, wt, 0.5, 8)
    img = np.concatenate([img, floor])
    img[hz: hz + max(2, s // 30)] = (240, 235, 225)  # skirting board
    return img


def _snow(rng, ht, wt, hz, s):
    img = _gradient(ht, wt, (175, 190, 210), (225, 230, 238))
    for _ in range(6):  # mountains
        x, h, w = rng.uniform(0, wt), rng.uniform(0.2, 0.4) * s, rng.uniform(0.4, 0.8) * s
        for xx in _tiled(x, wt):
            cv2.fillPoly(img, [np.array([[xx - w, hz], [xx, hz - h], [xx + w, hz]], np.int32)], (150, 165, 190))
    for x in np.sort(rng.uniform(0, wt, 30)):  # pine trees
        h = rng.uniform(0.12, 0.3) * s
        for xx in _tiled(x, wt):
            tree = np.array([[xx - 0.3 * h, hz + 2], [xx, hz - h], [xx + 0.3 * h, hz + 2]], np.int32)
            cv2.fillPoly(img, [tree], (30, 70, 50))
    snow = _gradient(ht - hz, wt, (225, 232, 242), (248, 250, 253))
    snow += _noise(rng, ht - hz, wt, 3.0, 7) + _noise(rng, ht - hz, wt, 0.6, 3)
    img[hz:] = snow
    return img


_BUILDERS = {"grass field": _grass_field, "gym": _gym, "beach": _beach, "street": _street,
             "living room": _living_room, "snow": _snow}


@functools.lru_cache(maxsize=16)
def scene_texture(scene: str, size: int) -> np.ndarray:
    """The background texture of ``scene`` for ``size``-pixel frames: (Ht, Wt, 3) uint8 RGB.

    Built from a seed fixed per scene, so every process gets identical textures.
    """
    if scene not in _BUILDERS:
        raise ValueError(f"unknown scene {scene!r}; known: {list(SCENES)}")
    ht, wt, hz = texture_shape(size)
    rng = np.random.default_rng(1000 + SCENES.index(scene))
    img = _BUILDERS[scene](rng, ht, wt, hz, size).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    img.setflags(write=False)
    return img


@functools.lru_cache(maxsize=16)
def _padded_texture(scene: str, size: int) -> np.ndarray:
    """The texture with its first ``size`` columns appended, so any wrapped crop is one slice."""
    tex = scene_texture(scene, size)
    return np.ascontiguousarray(np.concatenate([tex, tex[:, :size]], axis=1))


def crop_background(scene: str, x0: np.ndarray, y0: np.ndarray, size: int) -> np.ndarray:
    """Crop ``(T, size, size, 3)`` frames of ``scene`` at integer offsets ``x0``, ``y0`` (T,).

    ``x0`` wraps around the tileable texture; ``y0`` is clamped so the crop stays inside it.
    """
    tex = _padded_texture(scene, size)
    ht, wt = tex.shape[0], tex.shape[1] - size
    out = np.empty((len(x0), size, size, 3), np.uint8)
    for t, (x, y) in enumerate(zip(np.mod(x0, wt), np.clip(y0, 0, ht - size), strict=True)):
        out[t] = tex[y: y + size, x: x + size]
    return out
