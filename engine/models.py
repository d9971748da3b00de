"""Models: one timm backbone, one approach's head, and the inference interface.

`timm.create_model` is the only door to a backbone (any timm name; the paper
uses `legacy_xception`). The backbone is built headless (`num_classes=0`) and
`forward_head(..., pre_logits=True)` gives the pooled features; each
approach (`engine.approaches`) is a small head on them, sized, shaped and
read by the approach object's hooks (`head_size`, `head_output`, `infer`):

- ``binary``: one logit (BCE); real-score = sigmoid(logit), oriented so high = real.
- ``attribution``: ``n_classes`` logits (CE); real-score = softmax P(class 0 = real).
- ``triplet``: a ``embedding_dim`` (64) linear projection, L2-normalised.
- ``arcfacemod``: a 64-d linear projection; the ArcFaceMod class weights live
  in the loss (`engine.losses.ArcFaceMod`) and are saved with the run.

Models take **uint8 RGB images** (N, 3, H, W) and normalise on the device
with the mean/std of the timm model's pretrained config: moving uint8 is four
times cheaper than float and keeps the data pipeline light.

Optional `residual_input`: three extra input channels holding a fixed SRM-style
second-order high-pass residual of the RGB image. Small demo crops (64 px)
lose the manipulations' pixel-level artefacts in a resize; a fixed high-pass
filter hands them to the network directly (DESIGN.md measured 0.74 -> 0.92
attribution accuracy for resnet10t@64 on the synthetic benchmark).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from data_catalog.errors import AtlasError

from .approaches import get_approach

CHECKPOINT_FORMAT = "dfatlas-checkpoint-1"
RANDOM_INIT_OFFLINE = "random init (pretrained weights unavailable offline)"

# Second-order SRM high-pass kernel ("KV"-family 3x3), in pixel units / 4.
_SRM_KERNEL = torch.tensor([[-1.0, 2.0, -1.0], [2.0, -4.0, 2.0], [-1.0, 2.0, -1.0]]) / 4.0
_SRM_CLIP = 8.0  # truncation in grey levels (SRM's "T"); the residual is divided by it


class ResidualFilter(nn.Module):
    """Fixed (non-trainable) high-pass residual of each RGB channel, clipped to +-T and scaled to [-1, 1]."""

    def __init__(self, clip: float = _SRM_CLIP):
        super().__init__()
        self.clip = clip
        self.register_buffer("kernel", _SRM_KERNEL.expand(3, 1, 3, 3).clone(), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:  # pixels: float, 0..255
        r = F.conv2d(F.pad(pixels, (1, 1, 1, 1), mode="replicate"), self.kernel.to(pixels.dtype), groups=3)
        return r.clamp(-self.clip, self.clip) / self.clip


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model (saved in every checkpoint as plain values)."""

    backbone: str
    approach: str
    n_classes: int
    embedding_dim: int
    residual_input: bool
    input_size: int
    mean: tuple
    std: tuple
    drop_rate: float = 0.0

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        d["mean"], d["std"] = tuple(d["mean"]), tuple(d["std"])
        return cls(**d)


class AtlasModel(nn.Module):
    """A timm backbone plus one approach's head. `forward(uint8 images)` -> (features, output).

    `features` is the pooled backbone output (pre-logits; the embedding of
    binary/attribution runs). `output` is the head's output as the approach's
    `head_output` shapes it: the logit [N] (binary), logits [N, C]
    (attribution) or the 64-d embedding (triplet: L2-normalised; arcfacemod:
    raw — ArcFaceMod normalises it).
    """

    def __init__(self, spec: ModelSpec, backbone: nn.Module):
        super().__init__()
        self.spec = spec
        self.backbone = backbone
        nf = backbone.num_features
        self.num_features = nf
        self.kind = get_approach(spec.approach)
        self.head = nn.Linear(nf, self.kind.head_size(spec.n_classes, spec.embedding_dim))
        self.residual = ResidualFilter() if spec.residual_input else None
        self.channels_last = False  # set by the trainer on CUDA
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0,
                             persistent=False)
        self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0,
                             persistent=False)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (or 0..255 float) N,3,H,W -> the backbone's normalised input (3 or 6 channels)."""
        x = images.float()
        size = self.spec.input_size
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out = (x - self.mean) / self.std
        if self.residual is not None:
            out = torch.cat([out, self.residual(x)], dim=1)
        if self.channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = self.prepare(images)
        return self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True)

    def forward(self, images: torch.Tensor):
        f = self.features(images)
        return f, self.kind.head_output(self.head(f))


# --- building ---------------------------------------------------------------

