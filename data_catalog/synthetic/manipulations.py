"""The manipulation methods: real image-forensics techniques, one function each.

Every method takes the *target* frame (the captured video of one identity),
the *source* face rendered in the target's pose and expression (for swaps),
the inner-face mask in frame coordinates, per-video parameters drawn once
(`params`) and a generator for per-frame randomness; it returns the
manipulated frame (uint8 BGR). Traces each leaves:

- ``poisson-swap``: Reinhard colour transfer + Poisson blending
  (`cv2.seamlessClone`): gradient-domain seams, identity change (FaceSwap-like).
- ``lowres-resynth``: the source face down-sampled to ~24 px and up-sampled
  again, blended with a feathered mask: a blurred, noise-free face
  (autoencoder "Deepfakes"-like).
- ``reenact-warp``: the target's own face with mouth and eyes displaced by
  smooth local warps (`cv2.remap`): interpolation blur and geometric
  distortion (Face2Face-like reenactment).
- ``upsample-texture``: the lower face re-synthesised through a 3x
  nearest-neighbour up-sampling with a 3 px checkerboard (transposed
  convolution) pattern (GAN / NeuralTextures-like).
- ``pyramid-swap``: Laplacian-pyramid blend of the source face plus unsharp
  masking (high-fidelity swap, HifiFace-like).
- ``flicker-blend``: alpha-blended swap whose mask size, softness, strength
  and position jitter from frame to frame (temporal inconsistency).

Variants used only in unseen sets: ``poisson-swap-wide`` (the same Poisson
cloning without colour transfer, over a wider mask) and
``upsample-texture-mouth`` (the up-sampling artefact confined to the mouth
region, weaker pattern, bilinear mix).

Novel methods, held out of every training database and no variant of a known
one (another artefact family, for the open-set benchmark):

- ``recompress-splice``: the inner face cut out of a copy of the frame that was
  JPEG-compressed at quality 8-20 on an 8x8 block grid shifted against the
  frame's, pasted back with a hard mask: a splicing trace (blocking and chroma
  bleeding misaligned with the video's own compression, a double-compression
  inconsistency). No identity change, no re-synthesis, no blending, no warp.
"""

from __future__ import annotations

import cv2
import numpy as np

KNOWN_METHODS = ("poisson-swap", "lowres-resynth", "reenact-warp", "upsample-texture", "pyramid-swap", "flicker-blend")
VARIANT_METHODS = ("poisson-swap-wide", "upsample-texture-mouth")
NOVEL_METHODS = ("recompress-splice",)
JPEG_BLOCK = 8
SWAPS = {"poisson-swap", "lowres-resynth", "pyramid-swap", "flicker-blend", "poisson-swap-wide"}


def draw_params(method: str, rng: np.random.Generator) -> dict:
    """Per-video parameters of a method (drawn once, so a video is consistent)."""
    p: dict = {}
    if method in ("lowres-resynth",):
        p["res"] = int(rng.integers(20, 30))
        p["feather"] = float(rng.uniform(2.5, 5.0))
    elif method == "reenact-warp":
        p["mouth_amp"] = float(rng.uniform(0.18, 0.35)) * (1 if rng.uniform() < 0.5 else -1)
        p["mouth_f"] = float(rng.uniform(0.8, 2.0))
        p["eye_shift"] = float(rng.uniform(0.8, 2.0))
        p["phase"] = float(rng.uniform(0, 6.3))
    elif method in ("upsample-texture", "upsample-texture-mouth"):
        p["amp"] = float(rng.uniform(4.5, 7.0)) if method == "upsample-texture" else float(rng.uniform(3.0, 5.0))
        p["mix"] = float(rng.uniform(0.45, 0.7))
    elif method == "pyramid-swap":
        p["levels"] = int(rng.integers(3, 5))
        p["sharp"] = float(rng.uniform(0.5, 0.9))
    elif method == "flicker-blend":
        p["base_alpha"] = float(rng.uniform(0.8, 0.95))
    elif method == "recompress-splice":
        p["quality"] = int(rng.integers(8, 21))
        p["grid"] = tuple(int(v) for v in rng.integers(1, JPEG_BLOCK, 2))  # (dy, dx): never the frame's own grid
    p["transfer"] = float(rng.uniform(0.7, 1.0))
    # face alignment resamples the source face: its detail and camera noise
    # come out low-passed (the swaps' main local trace besides the seams)
    p["resample"] = {"poisson-swap": (0.6, 0.8), "poisson-swap-wide": (0.6, 0.8), "flicker-blend": (0.55, 0.75),
                     "pyramid-swap": (0.7, 0.9)}.get(method)
    if p["resample"]:
        p["resample"] = float(rng.uniform(*p["resample"]))
    if method == "reenact-warp":
        p["smooth"] = float(rng.uniform(0.6, 1.0))
    return p


