"""Face detection that refuses non-faces (issue 16): the confirmation of fall-back faces, measured.

Runs on the frozen corpora of `bench/face_confirm_corpus.py` (regenerated and checked against the
manifest's hashes; `--frames DIR` reads the PNGs `--write DIR` saved instead).

Default (the report half): the detector before issue 16 (`FaceFinder(confirm="off")`) and the
detector now (`confirm="landmarks"`) on the same frames in the same run. Prints, before/after:
no-face frames accepted, synthetic-benchmark frames kept (as they are / placed small in large
frames), real-face frames kept (placed large / small), and "kept of found" (frames whose face the
old detector found correctly that the new one still finds); the time per frame of both detectors
and of the confirmation alone, and the per-video cost at 15 sampled frames.

`--select` (the tune half): the measurement that chose the check. For every fall-back candidate it
computes each candidate check — the face-landmark model's presence score (`engine.faces.confirm`),
agreement of the other BlazeFace model on a crop around the box, re-detection by the same model on
that crop (zoom), the geometry of BlazeFace's six keypoints — and replays the search with each at
the thresholds given, printing the rates above for every one.

    python bench/bench_face_confirm.py [--frames DIR] [--workers 2] [--limit N]
    python bench/bench_face_confirm.py --select [--frames DIR]

Targets (report half): no-face frames accepted <= 1 %; synthetic frames kept >= 99 %; real faces >= 95 %.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

FRAMES_PER_VIDEO = 15  # the default [faces] frames_per_video: per-video cost = 15 x per-frame cost


# --- the corpus -------------------------------------------------------------------------------
def corpus(half: str, frames_dir: Path | None, limit: int | None):
    """(manifest row, rgb) of the frames of one half, checked against the frozen hashes."""
    import face_confirm_corpus as fcc

    from testkit.face_corpus import frame_hash

    manifest = {r["id"]: r for r in fcc.load_manifest()["frames"]}
    wanted = [i for i, r in manifest.items() if r["half"] == half]
    if limit:
        wanted = wanted[:: max(1, len(wanted) // limit)][:limit]
    wanted_set = set(wanted)
    differ = 0
    if frames_dir:
        import cv2

        for i in wanted:
            rgb = cv2.cvtColor(cv2.imread(str(frames_dir / f"{i}.png")), cv2.COLOR_BGR2RGB)
            differ += frame_hash(rgb)[:len(manifest[i]["sha256"])] != manifest[i]["sha256"]
            yield manifest[i], rgb
    else:
        for f in fcc.frames():
            if f.frame_id in wanted_set:
                differ += frame_hash(f.rgb)[:len(manifest[f.frame_id]["sha256"])] != manifest[f.frame_id]["sha256"]
                yield manifest[f.frame_id], f.rgb
    if differ:
        print(f"WARNING: {differ} frames differ from the frozen manifest (a library or generator changed them)")


def correct(det, box) -> bool:
    """The detection is the placed face: its centre inside the face box enlarged by a quarter on
    each side, its width within 0.5-2x the box's."""
    if det is None or box is None:
        return False
    x, y, w, h = box
    cx, cy = det.x + det.w / 2, det.y + det.h / 2
    return (x - w / 4 <= cx <= x + 1.25 * w and y - h / 4 <= cy <= y + 1.25 * h and 0.5 * w <= det.w <= 2 * w)


GROUPS = (("no-face frames accepted", lambda r: r["corpus"] == "no_face"),
          ("synthetic frames kept", lambda r: r["kind"] == "synthetic"),
          ("synthetic faces placed small kept", lambda r: r["kind"] == "synthetic_small"),
          ("real faces placed large kept", lambda r: r["kind"] == "real_large"),
          ("real faces placed small kept", lambda r: r["kind"] == "real_small"),
          ("real faces kept (all)", lambda r: r["kind"].startswith("real")))


