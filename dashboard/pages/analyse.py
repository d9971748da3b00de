"""Analyse: attribute an unknown set of videos (or folders of frames) with the chosen run.

The page never computes: it starts `dfatlas analyze ... --job-id ID` as a
background subprocess (engine.jobs) and polls the job's row in the store; the
results it shows are read back from the store (engine.analysis.build_report).

Safety: the folders it may read are the run's config `[dashboard]
allowed_roots` (taken from the run's stored config, so no extra flag is
needed), checked after resolving symlinks; uploads are limited to the
smaller of `[dashboard] max_upload_mb` and the server's `--max-upload-mb`,
must be videos (suffix and container signature) or images (one upload's images are one video's frames,
`dashboard.uploads`) and are written under `<workspace>/uploads/` with sanitised names.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import controls, figures, queries, video_panel
from dashboard.plain import literal, plain
from data_catalog.databases.base import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from data_catalog.errors import AtlasError
from dashboard.uploads import save_uploads
from engine import analysis as an
from engine import jobs
from engine.approaches import get_approach
from engine.faces.extract import STATUS_WORDS
from engine.runs import read_run
from engine.workspace import resolve_workspace

JOB_KEY = "analyse_job"
SET_KEY = "analyse_set"
MAX_LISTED_FOLDERS = 400
POLL_S = 2.0


def _run_config(view) -> dict:
    """The run's stored config sections (engine.runs.RunRecord.config)."""
    return dict(read_run(queries.read_store(view.path), view.run_id).config)


def dashboard_settings(run_config: dict) -> tuple[list[str], float]:
    """(allowed roots, max upload MB) from a run's stored config."""
    dash = run_config.get("dashboard", {}) or {}
    roots = [str(r) for r in dash.get("allowed_roots", []) or []]
    return roots, float(dash.get("max_upload_mb", 200) or 200)


def subfolders(root: str, limit: int = MAX_LISTED_FOLDERS, depth: int = 3) -> list[str]:
    """Folders below `root` (relative paths, '.' first), at most `depth` deep; symlinks leaving the roots are
    dropped by `resolve_under_roots` when chosen."""
    out = ["."]
    base = Path(root)
    for dirpath, dirnames, _ in os.walk(base):
        rel = Path(dirpath).relative_to(base)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if len(rel.parts) >= depth:
            dirnames[:] = []
        for d in dirnames:
            out.append((rel / d).as_posix())
            if len(out) >= limit:
                return out
    return out


@st.cache_data(show_spinner=False, max_entries=16)
def report(path: str, sig: tuple, run_id: str, dataset: str, classifier: str | None, aggregation: str = "mean",
           top_k: int = 3):
    store = queries.read_store(path)
    return an.build_report(store, run_id, dataset, classifier=classifier, aggregation=aggregation, top_k=top_k)


@st.cache_data(show_spinner=False, max_entries=16)
def files(path: str, sig: tuple, dataset: str):
    """The set's files: original names, names on disk, SHA-256 (engine.analysis.custody)."""
    return an.analysed_files(queries.read_store(path), dataset)


@st.cache_data(show_spinner=False, max_entries=16)
def thumbs(path: str, sig: tuple, run_id: str, dataset: str, classifier: str, per_class: int):
    return an.class_thumbnails(queries.read_store(path), run_id, dataset, classifier, per_class=per_class)


@st.cache_data(show_spinner=False, max_entries=8)
def analysed_sets(path: str, sig: tuple, run_id: str) -> pd.DataFrame:
    return an.list_analyses(queries.read_store(path), run_id)


def _start(view, run_config: dict, input_path: Path, name: str, replace: bool, roots: list[str],
           upload: Path | None = None) -> None:
    """Start the job; `name` is already the checked set name (`an.sanitize_name`, as the CLI's --name)."""
    ws = resolve_workspace(None)
    job_id = jobs.new_job_id("analyze")
    argv = ["analyze", "--run", view.run_id, "--input", str(input_path), "--name", name]
    for root in roots:  # the job reads nothing whose real path leaves these (symlinks included)
        argv += ["--allowed-root", os.path.realpath(root)]
    cfg_path = run_config.get("path")
    if cfg_path and Path(cfg_path).is_file():
        argv += ["--config", str(cfg_path)]
    if replace:
        argv.append("--replace")
    jobs.start_background(ws, job_id, argv)
    st.session_state[JOB_KEY] = {"job_id": job_id, "run_id": view.run_id, "name": name,
                                 "upload": str(upload) if upload else None}