def color_transfer(src: np.ndarray, dst: np.ndarray, mask: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Reinhard colour transfer in Lab: match src's masked statistics to dst's."""
    m = mask > 0.5
    if m.sum() < 10:
        return src
    s = cv2.cvtColor(src, cv2.COLOR_BGR2LAB).astype(np.float32)
    d = cv2.cvtColor(dst, cv2.COLOR_BGR2LAB).astype(np.float32)
    sm, ss = s[m].mean(0), s[m].std(0) + 1e-3
    dm, ds = d[m].mean(0), d[m].std(0) + 1e-3
    out = (s - sm) * (ds / ss) + dm
    out = s + strength * (out - s)
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)


def resample(img: np.ndarray, factor: float | None) -> np.ndarray:
    """Down- and up-sample (bilinear) as an alignment warp would."""
    if not factor:
        return img
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(8, round(w * factor)), max(8, round(h * factor))), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _blend(dst: np.ndarray, src: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None].astype(np.float32)
    return np.clip(np.rint(dst.astype(np.float32) * (1 - a) + src.astype(np.float32) * a), 0, 255).astype(np.uint8)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask > 0.5)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def poisson_swap(target, source, mask, params, rng, wide=False):
    source = resample(source, params.get("resample"))
    src = source if wide else color_transfer(source, target, mask, params["transfer"])
    m = (mask > 0.5).astype(np.uint8) * 255
    if wide:
        m = cv2.dilate(m, np.ones((5, 5), np.uint8))
    # keep the clone region inside the frame (seamlessClone needs a 1 px margin)
    m[:2], m[-2:], m[:, :2], m[:, -2:] = 0, 0, 0, 0
    x0, y0, x1, y1 = _bbox(m)
    x1 -= 1
    y1 -= 1
    sub_src = src[y0:y1 + 1, x0:x1 + 1]
    sub_m = m[y0:y1 + 1, x0:x1 + 1]
    center = (x0 + sub_m.shape[1] // 2, y0 + sub_m.shape[0] // 2)
    return cv2.seamlessClone(sub_src, target, sub_m, center, cv2.NORMAL_CLONE)


def lowres_resynth(target, source, mask, params, rng):
    src = color_transfer(source, target, mask, params["transfer"])
    x0, y0, x1, y1 = _bbox(mask)
    crop = src[y0:y1, x0:x1]
    r = params["res"]
    small = cv2.resize(crop, (r, r), interpolation=cv2.INTER_AREA)
    up = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    syn = target.copy()
    syn[y0:y1, x0:x1] = up
    alpha = cv2.GaussianBlur((mask > 0.5).astype(np.float32), (0, 0), params["feather"])
    return _blend(target, syn, alpha * (mask > 0.05))


def reenact_warp(target, mask, params, rng, k, n, mouth_xy, eyes_xy, scale):
    S = target.shape[0]
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32)
    mapx, mapy = xx.copy(), yy.copy()
    t = k / max(1, n - 1)
    s = 1 + params["mouth_amp"] * np.sin(2 * np.pi * params["mouth_f"] * t + params["phase"])
    mx, my = mouth_xy
    R = 0.55 * scale
    r2 = ((xx - mx) ** 2 + ((yy - my) * 1.3) ** 2) / R ** 2
    w = np.clip(1 - r2, 0, 1) ** 2
    mapy += (yy - my) * (1 - 1 / s) * w
    mapx += (xx - mx) * (1 - 1 / (1 + 0.5 * (s - 1))) * w * 0.5
    for ex, ey in eyes_xy:
        Re = 0.28 * scale
        r2 = ((xx - ex) ** 2 + (yy - ey) ** 2) / Re ** 2
        we = np.clip(1 - r2, 0, 1) ** 2
        mapy += params["eye_shift"] * np.sin(2 * np.pi * t * 1.3 + params["phase"]) * we
        mapx += params["eye_shift"] * 0.5 * we
    warped = cv2.remap(target, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    # the re-rendered mouth/eye texture comes out smoother than the camera image
    weight = np.clip(np.abs(mapy - yy) + np.abs(mapx - xx), 0, 1)
    weight = np.maximum(weight, cv2.GaussianBlur((mapy != yy).astype(np.float32), (0, 0), 1.0))
    smooth = cv2.GaussianBlur(warped, (0, 0), params["smooth"])
    return _blend(warped, smooth, weight)


_CHECKER = {}


def _checker(S: int) -> np.ndarray:
    if S not in _CHECKER:
        yy, xx = np.mgrid[0:S, 0:S]
        _CHECKER[S] = np.where(((yy // 3) + (xx // 3)) % 2 == 0, 1.0, -1.0).astype(np.float32)
    return _CHECKER[S]


def upsample_texture(target, mask, params, rng, region=None, mouth_only=False):
    S = target.shape[0]
    small = cv2.resize(target, (S // 3, S // 3), interpolation=cv2.INTER_AREA)
    interp = cv2.INTER_LINEAR if mouth_only else cv2.INTER_NEAREST
    up = cv2.resize(small, (S // 3 * 3, S // 3 * 3), interpolation=interp)
    if up.shape[0] != S:
        up = cv2.copyMakeBorder(up, 0, S - up.shape[0], 0, S - up.shape[1], cv2.BORDER_REPLICATE)
    mix = params["mix"]
    tex = target.astype(np.float32) * (1 - mix) + up.astype(np.float32) * mix + params["amp"] * _checker(S)[..., None]
    reg = region if region is not None else mask
    alpha = cv2.GaussianBlur(reg.astype(np.float32), (0, 0), 2.0)
    return _blend(target, np.clip(tex, 0, 255), alpha)


def _pyramid_blend(a: np.ndarray, b: np.ndarray, mask: np.ndarray, levels: int) -> np.ndarray:
    ga, gb, gm = [a.astype(np.float32)], [b.astype(np.float32)], [mask.astype(np.float32)]
    for _ in range(levels):
        ga.append(cv2.pyrDown(ga[-1]))
        gb.append(cv2.pyrDown(gb[-1]))
        gm.append(cv2.pyrDown(gm[-1]))
    out = ga[-1] * (1 - gm[-1][..., None]) + gb[-1] * gm[-1][..., None]
    for i in range(levels - 1, -1, -1):
        size = (ga[i].shape[1], ga[i].shape[0])
        la = ga[i] - cv2.pyrUp(ga[i + 1], dstsize=size)
        lb = gb[i] - cv2.pyrUp(gb[i + 1], dstsize=size)
        m = gm[i][..., None]
        out = cv2.pyrUp(out, dstsize=size) + la * (1 - m) + lb * m
    return out


def pyramid_swap(target, source, mask, params, rng):
    src = color_transfer(resample(source, params["resample"]), target, mask, params["transfer"])
    out = _pyramid_blend(target, src, (mask > 0.5).astype(np.float32), params["levels"])
    blur = cv2.GaussianBlur(out, (0, 0), 1.0)
    sharp = out + params["sharp"] * (out - blur)
    alpha = cv2.GaussianBlur((mask > 0.5).astype(np.float32), (0, 0), 2.0)
    res = out * (1 - alpha[..., None]) + sharp * alpha[..., None]
    return np.clip(np.rint(res), 0, 255).astype(np.uint8)


def flicker_blend(target, source, mask, params, rng):
    src = color_transfer(resample(source, params["resample"]), target, mask, params["transfer"] * rng.uniform(0.5, 1.0))
    m = (mask > 0.5).astype(np.uint8)
    k = int(rng.integers(-3, 4))
    if k > 0:
        m = cv2.dilate(m, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
    elif k < 0:
        m = cv2.erode(m, np.ones((-2 * k + 1, -2 * k + 1), np.uint8))
    dx, dy = (int(v) for v in rng.integers(-1, 2, 2))
    src = np.roll(src, (dy, dx), axis=(0, 1))
    alpha = cv2.GaussianBlur(m.astype(np.float32), (0, 0), float(rng.uniform(1.0, 4.0)))
    alpha *= params["base_alpha"] * rng.uniform(0.8, 1.0)
    return _blend(target, src, alpha)


def recompress_splice(target, mask, params, rng):
    """The inner face from a JPEG of the frame compressed on a shifted 8x8 grid, pasted back (hard mask)."""
    dy, dx = params["grid"]
    shifted = np.roll(target, (-dy, -dx), axis=(0, 1))
    ok, buf = cv2.imencode(".jpg", shifted, [cv2.IMWRITE_JPEG_QUALITY, params["quality"]])
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 BGR frame
        raise RuntimeError("JPEG encoding failed")
    spliced = np.roll(cv2.imdecode(buf, cv2.IMREAD_COLOR), (dy, dx), axis=(0, 1))
    m = (mask > 0.5)[..., None]
    return np.where(m, spliced, target)
