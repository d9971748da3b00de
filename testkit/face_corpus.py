"""Frames with and without faces for the face-confirmation benchmark and tests (deterministic by seed).

No-face frames: crops, rescales and composites of images that ship in permissively licensed
packages (`PACKAGE_IMAGES`: scikit-image's data set, matplotlib's and scikit-learn's sample images,
each with its licence), plus frames our own code draws — title cards (large bold text on sky
gradients: the reported failure), text over package photos, flat cartoons, drawn hands.
Face frames: real photos from the same packages (scikit-image's astronaut and camera man,
matplotlib's Grace Hopper, the 100 faces of scikit-image's LFW subset) placed at small and large
sizes in 1080p, 720p and portrait frames (the tiling path), and frames of the synthetic benchmark
(`data_catalog.synthetic.render_job`), as they are and placed small in large frames.

`bench/face_confirm_corpus.py` freezes both corpora (a manifest of pixel hashes committed to the
repository); tests take single frames from here (`title_card`, `paste_face`, `real_face`).
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np

# Frame sizes (width, height) of phone, web and broadcast video, large ones first.
LARGE_FRAMES = ((1920, 1080), (1080, 1920), (1280, 720), (720, 1280))
SMALL_FRAMES = ((640, 360), (854, 480), (640, 480), (360, 640))


@dataclass(frozen=True)
class PackageImage:
    name: str
    package: str     # the package it ships in
    kind: str        # landscape, animal, object, text, drawing, texture, microscopy, face
    licence: str
    face_box: tuple | None = None   # x, y, w, h of the face (BlazeFace short range on the photo); None: no face
    keep: tuple | None = None       # x0, y0, x1, y1: the part without a person, for no-face crops


PACKAGE_IMAGES = {p.name: p for p in (
    PackageImage("astronaut", "scikit-image", "face", "public domain (NASA)", face_box=(177, 82, 95, 95),
                 keep=(330, 0, 512, 512)),
    PackageImage("camera", "scikit-image", "face", "CC0 (Lav Varshney)", face_box=(180, 122, 84, 84),
                 keep=(330, 0, 512, 250)),
    PackageImage("grace_hopper", "matplotlib", "face", "public domain (U.S. Navy photograph)",
                 face_box=(171, 146, 194, 194)),
    PackageImage("chelsea", "scikit-image", "animal", "CC0 (Stefan van der Walt)"),
    PackageImage("coffee", "scikit-image", "object", "CC0 (Rachel Michetti)"),
    PackageImage("rocket", "scikit-image", "landscape", "public domain (SpaceX)"),
    PackageImage("hubble_deep_field", "scikit-image", "landscape", "public domain (NASA)"),
    PackageImage("horse", "scikit-image", "drawing", "CC0 (Andreas Preuss)"),
    PackageImage("text", "scikit-image", "text", "public domain"),
    PackageImage("page", "scikit-image", "text", "scikit-image data set (BSD-3-Clause)"),
    PackageImage("brick", "scikit-image", "texture", "CC0 (CC0Textures)"),
    PackageImage("grass", "scikit-image", "texture", "CC0 (CC0Textures)"),
    PackageImage("gravel", "scikit-image", "texture", "CC0 (CC0Textures)"),
    PackageImage("coins", "scikit-image", "object", "no known copyright restrictions (Brooklyn Museum)"),
    PackageImage("clock", "scikit-image", "object", "public domain (Stefan van der Walt)"),
    PackageImage("immunohistochemistry", "scikit-image", "microscopy", "no known copyright restrictions"),
    PackageImage("retina", "scikit-image", "microscopy", "CC0"),
    PackageImage("cell", "scikit-image", "microscopy", "CC0"),
    PackageImage("logo", "scikit-image", "drawing", "scikit-image data set (BSD-3-Clause)"),
    PackageImage("china", "scikit-learn", "landscape", "CC BY 2.0 (danielbuechele, via scikit-learn)"),
    PackageImage("flower", "scikit-learn", "landscape", "CC BY 2.0 (vultilion, via scikit-learn)"),
    PackageImage("Minduka_Present_Blue_Pack", "matplotlib", "drawing", "matplotlib sample data (matplotlib licence)"),
    PackageImage("logo2", "matplotlib", "drawing", "matplotlib sample data (matplotlib licence)"),
)}
NO_FACE_SOURCES = tuple(n for n, p in PACKAGE_IMAGES.items() if p.face_box is None or p.keep is not None)
REAL_FACE_SOURCES = tuple(n for n, p in PACKAGE_IMAGES.items() if p.face_box is not None)


def _rgb(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8) if a.max() <= 1.0 else a.astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.shape[2] == 4:  # RGBA on white
        alpha = a[:, :, 3:4].astype(np.float32) / 255
        a = (a[:, :, :3] * alpha + 255 * (1 - alpha)).round().astype(np.uint8)
    return np.ascontiguousarray(a[:, :, :3])


@lru_cache(maxsize=None)
def package_image(name: str) -> np.ndarray:
    """The image as uint8 RGB, read from the package that ships it (no network)."""
    pkg = PACKAGE_IMAGES[name].package
    if pkg == "scikit-image":
        from skimage import data

        img = _rgb(getattr(data, name)())
    elif pkg == "matplotlib":
        import matplotlib.cbook as cbook
        from PIL import Image

        suffix = ".jpg" if name == "grace_hopper" else ".png"
        with Image.open(cbook.get_sample_data(name + suffix, asfileobj=False)) as im:
            img = _rgb(np.asarray(im.convert("RGBA")))
    else:
        from sklearn.datasets import load_sample_image

        img = _rgb(load_sample_image(name + ".jpg"))
    img.setflags(write=False)
    return img


@lru_cache(maxsize=1)
def lfw_faces() -> np.ndarray:
    """The 100 face crops (25 x 25 grey, one person each) of scikit-image's LFW subset, uint8."""
    from skimage import data

    return (data.lfw_subset()[:100] * 255).round().astype(np.uint8)


