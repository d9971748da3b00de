"""The case report: one self-contained HTML file about an analysed set, for the analyst's file.

`case_report_html(store, run_id, dataset, ...)` reads the set back from the store
(`engine.analysis.build_report`, the same verdicts the CLI and the dashboard show) and writes:
the set summary; every video's verdict with its faces and their real-scores over time; the map with
the set drawn above the known test faces; the open-set flags and scores; the run's provenance (model,
data, θ and how it was chosen, code revision); the SHA-256 and original name of every analysed file
(chain of custody, `engine.analysis.custody`); and the limits of the method in plain words. A set or a
run on SYNTHETIC data is marked so at the top.

Self-contained and printable: images are inlined as data URIs, the map and charts are inline SVG, the
styles are inline; the file makes no outside request (no URL appears in it). Every string that comes
from a user or a file (names, paths, ids, messages) goes through `html.escape`.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from pathlib import Path

import numpy as np
import pandas as pd

from data_catalog.names import printable

from ..diskspace import write_atomic
from ..metrics import DEFAULT_AGGREGATION, DEFAULT_TOP_K, aggregation_label
from ..provenance import code_revision, package_versions
from ..runs import read_run
from ..scores import theta_summary
from ..store import Store
from ..store import analyses as set_table
from ..map_view import NEUTRAL, map_points
from .report import NO_FACE_LABEL, OPEN_SET_LABEL, build_report

MAX_KNOWN_POINTS = 4000   # known faces drawn on the report's map (an even sample; the set's faces all)

LIMITS = [
    "The verdict names the known class (deepfake method or real) whose training faces the video's faces "
    "resemble most. It cannot name a method the model never saw: such videos get the nearest known class, "
    "unless they lie far from every known class — then the open-set verdict says \u201cresembles no known "
    "class\u201d. That check is calibrated so that about 5 % of known validation videos are flagged too. It "
    "catches faces unlike the training data (other people, non-faces) far better than fakes of an unseen "
    "method: on the synthetic benchmark a never-seen manipulation was told from known test videos with an "
    "AUROC of only 0.62\u20130.70 (docs/BENCHMARKS.md), so most such fakes get a known class.",
    "The threshold \u03b8 and every error rate come from the model's own validation data. On footage unlike that "
    "data (other cameras, compression, lighting, people) the errors can be much larger than measured there.",
    "A real-score is not the probability that a video is real or fake; it ranks videos. A verdict supports an "
    "expert's examination of the files; it does not replace it.",
    "Only the faces shown here were analysed: frames are sampled evenly, and the face detector can miss faces "
    "or take something else for one. A video without a found face gets no verdict.",
    "The map (t-SNE) keeps neighbourhoods only roughly and distorts distances: it illustrates, it is not "
    "evidence. Distances and nearest classes are measured in the model's embedding space.",
    "The SHA-256 digests identify the exact bytes that were analysed; they say nothing about where the files "
    "came from or what happened to them before.",
]
SYNTHETIC_RUN = ("The model was trained on the SYNTHETIC benchmark (procedurally drawn faces, no real person). "
                 "Its verdicts on real footage are a demonstration, not evidence.")
SYNTHETIC_SET = "The analysed set is SYNTHETIC data (drawn faces made by dfatlas's own generator)."

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;margin:24px;font-size:13px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:22px 0 6px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:top;
text-align:left}th{background:#f3f3f3}.num{text-align:right;font-variant-numeric:tabular-nums}
.mark{background:#b00020;color:#fff;font-weight:700;padding:8px 12px;margin:8px 0;font-size:15px}
.strip img{width:48px;height:48px;margin:1px;border:2px solid #ccc;image-rendering:auto}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px;
word-break:break-all}.small{color:#555;font-size:11px}.video{page-break-inside:avoid;break-inside:avoid}
.row{display:flex;gap:14px;align-items:flex-start;flex-wrap:wrap}h3{font-size:14px;margin:14px 0 4px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}
@media print{body{margin:10mm}h2{page-break-after:avoid}.mark{-webkit-print-color-adjust:exact;
print-color-adjust:exact}}
"""