def name_taken(view, name: str, source: str | None, replace: bool) -> str | None:
    """Why `name` cannot be analysed now (a set of that name exists), in the page's words; None when it can.
    Checked BEFORE an upload is saved, so a refusal leaves nothing behind."""
    if replace:
        return None
    state = an.set_state(queries.read_store(view.path), an.dataset_of(name), view.run_id)
    if not state["complete"] or (source is not None and state["source"] == source and not state["analysed_by_run"]):
        return None
    why = (f"was already analysed by this run" if state["analysed_by_run"] and source == state["source"]
           else f"already exists (from {state['source']})")
    return (f"A set named {name} {why}. Tick “{REPLACE_LABEL}” below to analyse it again (the old set "
            "is removed first), or choose another name.")


def _forget_upload(info: dict) -> None:
    """Remove the upload folder of a job that failed (the files were only saved for it)."""
    folder = info.get("upload")
    if not folder:
        return
    uploads = os.path.realpath(resolve_workspace(None).uploads_dir)
    real = os.path.realpath(folder)
    if os.path.dirname(real) == uploads and os.path.isdir(real):
        shutil.rmtree(real, ignore_errors=True)
    info["upload"] = None


def upload_limit_mb(config_mb: float) -> float:
    """The upload limit in force: the config's, or the server's (`dfatlas serve --max-upload-mb`) when smaller."""
    return min(float(config_mb), float(st.get_option("server.maxUploadSize")))


def _source_form(view, run_config: dict) -> None:
    roots, config_mb = dashboard_settings(run_config)
    max_mb = upload_limit_mb(config_mb)
    st.subheader("1. The videos")
    mode = st.radio("Source", ["Folder on this machine", "Upload videos"], horizontal=True, key="an_mode",
                    help="A folder of images (frames) is one video; so are the images of one upload.")
    chosen: Path | None = None
    uploads = None
    if mode == "Folder on this machine":
        existing = [r for r in roots if os.path.isdir(r)]
        if not existing:
            st.info("No folder is open to the dashboard. Add folders to `[dashboard] allowed_roots` in the "
                    "experiment config (the run stores it), or upload videos instead.")
        else:
            root = st.selectbox("Allowed root", existing, key="an_root")
            sub = st.selectbox("Folder (searched recursively for videos and folders of frames)", subfolders(root),
                               key="an_sub")
            try:
                chosen = an.resolve_under_roots(Path(root) / sub, roots)
            except AtlasError as exc:
                st.error(plain(exc))
                chosen = None
    else:
        uploads = st.file_uploader(
            f"Videos ({', '.join(s.lstrip('.') for s in VIDEO_SUFFIXES)}), or the frames of one video as images "
            f"({', '.join(s.lstrip('.') for s in IMAGE_SUFFIXES)}; taken in name order); at most {max_mb:g} MB",
            type=[s.lstrip(".") for s in VIDEO_SUFFIXES + IMAGE_SUFFIXES], accept_multiple_files=True,
            key="an_upload")
    _default_name(default_set_name(mode, chosen, uploads))
    name = st.text_input("Name of the set (becomes dataset unknown/<name>)", key="an_name")
    replace = st.checkbox(REPLACE_LABEL, key="an_replace")
    if st.button("Analyse", type="primary", key="an_go"):
        try:
            name = an.sanitize_name(name)  # the one set-name rule, as `dfatlas analyze --name`
            upload = None
            if mode == "Upload videos":
                if not uploads:
                    raise an.AnalysisError("choose one or more videos to upload first")
                refusal = name_taken(view, name, None, replace)  # before anything is saved
                if refusal:
                    raise an.AnalysisError(refusal)
                res = save_uploads(resolve_workspace(None), name, uploads, max_mb)
                for r in res.refused:
                    st.warning("Refused: " + plain(r))
                chosen = upload = res.folder
            elif chosen is None:
                raise an.AnalysisError("choose a folder under the allowed roots first")
            else:
                refusal = name_taken(view, name, str(chosen), replace)
                if refusal:
                    raise an.AnalysisError(refusal)
            _start(view, run_config, chosen, name, replace,
                   [str(resolve_workspace(None).uploads_dir)] if mode == "Upload videos" else roots, upload)
        except (AtlasError, OSError) as exc:
            st.error(f"Could not start the analysis: {plain(one_line(exc))}")