def check_backbone(name: str) -> None:
    """A clear error for a name timm does not know (with close matches)."""
    import timm

    if timm.is_model(name):
        return
    stem = name.split(".")[0]
    close = timm.list_models(f"*{stem[:6]}*")[:8] if stem else []
    hint = f"; similar names: {', '.join(close)}" if close else "; see timm.list_models()"
    raise AtlasError(f"unknown backbone {name!r}: timm has no model of that name{hint}")


def _timm_cfg(name: str) -> dict:
    import timm

    m = timm.create_model(name, pretrained=False, num_classes=0)
    return dict(m.pretrained_cfg or {})


def _network_reachable(host: str, timeout: float = 2.0) -> bool:
    """True when a TCP connection to host:443 succeeds within `timeout` (DNS included)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or os.environ.get("DFATLAS_OFFLINE"):
        return False
    ok = [False]

    def probe():
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                ok[0] = True
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return ok[0]


def _cached_pretrained_file(pcfg: dict) -> str | None:
    """A pretrained weights file already on disk (Hugging Face cache or torch hub cache)."""
    hub_id = pcfg.get("hf_hub_id")
    if hub_id:
        try:
            from huggingface_hub import try_to_load_from_cache

            repo = hub_id.split("@")[0]
            for fname in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
                path = try_to_load_from_cache(repo, fname)
                if isinstance(path, str) and Path(path).is_file():
                    return path
        except Exception:  # an old / broken cache is simply not a cache hit
            pass
    url = pcfg.get("url")
    if url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url.split("?")[0])
        if path.is_file():
            return str(path)
    return None


def create_backbone(name: str, *, pretrained: bool, checkpoint: str = "", in_chans: int = 3,
                    drop_rate: float = 0.0, quiet: bool = False) -> tuple[nn.Module, str]:
    """A headless timm backbone and where its weights came from.

    Order: `checkpoint` (a local file) > timm's ImageNet weights from a local
    cache > a download when the hub answers within 2 s > random init with a
    warning. Never hangs offline: the download is only tried after a quick probe.
    """
    import timm

    check_backbone(name)
    kwargs: dict[str, Any] = dict(num_classes=0, in_chans=in_chans, drop_rate=drop_rate)
    if checkpoint:
        path = Path(checkpoint)
        if not path.is_file():
            raise AtlasError(f"[model] checkpoint {path}: file not found")
        try:
            m = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), **kwargs)
        except (RuntimeError, KeyError, ValueError, OSError) as exc:
            raise AtlasError(f"[model] checkpoint {path}: cannot load it into {name!r} ({str(exc).splitlines()[0][:200]})") from None
        return m, f"file:{path}"
    if not pretrained:
        return timm.create_model(name, pretrained=False, **kwargs), "random init (pretrained = false)"
    pcfg = _timm_cfg(name)
    if not (pcfg.get("hf_hub_id") or pcfg.get("url") or pcfg.get("file")):
        if not quiet:
            print(f"warning: timm has no pretrained weights for {name!r}; using random initialisation", file=sys.stderr)
        return timm.create_model(name, pretrained=False, **kwargs), "random init (no pretrained weights in timm)"
    tag = f"timm:{pcfg.get('tag') or 'imagenet'}"
    cached = _cached_pretrained_file(pcfg)
    if cached:
        try:
            return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=cached), **kwargs), tag
        except Exception as exc:  # a corrupt cache file: fall through to a download / random init
            if not quiet:
                print(f"warning: cached weights {cached} did not load ({exc}); trying the hub", file=sys.stderr)
    host = "huggingface.co" if pcfg.get("hf_hub_id") else "github.com"
    if _network_reachable(host):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return timm.create_model(name, pretrained=True, **kwargs), tag
        except Exception as exc:
            reason = str(exc).splitlines()[0][:160]
    else:
        reason = f"{host} unreachable"
    if not quiet:
        print(f"warning: ImageNet weights for {name!r} unavailable ({reason}); training from a random "
              f"initialisation (set [model] checkpoint to a local weights file to avoid this)", file=sys.stderr)
    return timm.create_model(name, pretrained=False, **kwargs), RANDOM_INIT_OFFLINE


def model_spec(cfg, approach: str, n_classes: int) -> ModelSpec:
    """The ModelSpec a config asks for; mean/std come from the timm model's config."""
    get_approach(approach)  # an unknown name: a clear error listing the registered ones
    check_backbone(cfg.model.backbone)
    pcfg = _timm_cfg(cfg.model.backbone)
    mean = tuple(float(v) for v in pcfg.get("mean", (0.485, 0.456, 0.406)))
    std = tuple(float(v) for v in pcfg.get("std", (0.229, 0.224, 0.225)))
    if len(mean) != 3:
        mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    size = cfg.model.input_size or cfg.faces.crop_size
    return ModelSpec(cfg.model.backbone, approach, n_classes, cfg.model.embedding_dim, cfg.model.residual_input,
                     int(size), mean, std, cfg.model.drop_rate)