def esc(value) -> str:
    """Any value as HTML text: one line (`printable`), escaped (quotes too, so it is safe in attributes)."""
    return html.escape(printable("" if value is None else str(value)), quote=True)


def _num(v, fmt: str = "{:.3f}") -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    return fmt.format(v)


def _img(blob, title: str = "") -> str:
    if not isinstance(blob, (bytes, bytearray, memoryview)) or not len(blob):
        return ""
    data = base64.b64encode(bytes(blob)).decode("ascii")
    mime = "image/png" if bytes(blob[:4]) == b"\x89PNG" else "image/jpeg"
    return f'<img src="data:{mime};base64,{data}" alt="face" title="{esc(title)}">'


def _table(headers: list[str] | None, rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """A table from already-escaped cells (no header row when `headers` is None)."""
    head = "<tr>" + "".join(f"<th>{h}</th>" for h in headers) + "</tr>" if headers else ""
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{c}</td>' for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    return f"<table>{head}{body}</table>"


def score_chart(scores, theta: float | None, width: int = 180, height: int = 48) -> str:
    """Inline SVG of a video's frame real-scores in frame order (0..1), with θ dashed."""
    s = np.asarray([v for v in scores if v is not None and np.isfinite(v)], dtype=float)
    if not len(s):
        return ""
    pad = 4
    xs = np.linspace(pad, width - pad, len(s)) if len(s) > 1 else np.array([width / 2])
    ys = pad + (1 - np.clip(s, 0, 1)) * (height - 2 * pad)
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="real-score per frame"><rect x="0" y="0" width="{width}" height="{height}" fill="#fafafa" '
             'stroke="#ddd"/>']
    if theta is not None and np.isfinite(theta):
        ty = pad + (1 - min(max(theta, 0.0), 1.0)) * (height - 2 * pad)
        parts.append(f'<line x1="0" x2="{width}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#b00020" stroke-dasharray="3,3"/>')
    parts.append(f'<polyline points="{pts}" fill="none" stroke="#0072B2" stroke-width="1.5"/>')
    parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="#0072B2"/>' for x, y in zip(xs, ys)]
    parts.append("</svg>")
    return "".join(parts)


def map_svg(known: pd.DataFrame, shown: pd.DataFrame, colours: dict, names: dict, width: int = 640,
            height: int = 480) -> str:
    """Inline SVG of the map: known faces small and faint (colour = true class), the set's faces large,
    outlined in black and drawn last (above). Frames: x, y, colour key ('class')."""
    both = pd.concat([known[["x", "y"]], shown[["x", "y"]]])
    both = both[np.isfinite(both["x"]) & np.isfinite(both["y"])]
    if both.empty:
        return "<p>No map: the run has no map with these faces.</p>"
    pad = 12
    x0, x1 = float(both["x"].min()), float(both["x"].max())
    y0, y1 = float(both["y"].min()), float(both["y"].max())
    scale = min((width - 2 * pad) / max(x1 - x0, 1e-9), (height - 2 * pad) / max(y1 - y0, 1e-9))

    def px(df):
        return pad + (df["x"].to_numpy(float) - x0) * scale, height - pad - (df["y"].to_numpy(float) - y0) * scale

    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="map of the set among the known faces"><rect x="0" y="0" width="{width}" '
             f'height="{height}" fill="#fff" stroke="#ccc"/>']
    kx, ky = px(known)
    for x, y, c in zip(kx, ky, known["class"]):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{esc(colours.get(c, NEUTRAL))}" '
                     'fill-opacity="0.45"/>')
    sx, sy = px(shown)
    for x, y, c in zip(sx, sy, shown["class"]):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{esc(colours.get(c, NEUTRAL))}" '
                     'stroke="#000" stroke-width="1.5"/>')
    parts.append("</svg>")
    legend = " ".join(f'<span class="swatch" style="background:{esc(colours.get(c, NEUTRAL))}"></span>{esc(names.get(c, c))}'
                      for c in dict.fromkeys(list(known["class"]) + list(shown["class"])))
    return ("".join(parts) + f'<p class="small">Small faint dots: known test faces, coloured by true class. '
            f'Large dots outlined in black: the analysed set\'s faces, coloured by predicted class. {legend}</p>')


