"""Unknowns for the open-set benchmark, from images that ship in permissively licensed packages.

Two kinds of "videos" (a few crops each, as face extraction would hand them to
a model), made deterministically from a seed:

- `real_face_videos`: photos of real people — scikit-image's `astronaut`
  (Eileen Collins, NASA, public domain) and `camera` (the cameraman),
  matplotlib's `grace_hopper`, and the 100 face crops of scikit-image's
  `lfw_subset` (25 x 25 grey crops of Labeled Faces in the Wild, a few people
  more than once). Each photo becomes one video: its face box (BlazeFace where a
  detector is given, else the crop itself) jittered a little from frame to
  frame, as a still face in a hand-held video.
- `non_face_videos`: what a detector may let through — windows of text
  (scikit-image `text`, `page`), landscapes and textures (`grass`, `gravel`,
  `brick`, `moon`, `hubble_deep_field`; scikit-learn's `china`, `flower`),
  objects and animals (`coffee`, `chelsea`, `horse`, `rocket`, `coins`,
  `clock`, `motorcycle_left`, `retina`, `immunohistochemistry`, the
  astronaut's and the cameraman's backgrounds), matplotlib's logo, and the
  100 non-face patches of `lfw_subset` — fed as if they were face crops.

Every crop is square-cropped and encoded as the pipeline does
(`engine.faces.extract.square_crop`, the crop format's JPEG/PNG round trip).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LFW_FACES = 100  # lfw_subset(): the first 100 are faces, the last 100 non-faces


@dataclass
class ProbeVideo:
    name: str            # e.g. "lfw-face-017", "text-2"
    source: str          # the package image it comes from
    crops: np.ndarray    # uint8 RGB [n_frames, size, size, 3]


def _rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.clip(np.rint(img * 255.0 if img.max() <= 1.0 else img), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def _roundtrip(crop: np.ndarray, fmt: str, quality: int) -> np.ndarray:
    """The crop as the workspace stores and `engine.faces.read_crop` reads it back."""
    import cv2

    from engine.faces.extract import _encode

    buf = np.frombuffer(_encode(crop, fmt, quality), np.uint8)
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _jittered_crops(img: np.ndarray, box: tuple[float, float, float, float], rng: np.random.Generator,
                    n_frames: int, size: int, box_scale: float, fmt: str, quality: int,
                    shift: float = 0.04, zoom: float = 0.05) -> np.ndarray:
    """n_frames crops of `box` (x, y, w, h) moved by a few % and re-scaled a little, camera noise added."""
    from engine.faces.detector import Detection
    from engine.faces.extract import square_crop

    x, y, w, h = box
    out = []
    for _ in range(n_frames):
        s = 1.0 + rng.uniform(-zoom, zoom)
        dx, dy = rng.uniform(-shift, shift, 2) * max(w, h)
        det = Detection(x + dx + w * (1 - s) / 2, y + dy + h * (1 - s) / 2, w * s, h * s, 1.0, "probe")
        crop = square_crop(img, det, box_scale, size).astype(np.float32)
        crop = crop * rng.uniform(0.93, 1.07) + rng.normal(0.0, 2.0, crop.shape)
        out.append(_roundtrip(np.clip(np.rint(crop), 0, 255).astype(np.uint8), fmt, quality))
    return np.stack(out)


def _whole_image_crops(img: np.ndarray, rng: np.random.Generator, n_frames: int, size: int, fmt: str,
                       quality: int) -> np.ndarray:
    """A small crop (a 25 x 25 LFW patch) enlarged to the crop size and jittered by an affine warp."""
    import cv2

    base = cv2.resize(_rgb(img), (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    out = []
    for _ in range(n_frames):
        angle, s = rng.uniform(-3, 3), 1.0 + rng.uniform(-0.04, 0.04)
        M = cv2.getRotationMatrix2D((size / 2, size / 2), angle, s)
        M[:, 2] += rng.uniform(-0.03, 0.03, 2) * size
        f = cv2.warpAffine(base, M, (size, size), borderMode=cv2.BORDER_REFLECT)
        f = f * rng.uniform(0.93, 1.07) + rng.normal(0.0, 2.0, f.shape)
        out.append(_roundtrip(np.clip(np.rint(f), 0, 255).astype(np.uint8), fmt, quality))
    return np.stack(out)


def _photos() -> list[tuple[str, np.ndarray]]:
    """Colour or grey photos of one real person each, large enough for a face detector."""
    import matplotlib.cbook as cbook
    from skimage import data

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        import matplotlib.image as mpimg

        hopper = mpimg.imread(f, format="jpg")
    return [("astronaut", _rgb(data.astronaut())), ("grace_hopper", _rgb(hopper)), ("camera", _rgb(data.camera()))]


def real_face_videos(n_frames: int = 8, size: int = 64, box_scale: float = 1.3, fmt: str = "jpg",
                     quality: int = 95, seed: int = 0, finder=None) -> list[ProbeVideo]:
    """One video per real photo: the three detector-sized photos (when `finder`, a
    `engine.faces.detector.FaceFinder`, finds their face) and the 100 LFW face crops."""
    from skimage import data

    rng = np.random.default_rng(np.random.SeedSequence([seed, 16, 1]))
    videos = []
    if finder is not None:
        for name, img in _photos():
            det = finder.find(img)
            if det is None:
                continue
            crops = _jittered_crops(img, (det.x, det.y, det.w, det.h), rng, n_frames, size, box_scale, fmt, quality)
            videos.append(ProbeVideo(f"photo-{name}", name, crops))
    lfw = data.lfw_subset()[:LFW_FACES]
    for i, face in enumerate(lfw):
        videos.append(ProbeVideo(f"lfw-face-{i:03d}", "lfw_subset", _whole_image_crops(face, rng, n_frames, size, fmt,
                                                                                      quality)))
    return videos


def _non_face_images() -> list[tuple[str, np.ndarray]]:
    import matplotlib.cbook as cbook
    import matplotlib.image as mpimg
    from skimage import data
    from sklearn.datasets import load_sample_images

    names = ["text", "page", "grass", "gravel", "brick", "moon", "hubble_deep_field", "coffee", "chelsea", "horse",
             "rocket", "coins", "clock", "retina", "immunohistochemistry"]
    imgs = [(n, _rgb(getattr(data, n)())) for n in names]
    imgs.append(("motorcycle_left", _rgb(data.stereo_motorcycle()[0])))
    sample = load_sample_images()
    imgs += [(f"sklearn-{n.rsplit('/', 1)[-1].split('.')[0]}", _rgb(im)) for n, im in zip(sample.filenames, sample.images)]
    with cbook.get_sample_data("logo2.png") as f:
        imgs.append(("matplotlib-logo", _rgb(mpimg.imread(f))))
    # backgrounds of the face photos: away from the face
    astro = _rgb(data.astronaut())
    imgs.append(("astronaut-background", np.ascontiguousarray(astro[:, 300:])))
    cam = _rgb(data.camera())
    imgs.append(("camera-background", np.ascontiguousarray(cam[300:, :])))
    return imgs


def non_face_videos(n_frames: int = 8, size: int = 64, box_scale: float = 1.3, fmt: str = "jpg", quality: int = 95,
                    seed: int = 0, windows_per_image: int = 4) -> list[ProbeVideo]:
    """`windows_per_image` random windows of every non-face image (side 15-45 % of the image's short side) and
    the 100 LFW non-face patches, each a video of jittered crops."""
    from skimage import data

    rng = np.random.default_rng(np.random.SeedSequence([seed, 16, 2]))
    videos = []
    for name, img in _non_face_images():
        H, W = img.shape[:2]
        for j in range(windows_per_image):
            side = rng.uniform(0.15, 0.45) * min(H, W) / box_scale
            x, y = rng.uniform(0, W - side * box_scale), rng.uniform(0, H - side * box_scale)
            box = (x + side * (box_scale - 1) / 2, y + side * (box_scale - 1) / 2, side, side)
            videos.append(ProbeVideo(f"{name}-{j}", name, _jittered_crops(img, box, rng, n_frames, size, box_scale,
                                                                          fmt, quality)))
    patches = data.lfw_subset()[LFW_FACES:]
    for i, patch in enumerate(patches):
        videos.append(ProbeVideo(f"lfw-nonface-{i:03d}", "lfw_subset",
                                 _whole_image_crops(patch, rng, n_frames, size, fmt, quality)))
    return videos