def build_model(spec: ModelSpec, *, pretrained: bool = False, checkpoint: str = "",
                quiet: bool = False) -> tuple[AtlasModel, str]:
    backbone, source = create_backbone(spec.backbone, pretrained=pretrained, checkpoint=checkpoint,
                                       in_chans=6 if spec.residual_input else 3, drop_rate=spec.drop_rate,
                                       quiet=quiet)
    return AtlasModel(spec, backbone), source


# --- inference --------------------------------------------------------------

def read_checkpoint(path: Path) -> dict:
    """torch.load(weights_only=True) with a clear error for anything that is not ours."""
    if not path.is_file():
        raise AtlasError(f"{path}: no checkpoint there")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise AtlasError(f"{path}: not a readable dfatlas checkpoint ({str(exc).splitlines()[0][:160]}); a damaged "
                         "checkpoint of a run is trained anew by `dfatlas train --retrain`") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise AtlasError(f"{path}: not a dfatlas checkpoint (format {ckpt.get('format') if isinstance(ckpt, dict) else type(ckpt).__name__!r})")
    return ckpt


class InferenceModel:
    """A trained run's best checkpoint, ready to embed and score face crops.

    Attributes: `approach`, `classes` (class ids, taxonomy order of the run),
    `embedding_dim`, `input_size`, `run_id`, `epoch`.
    """

    def __init__(self, model: AtlasModel, criterion: nn.Module | None, classes: list[str], run_id: str,
                 epoch: int, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.criterion = criterion.to(self.device).eval() if criterion is not None else None
        self.approach = model.spec.approach
        self.kind = get_approach(self.approach)
        self.classes = list(classes)
        self.input_size = model.spec.input_size
        self.embedding_dim = self.kind.embedding_dim(model.spec.embedding_dim, model.num_features)
        self.run_id = run_id
        self.epoch = epoch

    @torch.no_grad()
    def predict(self, images: np.ndarray, batch_size: int = 256) -> dict:
        """images: uint8 [N, H, W, 3] RGB (any H, W: resized to `input_size`).

        Returns `embedding` [N, d] float32; `probs` [N, C] float32 (binary:
        [P(real), P(fake)]; attribution: softmax in `classes` order) or None;
        `real_score` [N] float32 (higher = more real) or None (metric heads).
        """
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise AtlasError(f"predict expects uint8 images shaped [N, H, W, 3], got {images.shape}")
        n = len(images)
        emb = np.zeros((n, self.embedding_dim), dtype=np.float32)
        width = self.kind.probs_width(len(self.classes))
        probs = None if width is None else np.zeros((n, width), dtype=np.float32)
        use_bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        for start in range(0, n, batch_size):
            chunk = np.ascontiguousarray(images[start:start + batch_size])
            if chunk.dtype != np.uint8:
                chunk = np.clip(chunk, 0, 255).astype(np.uint8)
            x = torch.from_numpy(chunk).to(self.device).permute(0, 3, 1, 2)
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                feats, out = self.model(x)
            e, p = self.kind.infer(feats, out.float(), self.criterion)
            if probs is not None:
                probs[start:start + len(chunk)] = p.cpu().numpy()
            emb[start:start + len(chunk)] = e.float().cpu().numpy()
        real_score = None
        if probs is not None:
            real_score = probs[:, 0].copy()
        return {"embedding": emb, "probs": probs, "real_score": real_score}


def load_for_inference(workspace, run_id: str, device: str = "cpu") -> InferenceModel:
    """Load a run's best checkpoint (by validation loss). `workspace`: a Workspace or a folder."""
    from .workspace import Workspace, resolve_workspace

    ws = workspace if isinstance(workspace, Workspace) else resolve_workspace(workspace)
    run_dir = ws.run_dir(run_id)
    if not run_dir.is_dir():
        raise AtlasError(f"no run {run_id!r} in {ws.runs_dir} (train it first: dfatlas train --config CONFIG --approach ...)")
    path = run_dir / "best.pt"
    if not path.is_file():
        raise AtlasError(f"run {run_id!r} has no best checkpoint yet ({path}); finish its training first")
    ckpt = read_checkpoint(path)
    spec = ModelSpec.from_dict(ckpt["spec"])
    model, _ = build_model(spec, pretrained=False, quiet=True)
    model.load_state_dict(ckpt["model"])
    criterion = get_approach(spec.approach).load_criterion(ckpt.get("criterion") or {})
    return InferenceModel(model, criterion, list(ckpt["classes"]), ckpt.get("run_id", run_id),
                          int(ckpt.get("epoch", -1)), device=device)