def rates(rows: list[dict], outcome: dict[str, object]) -> dict[str, tuple[int, int]]:
    """(hits, frames) per group: a no-face frame is a hit when a face was returned, a face frame
    when the returned face is the placed one."""
    out = {}
    for name, member in GROUPS:
        rs = [r for r in rows if member(r)]
        if name.startswith("no-face"):
            hits = sum(outcome[r["id"]] is not None for r in rs)
        else:
            hits = sum(correct(outcome[r["id"]], r["face_box"]) for r in rs)
        out[name] = (hits, len(rs))
    return out


def pct(h: int, n: int) -> str:
    return f"{100 * h / n:5.1f} % ({h}/{n})" if n else "   -"


# --- measuring candidates (--select) ----------------------------------------------------------------
def geometry(det) -> dict:
    """BlazeFace keypoints in the box's frame, turned so the eyes are level, in box widths."""
    if len(det.keypoints) < 6:
        return {}
    k = np.array(det.keypoints, np.float64)
    re_, le_, nose, mouth, rear, lear = k
    axis = le_ - re_
    eye = float(np.hypot(*axis))
    if eye <= 0:
        return {"eye_w": 0.0, "order": 0.0, "asym": 9.0}
    u = axis / eye
    v = np.array([-u[1], u[0]])  # "down" in the face's frame
    mid = (re_ + le_) / 2
    nose_d, mouth_d = float((nose - mid) @ v), float((mouth - mid) @ v)
    asym = abs(float(np.hypot(*(nose - rear))) - float(np.hypot(*(nose - lear)))) / det.w
    return {"eye_w": eye / det.w, "order": float(0 < nose_d < mouth_d), "asym": asym}


def candidate_features(finder, rgb, det) -> dict:
    """Every candidate check on one detection: the production check's three steps
    (`engine.faces.confirm.FaceCheck.evidence`, all computed), the presence on the mirrored region,
    the other BlazeFace model's score on the same crop (agreement), the keypoints' geometry."""
    from engine.faces.confirm import iou, square_around

    check = finder.confirm
    e = check.evidence(rgb, det, full=True)
    f = {"presence": e.presence, "presence_track": e.presence_track, "zoom": e.redetected}
    f["presence_flip"] = check.landmarks(np.ascontiguousarray(check.patch(rgb, det)[:, ::-1]))[1]
    crop, x0, y0 = square_around(rgb, det)
    other = "full_range" if det.detector.startswith("short_range") else "short_range"
    found = finder._detect(other, crop, y0, x0, "")
    f["agree"] = max((d.score for d in found if iou(d, det) > 0.3), default=0.0)
    f.update(geometry(det))
    return f


def _features_worker(args):
    rows_rgbs, paths = args
    from engine.faces.detector import FaceFinder, quiet_native_stderr

    out = []
    with quiet_native_stderr():
        finder = FaceFinder(paths, confirm="landmarks", tiling="always")
        for r, rgb in rows_rgbs:
            passes = []
            for label, found in finder.passes(rgb):
                passes.append((label, [(d, candidate_features(finder, rgb, d)) for d in found]))
                if label == f"{finder.primary}/whole" and any(d.score >= 0.8 for d in found):
                    break  # a confident whole-frame face: every search variant below stops there
            out.append((r["id"], passes))
        finder.close()
    return out


