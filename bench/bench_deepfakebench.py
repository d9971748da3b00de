"""DeepfakeBench data: catalog and face-extraction throughput of its face-crop frames.

Builds a DeepfakeBench-layout FF++ c23 subset (`--videos` videos: half FF-real, half FF-DF, `--frames`
256 px PNG frames each, a face crop of scikit-image's astronaut; one `FF-DF.json` with the absolute paths
of another machine) and times, in one run:

- baseline: `os.walk` listing every frame file of the same tree;
- the `deepfakebench` adapter's scan (JSON, path rewrite, a stat per frame, protocol splits);
- the generic adapter walking the same frame folders (each folder one video);
- face extraction of `--extract` of the videos (15 frames each, one inline worker): frames taken as the
  crops (`[faces] pre_cropped = "use"`) against BlazeFace on them (`"detect"`, the baseline).

    .venv/bin/python bench/bench_deepfakebench.py [--videos 1000] [--frames 32] [--extract 40] [--tmp DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data_catalog import paper_taxonomy  # noqa: E402
from data_catalog.databases import ADAPTERS  # noqa: E402

MACHINE = "/home/preprocessor/DeepfakeBench/datasets/rgb"


def build(root: Path, n_videos: int, n_frames: int) -> Path:
    import cv2

    from testkit.media import astronaut

    face = cv2.cvtColor(cv2.resize(astronaut()[30:290, 100:360], (256, 256)), cv2.COLOR_RGB2BGR)
    png = cv2.imencode(".png", face)[1].tobytes()
    pairs = [[f"{a:03d}", f"{a + 1:03d}"] for a in range(0, n_videos // 2, 2)]
    n = len(pairs)
    splits = {"train": pairs[:int(0.72 * n)], "val": pairs[int(0.72 * n):int(0.86 * n)], "test": pairs[int(0.86 * n):]}
    (root / "FaceForensics++").mkdir(parents=True)
    real = {s: {"c23": {}} for s in splits}
    fake = {s: {"c23": {}} for s in splits}
    for split, ps in splits.items():
        (root / "FaceForensics++" / f"{split}.json").write_text(json.dumps(ps))
        for a, b in ps:
            for video, table, label in ((a, real, "FF-real"), (b, real, "FF-real"), (f"{a}_{b}", fake, "FF-DF"),
                                        (f"{b}_{a}", fake, "FF-DF")):
                kind = "original_sequences/youtube" if label == "FF-real" else "manipulated_sequences/Deepfakes"
                rel = f"FaceForensics++/{kind}/c23/frames/{video}"
                (root / rel).mkdir(parents=True)
                names = [f"{10 * i:03d}.png" for i in range(n_frames)]
                for name in names:
                    (root / rel / name).write_bytes(png)
                table[split]["c23"][video] = {"label": label, "frames": [f"{MACHINE}/{rel}/{x}" for x in names]}
    out = root / "FF-DF.json"
    out.write_text(json.dumps({"FF-DF": {"FF-real": real, "FF-DF": fake}}))
    return out


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=1000)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--extract", type=int, default=40)
    ap.add_argument("--tmp", default=None)
    args = ap.parse_args()
    from engine.config import FacesSection
    from engine.faces import extract_faces
    from engine.workspace import resolve_workspace

    with tempfile.TemporaryDirectory(prefix="bench-dfb-", dir=args.tmp) as tmp:
        root = Path(tmp) / "rgb"
        js = build(root, args.videos, args.frames)
        print(f"load average {os.getloadavg()[0]:.1f}; {args.videos} videos x {args.frames} frames; "
              f"JSON {js.stat().st_size / 1e6:.1f} MB")
        _, wall, cpu = timed(lambda: sum(len(f) for _, _, f in os.walk(root / "FaceForensics++")))
        base = wall
        print(f"baseline os.walk of the frames: {wall:.2f} s wall, {cpu:.2f} s CPU")
        scan, wall, cpu = timed(lambda: ADAPTERS["deepfakebench"].scan(
            root, name="dfb", options={"json": str(js), "path_prefix_from": MACHINE}, taxonomy=paper_taxonomy()))
        frames = sum(len(r.frames) for r in scan.records)
        print(f"deepfakebench scan: {len(scan.records)} videos, {frames} frames: {wall:.2f} s wall ({wall / base:.1f}x "
              f"the walk), {cpu:.2f} s CPU, {frames / wall:,.0f} frames/s")
        _, wall, cpu = timed(lambda: ADAPTERS["generic"].scan(root / "FaceForensics++", name="g", options={},
                                                               taxonomy=paper_taxonomy()))
        print(f"generic walk of the same frame folders: {wall:.2f} s wall ({wall / base:.1f}x the walk), {cpu:.2f} s CPU")
        videos = scan.records[:args.extract]
        rates = {}
        for mode in ("detect", "use"):
            ws = resolve_workspace(Path(tmp) / f"ws-{mode}").ensure()
            faces = dataclasses.replace(FacesSection(), pre_cropped=mode)
            s, wall, _ = timed(lambda: extract_faces(ws, videos, faces, executor="inline", progress=False))
            rates[mode] = s.faces / max(s.cpu_s, 1e-9)
            print(f"faces, pre_cropped = {mode!r}: {s.processed} videos, {s.faces} faces in {wall:.1f} s wall, "
                  f"{s.cpu_s:.1f} s worker CPU ({rates[mode]:.1f} faces per CPU s; decode {s.decode_s:.1f} s, "
                  f"detect {s.detect_s:.1f} s), load {os.getloadavg()[0]:.1f}")
        print(f"taking the crops as they are: {rates['use'] / rates['detect']:.1f}x the faces per CPU second of "
              "detecting in them")


if __name__ == "__main__":
    main()
