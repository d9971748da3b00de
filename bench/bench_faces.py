"""Face-extraction throughput: 10-second 640x360 clips, 1 vs 2 workers.

Prints videos/s and frames/s (sampled and decoded) end to end, the per-worker
rate (videos per second of worker time), the share of worker time spent
decoding vs detecting, and the 1 -> 2 worker speed-up (the baseline is the
1-worker run of the same invocation).

    .venv/bin/python bench/bench_faces.py [--videos 12] [--codec MJPG] [--frames 15]

Targets (issue 4): >= 1.5 videos/s per worker; >= 1.7x from 1 to 2 workers.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_clips(folder: Path, n: int, codec: str, seconds: float = 10.0, fps: float = 25.0) -> list[Path]:
    import cv2
    import numpy as np

    from testkit.media import astronaut, place

    img = astronaut()
    ext = ".avi" if codec == "MJPG" else ".mp4"
    out = []
    W, H = 640, 360
    for k in range(n):
        path = folder / f"clip{k:03d}{ext}"
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (W, H))
        rng = np.random.default_rng(k)
        bg = (rng.random((H, W, 3)) * 80 + 60).astype(np.uint8)
        for i in range(int(seconds * fps)):
            canvas = bg.copy()
            place(canvas, img, 110 + 10 * np.sin(i / 20), W * (0.4 + 0.2 * np.sin(i / 40 + k)), H * 0.45)
            w.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
        w.release()
        out.append(path)
    return out


def run(clips: list[Path], workers: int, frames: int, tmp: Path) -> dict:
    from engine.config import FacesSection
    from engine.faces import extract_faces
    from engine.store.faces import face_video_rows
    from engine.workspace import resolve_workspace
    from testkit.media import video_rows

    ws = resolve_workspace(tmp / f"ws-{workers}-{time.monotonic_ns()}").ensure()
    rows = video_rows(ws.store(), "bench", clips[0].parent, clips)
    faces = FacesSection(frames_per_video=frames, crop_size=224, tiling="auto")
    import psutil

    me = psutil.Process()
    c0 = me.cpu_times()
    t0 = time.perf_counter()
    s = extract_faces(ws, rows, faces, workers=workers, executor="process", progress=False)
    wall = time.perf_counter() - t0
    c1 = me.cpu_times()
    parent_cpu = (c1.user + c1.system) - (c0.user + c0.system)
    worker_s = s.decode_s + s.detect_s
    n_frames = int(face_video_rows(ws.store(), s.settings_key).n_frames.sum())
    return {
        "workers": workers, "videos": s.processed, "faces": s.faces, "wall_s": wall, "loop_s": s.seconds,
        "videos_per_s": s.processed / wall, "startup_s": s.startup_s,
        "steady_videos_per_s": s.processed / max(s.seconds - s.startup_s, 1e-9), "sampled_fps": s.frames / wall, "decoded_fps": n_frames / wall,
        "per_worker_videos_per_s": s.processed / worker_s if worker_s else 0.0,
        "per_worker_cpu_videos_per_s": s.processed / s.cpu_s if s.cpu_s else 0.0,
        "decode_share": s.decode_s / worker_s if worker_s else 0.0, "ok": s.counts["ok"],
        "parent_cpu_per_video_ms": 1000 * parent_cpu / max(s.processed, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=12)
    ap.add_argument("--codec", default="MJPG", help="MJPG (.avi, the demo's format) or mp4v (.mp4)")
    ap.add_argument("--frames", type=int, default=15, help="frames sampled per video")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    from engine.faces import resolve_models

    resolve_models(["short_range", "full_range"])
    with tempfile.TemporaryDirectory(prefix="bench-faces-") as tmp:
        tmp = Path(tmp)
        clips_dir = tmp / "clips"
        clips_dir.mkdir()
        t0 = time.perf_counter()
        clips = make_clips(clips_dir, args.videos, args.codec)
        print(f"{len(clips)} clips, 640x360, 10 s at 25 fps, {args.codec}: written in {time.perf_counter() - t0:.1f} s; "
              f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
        results = {}
        for _ in range(args.repeat):
            for workers in (1, 2):
                r = run(clips, workers, args.frames, tmp)
                if workers not in results or r["wall_s"] < results[workers]["wall_s"]:
                    results[workers] = r
        for w in (1, 2):
            r = results[w]
            print(f"workers={w}: {r['videos_per_s']:.2f} videos/s, {r['sampled_fps']:.1f} sampled frames/s, "
                  f"{r['decoded_fps']:.0f} decoded frames/s end to end ({r['wall_s']:.1f} s, of which worker start "
                  f"{r['startup_s']:.1f} s; {r['steady_videos_per_s']:.2f} videos/s after it); "
                  f"per worker {r['per_worker_videos_per_s']:.2f} videos/s of worker wall time, "
                  f"{r['per_worker_cpu_videos_per_s']:.2f} per CPU second; "
                  f"decoding {100 * r['decode_share']:.0f} % / detection {100 * (1 - r['decode_share']):.0f} %; "
                  f"faces {r['faces']} from {r['videos']} videos ({r['ok']} ok); "
                  f"parent (store + crop files) {r['parent_cpu_per_video_ms']:.0f} ms CPU per video")
        speedup = results[1]["wall_s"] / results[2]["wall_s"]
        steady = results[2]["steady_videos_per_s"] / results[1]["steady_videos_per_s"]
        print(f"speed-up 1 -> 2 workers: {speedup:.2f}x end to end, {steady:.2f}x after worker start (target >= 1.7x); "
              f"per-worker rate {results[1]['per_worker_videos_per_s']:.2f} videos/s of wall time, "
              f"{results[1]['per_worker_cpu_videos_per_s']:.2f} per CPU second (target >= 1.5)")


if __name__ == "__main__":
    main()