def frame_hash(rgb: np.ndarray) -> str:
    """SHA-256 of the frame's shape and pixels (independent of any image-file encoding)."""
    h = hashlib.sha256(f"{rgb.shape}".encode())
    h.update(np.ascontiguousarray(rgb).tobytes())
    return h.hexdigest()


def half_of(frame_id: str) -> str:
    """'tune' or 'report': a fixed split by a hash of the id (the group for real faces: one person)."""
    return "tune" if zlib.crc32(frame_id.encode()) % 2 == 0 else "report"


# --- drawing helpers ---------------------------------------------------------------------------------
def cover(rng: np.random.Generator, img: np.ndarray, size: tuple[int, int], min_scale: float = 0.35) -> np.ndarray:
    """A random crop of `img` (a share of its area, the frame's aspect) resized to fill `size` (w, h)."""
    import cv2

    W, H = size
    h, w = img.shape[:2]
    aspect = W / H
    s = float(rng.uniform(min_scale, 1.0))
    ch = min(h, int(round(np.sqrt(s * h * w / aspect))))
    cw = min(w, int(round(ch * aspect)))
    ch = min(h, max(8, int(round(cw / aspect))))
    y0 = int(rng.integers(0, h - ch + 1))
    x0 = int(rng.integers(0, w - cw + 1))
    crop = img[y0:y0 + ch, x0:x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(np.ascontiguousarray(crop), (W, H), interpolation=cv2.INTER_AREA if cw > W else cv2.INTER_LINEAR)


def sky(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A sky gradient (day blue, dusk or sunset orange), sometimes with soft clouds."""
    import cv2

    W, H = size
    palettes = [((40, 110, 200), (170, 215, 250)), ((20, 40, 110), (240, 150, 80)), ((90, 160, 230), (250, 250, 255)),
                ((255, 140, 60), (255, 230, 150)), ((60, 30, 90), (250, 120, 90))]
    top, bottom = (np.array(c, np.float32) for c in palettes[int(rng.integers(len(palettes)))])
    t = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    img = np.broadcast_to(top * (1 - t) + bottom * t, (H, W, 3)).copy()
    if rng.random() < 0.6:
        clouds = np.zeros((H, W), np.float32)
        for _ in range(int(rng.integers(2, 7))):
            c = (int(rng.integers(0, W)), int(rng.integers(0, H * 2 // 3)))
            axes = (int(rng.integers(W // 12, W // 4)), int(rng.integers(H // 30, H // 10)))
            cv2.ellipse(clouds, c, axes, 0, 0, 360, 1.0, -1)
        clouds = cv2.GaussianBlur(clouds, (0, 0), max(2.0, H / 60))[:, :, None]
        img = img * (1 - 0.8 * clouds) + 250 * 0.8 * clouds
    return np.clip(img, 0, 255).astype(np.uint8)


WORDS = ("THE", "ADVENTURE", "BEGINS", "EPISODE", "SUMMER", "CHAPTER ONE", "OOPS!", "GOOD", "MORNING", "WOW",
         "HELLO", "BOO", "MOON", "POP", "OK", "ZOOM", "COOL", "THE END", "NEWS", "8:00", "2024", "LIVE", "Q&A",
         "Ocean", "Dodo", "go go go", "SOON", "BONUS", "Episode 3", "KABOOM", "TOON", "OMG", "8", "00", "@@")


@lru_cache(maxsize=None)
def _font(name: str, px: int):
    import matplotlib
    from PIL import ImageFont

    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), px)


FONTS = ("DejaVuSans-Bold.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSans.ttf",
         "DejaVuSerif-BoldItalic.ttf", "DejaVuSans-BoldOblique.ttf")


def draw_text(rng: np.random.Generator, img: np.ndarray, text: str | None = None, height_share=(0.08, 0.3)) -> np.ndarray:
    """Large text (one to three lines, outlined or shadowed) over `img`, like a title card."""
    from PIL import Image, ImageDraw

    H, W = img.shape[:2]
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    lines = [text] if text else [str(rng.choice(WORDS)) for _ in range(int(rng.integers(1, 4)))]
    px = int(min(H, W) * rng.uniform(*height_share) * (1.6 if min(H, W) == W else 1.0))
    colours = [(255, 140, 0), (255, 200, 0), (255, 255, 255), (230, 40, 30), (255, 110, 20), (250, 230, 90),
               (30, 30, 30), (255, 90, 160)]
    fill = colours[int(rng.integers(len(colours)))]
    font = _font(FONTS[int(rng.integers(len(FONTS)))], max(12, px))
    y = int(rng.uniform(0.05, 0.5) * H)
    stroke = int(max(0, rng.choice([0, px // 14, px // 8])))
    for line in lines:
        box = draw.textbbox((0, 0), line, font=font, stroke_width=stroke)
        tw, th = box[2] - box[0], box[3] - box[1]
        x = int((W - tw) / 2 + rng.uniform(-0.15, 0.15) * W)
        if rng.random() < 0.4:
            draw.text((x + px // 14, y + px // 14), line, font=font, fill=(40, 20, 10))
        draw.text((x, y), line, font=font, fill=fill, stroke_width=stroke, stroke_fill=(60, 20, 0))
        y += int(th * 1.15)
        if y > H:
            break
    return np.asarray(pil)


def title_card(rng: np.random.Generator, size: tuple[int, int], text: str | None = None) -> np.ndarray:
    """Large bold text on a sky gradient (the failure reported with a cartoon's title card)."""
    return draw_text(rng, sky(rng, size), text)


def cartoon(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A flat-colour drawing with black outlines: hills, a sun, houses with windows, trees, cars, clouds."""
    import cv2

    W, H = size
    img = sky(rng, size)
    u = min(W, H)
    line = max(2, u // 150)
    green = [(60, 170, 60), (90, 190, 70), (40, 130, 50)]
    for _ in range(int(rng.integers(1, 4))):
        c = (int(rng.integers(-W // 4, W + W // 4)), int(H * rng.uniform(0.75, 1.1)))
        axes = (int(W * rng.uniform(0.3, 0.8)), int(H * rng.uniform(0.15, 0.4)))
        cv2.ellipse(img, c, axes, 0, 180, 360, green[int(rng.integers(3))], -1)
        cv2.ellipse(img, c, axes, 0, 180, 360, (0, 0, 0), line)
    if rng.random() < 0.7:
        c = (int(rng.integers(u // 8, W - u // 8)), int(rng.integers(u // 8, H // 3)))
        cv2.circle(img, c, int(u * rng.uniform(0.05, 0.12)), (255, 220, 40), -1)
        cv2.circle(img, c, int(u * rng.uniform(0.05, 0.12)), (0, 0, 0), line)
    for _ in range(int(rng.integers(1, 5))):
        kind = rng.integers(3)
        x, y = int(rng.integers(0, W)), int(H * rng.uniform(0.45, 0.85))
        s = int(u * rng.uniform(0.08, 0.3))
        colour = tuple(int(v) for v in rng.integers(40, 255, 3))
        if kind == 0:  # a house: walls, roof, two windows, a door
            cv2.rectangle(img, (x, y), (x + s, y + s), colour, -1)
            cv2.rectangle(img, (x, y), (x + s, y + s), (0, 0, 0), line)
            roof = np.array([[x - s // 8, y], [x + s // 2, y - s // 2], [x + s + s // 8, y]], np.int32)
            cv2.fillPoly(img, [roof], (170, 50, 40))
            cv2.polylines(img, [roof], True, (0, 0, 0), line)
            for wx in (x + s // 6, x + s * 4 // 6):
                cv2.rectangle(img, (wx, y + s // 5), (wx + s // 6, y + s * 2 // 5), (250, 240, 150), -1)
                cv2.rectangle(img, (wx, y + s // 5), (wx + s // 6, y + s * 2 // 5), (0, 0, 0), line)
            cv2.rectangle(img, (x + s * 2 // 5, y + s * 3 // 5), (x + s * 3 // 5, y + s), (110, 60, 30), -1)
        elif kind == 1:  # a tree
            cv2.rectangle(img, (x, y), (x + s // 6, y + s), (110, 70, 30), -1)
            cv2.circle(img, (x + s // 12, y), s // 2, green[int(rng.integers(3))], -1)
            cv2.circle(img, (x + s // 12, y), s // 2, (0, 0, 0), line)
        else:  # a car
            cv2.rectangle(img, (x, y), (x + s, y + s // 3), colour, -1)
            cv2.rectangle(img, (x + s // 5, y - s // 5), (x + s * 4 // 5, y), colour, -1)
            for wx in (x + s // 5, x + s * 4 // 5):
                cv2.circle(img, (wx, y + s // 3), s // 8, (20, 20, 20), -1)
    return img


def hand(rng: np.random.Generator, size: tuple[int, int], background: np.ndarray | None = None) -> np.ndarray:
    """A drawn open hand (palm and five fingers in a skin tone, shaded) over a background."""
    import cv2

    W, H = size
    img = background.copy() if background is not None else sky(rng, size)
    u = min(W, H)
    s = u * rng.uniform(0.15, 0.6)
    cx, cy = W * rng.uniform(0.25, 0.75), H * rng.uniform(0.35, 0.75)
    tones = [(224, 172, 140), (198, 134, 66), (141, 85, 36), (255, 219, 172), (241, 194, 125)]
    tone = np.array(tones[int(rng.integers(len(tones)))], np.float32)
    mask = np.zeros((H, W), np.float32)
    angle = rng.uniform(-40, 40)
    cv2.ellipse(mask, (int(cx), int(cy)), (int(s * 0.35), int(s * 0.42)), angle, 0, 360, 1.0, -1)
    for k, (dx, length) in enumerate(((-0.3, 0.55), (-0.12, 0.7), (0.06, 0.75), (0.22, 0.65), (0.45, 0.45))):
        a = np.deg2rad(angle + (k - 2) * 12 + (35 if k == 4 else 0))
        x0 = cx + dx * s * np.cos(np.deg2rad(angle))
        y0 = cy - 0.25 * s
        x1, y1 = x0 + np.sin(a) * length * s, y0 - np.cos(a) * length * s
        cv2.line(mask, (int(x0), int(y0)), (int(x1), int(y1)), 1.0, max(3, int(s * 0.13)))
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, s / 80))[:, :, None]
    shade = cv2.GaussianBlur(np.random.default_rng(int(rng.integers(1 << 30))).random((H, W)).astype(np.float32),
                             (0, 0), max(2.0, s / 10))[:, :, None]
    skin = tone * (0.75 + 0.5 * shade)
    return np.clip(img * (1 - mask) + skin * mask, 0, 255).astype(np.uint8)


def jpeg(rng: np.random.Generator, rgb: np.ndarray, quality: tuple[int, int] = (60, 95)) -> np.ndarray:
    """The frame through a JPEG round trip (video frames are compressed)."""
    import cv2

    q = int(rng.integers(quality[0], quality[1] + 1))
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def paste_face(canvas: np.ndarray, img: np.ndarray, box: tuple, face_px: float, cx: float, cy: float) -> tuple:
    """Paste `img` scaled so its face box `box` (x, y, w, h) is `face_px` wide, the face centred at
    (cx, cy); returns the face box in the canvas (x, y, w, h)."""
    import cv2

    scale = face_px / box[2]
    a = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    H, W = canvas.shape[:2]
    fcx, fcy = box[0] + box[2] / 2, box[1] + box[3] / 2
    x0, y0 = int(round(cx - fcx * scale)), int(round(cy - fcy * scale))
    ys, xs, ye, xe = max(0, y0), max(0, x0), min(H, y0 + a.shape[0]), min(W, x0 + a.shape[1])
    if ye > ys and xe > xs:
        canvas[ys:ye, xs:xe] = a[ys - y0:ye - y0, xs - x0:xe - x0]
    return (cx - face_px / 2, cy - box[3] * scale / 2, face_px, box[3] * scale)


def real_face(name: str) -> tuple[np.ndarray, tuple]:
    """(image, face box) of a real face: a package photo by name, or `lfw<i>` (LFW subset face i)."""
    if name.startswith("lfw"):
        face = lfw_faces()[int(name[3:])]
        # the crop is the face (brows to chin): pad it with its own border so the detector sees a head
        import cv2

        img = cv2.copyMakeBorder(face, 8, 8, 8, 8, cv2.BORDER_REPLICATE)
        return _rgb(img), (8.0, 8.0, 25.0, 25.0)
    return package_image(name), PACKAGE_IMAGES[name].face_box


# --- the two corpora -----------------------------------------------------------------------------------
@dataclass
class CorpusFrame:
    frame_id: str
    corpus: str        # "no_face" / "face"
    kind: str          # what it shows (title_card, landscape, real_small, synthetic, ...)
    source: str        # package image, person or synthetic video it comes from
    own_drawing: bool  # drawn by our code (True) or from a package image (False)
    rgb: np.ndarray
    face_box: tuple | None = None  # x, y, w, h of the face (face corpus)

    @property
    def half(self) -> str:
        group = self.source if self.source.startswith("lfw") else self.frame_id
        return half_of(group)


def _frame_size(rng: np.random.Generator, large_share: float = 0.7) -> tuple[int, int]:
    sizes = LARGE_FRAMES if rng.random() < large_share else SMALL_FRAMES
    return sizes[int(rng.integers(len(sizes)))]


def _package_background(rng: np.random.Generator, size: tuple[int, int], name: str | None = None) -> np.ndarray:
    name = name or NO_FACE_SOURCES[int(rng.integers(len(NO_FACE_SOURCES)))]
    p = PACKAGE_IMAGES[name]
    img = package_image(name)
    if p.keep is not None:
        x0, y0, x1, y1 = p.keep
        img = img[y0:y1, x0:x1]
    return cover(rng, img, size)


def no_face_frames(seed: int = 0, n_package: int = 700, n_own: int = 500) -> Iterator[CorpusFrame]:
    """The no-face corpus: `n_package` frames from package images (crops, rescales, composites of
    two, brightness changes), `n_own` drawn by our code (title cards, text over package photos,
    cartoons, hands), each through a JPEG round trip."""
    import cv2

    for i in range(n_package):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1, i]))
        name = NO_FACE_SOURCES[i % len(NO_FACE_SOURCES)]
        size = _frame_size(rng)
        img = _package_background(rng, size, name)
        if rng.random() < 0.3:  # composite: a second package image inset
            other = NO_FACE_SOURCES[int(rng.integers(len(NO_FACE_SOURCES)))]
            W, H = size
            iw, ih = int(W * rng.uniform(0.25, 0.6)), int(H * rng.uniform(0.25, 0.6))
            inset = _package_background(rng, (iw, ih), other)
            x, y = int(rng.integers(0, W - iw + 1)), int(rng.integers(0, H - ih + 1))
            img[y:y + ih, x:x + iw] = inset
            name = f"{name}+{other}"
        gain, bias = rng.uniform(0.7, 1.25), rng.uniform(-25, 25)
        img = np.clip(img.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
        kind = PACKAGE_IMAGES[name.split("+")[0]].kind
        if kind == "face":
            kind = "object"  # the part of the photo without the person
        yield CorpusFrame(f"nf-pkg-{i:04d}", "no_face", kind, name, False, jpeg(rng, img))
    makers = ("title_card", "text_on_photo", "cartoon", "hand", "title_card")
    for i in range(n_own):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 2, i]))
        kind = makers[i % len(makers)]
        size = _frame_size(rng)
        if kind == "title_card":
            img, source = title_card(rng, size), "drawn"
        elif kind == "text_on_photo":
            img = _package_background(rng, size)
            img, source = draw_text(rng, img), "drawn text over a package image"
        elif kind == "cartoon":
            img, source = cartoon(rng, size), "drawn"
        else:
            bg = _package_background(rng, size) if rng.random() < 0.5 else None
            img, source = hand(rng, size, bg), "drawn"
        if rng.random() < 0.15:
            img = cv2.GaussianBlur(img, (0, 0), 1.2)
        yield CorpusFrame(f"nf-own-{i:04d}", "no_face", kind, source, True, jpeg(rng, img))


def real_face_frames(seed: int = 0, per_photo: int = 80, per_lfw: int = 3) -> Iterator[CorpusFrame]:
    """Real faces placed in frames: each package photo `per_photo` times, each LFW face `per_lfw`
    times; two thirds small (56-200 px wide in a large frame: too small for the whole-frame pass,
    the tiling path's size), the rest larger (110-420 px, any frame)."""
    names = [n for n in REAL_FACE_SOURCES for _ in range(per_photo)] + \
        [f"lfw{k}" for k in range(100) for _ in range(per_lfw)]
    for i, name in enumerate(names):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 3, i]))
        small = rng.random() < 2 / 3
        size = LARGE_FRAMES[int(rng.integers(len(LARGE_FRAMES)))] if small else _frame_size(rng, 0.5)
        W, H = size
        face_px = float(rng.uniform(56, 200) if small else rng.uniform(110, min(420, 0.6 * min(W, H))))
        canvas = _package_background(rng, size) if rng.random() < 0.7 else sky(rng, size)
        img, box = real_face(name)
        cx = float(rng.uniform(0.15, 0.85) * W)
        cy = float(rng.uniform(0.2, 0.7) * H)
        fbox = paste_face(canvas, img, box, face_px, cx, cy)
        gain, bias = rng.uniform(0.75, 1.2), rng.uniform(-20, 20)
        canvas = np.clip(canvas.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
        kind = "real_small" if small else "real_large"
        yield CorpusFrame(f"rf-{i:04d}", "face", kind, name, False, jpeg(rng, canvas), tuple(round(v, 1) for v in fbox))


def synthetic_face_frames(seed: int = 0, size: str = "default", frames_per_video: int = 2,
                          every: int = 2, n_small: int = 200) -> Iterator[CorpusFrame]:
    """Frames of the synthetic benchmark (`data_catalog.synthetic`): of every `every`-th video,
    `frames_per_video` frames as they are (JPEG at the video's quality); then `n_small` of them
    placed small (56-200 px faces) in large frames."""
    import cv2

    from data_catalog.synthetic import plan, render_job

    jobs = plan(seed, size)[::every]
    picked = []
    for j, job in enumerate(jobs):
        frames, boxes = render_job(job)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 4, j]))
        for k in sorted(rng.choice(len(frames), size=min(frames_per_video, len(frames)), replace=False)):
            rgb = cv2.cvtColor(frames[k], cv2.COLOR_BGR2RGB)
            rgb = jpeg(rng, rgb, (job.quality, job.quality))
            fid = f"sy-{job.database}-{job.video_index:04d}-{k:02d}"
            x0, y0, x1, y1 = (float(v) for v in boxes[k])
            box = (x0, y0, x1 - x0, y1 - y0)
            picked.append((fid, rgb, box, job))
            yield CorpusFrame(fid, "face", "synthetic", f"{job.database}/{job.relpath}", True, rgb,
                              tuple(round(v, 1) for v in box))
    for i in range(min(n_small, len(picked))):
        fid, rgb, box, job = picked[(i * 7) % len(picked)]
        rng = np.random.default_rng(np.random.SeedSequence([seed, 5, i]))
        W, H = LARGE_FRAMES[int(rng.integers(len(LARGE_FRAMES)))]
        canvas = _package_background(rng, (W, H)) if rng.random() < 0.5 else sky(rng, (W, H))
        fbox = paste_face(canvas, rgb, box, float(rng.uniform(56, 200)), float(rng.uniform(0.15, 0.85) * W),
                          float(rng.uniform(0.2, 0.7) * H))
        yield CorpusFrame(f"ss-{i:04d}", "face", "synthetic_small", f"{job.database}/{job.relpath}", True,
                          jpeg(rng, canvas, (job.quality, job.quality)), tuple(round(v, 1) for v in fbox))


# --- small videos for tests ------------------------------------------------------------------------------
def title_card_video(path: Path, size: tuple[int, int] = (640, 360), n_frames: int = 6, text: str = "GOOD MORNING",
                     seed: int = 8, face_frames: int = 0, face_px: int = 150) -> Path:
    """An MJPG AVI of a title card (large bold text on a sky gradient) drifting a few pixels a frame;
    the first `face_frames` frames also show the astronaut's face (a face that then leaves the frame)."""
    import cv2

    from testkit.media import astronaut, place

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    card = title_card(np.random.default_rng(seed), size, text)
    W, H = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (W, H))
    for i in range(n_frames):
        frame = np.roll(card, 2 * i, axis=1).copy()
        if i < face_frames:
            place(frame, astronaut(), face_px, 0.8 * W, 0.45 * H)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path
