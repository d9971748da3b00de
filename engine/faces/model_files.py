"""Finding the face model files (BlazeFace, the face-landmark check), offline first.

MediaPipe >= 1.x ships no face-detection model; its Tasks `FaceDetector`
loads a `.tflite` by path, and `engine.faces.confirm` runs the face-landmark
`.tflite` through OpenCV. Resolution order for each model:

1. an explicit file: `[faces] blazeface_model` in the config (the model of
   `[faces] detector`) or `$DFATLAS_BLAZEFACE` (short range) /
   `$DFATLAS_BLAZEFACE_FULL` (full range) / `$DFATLAS_FACE_LANDMARK` (landmarks);
2. the user cache `$XDG_CACHE_HOME/dfatlas/models` (else `~/.cache/...`);
3. the official MediaPipe model download (short time-out: fails fast offline);
4. the same model file carried inside the `mediapipe==0.10.21` wheel,
   fetched with `pip download` through the package index (the one network
   path that works on closed machines), extracted into the cache.

Every file used is checked against a SHA-256: the pinned hash of the
wheel's file, or the hash recorded in the cache manifest when the file was
stored (a download from the official site is pinned by its first fetch).
Which source served it is recorded (`ModelFile.source`).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from data_catalog.errors import AtlasError

ENV_SHORT = "DFATLAS_BLAZEFACE"
ENV_FULL = "DFATLAS_BLAZEFACE_FULL"
ENV_LANDMARK = "DFATLAS_FACE_LANDMARK"
WHEEL_VERSION = "0.10.21"
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
                   "macosx_11_0_universal2", "macosx_11_0_arm64", "win_amd64", "manylinux_2_28_aarch64")
DOWNLOAD_TIMEOUT_S = 4.0


@dataclass(frozen=True)
class ModelSpec:
    name: str          # "short_range" / "full_range"
    filename: str      # file name in the cache
    wheel_member: str  # path inside the mediapipe 0.10.21 wheel
    size: int
    sha256: str
    url: str           # official MediaPipe download
    env: str


MODELS: dict[str, ModelSpec] = {
    "short_range": ModelSpec(
        "short_range", "face_detection_short_range.tflite",
        "mediapipe/modules/face_detection/face_detection_short_range.tflite", 229_714,
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
        "https://storage.googleapis.com/mediapipe-models/face_detector/blaze_face_short_range/float16/1/"
        "blaze_face_short_range.tflite",
        ENV_SHORT),
    "full_range": ModelSpec(
        "full_range", "face_detection_full_range_sparse.tflite",
        "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite", 676_746,
        "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
        "https://storage.googleapis.com/mediapipe-models/face_detector/blaze_face_full_range/float16/latest/"
        "blaze_face_full_range.tflite",
        ENV_FULL),
    # MediaPipe's face-landmark (face mesh) model: its face-presence score confirms fall-back faces
    # (engine.faces.confirm). Only the wheel carries it as a bare .tflite; no official download URL.
    "face_landmark": ModelSpec(
        "face_landmark", "face_landmark.tflite",
        "mediapipe/modules/face_landmark/face_landmark.tflite", 1_242_398,
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
        "", ENV_LANDMARK),
}


class ModelUnavailable(AtlasError):
    """No source could provide a face-detection model."""


@dataclass(frozen=True)
class ModelFile:
    name: str
    path: str
    sha256: str
    source: str  # explicit / env / cache:<origin> / download / wheel

    def to_dict(self) -> dict:
        return asdict(self)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "dfatlas" / "models"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _manifest_path(spec: ModelSpec, root: Path) -> Path:
    return root / (spec.filename + ".json")


def _looks_like_tflite(data: bytes) -> bool:
    # TFLite flatbuffers carry the "TFL3" file identifier at offset 4.
    return len(data) > 8 and data[4:8] == b"TFL3"


def _store_in_cache(spec: ModelSpec, data: bytes, origin: str, root: Path) -> ModelFile:
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()
    target = root / spec.filename
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".tmp-", suffix=".tflite")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    manifest = {"name": spec.name, "sha256": digest, "size": len(data), "origin": origin}
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(manifest, fh)
    os.chmod(tmp, 0o644)
    os.replace(tmp, _manifest_path(spec, root))
    return ModelFile(spec.name, str(target), digest, f"cache:{origin}")


def _from_cache(spec: ModelSpec, root: Path) -> tuple[ModelFile | None, str]:
    target = root / spec.filename
    if not target.is_file():
        return None, f"user cache: no {target}"
    try:
        manifest = json.loads(_manifest_path(spec, root).read_text())
    except (OSError, ValueError):
        manifest = {}
    digest = sha256_of(target)
    expected = {spec.sha256}
    if manifest.get("sha256"):
        expected.add(manifest["sha256"])
    if digest not in expected:
        return None, f"user cache: {target} has SHA-256 {digest[:12]}..., not a known one (corrupt? delete it)"
    return ModelFile(spec.name, str(target), digest, f"cache:{manifest.get('origin', 'unknown')}"), ""


def _from_download(spec: ModelSpec, root: Path, timeout: float) -> tuple[ModelFile | None, str]:
    if not spec.url:
        return None, "official download: none for this model file (the wheel carries it)"
    if os.environ.get("DFATLAS_OFFLINE"):
        return None, "official download: skipped ($DFATLAS_OFFLINE is set)"
    try:
        with urllib.request.urlopen(spec.url, timeout=timeout) as resp:  # noqa: S310 (fixed https URL)
            data = resp.read()
    except Exception as exc:  # offline, DNS, proxy, HTTP errors: all mean "not from here"
        return None, f"official download {spec.url}: {type(exc).__name__}: {exc}"
    if not _looks_like_tflite(data):
        return None, f"official download {spec.url}: not a TFLite model ({len(data)} bytes)"
    # The official file differs from the wheel's; its hash is pinned in the cache manifest from now on.
    return _store_in_cache(spec, data, "download", root), ""


def _pip_download_wheel(dest: Path) -> tuple[Path | None, str]:
    errors = []
    for platform in WHEEL_PLATFORMS:
        cmd = [sys.executable, "-m", "pip", "download", f"mediapipe=={WHEEL_VERSION}", "--no-deps",
               "--only-binary=:all:", "--python-version", f"{sys.version_info.major}.{sys.version_info.minor}",
               "--platform", platform, "-d", str(dest), "--disable-pip-version-check", "-q"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"pip download failed: {exc}"
        wheels = sorted(dest.glob("mediapipe-*.whl"))
        if proc.returncode == 0 and wheels:
            return wheels[0], ""
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        errors.append(f"{platform}: {last}")
        if "No matching distribution" not in proc.stderr and "Could not find a version" not in proc.stderr:
            break  # a network/index problem, not a platform mismatch: other tags won't help
    return None, "pip download of mediapipe==" + WHEEL_VERSION + " failed (" + "; ".join(errors) + ")"


def _from_wheel(specs: list[ModelSpec], root: Path) -> tuple[dict[str, ModelFile], str]:
    """One pip download serves every requested model."""
    with tempfile.TemporaryDirectory(prefix="dfatlas-wheel-") as tmp:
        wheel, err = _pip_download_wheel(Path(tmp))
        if wheel is None:
            return {}, f"mediapipe {WHEEL_VERSION} wheel via pip: {err}"
        out, problems = {}, []
        try:
            with zipfile.ZipFile(wheel) as zf:
                for spec in specs:
                    try:
                        data = zf.read(spec.wheel_member)
                    except KeyError:
                        problems.append(f"{spec.wheel_member} not in {wheel.name}")
                        continue
                    digest = hashlib.sha256(data).hexdigest()
                    if digest != spec.sha256 or len(data) != spec.size:
                        problems.append(f"{spec.wheel_member} in {wheel.name} has SHA-256 {digest[:12]}..., "
                                        f"expected {spec.sha256[:12]}...")
                        continue
                    out[spec.name] = _store_in_cache(spec, data, f"wheel:mediapipe-{WHEEL_VERSION}", root)
        except zipfile.BadZipFile:
            return {}, f"mediapipe {WHEEL_VERSION} wheel via pip: {wheel.name} is not a valid wheel"
        return out, "; ".join(problems)


def _explicit(spec: ModelSpec, explicit: str | None) -> tuple[ModelFile | None, str, bool]:
    """(file, problem, was_given). An explicit path that is bad is an error, not a fall-through."""
    for source, value in (("config [faces] blazeface_model", explicit),
                          (f"${spec.env}", os.environ.get(spec.env))):
        if not value:
            continue
        path = Path(value).expanduser()
        if not path.is_file():
            return None, f"{source} = {path}: no such file", True
        head = path.open("rb").read(8)
        if not _looks_like_tflite(head + b"\0" * 8):
            return None, f"{source} = {path}: not a TFLite model file", True
        digest = sha256_of(path)
        return ModelFile(spec.name, str(path.absolute()), digest, "explicit" if source.startswith("config") else "env"), "", True
    return None, "", False


def _what(name: str) -> str:
    return "face-landmark model" if name == "face_landmark" else f"BlazeFace {name} model"


def resolve_model(name: str = "short_range", explicit: str | None = None, *, allow_download: bool = True,
                  allow_wheel: bool = True, timeout: float = DOWNLOAD_TIMEOUT_S,
                  root: Path | None = None) -> ModelFile:
    """One model file, by the resolution order above; ModelUnavailable names every option tried.
    `explicit` (the config's path) is used for this model."""
    return resolve_models([name], explicit, allow_download=allow_download, allow_wheel=allow_wheel,
                          timeout=timeout, root=root)[name]


def resolve_models(names: list[str], explicit: str | None = None, *, allow_download: bool = True,
                   allow_wheel: bool = True, timeout: float = DOWNLOAD_TIMEOUT_S,
                   root: Path | None = None) -> dict[str, ModelFile]:
    root = root or cache_dir()
    found: dict[str, ModelFile] = {}
    tried: dict[str, list[str]] = {n: [] for n in names}
    for n in names:
        if n not in MODELS:
            raise AtlasError(f"unknown face detector model {n!r} (known: {', '.join(MODELS)})")
        spec = MODELS[n]
        file, problem, given = _explicit(spec, explicit)
        if given:
            if file is None:
                raise ModelUnavailable(f"{_what(n)}: {problem}")
            found[n] = file
            continue
        tried[n].append(f"no explicit file ([faces] blazeface_model or ${spec.env})")
        file, problem = _from_cache(spec, root)
        if file:
            found[n] = file
            continue
        tried[n].append(problem)
        if allow_download:
            file, problem = _from_download(spec, root, timeout)
            if file:
                found[n] = file
                continue
            tried[n].append(problem)
    missing = [MODELS[n] for n in names if n not in found]
    if missing and allow_wheel:
        got, problem = _from_wheel(missing, root)
        found.update(got)
        for spec in missing:
            if spec.name not in got:
                tried[spec.name].append(problem or f"{spec.wheel_member}: not found in the wheel")
    still = [n for n in names if n not in found]
    if still:
        n = still[0]
        raise ModelUnavailable(
            f"no {_what(n)} available. Tried: " + " | ".join(tried[n])
            + f". Fix one of: set [faces] blazeface_model or ${MODELS[n].env} to a {MODELS[n].filename} file; "
            f"put it in {root}; allow network access to storage.googleapis.com; or allow `pip download "
            f"mediapipe=={WHEEL_VERSION}` (then run `dfatlas models fetch` once)"
        )
    return found


def models_for(detector: str, tiling: str, confirm: str = "landmarks") -> list[str]:
    """Which model files a [faces] setting needs: the configured one, plus full range as the
    small-face fall-back when tiling is 'auto', plus the face-landmark model that confirms
    unsure faces unless confirm is 'off'."""
    names = [detector]
    if tiling == "auto" and "full_range" not in names:
        names.append("full_range")
    if confirm != "off":
        names.append("face_landmark")
    return names
