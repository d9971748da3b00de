"""The frozen corpora of the face-confirmation benchmark (issue 16): build, freeze, check.

Two corpora, regenerated deterministically by `testkit.face_corpus` from images that ship in
permissively licensed packages and from our own drawings:
- no_face: >= 1,000 frames, more than half from package images (landscapes, animals, objects, text,
  drawings, textures, microscopy: crops, rescales, composites), the rest drawn (title cards on skies,
  text over photos, cartoons, hands);
- face: real faces from packages (astronaut, camera man, Grace Hopper, the 100 LFW-subset people)
  placed small and large in 1080p/720p/portrait frames, and frames of the synthetic benchmark, as
  they are and placed small.
Each frame belongs to a fixed half ("tune" / "report", `testkit.face_corpus.half_of`): choices are
made on the tune half, figures reported on the report half.

    python bench/face_confirm_corpus.py --freeze      # once, before any tuning: writes the manifest
    python bench/face_confirm_corpus.py --check       # regenerate and compare with the manifest
    python bench/face_confirm_corpus.py --write DIR   # also save every frame as PNG (to look at)

The manifest (`bench/face_confirm_corpus.json`, committed) lists every frame with its SHA-256
(of shape and pixels), half, kind, source and face box, and the licence of every package image.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MANIFEST = ROOT / "bench" / "face_confirm_corpus.json"
PARAMS = {"seed": 0, "no_face": {"n_package": 700, "n_own": 500},
          "real_face": {"per_photo": 80, "per_lfw": 3},
          "synthetic": {"size": "default", "frames_per_video": 2, "every": 4, "n_small": 200}}
HASH_CHARS = 20  # of the hex SHA-256 kept in the manifest


def frames(params: dict = PARAMS, limit: int | None = None):
    """Every corpus frame (testkit.face_corpus.CorpusFrame), no-face corpus first."""
    from testkit import face_corpus as fc

    seed = params["seed"]
    gen = itertools.chain(fc.no_face_frames(seed, **params["no_face"]),
                          fc.real_face_frames(seed, **params["real_face"]),
                          fc.synthetic_face_frames(seed, **params["synthetic"]))
    return itertools.islice(gen, limit) if limit else gen


def row(f) -> dict:
    from testkit.face_corpus import frame_hash

    h, w = f.rgb.shape[:2]
    return {"id": f.frame_id, "corpus": f.corpus, "kind": f.kind, "source": f.source, "own": f.own_drawing,
            "half": f.half, "size": [w, h], "face_box": list(f.face_box) if f.face_box else None,
            "sha256": frame_hash(f.rgb)[:HASH_CHARS]}


def load_manifest(path: Path = MANIFEST) -> dict:
    return json.loads(path.read_text())


def summary(rows: list[dict]) -> str:
    from collections import Counter

    out = []
    for corpus in ("no_face", "face"):
        rs = [r for r in rows if r["corpus"] == corpus]
        kinds = Counter(r["kind"] for r in rs)
        own = sum(r["own"] for r in rs)
        halves = Counter(r["half"] for r in rs)
        out.append(f"{corpus}: {len(rs)} frames ({own} drawn by our code, {len(rs) - own} from package images; "
                   f"tune {halves['tune']}, report {halves['report']}); kinds: "
                   + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    return "\n".join(out)


def check(manifest: dict, got: dict[str, str]) -> list[str]:
    """Ids whose regenerated pixels differ from the frozen hashes (or that are missing)."""
    frozen = {r["id"]: r["sha256"] for r in manifest["frames"]}
    return sorted(i for i in frozen if got.get(i) != frozen[i])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--freeze", action="store_true", help="write the manifest (refuses to overwrite one)")
    ap.add_argument("--check", action="store_true", help="compare the regenerated frames with the manifest")
    ap.add_argument("--write", type=Path, help="save every frame as PNG under this folder")
    args = ap.parse_args()
    from testkit.face_corpus import PACKAGE_IMAGES

    t0 = time.perf_counter()
    rows = []
    for f in frames():
        rows.append(row(f))
        if args.write:
            import cv2

            args.write.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(args.write / f"{f.frame_id}.png"), cv2.cvtColor(f.rgb, cv2.COLOR_RGB2BGR))
    print(summary(rows))
    print(f"{len(rows)} frames regenerated in {time.perf_counter() - t0:.0f} s")
    if args.freeze:
        if MANIFEST.exists():
            sys.exit(f"{MANIFEST} exists: the corpora are frozen (delete it only to start a new, untuned corpus)")
        licences = {n: {"package": p.package, "kind": p.kind, "licence": p.licence} for n, p in PACKAGE_IMAGES.items()}
        MANIFEST.write_text(json.dumps({"params": PARAMS, "hash": f"sha256 of shape+pixels, first {HASH_CHARS} hex",
                                        "licences": licences, "frames": rows}, separators=(",", ":")) + "\n")
        print(f"froze {len(rows)} frames in {MANIFEST.relative_to(ROOT)}")
    if args.check:
        bad = check(load_manifest(), {r["id"]: r["sha256"] for r in rows})
        print(f"{len(bad)} frames differ from the manifest" + (f": {', '.join(bad[:10])} ..." if bad else ""))
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