def _map_section(store: Store, run, classifier: str, dataset: str, projection_id: str | None, colours: dict,
                 names: dict) -> str:
    if not projection_id:
        return "<p>No map: the set was not placed into a map of this run.</p>"
    known_ds = list(run.split_datasets("test"))
    pts = map_points(store, run.run_id, classifier, known_ds + [dataset], "frame", run.classes,
                     projection_id=projection_id)
    if pts.empty:
        return "<p>No map points.</p>"
    is_set = (pts["dataset"] == dataset).to_numpy()
    known = pts.loc[~is_set]
    if len(known) > MAX_KNOWN_POINTS:
        known = known.iloc[np.linspace(0, len(known) - 1, MAX_KNOWN_POINTS).astype(int)]
    known = known.assign(**{"class": known["true_class"].astype(object)})
    shown = pts.loc[is_set]
    shown = shown.assign(**{"class": shown["pred"].astype(object)})
    return map_svg(known, shown, colours, names)


def case_report_html(store: Store, run_id: str, dataset: str, classifier: str | None = None,
                     aggregation: str = DEFAULT_AGGREGATION, top_k: int = DEFAULT_TOP_K,
                     generated_at: dt.datetime | None = None) -> str:
    """The case report of an analysed set as one HTML document (see the module docstring)."""
    rep = build_report(store, run_id, dataset, classifier=classifier, aggregation=aggregation, top_k=top_k)
    run = read_run(store, run_id)
    names = rep.class_names
    colours = run.style().colors  # the dashboard's colours (engine.map_view.ClassStyle)
    theta = theta_summary(store, run, rep.classifier, "video", aggregation, top_k)
    files = set_table.set_files(store, dataset).set_index("video_id")
    thumbs = set_table.set_face_thumbnails(store, dataset, run.settings_key or "")
    preds = set_table.set_face_predictions(store, run_id, dataset, rep.classifier).drop_columns(
        ["embedding", "probs"]).to_pandas()
    faces = thumbs.merge(preds[["face_id", "pred_class", "real_score"]], on="face_id", how="left")
    when = (generated_at or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%d %H:%M:%S UTC")
    name = rep.display
    out = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>Case report: {esc(rep.name)}</title><style>{CSS}</style></head><body>",
           f"<h1>Case report: set {esc(rep.name)}</h1>",
           f'<p class="small">Generated {esc(when)} by dfatlas (Deepfake Attribution Atlas), code revision '
           f'{esc(code_revision() or "unknown")}. Dataset {esc(rep.dataset)}, analysed by run {esc(rep.run_id)}.</p>']
    if rep.synthetic:
        out.append(f'<div class="mark">SYNTHETIC — {esc(SYNTHETIC_SET)}</div>')
    if run.synthetic:
        out.append(f'<div class="mark">SYNTHETIC — {esc(SYNTHETIC_RUN)}</div>')

    # 1. summary
    out.append("<h2>1. Summary</h2><ul>" + "".join(f"<li>{esc(line)}</li>" for line in rep.summary_lines()) + "</ul>")
    rows = [[esc(name(r["class"])), str(int(r["videos"])), _num(100 * r["video_share"], "{:.1f}"), str(int(r["faces"])),
             _num(100 * r["face_share"], "{:.1f}")] for _, r in rep.class_shares.iterrows()]
    out.append("<p>Videos and faces per predicted class (the last row counts the videos and faces the open-set "
               "verdict flags; they are counted under their predicted class as well):</p>"
               + _table(["class", "videos", "video %", "faces", "face %"], rows, {1, 2, 3, 4}))

    # 2. map
    out.append("<h2>2. The set on the map</h2>")
    out.append(_map_section(store, run, rep.classifier, dataset, rep.projection_id, colours, names))

    # 3. per video
    theta_v = theta["theta"]
    out.append("<h2>3. Verdict per video</h2>")
    out.append(f'<p class="small">Verdict: the class most of a video\'s frames are predicted as, or '
               f'\u201c{esc(OPEN_SET_LABEL)}\u201d when the video\'s faces lie outside every known class, or '
               f'\u201c{esc(NO_FACE_LABEL)}\u201d. Real-score: the {esc(aggregation_label(aggregation, top_k))}; '
               f'a video is accepted as real when it is at least \u03b8 = {_num(theta_v, "{:.4f}")}. The chart shows '
               'each frame\'s real-score in frame order (dashed: \u03b8); hover a face for its frame, predicted '
               'class and real-score.</p>')
    by_video = {v: g for v, g in faces.groupby("video_id", sort=False)}
    for _, v in rep.videos.iterrows():
        vid = v["video_id"]
        f = by_video.get(vid, pd.DataFrame(columns=faces.columns))
        original = files["original_name"].get(vid) if vid in files.index else None
        original = original if isinstance(original, str) else None
        has = v["verdict"] != NO_FACE_LABEL
        real = v.get("real_score") if has else None
        decision = "—"
        if has and theta_v is not None and real is not None and np.isfinite(real):
            decision = "accepted as real" if real >= theta_v else "rejected as fake"
        strip = "".join(_img(r.thumbnail, f"frame {int(r.frame_index)}: "
                             f"{name(run.class_name(int(r.pred_class))) if pd.notna(r.pred_class) else 'no prediction'}"
                             f", real-score {_num(r.real_score)}") for r in f.itertuples())
        facts = [["verdict", f"<b>{esc(name(v['verdict']))}</b>"],
                 ["original file name", esc(original or v["relpath"])],
                 ["on disk", f'<span class="mono">{esc(v["relpath"])}</span>']]
        if has:
            facts += [["predicted class (majority of frames)", f"{esc(name(v['pred_class']))} "
                       f"({_num(100 * v['agreement'], '{:.0f}')} % of {int(v['n_frames'])} frames)"],
                      ["real-score", f"{_num(real)} — {decision}"],
                      ["open-set score / its threshold (> 1: resembles no known class)",
                       f"{_num(v.get('open_ratio'), '{:.2f}')} (score {_num(v.get('open_score'), '{:.4g}')})"]]
        else:
            facts.append(["face extraction", esc(f"{v.get('status') or 'not extracted'}: {v.get('reason') or ''}")])
        if rep.labelled and isinstance(v.get("true_class"), str):
            facts.append(["label given with the set", esc(name(v["true_class"]))])
        out.append(f'<div class="video"><h3>{esc(original or v["relpath"])}</h3><div class="row">'
                   + _table(None, [[a, b] for a, b in facts])
                   + f'<div><div class="strip">{strip or "(no faces)"}</div>'
                   + score_chart(f["real_score"].to_numpy(float) if len(f) else [], theta_v) + "</div></div></div>")

    # 4. open set
    os_ = rep.open_set
    out.append("<h2>4. Open-set flags and scores</h2>")
    test = os_.get("known_test_rate", float("nan"))
    out.append(f"<p>{_num(100 * os_.get('video_rate', float('nan')), '{:.1f}')} % of the videos with faces and "
               f"{_num(100 * os_.get('face_rate', float('nan')), '{:.1f}')} % of the faces resemble no known class. "
               f"The open-set score is the {esc(os_.get('definition'))}; a video's score is the mean of its faces', "
               f"and a video is open-set above {_num(os_.get('video_threshold'), '{:.4g}')}, the threshold that flags "
               f"{_num(100 * os_.get('false_alarm', float('nan')), '{:.0f}')} % of the run's known validation videos"
               + (f" (on its known test videos it flags {_num(100 * test, '{:.1f}')} %: about that share of any "
                  "set is flagged by chance)" if test == test else "") + ".</p>")
    def file_name(vid, relpath):
        o = files["original_name"].get(vid) if vid in files.index else None
        return o if isinstance(o, str) else relpath

    rows = [[esc(file_name(v["video_id"], v["relpath"])), esc(name(v["verdict"])), _num(v.get("open_score"), "{:.4g}"),
             _num(v.get("open_ratio"), "{:.2f}"), "yes" if bool(v.get("open_set")) is True else "no",
             _num(v.get("open_faces"), "{:.2f}"), esc(name(v.get("pred_class")))]
            for _, v in rep.videos.iterrows() if v["verdict"] != NO_FACE_LABEL]
    out.append(_table(["video", "verdict", "open-set score", "score / threshold", "flagged", "share of faces flagged",
                       "classifier's class"], rows, {2, 3, 5}))

    # 5. provenance
    out.append("<h2>5. Provenance</h2>")
    vers = run.versions or {}
    prov = [
        ["model", esc(f"run {run.run_id}: {run.approach} head on a {run.backbone or '?'} backbone "
                      f"({run.pretrained_source or 'pretraining not recorded'}), classifier {rep.classifier}")],
        ["classes", esc(", ".join(f"{name(c)} ({c})" for c in run.classes))],
        ["training data", esc(f"super-set databases {', '.join(run.superset) or '?'}; "
                              f"{'SYNTHETIC benchmark' if run.synthetic else 'real databases as configured'}; "
                              f"config hash {run.config_hash or 'unknown'}")],
        ["\u03b8 (threshold)", esc(_theta_text(theta))],
        ["video score", esc(f"the {aggregation_label(aggregation, top_k)}; predicted class: the majority of frames")],
        ["open-set calibration", esc(f"{os_.get('definition')}, fitted on {os_.get('reference_faces')} training "
                                     f"faces; threshold set on {os_.get('validation_videos')} videos of the same "
                                     f"validation split to flag {100 * os_.get('false_alarm', float('nan')):.0f} % of "
                                     "them")],
        ["code revision", esc(f"trained at {run.code_revision or 'unknown'}; report written at "
                              f"{code_revision() or 'unknown (not a git checkout)'}")],
        ["packages", esc(", ".join(f"{k} {v}" for k, v in (vers or package_versions()).items()))],
        ["input", esc(rep.source)],
    ]
    out.append(_table(None, prov))

    # 6. chain of custody
    out.append("<h2>6. Chain of custody: the analysed files</h2>")
    crow = []
    for vid, r in files.iterrows():
        crow.append([esc(r["original_name"] if isinstance(r["original_name"], str) else "(not recorded)"),
                     f'<span class="mono">{esc(r["relpath"])}</span>',
                     f'<span class="mono">{esc(r["sha256"] if isinstance(r["sha256"], str) else (r["note"] if isinstance(r["note"], str) else "(not recorded)"))}</span>',
                     _num(r["size_bytes"], "{:,.0f}") if pd.notna(r["size_bytes"]) else "—",
                     esc(r["hashed_at"]) if pd.notna(r["hashed_at"]) else "—"])
    out.append("<p>SHA-256 of each file's bytes, taken when the set was recorded (before its faces were read).</p>"
               + _table(["original file name", "name on disk", "SHA-256", "bytes", "hashed at"], crow, {3}))

    # 7. limits
    out.append("<h2>7. Limits of the method</h2><ul>" + "".join(f"<li>{esc(t)}</li>" for t in LIMITS) + "</ul>")
    if rep.problems:
        out.append("<p>Input problems:</p><ul>" + "".join(f"<li>{esc(p)}</li>" for p in rep.problems) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out)


def _theta_text(theta: dict) -> str:
    if theta["theta"] is None:
        return f"undefined ({theta.get('note') or 'no validation scores'})"
    return (f"{theta['theta']:.6g}: set on the validation split of the training super-set "
            f"({', '.join(theta['datasets'])}; {theta['n_fake']} fake and {theta['n_real']} real videos of the "
            f"taxonomy's classes) as the lowest validation fake score at which at most "
            f"{100 * theta['target_fpr']:g} % of the validation fakes are accepted as real (bob.measure's "
            f"far_threshold), at video level, videos scored as the {aggregation_label(theta['aggregation'], theta['top_k'])}"
            + (f"; note: {theta['note']}" if theta.get("note") else ""))


def write_case_report(store: Store, run_id: str, dataset: str, path: str | Path, classifier: str | None = None,
                      aggregation: str = DEFAULT_AGGREGATION, top_k: int = DEFAULT_TOP_K) -> Path:
    """Write the case report to `path` (temp file and rename); returns the path."""
    text = case_report_html(store, run_id, dataset, classifier, aggregation, top_k)
    path = Path(path)
    write_atomic(path, text.encode("utf-8"))
    return path
