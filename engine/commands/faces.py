"""`dfatlas faces`: face crops for the config's videos (DESIGN.md step 2)."""

from __future__ import annotations

import sys

from ..config import FacesSection, Range
from .common import (add_config_arg, add_json_arg, add_parser, add_wait_arg, add_workspace_arg, config_of, number_arg,
                     option_arg, print_json, print_table, stage, workspace_of)


def register(sub) -> None:
    p = add_parser(
        sub, "faces", "extract face crops from the config's videos with MediaPipe BlazeFace",
        "dfatlas faces --config configs/demo.toml --workers 2",
        description=(
            "Sample [faces] frames_per_video frames per video, find the most confident face,\n"
            "enlarge/square/resize it and write crops + store rows. Re-running skips videos\n"
            "already done with the same [faces] settings (and extracts again those whose crop\n"
            "files are missing; --verify also decodes them); changed settings get a new key."
        ),
    )
    add_config_arg(p)
    add_workspace_arg(p)
    add_wait_arg(p)
    p.add_argument("--db", metavar="NAME", help="only this database of [sources]")
    p.add_argument("--split", metavar="S", help="only this split (train / val / test)")
    p.add_argument("--workers", type=option_arg(FacesSection, "workers"), default=None, metavar="N",
                   help="worker processes, one thread each (default: [faces] workers, 0 = one per core)")
    p.add_argument("--executor", choices=("process", "ray"), default="process",
                   help="local process pool, or Ray (pip install 'dfatlas[cluster]'; uses $RAY_ADDRESS if set)")
    p.add_argument("--limit", type=number_arg(int, Range(1)), default=None, metavar="N", help="process at most N new videos (a quick try)")
    p.add_argument("--verify", action="store_true",
                   help="also decode every crop of the videos already done (their files are always checked to "
                        "exist), and read the whole store back to check its checksums")
    add_json_arg(p, '{"summary": {settings_key, requested, skipped, processed, faces, frames, seconds, counts, ...}, '
                    '"by_class": [{class, status, videos, faces, frames}]}')
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.faces import STATUSES, extract_for_config
    from engine.store.faces import status_by_class

    cfg = config_of(args)
    ws = workspace_of(args)
    with ws.lock("faces", wait=args.wait):
        with stage(f"faces ({cfg.faces.settings_key()})"):
            if args.verify:
                ws.store().verify()  # StoreDamaged before anything is written
            summary, videos = extract_for_config(cfg, ws, db=args.db, split=args.split, workers=args.workers,
                                                 executor=args.executor, limit=args.limit, verify=args.verify)
    if args.json:
        import dataclasses

        from ..rendering import json_records

        table = status_by_class(ws.store(), summary.settings_key, videos.column("video_id").to_pylist())
        print_json({"summary": dataclasses.asdict(summary) | {"videos_per_s": summary.videos_per_s,
                                                              "faces_per_s": summary.faces_per_s},
                    "by_class": json_records(table)})
        return 0
    models = ", ".join(f"{n} ({m['source']})" for n, m in summary.models.items())
    print(f"settings key {summary.settings_key}: {summary.requested} videos, {summary.skipped} already done, "
          f"{summary.processed} processed now with {summary.workers} {summary.executor} worker(s); models: {models}")
    if summary.restored:
        print(f"{summary.restored} video(s) had missing or damaged crop files: extracted again")
    if summary.refused:
        print(f"{summary.refused} candidate face(s) found by a fall-back pass (tiles, full-range model) were refused "
              f"by the confirmation check in {summary.refused_videos} video(s); {summary.refused_no_face} of them "
              "ended no_face (their reasons are in the store's face_videos table)")
    if summary.processed:
        share = summary.decode_s / max(summary.decode_s + summary.detect_s, 1e-9)
        print(f"{summary.faces} faces from {summary.frames} frames in {summary.seconds:.1f} s: "
              f"{summary.videos_per_s:.2f} videos/s, {summary.faces_per_s:.1f} faces/s "
              f"(decoding {100 * share:.0f} % of worker time)")
    table = status_by_class(ws.store(), summary.settings_key, videos.column("video_id").to_pylist())
    if len(table):
        wide = table.pivot_table(index="class", columns="status", values="videos", aggfunc="sum", fill_value=0)
        faces = table.groupby("class")["faces"].sum()
        frames = table.groupby("class")["frames"].sum()
        rows = []
        for cls in wide.index:
            row = {"class": cls}
            for s in STATUSES:
                row[s] = int(wide.loc[cls, s]) if s in wide.columns else 0
            row["faces"] = int(faces.get(cls, 0) or 0)
            fr = int(frames.get(cls, 0) or 0)
            row["frames with a face"] = f"{100 * row['faces'] / fr:.1f} %" if fr else "-"
            rows.append(row)
        print_table(rows)
    bad = summary.counts.get("error", 0)
    if bad:
        print(f"{bad} video(s) ended in an error; their reasons are in the store's face_videos table. "
              "Running the command again retries them.", file=sys.stderr)
    return 0