def collect_features(frames, paths, workers, cache: Path | None = None):
    """(rows, {frame id: [(pass label, [(Detection, features)])]}); read from / written to `cache` (JSON)."""
    import dataclasses
    import json
    from multiprocessing import get_context

    from engine.faces.detector import Detection

    if cache and cache.exists():
        saved = json.loads(cache.read_text())
        result = {fid: [(label, [(Detection(**{**d, "keypoints": tuple(map(tuple, d["keypoints"]))}), f)
                                 for d, f in found]) for label, found in passes]
                  for fid, passes in saved["features"].items()}
        return saved["rows"], result
    frames = list(frames)
    chunks = [(frames[i::workers * 4], paths) for i in range(workers * 4)]
    result = {}
    with get_context("spawn").Pool(workers) as pool:
        for part in pool.imap_unordered(_features_worker, chunks):
            result.update(dict(part))
    out = [r for r, _ in frames], result
    if cache:
        cache.write_text(json.dumps({"rows": out[0], "features": {
            fid: [(label, [(dataclasses.asdict(d), f) for d, f in found]) for label, found in passes]
            for fid, passes in result.items()}}, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
    return out


def replay(passes, rule, primary="short_range", whole_rule=None):
    """The search of `FaceFinder.search` with `rule(features) -> bool` as the confirmation."""
    for label, cands in passes:
        is_whole = label == f"{primary}/whole"
        accepted = []
        for d, f in sorted(cands, key=lambda c: -c[0].score):
            if is_whole and (whole_rule is None or whole_rule(d, f)):
                accepted.append(d)
            elif not is_whole and rule(f):
                accepted.append(d)
        if accepted:
            return max(accepted, key=lambda d: (round(d.score, 4), d.area))
    return None


def select(args, paths) -> None:
    frames = corpus("tune", args.frames, args.limit)
    t0 = time.perf_counter()
    rows, feats = collect_features(frames, paths, args.workers, args.cache)
    print(f"tune half: {len(rows)} frames, candidates measured in {time.perf_counter() - t0:.0f} s "
          f"(load average {os.getloadavg()[0]:.1f})")
    faces = [f for r in rows if r["corpus"] == "face" for _, c in feats[r["id"]] for d, f in c
             if correct(d, r["face_box"]) and d.detector != "short_range/whole"]
    geo = [f for f in faces if "eye_w" in f]
    lo, hi = np.percentile([f["eye_w"] for f in geo], [1, 99]) if geo else (0, 1)
    amax = np.percentile([f["asym"] for f in geo], 99) if geo else 1
    no_face = [r for r in rows if r["corpus"] == "no_face"]
    print(f"geometry ranges from {len(geo)} correct fall-back face candidates of the tune half: eye distance "
          f"{lo:.2f}-{hi:.2f} box widths, ear asymmetry <= {amax:.2f}")

    def geometry_ok(f):
        return bool(f.get("order")) and lo <= f.get("eye_w", 0) <= hi and f.get("asym", 9) <= amax

    P = lambda f: f["presence"]  # noqa: E731
    chosen = lambda f: min(P(f), f["presence_track"]) >= 0.5 and f["zoom"] >= 0.65  # noqa: E731
    rules = {"none (before issue 16)": lambda f: True, "geometry of the 6 keypoints": geometry_ok}
    for t in (0.5, 0.7, 0.8):
        rules[f"other model agrees (score >= {t})"] = lambda f, t=t: f["agree"] >= t
    for t in (0.5, 0.65, 0.7):
        rules[f"same model again on a 2.5x crop (>= {t})"] = lambda f, t=t: f["zoom"] >= t
    for t in (0.1, 0.5, 0.9, 0.97):
        rules[f"landmark presence >= {t}"] = lambda f, t=t: P(f) >= t
    rules["presence >= 0.5 on the region and on the mirrored region"] = lambda f: min(P(f), f["presence_flip"]) >= 0.5
    rules["presence >= 0.5 on the region and on its landmarks' region"] = lambda f: min(P(f), f["presence_track"]) >= 0.5
    rules["presence >= 0.5 and geometry"] = lambda f: P(f) >= 0.5 and geometry_ok(f)
    rules["presence >= 0.5 and other model agrees >= 0.5"] = lambda f: P(f) >= 0.5 and f["agree"] >= 0.5
    rules["presence >= 0.5 and same model again >= 0.65"] = lambda f: P(f) >= 0.5 and f["zoom"] >= 0.65
    rules["presence >= 0.5 on both regions and same model again >= 0.65"] = chosen
    header = [n for n, _ in GROUPS]
    old = {r["id"]: replay(feats[r["id"]], lambda f: True) for r in rows}

    def line(name, rule, whole_rule=None):
        out = {r["id"]: replay(feats[r["id"]], rule, whole_rule=whole_rule) for r in rows}
        rr = rates(rows, out)
        kept = []
        for grp in ("real", "synthetic"):
            found = [r for r in rows if r["kind"].startswith(grp) and correct(old[r["id"]], r["face_box"])]
            kept.append(pct(sum(correct(out[r["id"]], r["face_box"]) for r in found), len(found)))
        print(f"{name} | " + " | ".join(pct(*rr[h]) for h in header) + " | " + " | ".join(kept))

    tail = " | real faces found before, kept | synthetic faces found before, kept"
    print("check (fall-back candidates only) | " + " | ".join(header) + tail)
    for name, rule in rules.items():
        line(name, rule)
    whole_nf = sorted(d.score for r in rows if r["corpus"] == "no_face" for label, c in feats[r["id"]]
                      if label == "short_range/whole" for d, f in c)
    whole_face = [d.score for r in rows if r["corpus"] == "face" for label, c in feats[r["id"]]
                  if label == "short_range/whole" for d, f in c if correct(d, r["face_box"])]
    print(f"whole-frame short-range pass: {len(whole_nf)} detections on {len(no_face)} no-face frames, scores "
          f"{whole_nf[0]:.2f}-{whole_nf[-1]:.2f}; {len(whole_face)} real or synthetic faces, 5th percentile "
          f"{np.percentile(whole_face, 5):.2f}" if whole_nf and whole_face else "whole-frame pass: -")
    print("check (fall-back candidates and whole-frame ones below the score given) | " + " | ".join(header) + tail)
    for t in (0.7, 0.75, 0.8):
        for name in ("landmark presence >= 0.5", "presence >= 0.5 and same model again >= 0.65",
                     "presence >= 0.5 on both regions and same model again >= 0.65"):
            rule = rules[name]
            line(f"{name}; whole frame < {t}" + (" (CHOSEN)" if rule is chosen and t == 0.75 else ""), rule,
                 whole_rule=lambda d, f, t=t, rule=rule: d.score >= t or rule(f))


# --- before / after on the report half -----------------------------------------------------------------
def _run_worker(args):
    rows_rgbs, paths = args
    from engine.faces.detector import FaceFinder, quiet_native_stderr

    out = []
    with quiet_native_stderr():
        old = FaceFinder(paths, confirm="off")
        new = FaceFinder(paths, confirm="landmarks")
        for r, rgb in rows_rgbs:
            t0 = time.process_time()
            a = old.search(rgb)
            t1 = time.process_time()
            n_checks = [0]
            check_s = [0.0]
            accepts = new.confirm.accepts

            def timed(img, det, accepts=accepts):
                c0 = time.process_time()
                ok = accepts(img, det)
                check_s[0] += time.process_time() - c0
                n_checks[0] += 1
                return ok

            new.confirm.accepts = timed
            b = new.search(rgb)
            t2 = time.process_time()
            new.confirm.accepts = accepts
            out.append((r["id"], a.face, b.face, len(b.refused), t1 - t0, t2 - t1, check_s[0], n_checks[0]))
        old.close()
        new.close()
    return out


def report(args, paths) -> None:
    from multiprocessing import get_context

    frames = list(corpus("report", args.frames, args.limit))
    rows = [r for r, _ in frames]
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    chunks = [(frames[i::args.workers * 4], paths) for i in range(args.workers * 4)]
    res = {}
    with get_context("spawn").Pool(args.workers) as pool:
        for part in pool.imap_unordered(_run_worker, chunks):
            res.update({x[0]: x[1:] for x in part})
    wall = time.perf_counter() - t0
    before = rates(rows, {i: v[0] for i, v in res.items()})
    after = rates(rows, {i: v[1] for i, v in res.items()})
    print(f"report half: {len(rows)} frames ({sum(r['corpus'] == 'no_face' for r in rows)} no-face) in {wall:.0f} s "
          f"with {args.workers} workers; load average {load0:.1f} -> {os.getloadavg()[0]:.1f}; {os.cpu_count()} CPUs")
    print(f"{'':38s} {'before (no confirmation)':>26s} {'after (landmark check)':>26s}")
    for name, _ in GROUPS:
        print(f"{name:38s} {pct(*before[name]):>26s} {pct(*after[name]):>26s}")
    found = [r for r in rows if r["corpus"] == "face" and correct(res[r["id"]][0], r["face_box"])]
    kept = sum(correct(res[r["id"]][1], r["face_box"]) for r in found)
    for label, member in (("synthetic", lambda r: r["kind"].startswith("synthetic")),
                          ("real", lambda r: r["kind"].startswith("real"))):
        fs = [r for r in found if member(r)]
        k = sum(correct(res[r["id"]][1], r["face_box"]) for r in fs)
        print(f"{label} faces the old detector found, still found: {pct(k, len(fs))}")
    print(f"all faces the old detector found, still found: {pct(kept, len(found))}")
    by_kind = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        if r["corpus"] == "no_face":
            v = by_kind[r["kind"]]
            v[0] += res[r["id"]][0] is not None
            v[1] += res[r["id"]][1] is not None
            v[2] += 1
    print("no-face frames accepted by kind (before -> after): "
          + "; ".join(f"{k} {a}->{b}/{n}" for k, (a, b, n) in sorted(by_kind.items())))
    print("no-face frames accepted after: " + ", ".join(
        f"{r['id']} ({r['kind']}, {res[r['id']][1].detector} {res[r['id']][1].score:.2f})"
        for r in rows if r["corpus"] == "no_face" and res[r["id"]][1] is not None))
    refused = sum(v[2] for v in res.values())
    old_s = sum(v[3] for v in res.values()) / len(res)
    new_s = sum(v[4] for v in res.values()) / len(res)
    check_s = sum(v[5] for v in res.values())
    checks = sum(v[6] for v in res.values())
    print(f"candidates refused: {refused}; confirmation checks run: {checks} "
          f"({1000 * check_s / max(checks, 1):.1f} ms CPU each)")
    for corpus_name in ("no_face", "face"):
        rs = [r for r in rows if r["corpus"] == corpus_name]
        o = sum(res[r["id"]][3] for r in rs) / len(rs)
        n = sum(res[r["id"]][4] for r in rs) / len(rs)
        c = sum(res[r["id"]][5] for r in rs) / len(rs)
        print(f"{corpus_name} frames: detector {1000 * o:.0f} ms CPU/frame before, {1000 * n:.0f} ms after "
              f"(x{n / o:.2f}); confirmation {1000 * c:.1f} ms/frame = {FRAMES_PER_VIDEO * c:.2f} s per "
              f"{FRAMES_PER_VIDEO}-frame video")
    print(f"all frames: {1000 * old_s:.0f} -> {1000 * new_s:.0f} ms CPU/frame (x{new_s / old_s:.2f}); "
          f"per video ({FRAMES_PER_VIDEO} frames): {FRAMES_PER_VIDEO * old_s:.2f} -> {FRAMES_PER_VIDEO * new_s:.2f} s CPU")
    real_found = [r for r in found if r["kind"].startswith("real")]
    targets = [("no-face frames accepted", after["no-face frames accepted"], lambda v: v <= 0.01, "<= 1 %"),
               ("synthetic frames kept", after["synthetic frames kept"], lambda v: v >= 0.99, ">= 99 %"),
               ("real faces the old detector found, kept",
                (sum(correct(res[r["id"]][1], r["face_box"]) for r in real_found), len(real_found)),
                lambda v: v >= 0.95, ">= 95 %")]
    for name, (h, n), ok, target in targets:
        print(f"target {name} {target}: {pct(h, n).strip()} {'met' if n and ok(h / n) else 'MISSED'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--select", action="store_true", help="measure the candidate checks on the tune half")
    ap.add_argument("--frames", type=Path, help="read the frames saved by face_confirm_corpus.py --write DIR")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, help="at most this many frames (a quick look)")
    ap.add_argument("--cache", type=Path, help="--select: keep the measured candidates in this file (re-read if there)")
    args = ap.parse_args()
    from engine.faces import resolve_models

    paths = {n: m.path for n, m in resolve_models(["short_range", "full_range", "face_landmark"]).items()}
    (select if args.select else report)(args, paths)


if __name__ == "__main__":
    main()
