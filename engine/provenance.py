"""Where a result came from: the code revision and package versions, recorded by
training and printed under every metrics table."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path


_PACKAGES = ("dfatlas", "torch", "timm", "pytorch-metric-learning", "scikit-learn", "openTSNE", "duckdb", "numpy")


def code_revision() -> str | None:
    """The short commit of the checkout this code runs from (`+dirty` with local changes), if it is one."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        rev = out.stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5)
        return rev + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape a result (recorded with runs, printed with tables)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for p in _PACKAGES:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            pass
    return out


def environment() -> dict[str, str]:
    """Python and package versions, as a run records them."""
    return {"python": platform.python_version()} | package_versions()


def scoring_line(level: str = "video", aggregation: str | None = None, top_k: int | None = None) -> str:
    """How samples were scored, in words: the level and, at video level, the frame aggregation."""
    from .metrics import DEFAULT_AGGREGATION, DEFAULT_TOP_K, aggregation_label

    if level != "video":
        return "scoring: frame level (every face is a sample; θ from validation faces)"
    label = aggregation_label(aggregation or DEFAULT_AGGREGATION, top_k or DEFAULT_TOP_K)
    return (f"scoring: video level; a video's real-score is the {label}; its predicted class the majority of "
            "its frames; θ set on the validation videos scored the same way")


def provenance(store, run_ids=None, level: str | None = None, aggregation: str | None = None,
               top_k: int | None = None) -> list[str]:
    """Footer lines: data kind, config hashes, code revision(s), package versions; with `level`, how the
    samples were scored (`scoring_line`)."""
    from .runs import read_runs

    infos = read_runs(store, run_ids)
    synthetic = {i.synthetic for i in infos.values()}
    lines = []
    if synthetic == {True}:
        lines.append("data: SYNTHETIC benchmark (procedurally generated) — not comparable with the paper's numbers")
    elif synthetic == {False}:
        lines.append("data: real databases as configured")
    else:
        lines.append("data: MIXED — some runs on the SYNTHETIC benchmark, some on real data")
    hashes = sorted({i.config_hash for i in infos.values() if i.config_hash})
    lines.append(f"config hash: {', '.join(hashes) or 'unknown'}; runs: {', '.join(infos)}")
    revs = sorted({i.code_revision for i in infos.values() if i.code_revision})
    now = code_revision()
    lines.append(f"code revision: trained at {', '.join(revs) or 'unknown'}; evaluated at {now or 'unknown (not a git checkout)'}")
    lines.append("packages: " + ", ".join(f"{k} {v}" for k, v in package_versions().items()))
    if level is not None:
        lines.append(scoring_line(level, aggregation, top_k))
    return lines
