"""Procedurally drawn faces: identities, per-video motion and expression, frames.

Everything is drawn with OpenCV primitives in a *canonical* head frame (the
face centred, upright) and then moved into the video frame with one affine
transform per frame (translation, small rotation and scale), so every
manipulation can ask for any identity rendered in any other video's pose and
expression, and for exact face masks and boxes in frame coordinates.

All randomness comes from the `numpy.random.Generator` passed in, so a video
is a pure function of its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# Skin tones (RGB), light to dark; an identity draws a point between two
# neighbours and jitters it.
_SKIN_RGB = np.array([
    (247, 214, 190), (236, 192, 160), (224, 172, 138), (198, 140, 104),
    (170, 112, 80), (134, 86, 58), (100, 64, 44), (74, 48, 34),
], np.float32)
_HAIR_RGB = np.array([
    (20, 16, 14), (44, 30, 22), (78, 52, 34), (120, 82, 48), (176, 136, 86),
    (214, 184, 130), (150, 60, 30), (140, 140, 140), (60, 40, 30),
], np.float32)
_IRIS_RGB = np.array([(70, 45, 25), (110, 75, 40), (60, 100, 140), (80, 120, 80), (40, 30, 20)], np.float32)


def _bgr(rgb) -> np.ndarray:
    return np.asarray(rgb, np.float32)[::-1].copy()


@dataclass
class Identity:
    """One drawn person: geometry, colours and static textures (canonical frame)."""

    size: int
    cx: float
    cy: float
    a: float           # face half-width
    b: float           # face half-height
    jaw: float
    skin: np.ndarray   # BGR float
    hair: np.ndarray
    hair_style: int    # 0 short, 1 long, 2 buzz, 3 fringe
    hairline: float
    eye_y: float
    eye_dx: float
    eye_rx: float
    eye_ry: float
    iris: np.ndarray
    brow_thick: int
    brow_tilt: float
    nose_len: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lips: np.ndarray
    glasses: bool
    glasses_round: bool
    beard: bool
    clothes: np.ndarray
    static: np.ndarray        # canonical head layer before eyes/mouth (float32 BGR)
    static_alpha: np.ndarray  # float32 0..1
    over: np.ndarray          # layer drawn over eyes (glasses), BGR
    over_alpha: np.ndarray
    inner_mask: np.ndarray    # float32 0..1: the swappable inner face (brows to chin)
    mouth_mask: np.ndarray    # float32 0..1 around the mouth and chin


def _noise_field(rng: np.random.Generator, size: int, cells: int, channels: int = 1) -> np.ndarray:
    small = rng.standard_normal((cells, cells, channels)).astype(np.float32)
    big = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    return big.reshape(size, size, channels)


def _face_polygon(cx, cy, a, b, jaw, n=72) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    s = np.sin(t)
    w = 1.0 - jaw * np.clip(s, 0, None) ** 2
    pts = np.stack([cx + a * np.cos(t) * w, cy + b * s], 1)
    return pts


def _fill(mask_shape, pts) -> np.ndarray:
    m = np.zeros(mask_shape, np.uint8)
    cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return m.astype(np.float32) / 255.0


def _ellipse_mask(shape, center, axes, angle=0.0) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.ellipse(m, (round(center[0] * 16), round(center[1] * 16)), (max(1, round(axes[0] * 16)), max(1, round(axes[1] * 16))),
                angle, 0, 360, 255, -1, cv2.LINE_AA, shift=4)
    return m.astype(np.float32) / 255.0


def _paint(img: np.ndarray, alpha: np.ndarray, mask: np.ndarray, color) -> None:
    """Composite a solid colour (or an image) through `mask` into img/alpha in place."""
    m = mask[..., None]
    img *= (1 - m)
    img += m * color
    np.maximum(alpha, mask, out=alpha)


def draw_identity(rng: np.random.Generator, size: int) -> Identity:
    S = size
    a = S * rng.uniform(0.185, 0.235)
    b = a * rng.uniform(1.22, 1.40)
    cx = S / 2
    cy = S * 0.53
    jaw = rng.uniform(0.0, 0.3)
    i = rng.integers(0, len(_SKIN_RGB) - 1)
    skin_rgb = _SKIN_RGB[i] + (_SKIN_RGB[i + 1] - _SKIN_RGB[i]) * rng.uniform() + rng.normal(0, 5, 3)
    skin = _bgr(np.clip(skin_rgb, 30, 252))
    hair = _bgr(np.clip(_HAIR_RGB[rng.integers(len(_HAIR_RGB))] * rng.uniform(0.8, 1.2), 5, 240))
    ident = dict(
        size=S, cx=cx, cy=cy, a=a, b=b, jaw=jaw, skin=skin, hair=hair,
        hair_style=int(rng.choice(4, p=[0.4, 0.3, 0.12, 0.18])),
        hairline=rng.uniform(0.50, 0.66),
        eye_y=cy - b * rng.uniform(0.08, 0.18),
        eye_dx=a * rng.uniform(0.36, 0.45),
        eye_rx=a * rng.uniform(0.15, 0.2),
        eye_ry=0.0,
        iris=_bgr(_IRIS_RGB[rng.integers(len(_IRIS_RGB))] * rng.uniform(0.8, 1.2)),
        brow_thick=int(rng.integers(2, 5)),
        brow_tilt=rng.uniform(-0.15, 0.25),
        nose_len=b * rng.uniform(0.28, 0.40),
        nose_w=a * rng.uniform(0.16, 0.26),
        mouth_y=cy + b * rng.uniform(0.44, 0.54),
        mouth_w=a * rng.uniform(0.34, 0.48),
        lips=np.clip(skin * np.array([0.72, 0.68, 1.0], np.float32) * rng.uniform(0.8, 1.0)
                     + np.array([0, 0, 25], np.float32), 0, 255),
        glasses=bool(rng.uniform() < 0.25),
        glasses_round=bool(rng.uniform() < 0.5),
        beard=bool(rng.uniform() < 0.2),
        clothes=_bgr(rng.uniform(20, 230, 3)),
    )
    ident["eye_ry"] = ident["eye_rx"] * rng.uniform(0.45, 0.6)
    _draw_static(rng, ident)
    return Identity(**ident)


def _draw_static(rng: np.random.Generator, d: dict) -> None:
    S, cx, cy, a, b = d["size"], d["cx"], d["cy"], d["a"], d["b"]
    shape = (S, S)
    img = np.zeros((S, S, 3), np.float32)
    alpha = np.zeros(shape, np.float32)
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32)
    skin, hair = d["skin"], d["hair"]
    hair_tex = _hair_texture(rng, S, hair, cx, cy - 1.25 * b)
    # long hair behind the head
    if d["hair_style"] == 1:
        m = _ellipse_mask(shape, (cx, cy + 0.15 * b), (1.32 * a, 1.25 * b)) * (yy < cy + b * rng.uniform(0.6, 1.1))
        _paint(img, alpha, m, hair_tex)
    # body and neck
    body = _ellipse_mask(shape, (cx, cy + 2.25 * b), (2.3 * a, 1.2 * b))
    _paint(img, alpha, body, d["clothes"] * (0.9 + 0.1 * _noise_field(rng, S, 6)))
    neck = np.zeros(shape, np.float32)
    neck[(np.abs(xx - cx) < 0.55 * a) & (yy > cy) & (yy < cy + 1.35 * b)] = 1
    neck = cv2.GaussianBlur(neck, (0, 0), 1.0)
    _paint(img, alpha, neck, skin * 0.78)
    # ears
    for side in (-1, 1):
        ear = _ellipse_mask(shape, (cx + side * a * 0.98, d["eye_y"] + 0.12 * b), (0.16 * a, 0.26 * b))
        _paint(img, alpha, ear, skin * 0.88)
    # face with skin texture
    face = _fill(shape, _face_polygon(cx, cy, a, b, d["jaw"]))
    tex = 1.0 + 0.05 * _noise_field(rng, S, 5) + 0.02 * _noise_field(rng, S, 24) + 0.012 * rng.standard_normal((S, S, 1)).astype(np.float32)
    r = np.sqrt(((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2)[..., None]
    radial = 1.0 - 0.22 * np.clip(r, 0, 1.2) ** 4
    # cheeks blush
    cheeks = sum(_ellipse_mask(shape, (cx + s * a * 0.5, cy + 0.2 * b), (0.25 * a, 0.18 * b)) for s in (-1, 1))
    cheeks = cv2.GaussianBlur(cheeks, (0, 0), a * 0.12)[..., None]
    blush = np.array([0.96, 0.95, 1.05], np.float32)
    _paint(img, alpha, face, skin * tex * radial * (1 + cheeks * (blush - 1) * rng.uniform(0.5, 2)))
    # beard stubble
    if d["beard"]:
        region = face * (yy > d["mouth_y"] - 0.25 * b) * (np.abs(xx - cx) < a * 0.95)
        dots = (rng.uniform(size=shape) < 0.35).astype(np.float32)
        beard_m = cv2.GaussianBlur(region * dots, (0, 0), 0.7) * rng.uniform(0.5, 0.9)
        _paint(img, alpha, beard_m, hair * 0.8)
    # nose
    nose_top = d["eye_y"] + 0.05 * b
    tip = (cx, nose_top + d["nose_len"])
    shade = np.zeros(shape, np.float32)
    cv2.line(shade, (round(cx + 0.12 * a), round(nose_top)), (round(cx + 0.2 * d["nose_w"]), round(tip[1] - 2)), 1.0, 2, cv2.LINE_AA)
    shade += _ellipse_mask(shape, (tip[0], tip[1] + 1), (d["nose_w"] * 0.9, d["nose_w"] * 0.45)) * 0.6
    shade = cv2.GaussianBlur(shade, (0, 0), 1.2)
    img *= (1 - 0.22 * np.clip(shade, 0, 1))[..., None]
    for s in (-1, 1):
        nos = _ellipse_mask(shape, (cx + s * d["nose_w"] * 0.45, tip[1] + 1.5), (d["nose_w"] * 0.22, d["nose_w"] * 0.13))
        img *= (1 - 0.55 * nos)[..., None]
    hl = cv2.GaussianBlur(_ellipse_mask(shape, (tip[0] - 1, tip[1] - 2), (d["nose_w"] * 0.25, d["nose_w"] * 0.2)), (0, 0), 1.0)
    img += (hl * 18)[..., None]
    # brows
    for s in (-1, 1):
        ex = cx + s * d["eye_dx"]
        by = d["eye_y"] - d["eye_ry"] * 2.3
        pts = np.array([[ex - s * d["eye_rx"] * 1.2, by + d["brow_tilt"] * d["eye_rx"]],
                        [ex, by - 0.25 * d["eye_rx"]],
                        [ex + s * d["eye_rx"] * 1.3, by + 0.2 * d["eye_rx"]]], np.float32)
        bm = np.zeros(shape, np.uint8)
        cv2.polylines(bm, [np.round(pts * 16).astype(np.int32)], False, 255, d["brow_thick"], cv2.LINE_AA, shift=4)
        _paint(img, alpha, bm.astype(np.float32) / 255 * 0.9, hair * 0.7)
    # hair on the head (drawn over the forehead)
    # hair on the head, over the forehead (a buzz cut lets the scalp show through)
    top = cy - b * d["hairline"]
    wav = top + 0.08 * b * np.cos((xx - cx) / a * np.pi * rng.uniform(0.8, 1.6) + rng.uniform(0, 6))
    if d["hair_style"] == 3:  # fringe: lower, uneven
        wav = wav + 0.18 * b * (1 - np.abs(xx - cx) / a).clip(0, 1)
    cap = _ellipse_mask(shape, (cx, cy - 0.1 * b), (1.08 * a, 1.04 * b)) * (yy < wav)
    side_h = cy - b * (0.05 if d["hair_style"] in (0, 3) else -0.3)
    sides = _ellipse_mask(shape, (cx, cy - 0.1 * b), (1.1 * a, 1.04 * b)) * (1 - face) * (yy < side_h)
    cap = np.maximum(cap, sides)
    cap = cv2.GaussianBlur(cap, (0, 0), 0.8)
    if d["hair_style"] == 2:
        cap *= 0.55  # buzz cut: the scalp shows through
    _paint(img, alpha, cap, hair_tex)
    d["static"] = img
    d["static_alpha"] = np.clip(alpha, 0, 1)
    # glasses (over the eyes)
    over = np.zeros_like(img)
    oalpha = np.zeros(shape, np.float32)
    if d["glasses"]:
        gm = np.zeros(shape, np.uint8)
        frame_col = _bgr(rng.uniform(10, 120, 3))
        rx, ry = d["eye_rx"] * 1.55, d["eye_rx"] * 1.15
        for s in (-1, 1):
            ex = cx + s * d["eye_dx"]
            if d["glasses_round"]:
                cv2.ellipse(gm, (round(ex * 16), round(d["eye_y"] * 16)), (round(rx * 16), round(ry * 16)), 0, 0, 360, 255, 2, cv2.LINE_AA, 4)
            else:
                cv2.rectangle(gm, (round((ex - rx) * 16), round((d["eye_y"] - ry) * 16)),
                              (round((ex + rx) * 16), round((d["eye_y"] + ry) * 16)), 255, 2, cv2.LINE_AA, 4)
            cv2.line(gm, (round((ex + s * rx) * 16), round(d["eye_y"] * 16)), (round((cx + s * a * 1.0) * 16), round((d["eye_y"] - 2) * 16)),
                     255, 2, cv2.LINE_AA, 4)
        cv2.line(gm, (round((cx - d["eye_dx"] + rx) * 16), round(d["eye_y"] * 16)),
                 (round((cx + d["eye_dx"] - rx) * 16), round(d["eye_y"] * 16)), 255, 2, cv2.LINE_AA, 4)
        gmf = gm.astype(np.float32) / 255
        over[:] = frame_col
        oalpha = gmf
    d["over"] = over
    d["over_alpha"] = oalpha
    inner = _ellipse_mask(shape, (cx, cy + 0.12 * b), (0.84 * a, 0.86 * b)) * face
    inner *= (yy > d["eye_y"] - d["eye_ry"] * 3.2)
    d["inner_mask"] = cv2.GaussianBlur(inner, (0, 0), 1.0)
    d["mouth_mask"] = _ellipse_mask(shape, (cx, d["mouth_y"] + 0.05 * b), (d["mouth_w"] * 1.6, 0.42 * b)) * face


def _hair_texture(rng, S, hair, cx, crown_y) -> np.ndarray:
    """A strand-like hair texture (thin curved lines radiating from the crown)."""
    tex = np.empty((S, S, 3), np.float32)
    tex[:] = hair * 0.85
    n = int(S * 1.8)
    xs = rng.uniform(0, S, n)
    ys = rng.uniform(0, S, n)
    for x, y, shade, length, curl in zip(xs, ys, rng.uniform(0.55, 1.45, n), rng.uniform(6, 18, n) * S / 192,
                                         rng.uniform(-0.4, 0.4, n)):
        ang = math.atan2(y - crown_y, x - cx)
        pts = []
        for k in range(5):
            pts.append((x, y))
            ang += curl * 0.3
            x += math.cos(ang) * length / 4
            y += math.sin(ang) * length / 4
        col = tuple(float(v) for v in np.clip(hair * shade + 6 * (shade - 1), 0, 255))
        cv2.polylines(tex, [np.round(np.array(pts) * 16).astype(np.int32)], False, col, 1, cv2.LINE_AA, shift=4)
    return tex


def draw_dynamic(ident: Identity, openness: float, mouth_open: float) -> tuple[np.ndarray, np.ndarray]:
    """The canonical head layer with eyes at `openness` and the mouth at `mouth_open` (0..1)."""
    d = ident
    img = d.static.copy()
    alpha = d.static_alpha.copy()
    # eyes: ROI-local drawing
    for s in (-1, 1):
        ex, ey = d.cx + s * d.eye_dx, d.eye_y
        rx, ry = d.eye_rx, d.eye_ry
        x0, x1 = int(ex - rx * 1.6), int(ex + rx * 1.6) + 1
        y0, y1 = int(ey - ry * 2.2), int(ey + ry * 2.2) + 1
        roi = img[y0:y1, x0:x1]
        lc = (ex - x0, ey - y0)
        h = max(0.6, ry * openness)
        sub = (y1 - y0, x1 - x0)
        eye = _ellipse_mask(sub, lc, (rx, h))
        roi *= (1 - 0.25 * cv2.GaussianBlur(_ellipse_mask(sub, (lc[0], lc[1] - 1), (rx * 1.15, ry * 1.2)), (0, 0), 1.5))[..., None]
        if openness > 0.2:
            _paint(roi, np.zeros(sub, np.float32), eye, np.array([225, 228, 232], np.float32))
            iris = _ellipse_mask(sub, lc, (ry * 0.95, ry * 0.95)) * eye
            _paint(roi, np.zeros(sub, np.float32), iris, d.iris)
            pupil = _ellipse_mask(sub, lc, (ry * 0.42, ry * 0.42)) * eye
            _paint(roi, np.zeros(sub, np.float32), pupil, np.array([15, 12, 12], np.float32))
            glint = _ellipse_mask(sub, (lc[0] + ry * 0.3, lc[1] - ry * 0.3), (0.9, 0.9)) * eye
            _paint(roi, np.zeros(sub, np.float32), glint, np.array([245, 245, 245], np.float32))
        lid = np.zeros(sub, np.uint8)
        cv2.ellipse(lid, (round(lc[0] * 16), round(lc[1] * 16)), (round(rx * 16), round(h * 16)), 0, 180, 360, 255, 2 if openness > 0.2 else 1,
                    cv2.LINE_AA, 4)
        if openness <= 0.2:
            cv2.line(lid, (round((lc[0] - rx) * 16), round(lc[1] * 16)), (round((lc[0] + rx) * 16), round(lc[1] * 16)), 255, 1, cv2.LINE_AA, 4)
        _paint(roi, np.zeros(sub, np.float32), lid.astype(np.float32) / 255 * 0.85, np.array([30, 25, 25], np.float32))
    # mouth
    mx, my, mw = d.cx, d.mouth_y, d.mouth_w
    x0, x1 = int(mx - mw * 1.4), int(mx + mw * 1.4) + 1
    y0, y1 = int(my - mw * 0.8), int(my + mw * 1.0) + 1
    roi = img[y0:y1, x0:x1]
    sub = roi.shape[:2]
    lc = (mx - x0, my - y0)
    lip_h = mw * (0.22 + 0.28 * mouth_open)
    lips = _ellipse_mask(sub, (lc[0], lc[1] + 0.1 * mouth_open * mw), (mw, lip_h))
    _paint(roi, np.zeros(sub, np.float32), cv2.GaussianBlur(lips, (0, 0), 0.6), d.lips)
    inner_h = mw * 0.30 * mouth_open
    if inner_h > 0.8:
        hole = _ellipse_mask(sub, (lc[0], lc[1] + 0.1 * mouth_open * mw), (mw * 0.8, inner_h))
        _paint(roi, np.zeros(sub, np.float32), hole, np.array([40, 30, 60], np.float32))
        if mouth_open > 0.35:
            teeth = hole * (np.arange(sub[0])[:, None] < lc[1] - inner_h * 0.2 + 0.1 * mouth_open * mw)
            _paint(roi, np.zeros(sub, np.float32), teeth, np.array([210, 215, 220], np.float32))
    else:
        line = np.zeros(sub, np.uint8)
        cv2.line(line, (round((lc[0] - mw * 0.9) * 16), round(lc[1] * 16)), (round((lc[0] + mw * 0.9) * 16), round(lc[1] * 16)), 255, 1,
                 cv2.LINE_AA, 4)
        _paint(roi, np.zeros(sub, np.float32), line.astype(np.float32) / 255 * 0.8, d.lips * 0.45)
    if d.glasses:
        _paint(img, alpha, d.over_alpha, d.over)
    return img, alpha


@dataclass
class Motion:
    """Per-frame pose (affine, canonical -> frame) and expression of one video."""

    matrices: list          # 2x3 float32 per frame
    openness: np.ndarray    # eyes, per frame
    mouth: np.ndarray       # per frame
    light: np.ndarray       # per-frame multiplicative shading map (S, S, 1), same for all frames
    gain: np.ndarray        # BGR colour gain of the scene
    noise: float            # camera noise sigma


def draw_motion(rng: np.random.Generator, size: int, n_frames: int, cx: float, cy: float) -> Motion:
    S = size
    t = np.linspace(0, 1, n_frames)
    base = rng.uniform(-0.045, 0.045, 2) * S
    amp = rng.uniform(0.0, 0.045, 2) * S
    freq = rng.uniform(0.4, 1.3, 2)
    ph = rng.uniform(0, 2 * np.pi, 2)
    rot_amp, rot_f, rot_ph, rot0 = rng.uniform(1, 7), rng.uniform(0.3, 1.2), rng.uniform(0, 6.3), rng.uniform(-5, 5)
    sc0, sc_amp, sc_ph = rng.uniform(0.93, 1.07), rng.uniform(0, 0.05), rng.uniform(0, 6.3)
    mats = []
    for k in range(n_frames):
        dx = base[0] + amp[0] * np.sin(2 * np.pi * freq[0] * t[k] + ph[0])
        dy = base[1] + amp[1] * np.sin(2 * np.pi * freq[1] * t[k] + ph[1])
        ang = rot0 + rot_amp * np.sin(2 * np.pi * rot_f * t[k] + rot_ph)
        sc = sc0 * (1 + sc_amp * np.sin(2 * np.pi * 0.7 * t[k] + sc_ph))
        M = cv2.getRotationMatrix2D((cx, cy), float(ang), float(sc))
        M[:, 2] += (dx, dy)
        mats.append(M.astype(np.float32))
    openness = np.ones(n_frames)
    for _ in range(int(rng.integers(1, 3))):
        c = rng.integers(0, n_frames)
        for k in range(n_frames):
            openness[k] = min(openness[k], min(1.0, 0.05 + 0.5 * abs(k - c)))
    openness *= rng.uniform(0.8, 1.0)
    talk = rng.uniform(0, 1, n_frames + 4)
    talk = np.convolve(talk, np.ones(3) / 3, mode="same")[2:n_frames + 2]
    mouth = np.clip((talk - 0.3) * rng.uniform(0.8, 1.6), 0, 1) * (rng.uniform() < 0.85)
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32)
    th = rng.uniform(0, 2 * np.pi)
    strength = rng.uniform(0.08, 0.3)
    light = 1 + strength * (((xx - cx) * np.cos(th) + (yy - cy) * np.sin(th)) / (0.5 * S))
    gain = rng.uniform(0.85, 1.12) * (1 + rng.normal(0, 0.04, 3))
    return Motion(mats, openness, mouth, light[..., None].astype(np.float32), gain.astype(np.float32), float(rng.uniform(1.0, 4.0)))


def draw_background(rng: np.random.Generator, size: int) -> np.ndarray:
    S = size
    kind = rng.integers(0, 4)
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / S
    c1, c2 = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    if kind == 0:  # gradient
        th = rng.uniform(0, 2 * np.pi)
        g = (xx * np.cos(th) + yy * np.sin(th))
        g = (g - g.min()) / (np.ptp(g) + 1e-6)
        bg = c1 * (1 - g[..., None]) + c2 * g[..., None]
    elif kind == 1:  # coloured low-frequency texture
        bg = c1 + 35 * _noise_field(rng, S, int(rng.integers(3, 9)), 3) + 8 * _noise_field(rng, S, 40, 3)
    elif kind == 2:  # clutter: shapes on a wall
        bg = np.empty((S, S, 3), np.float32)
        bg[:] = c1
        for _ in range(int(rng.integers(4, 12))):
            col = tuple(float(v) for v in rng.uniform(10, 245, 3))
            x, y = (rng.uniform(0, S, 2)).astype(int)
            w, h = (rng.uniform(0.05, 0.35, 2) * S).astype(int)
            if rng.uniform() < 0.5:
                cv2.rectangle(bg, (int(x), int(y)), (int(x + w), int(y + h)), col, -1, cv2.LINE_AA)
            else:
                cv2.circle(bg, (int(x), int(y)), int(w // 2 + 2), col, -1, cv2.LINE_AA)
        bg = cv2.GaussianBlur(bg, (0, 0), rng.uniform(0.5, 2.0))
    else:  # room: wall and shelves / door frame
        bg = np.empty((S, S, 3), np.float32)
        bg[:] = c1
        split = int(rng.uniform(0.55, 0.85) * S)
        bg[split:] = c2
        for _ in range(int(rng.integers(1, 4))):
            x = int(rng.uniform(0, S))
            cv2.line(bg, (x, 0), (x, split), tuple(float(v) for v in c1 * 0.7), int(rng.integers(2, 6)))
        bg += 6 * _noise_field(rng, S, 30, 3)
    return np.clip(bg, 0, 255).astype(np.float32)


def warp(img: np.ndarray, M: np.ndarray, size: int, border=0) -> np.ndarray:
    return cv2.warpAffine(img, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def compose(ident: Identity, motion: Motion, k: int, bg: np.ndarray, out_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frame k of `ident` in `motion` over `bg`, before camera noise: (frame float32 BGR, head alpha in frame coords)."""
    S = ident.size
    head, alpha = draw_dynamic(ident, float(motion.openness[k]), float(motion.mouth[k]))
    head = head * motion.light
    M = motion.matrices[k]
    wh = warp(head, M, S)
    wa = warp(alpha, M, S)[..., None]
    frame = bg * (1 - wa) + wh * wa
    frame *= motion.gain
    return frame, wa[..., 0]


def finish(frame: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Camera noise and quantisation (saturating, rounded) to uint8.

    The noise is triangular (difference of two uniform bytes, std 104.2 before
    scaling): indistinguishable from Gaussian at these levels and ~5x cheaper
    to draw than `standard_normal`."""
    a = rng.integers(0, 256, frame.shape, dtype=np.uint8)
    b = rng.integers(0, 256, frame.shape, dtype=np.uint8)
    noise = cv2.subtract(a, b, dtype=cv2.CV_32F)
    return cv2.addWeighted(np.ascontiguousarray(frame, np.float32), 1.0, noise, sigma / 104.2, 0.0, dtype=cv2.CV_8U)


def face_box(ident: Identity, M: np.ndarray) -> tuple[float, float, float, float]:
    """The drawn face (forehead to chin, cheek to cheek) as a box in frame coordinates."""
    pts = _face_polygon(ident.cx, ident.cy, ident.a, ident.b, ident.jaw, n=36)
    p = pts @ M[:, :2].T + M[:, 2]
    return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())