REPLACE_LABEL = "Replace a set of the same name"


def default_set_name(mode: str, chosen: Path | None, uploads) -> str:
    """The name the form offers: the chosen folder's, or the first uploaded file's (never another source's)."""
    if mode == "Upload videos":
        first = (uploads or [None])[0]
        stem = Path(getattr(first, "name", "") or "").stem
        try:
            return an.sanitize_name(stem) if stem else "upload"
        except AtlasError:  # a name with no Latin letter or digit: the set gets a neutral name
            return "upload"
    return chosen.name if chosen is not None and chosen.name else "upload"


def _default_name(default: str) -> None:
    """Offer `default` in the name box unless the user typed a name of their own (then it stays)."""
    offered = st.session_state.get("_an_name_offered")
    if st.session_state.get("an_name") in (None, "", offered) and offered != default:
        st.session_state["an_name"] = default
    elif "an_name" not in st.session_state:
        st.session_state["an_name"] = default
    st.session_state["_an_name_offered"] = default


def one_line(exc: BaseException) -> str:
    """An error as one line: the AtlasError's message, or an OSError's reason and path."""
    if isinstance(exc, OSError) and not isinstance(exc, AtlasError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def job_panel(path: str) -> str | None:
    """The current job's progress; returns the finished set's dataset id, if any."""
    info = st.session_state.get(JOB_KEY)
    if not info:
        return None
    try:
        job = jobs.read_started_job(resolve_workspace(None), queries.read_store(path), info["job_id"])
    except (AtlasError, OSError) as exc:
        st.error(f"Could not read the analysis job's state: {plain(one_line(exc))}")
        return None
    if job is None:
        st.info(f"Starting analysis job `{info['job_id']}` ...")
        return None
    status = job["status"]
    if status in ("queued", "running"):
        st.progress(float(job["progress"] or 0.0), text=f"Analysing ({plain(job['message'] or status)}) — job "
                                                        f"`{info['job_id']}`")
        return None
    if status == "failed":
        _forget_upload(info)
        st.error(f"The analysis failed: {plain(job['message'])}")
        tail = jobs.read_log_tail(resolve_workspace(None), info["job_id"])
        if tail:
            with st.expander("Job log"):
                st.code(tail)
        return None
    st.success(f"Analysis finished: job `{info['job_id']}`.")
    try:
        return json.loads(job["message"]).get("dataset")
    except (ValueError, TypeError, AttributeError):
        return f"unknown/{info['name']}"


@st.fragment(run_every=POLL_S)
def _poll(path: str) -> None:
    info = st.session_state.get(JOB_KEY)
    done = job_panel(path)
    if done and st.session_state.get(SET_KEY) != done:
        st.session_state[SET_KEY] = done
        st.session_state.pop(JOB_KEY, None)
        st.rerun()  # the whole page, to show the results
    if info and not done:
        st.caption("This panel refreshes every few seconds.")


def _image(blob) -> bytes | None:
    return bytes(blob) if isinstance(blob, (bytes, bytearray, memoryview)) else None


def results(view, dataset: str) -> None:
    rep = report(view.path, view.sig, view.run_id, dataset, view.classifier, view.aggregation, view.top_k)
    style = view.style
    name = class_namer(rep, style)
    st.subheader(f"3. Results: {literal(dataset)}")
    if rep.synthetic:
        st.markdown(":orange-badge[:material/science: SYNTHETIC data] this set lies in the synthetic benchmark's "
                    "folders")
    for line in rep.summary_lines():
        st.markdown("- " + plain(line))
    if rep.problems:  # files of the input that were not used, each with its reason
        with st.expander(f"{len(rep.problems)} input problem(s): files not used"):
            for line in rep.problems[:200]:
                st.markdown("- " + plain(line))
            if len(rep.problems) > 200:
                st.caption(f"... and {len(rep.problems) - 200} more (`dfatlas analyze --format json` lists all)")
    st.markdown("**Verdicts** (one per video: the classifier's class, or *resembles no known class*; the last row)")
    shares = rep.class_shares.assign(**{
        "class": [name(c) for c in rep.class_shares["class"]],
        "video %": (100 * rep.class_shares["video_share"]).round(1),
        "face %": (100 * rep.class_shares["face_share"]).round(1)})[["class", "videos", "video %", "faces", "face %"]]
    st.dataframe(shares, hide_index=True, key="an_shares")

    # the map: the new set drawn above the known ones
    ov = queries.overview(view.path, view.sig)
    ds = ov["datasets"]
    known = ds.loc[(ds["role"] == "superset") & (ds["split"] == "test"), "dataset"].tolist()
    pts = queries.map_points(view.path, view.sig, view.run_id, rep.classifier, tuple(known + [dataset]), view.level,
                             view.aggregation, view.top_k)
    if len(pts):
        colour = st.radio("Map colour", ["database", "pred"], horizontal=True, key="an_colour",
                          format_func={"database": "set vs known databases", "pred": "predicted class"}.get)
        in_set = (pts["dataset"] == dataset).to_numpy()
        fig, _ = figures.map_figure(pts, style, colour_mode=colour, height=520, highlight=in_set,
                                    highlight_name=f"this set ({int(in_set.sum())} faces)")
        st.plotly_chart(fig, key="an_map", config={"displaylogo": False})
        st.caption(f"{int(in_set.sum())} faces of the set — drawn large, outlined in black, above the known test "
                   "faces — placed into the run's existing map (openTSNE transform: the known sets keep their "
                   "coordinates).")
    else:
        st.info("This run has no map points to show yet.")

    # thumbnails per predicted class
    th = thumbs(view.path, view.sig, view.run_id, dataset, rep.classifier, 8)
    if len(th):
        st.markdown("**Faces per predicted class**")
        for cls_idx, grp in th.groupby("pred_class", sort=True):
            cls = "fake" if cls_idx < 0 else rep.classes[int(cls_idx)]
            imgs = [b for b in (_image(x) for x in grp["thumbnail"]) if b]
            if imgs:
                st.caption(plain(name(cls)))
                st.image(imgs, width=64)

    # per-video table: a row opens the video's drill-down below
    st.markdown("**Per video** (select a row to open its drill-down below)")
    table = video_rows(rep, files(view.path, view.sig, dataset), name)
    event = st.dataframe(table, hide_index=True, key="an_videos", on_select="rerun", selection_mode="single-row")
    picked = _selected_row(event)
    if picked is not None and st.session_state.get("_an_row") != picked and picked < len(table):
        st.session_state["an_video"] = rep.videos["video_id"].iloc[picked]  # the picker below follows the row
    st.session_state["_an_row"] = picked
    b1, b2 = st.columns(2)
    b1.download_button("Download the table (CSV)", table.to_csv(index=False).encode(),
                       file_name=f"{dataset.replace('/', '_')}_{view.run_id}.csv", mime="text/csv", key="an_csv")
    b2.download_button(
        "Download the case report (HTML)", key="an_case", on_click="ignore", mime="text/html",
        icon=":material/description:",
        file_name=f"case-report-{dataset.split('/', 1)[-1]}-{view.run_id}.html",
        data=lambda: queries.case_report(view.path, view.run_id, dataset, rep.classifier, view.aggregation,
                                         view.top_k),
        help="One self-contained HTML file (print it to PDF): summary, every video's verdict and faces, the map, "
             "open-set scores, θ and how it was chosen, the code revision, the SHA-256 and original name of every "
             "file, and the limits of the method. It makes no outside request.")

    # the drill-down of one video
    st.markdown("**One video, closely**")
    with_faces = rep.videos
    options = with_faces["video_id"].tolist()
    if not options:
        return
    if st.session_state.get("an_video") not in options:
        st.session_state["an_video"] = options[0]
    shown = table.set_index(rep.videos["video_id"])["file"]
    vid = st.selectbox("Video", options, key="an_video", format_func=lambda x: str(shown.get(x, x)))
    st.caption("Its verdict and the training faces behind it come from the same definition as the table above; "
               "nearest faces are measured in the model's **embedding space**, not on the t-SNE map (t-SNE keeps "
               "neighbourhoods only roughly and distorts distances).")
    video_panel.panel(view, vid, show_map=True, key="an_drill", map_datasets=tuple(known + [dataset]))


def class_namer(rep, style):
    """Class id (or verdict label) -> the name shown: the run's display names, nothing raw beside them."""
    def name(c):
        if not isinstance(c, str):
            return ""
        shown = rep.display(c)  # the run's taxonomy as the report read it
        return shown if shown != c else style.name(c)
    return name


def video_rows(rep, set_files: pd.DataFrame, name) -> pd.DataFrame:
    """The per-video table as shown and exported: display names only; the file's original name and its name
    on disk; one share column per predicted class, named by its display name."""
    v = rep.videos.copy()
    original = set_files.set_index("video_id")["original_name"] if len(set_files) else pd.Series(dtype=object)
    v["file"] = [o if isinstance(o, str) else r.split("/", 1)[-1]
                 for o, r in zip(v["video_id"].map(original), v["relpath"])]
    for col in ("verdict", "pred_class", "true_class"):
        if col in v.columns:
            v[col] = [name(c) for c in v[col]]
    share_cols = [c for c in v.columns if c.startswith("share_")]
    renamed = {c: f"share {name(c[len('share_'):])}" for c in share_cols}
    cols = ["file", "relpath", "verdict", "pred_class", "agreement", "n_frames", "real_score", "open_score",
            "open_ratio", *share_cols, "status", "reason"] + (["true_class"] if rep.labelled else [])
    cols = [c for c in cols if c in v.columns]
    out = v[cols].rename(columns={"relpath": "on disk", "pred_class": "predicted class", "open_score": "open-set score",
                                  "open_ratio": "score / threshold", "true_class": "true class", **renamed})
    if "status" in out.columns:
        out["status"] = [STATUS_WORDS.get(x, x) if isinstance(x, str) else STATUS_WORDS[None] for x in out["status"]]
    return out


def _selected_row(event) -> int | None:
    sel = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", None)
    rows = (sel.get("rows") if isinstance(sel, dict) else getattr(sel, "rows", None)) or []
    return int(rows[0]) if rows else None


def page() -> None:
    view = controls.current()
    st.header("Analyse an unknown set")
    st.caption("Which known deepfake methods does a collection of videos resemble? Faces are extracted with the "
               "run's face settings, embedded by its model, classified, and placed into its map. Videos unlike "
               "every known class are flagged *resembles no known class* instead of getting the nearest class.")
    if view is None or view.status != "finished":
        st.info("Pick a finished run in the sidebar to analyse with.")
        return
    run_config = _run_config(view)
    st.markdown(f"Run: {literal(view.run_id)} ({plain(view.approach)}); classifier shown: {literal(view.classifier)}")
    if get_approach(view.approach).trains:
        _source_form(view, run_config)
    else:  # imported embeddings: no model to embed videos with
        st.info("This run holds imported embeddings: there is no model here to embed new videos with. Add an unknown "
                "set's embeddings from the same detector with "
                + literal(f"dfatlas import-embeddings FILE --run {view.run_id} --unknown NAME")
                + " (or `Atlas.analyze` in Python); its analysis shows below.")
    st.subheader("2. Progress")
    if st.session_state.get(JOB_KEY):
        _poll(view.path)
    else:
        st.caption("No analysis running in this session.")
    sets = analysed_sets(view.path, view.sig, view.run_id)
    options = sets["dataset"].drop_duplicates().tolist()
    if not options:
        st.info("No unknown set has been analysed with this run yet.")
        return
    want = st.session_state.get(SET_KEY)
    if want in options and st.session_state.get("an_set") != want:
        st.session_state["an_set"] = want
    if st.session_state.get("an_set") not in options:
        st.session_state["an_set"] = options[0]
    dataset = st.selectbox("Analysed set", options, key="an_set")
    results(view, dataset)


page()
