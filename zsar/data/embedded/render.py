"""Render one clip in memory: sample its parameters, play its motion, frame it, draw it.

Every random choice comes from two generators seeded by numpy ``SeedSequence``: one per
(seed, class, group) for what a UCF101 group shares (the actor, the scene, the props'
colours) and one per (seed, class, clip) for the rest. A clip therefore depends only on
(config, class index, clip index), never on the worker that renders it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from zsar.data.embedded.actions import ActionClass, MotionProgram, action_classes, extra_program
from zsar.data.embedded.config import BenchmarkConfig
from zsar.data.embedded.figure import Actor, draw_figure, limb_widths, sample_actor
from zsar.data.embedded.motion import Motion, frame_phases, once_start_range, play_program
from zsar.data.embedded.objects import AA, DRAWERS, SHIFT, ObjectPose, _fx, sample_object_colour
from zsar.data.embedded.scenes import CROP_TOP, crop_background
from zsar.data.embedded.skeleton import JOINT_NAMES, J


@dataclass
class ClipParams:
    """Every random choice of one clip (see :func:`sample_clip_params`)."""

    scene: str
    speed: float
    phase0: float  # cyclic: start phase in cycles; one-off: start time in seconds
    mirrored: bool
    scale_frac: float  # body height / frame height, before shrinking to fit
    pos_u: float  # horizontal placement within the feasible range, 0..1
    ground_u: float  # vertical placement within the preferred range, 0..1
    bg_x: int
    bg_dy: float
    light: np.ndarray  # (4,) gain, then per-channel tint
    jitter: np.ndarray  # (2, 3, 3) per axis: amplitude, frequency (Hz), phase of 3 sinusoids
    actor: Actor
    object_colours: dict
    distractor: dict | None
    occluder: dict | None
    noise_seed: int


def clip_group(clip_index: int, config: BenchmarkConfig) -> tuple[int, int]:
    """UCF101 group and clip number (both 1-based) of a clip: clips go round-robin over groups."""
    n_groups = min(config.n_groups, config.clips_per_class)
    return clip_index % n_groups + 1, clip_index // n_groups + 1


def clip_rngs(config: BenchmarkConfig, class_index: int, clip_index: int):
    """(group generator, clip generator) of a clip, from ``SeedSequence``s."""
    group, _ = clip_group(clip_index, config)
    g = np.random.default_rng(np.random.SeedSequence([config.seed, class_index, 1_000_000 + group]))
    c = np.random.default_rng(np.random.SeedSequence([config.seed, class_index, clip_index]))
    return g, c


def _sample_shake(rng: np.random.Generator) -> np.ndarray:
    """(2, 3, 3): per axis, weights, frequencies (Hz) and phases of three sinusoids."""
    return np.stack([np.stack([rng.dirichlet(np.ones(3)), rng.uniform(0.6, 4.0, 3), rng.uniform(0, 2 * np.pi, 3)])
                     for _ in range(2)])


def _sample_distractor(rng: np.random.Generator, prob: float) -> dict | None:
    """A bystander idling further back, or a bird-like blob crossing the sky, or nothing."""
    if rng.random() >= prob:
        return None
    if rng.random() < 0.5:
        return {"kind": "person", "actor": sample_actor(rng), "phase0": float(rng.random()),
                "side": float(rng.choice([-1, 1])), "facing": float(rng.choice([-1, 1])),
                "depth": float(rng.uniform(0.6, 0.85))}
    return {"kind": "blob", "y": float(rng.uniform(0.1, 0.45)), "x0": float(rng.uniform(-0.2, 1.2)),
            "v": float(rng.uniform(0.15, 0.5) * rng.choice([-1, 1])), "r": float(rng.uniform(0.03, 0.06)),
            "colour": tuple(int(c) for c in rng.integers(10, 90, 3)), "flap": float(rng.uniform(2, 5))}


def _sample_occluder(rng: np.random.Generator, prob: float) -> dict | None:
    """A pole or a bush in the foreground, or nothing."""
    if rng.random() >= prob:
        return None
    return {"kind": str(rng.choice(["pole", "bush"])), "x": float(rng.uniform(0.1, 0.9)),
            "w": float(rng.uniform(0.04, 0.08)), "colour": tuple(int(c) for c in rng.integers(40, 110, 3))}


def sample_clip_params(cls: ActionClass, clip_index: int, config: BenchmarkConfig) -> ClipParams:
    """Draw everything random about a clip of ``cls`` (see :class:`ClipParams`)."""
    grng, rng = clip_rngs(config, cls.index, clip_index)
    return sample_program_params(cls.program, cls.units["scenes"], grng, rng, config)


def sample_program_params(prog: MotionProgram, scenes, grng: np.random.Generator, rng: np.random.Generator,
                          config: BenchmarkConfig) -> ClipParams:
    """Everything random about a clip of ``prog`` in one of ``scenes``; ``grng`` draws what a group shares."""
    # the group fixes actor and props; the scene is the group's most of the time, not always
    actor, group_scene = sample_actor(grng), scenes[grng.integers(len(scenes))]
    colours = {o.id: sample_object_colour(o.kind, grng) for o in prog.objects}
    scene = group_scene if rng.random() < 0.75 else scenes[rng.integers(len(scenes))]
    speed = float(rng.uniform(*config.speed_range))
    if prog.cyclic:
        phase0 = float(rng.random())
    else:
        phase0 = float(rng.uniform(*once_start_range(prog, config.n_frames, config.fps, speed)))
    return ClipParams(
        scene=scene, speed=speed, phase0=phase0, mirrored=bool(prog.mirror and rng.random() < 0.5),
        scale_frac=float(rng.uniform(*config.scale_range)), pos_u=float(rng.random()), ground_u=float(rng.random()),
        bg_x=int(rng.integers(0, 4 * config.size)), bg_dy=float(rng.uniform(-0.06, 0.06)),
        light=np.r_[rng.uniform(0.78, 1.18), rng.uniform(0.92, 1.08, 3)], jitter=_sample_shake(rng), actor=actor,
        object_colours=colours, distractor=_sample_distractor(rng, config.distractor_prob),
        occluder=_sample_occluder(rng, config.occluder_prob), noise_seed=int(rng.integers(2**31)))


_FRAMED_KINDS = ("box", "chair", "bat", "broom", "hat", "cup", "dumbbell")


@dataclass
class Camera:
    """World -> pixel mapping per frame.

    ``X = cx + facing * (x - cam_x) * scale + jx`` and ``Y = g - (y - cam_y) * scale + jy``.
    """

    cam: np.ndarray  # (T, 2) world position the camera follows
    scale: float
    cx: float
    g: float
    facing: float
    shake: np.ndarray  # (T, 2) pixels

    def to_px(self, pts: np.ndarray) -> np.ndarray:
        """World points (T, N, 2) or (T, 2) -> pixels, same shape."""
        squeeze = pts.ndim == 2
        p = pts[:, None] if squeeze else pts
        rel = p - self.cam[:, None]
        out = np.stack([self.cx + self.facing * rel[..., 0] * self.scale, self.g - rel[..., 1] * self.scale], -1)
        out = out + self.shake[:, None]
        return out[:, 0] if squeeze else out


def _camera_track(motion: Motion, program: MotionProgram, fps: float) -> np.ndarray:
    """(T, 2) camera target: a steady pan following the figure when the action travels."""
    T = len(motion.joints)
    travels = program.cyclic and (program.cycle_offsets[list(program.params).index("x")] != 0)
    if not travels or T < 2:
        return np.zeros((T, 2))
    t = np.arange(T) / fps
    pelvis = motion.joints[:, J["pelvis"]]
    fit = [np.polyval(np.polyfit(t, pelvis[:, k], 1), t) for k in (0, 1)]
    return np.stack([fit[0], fit[1] - fit[1].mean()], axis=1)


def _shake(jitter: np.ndarray, n_frames: int, fps: float, amplitude: float) -> np.ndarray:
    t = np.arange(n_frames) / fps
    waves = [(jitter[k, 0][:, None] * np.sin(2 * np.pi * jitter[k, 1][:, None] * t + jitter[k, 2][:, None])).sum(0)
             for k in (0, 1)]
    return amplitude * np.stack(waves, axis=1)


def frame_camera(motion: Motion, program: MotionProgram, params: ClipParams, config: BenchmarkConfig,
                 lengths: dict) -> Camera:
    """Choose scale and placement so the figure (and nearby props) stay inside the frame."""
    H = W = config.size
    cam = _camera_track(motion, program, config.fps)
    pts = [motion.joints, (motion.joints[:, J["head"]] + [0.0, lengths["head_r"]])[:, None]]
    pelvis_x = motion.joints[:, None, J["pelvis"], 0]
    for o in program.objects:  # props that belong in the shot; not balls flying away, not stairs
        if o.kind in _FRAMED_KINDS:
            pos = motion.objects[o.id][0]
            near = np.abs(pos[:, None, 0] - pelvis_x) < 1.0
            pts.append(np.where(near[..., None], pos[:, None], motion.joints[:, None, J["pelvis"]]))
    rel = np.concatenate(pts, axis=1) - cam[:, None]
    (xmin, ymin), (xmax, ymax) = rel.reshape(-1, 2).min(0), rel.reshape(-1, 2).max(0)
    ymin = min(ymin, 0.0)
    scale = min(params.scale_frac * H, 0.9 * W / max(xmax - xmin, 1e-6), 0.9 * H / max(ymax - ymin, 1e-6))
    lo_g, hi_g = 0.03 * H + ymax * scale, 0.97 * H + ymin * scale
    g = float(np.clip(H * (0.8 + 0.14 * params.ground_u), lo_g, max(lo_g, hi_g)))
    facing = -1.0 if params.mirrored else 1.0
    if facing > 0:
        lo, hi = 0.05 * W - xmin * scale, 0.95 * W - xmax * scale
    else:
        lo, hi = 0.05 * W + xmax * scale, 0.95 * W + xmin * scale
    cx = lo + params.pos_u * (hi - lo)
    shake = _shake(params.jitter, len(cam), config.fps, config.jitter_px * H / 128)
    return Camera(cam=cam, scale=float(scale), cx=float(cx), g=g, facing=facing, shake=shake)


@functools.lru_cache(maxsize=4)
def _idle_program() -> MotionProgram:
    return extra_program("idle")


def _distractor_person(d: dict, camera: Camera, config: BenchmarkConfig) -> tuple[np.ndarray, float]:
    """Joint pixels (T, J, 2) and scale of an idle bystander standing further back."""
    prog = _idle_program()
    phase = frame_phases(prog, config.n_frames, config.fps, 1.0, d["phase0"])
    motion = play_program(prog, phase, d["actor"].lengths)
    scale = camera.scale * d["depth"]
    H = config.size
    # further away: higher in the frame, smaller, and slower under a panning camera (parallax)
    x0 = H * (0.5 + 0.33 * d["side"])
    pan = -camera.facing * (camera.cam[:, 0] - camera.cam[0, 0]) * scale
    g = camera.g - (1 - d["depth"]) * 0.35 * H
    rel = motion.joints
    px = np.stack([x0 + pan[:, None] + d["facing"] * rel[..., 0] * scale, g - rel[..., 1] * scale], -1)
    return px + camera.shake[:, None], scale


def _draw_blob(img: np.ndarray, d: dict, t: float, camera_shake: np.ndarray, size: int) -> None:
    """A bird-like blob crossing the sky, flapping."""
    x = (d["x0"] + d["v"] * t) * size + camera_shake[0]
    y = d["y"] * size + 0.02 * size * np.sin(2 * np.pi * 0.7 * t) + camera_shake[1]
    r = d["r"] * size
    flap = abs(np.sin(2 * np.pi * d["flap"] * t))
    cv2.ellipse(img, tuple(_fx(np.array([x, y]))), (int(r * 16), int(max(1, r * (0.25 + 0.5 * flap)) * 16)),
                0, 0, 360, d["colour"], -1, AA, SHIFT)


def _draw_occluder(img: np.ndarray, d: dict, x: float, size: int) -> None:
    """A pole or a bush in the foreground, fixed in the world."""
    w = d["w"] * size
    if d["kind"] == "pole":
        cv2.rectangle(img, (int(x - w / 2), 0), (int(x + w / 2), size), d["colour"], -1)
        cv2.line(img, (int(x - w / 4), 0), (int(x - w / 4), size), tuple(min(255, c + 40) for c in d["colour"]), 1)
        return
    green = (40 + d["colour"][0] // 4, 110 + d["colour"][1] // 4, 40)
    for k, (dx, dy) in enumerate([(-1.2, 0.3), (0, -0.2), (1.2, 0.3), (-0.5, 0.6), (0.6, 0.6)]):
        c = np.array([x + dx * w, size - w * (0.8 - dy)])
        shade = tuple(int(v * (0.85 + 0.05 * k)) for v in green)
        cv2.circle(img, tuple(_fx(c)), int(w * 1.3 * 16), shade, -1, AA, SHIFT)


def _object_poses(program: MotionProgram, motion: Motion, camera: Camera, params: ClipParams,
                  joints_px: np.ndarray, lengths: dict) -> list[tuple[str, str, list]]:
    """Per object: (kind, layer, per-frame :class:`ObjectPose`)."""
    out = []
    ground_px = camera.to_px(np.zeros((len(joints_px), 2)))[:, 1]
    for o in program.objects:
        pos, ang = motion.objects[o.id]
        centre = camera.to_px(pos)
        style = {**o.style, "colour": params.object_colours[o.id], "seat_h": lengths["shin"] + lengths["ankle"]}
        poses = [ObjectPose(centre=centre[t], angle=float(ang[t]), scale=camera.scale, facing=camera.facing,
                            joints=joints_px[t], style={**style, "ground_px": ground_px[t]}, view=program.view)
                 for t in range(len(centre))]
        out.append((o.kind, o.layer, poses))
    return out


@functools.lru_cache(maxsize=4)
def _noise_bank(size: int, std: float) -> np.ndarray:
    """(K, size + 32, size + 32, 3) int16 Gaussian noise from a fixed seed.

    Drawing fresh normals for every pixel of every frame cost half the render time; clips
    instead take per-frame random windows of this bank, which looks the same to a model.
    """
    rng = np.random.default_rng(12345)
    bank = rng.standard_normal((_NOISE_BANK, size + 32, size + 32, 3), dtype=np.float32) * std
    bank = np.round(bank).astype(np.int16)
    bank.setflags(write=False)
    return bank


_NOISE_BANK = 8


def _apply_light_and_noise(frames: np.ndarray, params: ClipParams, noise_std: float) -> np.ndarray:
    """Scene lighting (gain and colour tint, one LUT per channel) and Gaussian sensor noise."""
    levels = np.arange(256, dtype=np.float32)
    lut = np.clip(levels[:, None] * (params.light[0] * params.light[1:])[None], 0, 255).astype(np.uint8)
    T, H, W, _ = frames.shape
    lit = cv2.LUT(frames.reshape(T * H, W, 3), lut.reshape(256, 1, 3)).reshape(frames.shape)
    if noise_std <= 0:
        return lit
    bank = _noise_bank(H, float(noise_std))
    rng = np.random.default_rng(params.noise_seed)
    pick, dy, dx = rng.integers(0, len(bank), T), rng.integers(0, 33, T), rng.integers(0, 33, T)
    out = lit.astype(np.int16)
    for t in range(T):
        out[t] += bank[pick[t], dy[t]: dy[t] + H, dx[t]: dx[t] + W]
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


def render_program(program: MotionProgram, params: ClipParams, config: BenchmarkConfig):
    """Render a motion program with fixed clip parameters.

    Returns:
        frames: (T, H, W, 3) uint8 RGB.
        meta: ``joints`` (T, J, 2) float32 pixels, ``boxes`` (T, O, 4) float32 xyxy pixels,
            ``object_names`` (O,), ``joint_names`` (J,).
    """
    T, size = config.n_frames, config.size
    lengths = params.actor.lengths
    phase = frame_phases(program, T, config.fps, params.speed, params.phase0)
    motion = play_program(program, phase, lengths)
    camera = frame_camera(motion, program, params, config, lengths)
    joints_px = camera.to_px(motion.joints)
    objects = _object_poses(program, motion, camera, params, joints_px, lengths)
    x0 = params.bg_x + np.round(camera.facing * camera.cam[:, 0] * camera.scale - camera.shake[:, 0]).astype(int)
    y0 = np.round(size * (CROP_TOP + params.bg_dy) - camera.cam[:, 1] * camera.scale
                  - camera.shake[:, 1]).astype(int)
    frames = crop_background(params.scene, x0, y0, size)
    d = params.distractor
    bystander = _distractor_person(d, camera, config) if d and d["kind"] == "person" else None
    occ = params.occluder
    occ_x = None
    if occ:
        pan = camera.facing * (camera.cam[:, 0] - camera.cam[0, 0]) * camera.scale
        occ_x = occ["x"] * size - pan + camera.shake[:, 0]
    widths = limb_widths(camera.scale)
    boxes = np.zeros((T, len(objects), 4), np.float32)
    for t in range(T):
        img = frames[t]
        if bystander is not None:
            draw_figure(img, bystander[0][t], d["actor"], bystander[1], d["facing"], "side", limb_widths(bystander[1]))
        elif d is not None:
            _draw_blob(img, d, t / config.fps, camera.shake[t], size)

        def draw_layer(layer: str, t=t, img=img) -> None:
            for k, (kind, lay, poses) in enumerate(objects):
                if lay == layer:
                    boxes[t, k] = DRAWERS[kind](img, poses[t])

        draw_layer("back")
        draw_figure(img, joints_px[t], params.actor, camera.scale, camera.facing, program.view, widths,
                    before_near_arm=lambda: draw_layer("mid"))
        draw_layer("front")
        if occ_x is not None:
            _draw_occluder(img, occ, occ_x[t], size)
    frames = _apply_light_and_noise(frames, params, config.noise_std)
    meta = {"joints": joints_px.astype(np.float32), "joint_names": np.array(JOINT_NAMES),
            "boxes": boxes, "object_names": np.array([o.kind for o in program.objects], dtype=str),
            "camera_scale": camera.scale, "ground_px": camera.g}
    return frames, meta


def render_clip(class_index: int, clip_index: int, config: BenchmarkConfig | None = None):
    """Render one clip in memory, without writing anything.

    Args:
        class_index: 0-based index into :func:`zsar.data.embedded.class_catalog`.
        clip_index: 0-based clip number within the class (selects group and randomness).
        config: the benchmark configuration (default ``BenchmarkConfig()``).

    Returns:
        frames: (T, H, W, 3) uint8 RGB with ``T = round(fps * duration)``, ``H = W = size``.
        meta: dict with ``joints`` (T, J, 2) float32 pixel coordinates, ``joint_names`` (J,),
            ``boxes`` (T, O, 4) float32 xyxy pixels, ``object_names`` (O,), ``fps`` and the
            sampled clip parameters (``scene``, ``speed``, ``mirrored``, ...).
    """
    config = config or BenchmarkConfig()
    classes = action_classes()
    if not 0 <= class_index < len(classes):
        raise IndexError(f"class_index {class_index} out of range 0..{len(classes) - 1}")
    cls = classes[class_index]
    params = sample_clip_params(cls, clip_index, config)
    frames, meta = render_program(cls.program, params, config)
    if cls.reversed:  # the partner's motion played backwards: same frames, opposite order
        frames = np.ascontiguousarray(frames[::-1])
        meta["joints"], meta["boxes"] = meta["joints"][::-1].copy(), meta["boxes"][::-1].copy()
    group, clip_in_group = clip_group(clip_index, config)
    meta.update(clip_meta(cls, params, clip_index, group, clip_in_group, config))
    return frames, meta


def clip_meta(cls: ActionClass, params: ClipParams, clip_index: int, group: int, clip_in_group: int,
              config: BenchmarkConfig) -> dict:
    """The sampled clip parameters as flat npz-friendly values."""
    d, occ = params.distractor, params.occluder
    return {"fps": float(config.fps), "class_index": cls.index, "class_dir": cls.dir, "clip_index": clip_index,
            "group": group, "clip_in_group": clip_in_group, "scene": params.scene, "speed": params.speed,
            "start_phase": params.phase0, "mirrored": params.mirrored, "played_reversed": cls.reversed,
            "light": params.light.astype(np.float32), "distractor": d["kind"] if d else "none",
            "occluder": occ["kind"] if occ else "none", **params.actor.to_meta()}
