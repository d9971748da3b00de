"""Analyse: attribute an unknown set of videos with the chosen run.

The page never computes: it starts `dfatlas analyze ... --job-id ID` as a
background subprocess (engine.jobs) and polls the job's row in the store; the
results it shows are read back from the store (engine.analysis.build_report).

Safety: the folders it may read are the run's config `[dashboard]
allowed_roots` (taken from the run's stored config, so no extra flag is
needed), checked after resolving symlinks; uploads are limited to the
smaller of `[dashboard] max_upload_mb` and the server's `--max-upload-mb`,
must be videos (suffix and container signature)
and are written under `<workspace>/uploads/` with sanitised names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import controls, figures, queries
from dashboard.plain import literal, plain
from data_catalog.databases.base import VIDEO_SUFFIXES
from data_catalog.errors import AtlasError
from dashboard.uploads import save_uploads
from engine import analysis as an
from engine import jobs
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
def report(path: str, sig: tuple, run_id: str, dataset: str, classifier: str | None):
    store = queries.read_store(path)
    return an.build_report(store, run_id, dataset, classifier=classifier)


@st.cache_data(show_spinner=False, max_entries=32)
def evidence(path: str, sig: tuple, run_id: str, video_id: str, classifier: str, k: int):
    return an.video_evidence(queries.read_store(path), run_id, video_id, classifier=classifier, k=k)


@st.cache_data(show_spinner=False, max_entries=16)
def thumbs(path: str, sig: tuple, run_id: str, dataset: str, classifier: str, per_class: int):
    return an.class_thumbnails(queries.read_store(path), run_id, dataset, classifier, per_class=per_class)


@st.cache_data(show_spinner=False, max_entries=8)
def analysed_sets(path: str, sig: tuple, run_id: str) -> pd.DataFrame:
    return an.list_analyses(queries.read_store(path), run_id)


def _start(view, run_config: dict, input_path: Path, name: str, replace: bool, roots: list[str]) -> None:
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
    st.session_state[JOB_KEY] = {"job_id": job_id, "run_id": view.run_id, "name": name}


def upload_limit_mb(config_mb: float) -> float:
    """The upload limit in force: the config's, or the server's (`dfatlas serve --max-upload-mb`) when smaller."""
    return min(float(config_mb), float(st.get_option("server.maxUploadSize")))


def _source_form(view, run_config: dict) -> None:
    roots, config_mb = dashboard_settings(run_config)
    max_mb = upload_limit_mb(config_mb)
    st.subheader("1. The videos")
    mode = st.radio("Source", ["Folder on this machine", "Upload videos"], horizontal=True, key="an_mode")
    chosen: Path | None = None
    uploads = None
    if mode == "Folder on this machine":
        existing = [r for r in roots if os.path.isdir(r)]
        if not existing:
            st.info("No folder is open to the dashboard. Add folders to `[dashboard] allowed_roots` in the "
                    "experiment config (the run stores it), or upload videos instead.")
        else:
            root = st.selectbox("Allowed root", existing, key="an_root")
            sub = st.selectbox("Folder (searched recursively for videos)", subfolders(root), key="an_sub")
            try:
                chosen = an.resolve_under_roots(Path(root) / sub, roots)
            except AtlasError as exc:
                st.error(plain(exc))
                chosen = None
    else:
        uploads = st.file_uploader(
            f"Videos ({', '.join(s.lstrip('.') for s in VIDEO_SUFFIXES)}; at most {max_mb:g} MB)",
            type=[s.lstrip(".") for s in VIDEO_SUFFIXES], accept_multiple_files=True, key="an_upload")
    default_name = chosen.name if chosen is not None and chosen.name else "upload"
    name = st.text_input("Name of the set (becomes dataset unknown/<name>)", value=default_name, key="an_name")
    replace = st.checkbox("Replace a set of the same name", key="an_replace")
    if st.button("Analyse", type="primary", key="an_go"):
        try:
            name = an.sanitize_name(name)  # the one set-name rule, as `dfatlas analyze --name`
            if mode == "Upload videos":
                if not uploads:
                    raise an.AnalysisError("choose one or more videos to upload first")
                res = save_uploads(resolve_workspace(None), name, uploads, max_mb)
                for r in res.refused:
                    st.warning("Refused: " + plain(r))
                chosen = res.folder
            elif chosen is None:
                raise an.AnalysisError("choose a folder under the allowed roots first")
            _start(view, run_config, chosen, name, replace,
                   [str(resolve_workspace(None).uploads_dir)] if mode == "Upload videos" else roots)
        except (AtlasError, OSError) as exc:
            st.error(f"Could not start the analysis: {plain(one_line(exc))}")


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
    rep = report(view.path, view.sig, view.run_id, dataset, view.classifier)
    style = view.style
    st.subheader(f"3. Results: {literal(dataset)}")
    for line in rep.summary_lines():
        st.markdown("- " + plain(line))
    st.markdown("**Verdicts** (one per video: the classifier's class, or *resembles no known class*)")
    shares = rep.class_shares.assign(**{
        "class": [c if c == an.OPEN_SET_LABEL else style.name(c) for c in rep.class_shares["class"]],
        "video %": (100 * rep.class_shares["video_share"]).round(1),
        "face %": (100 * rep.class_shares["face_share"]).round(1)})[["class", "videos", "video %", "faces", "face %"]]
    st.dataframe(shares, hide_index=True)

    # the map: the new set among the known ones
    ov = queries.overview(view.path, view.sig)
    ds = ov["datasets"]
    known = ds.loc[(ds["role"] == "superset") & (ds["split"] == "test"), "dataset"].tolist()
    pts = queries.map_points(view.path, view.sig, view.run_id, rep.classifier, tuple(known + [dataset]), view.level)
    if len(pts):
        colour = st.radio("Map colour", ["database", "pred"], horizontal=True, key="an_colour",
                          format_func={"database": "set vs known databases", "pred": "predicted class"}.get)
        fig, _ = figures.map_figure(pts, style, colour_mode=colour, height=520)
        st.plotly_chart(fig, key="an_map", config={"displaylogo": False})
        st.caption(f"{int((pts['dataset'] == dataset).sum())} faces of the set placed into the run's existing map "
                   "(openTSNE transform: the known sets keep their coordinates).")
    else:
        st.info("This run has no map points to show yet.")

    # thumbnails per predicted class
    th = thumbs(view.path, view.sig, view.run_id, dataset, rep.classifier, 8)
    if len(th):
        st.markdown("**Faces per predicted class**")
        for cls_idx, grp in th.groupby("pred_class", sort=True):
            name = "fake" if cls_idx < 0 else rep.classes[int(cls_idx)]
            imgs = [b for b in (_image(x) for x in grp["thumbnail"]) if b]
            if imgs:
                st.caption(plain(style.name(name)))
                st.image(imgs, width=64)

    # per-video table
    st.markdown("**Per video**")
    v = rep.videos.copy()
    share_cols = [c for c in v.columns if c.startswith("share_")]
    cols = ["relpath", "verdict", "pred_class", "agreement", "n_frames", "real_score", "open_ratio", "open_score",
            *share_cols, "status"] + (["true_class"] if rep.labelled else [])
    cols = [c for c in cols if c in v.columns]
    table = v[cols].rename(columns={"relpath": "video"})
    st.dataframe(table, hide_index=True)
    st.download_button("Download the table (CSV)", table.to_csv(index=False).encode(),
                       file_name=f"{dataset.replace('/', '_')}_{view.run_id}.csv", mime="text/csv", key="an_csv")

    # evidence
    st.markdown("**Evidence for one video**")
    with_faces = v.loc[v["verdict"] != an.NO_FACE_LABEL]
    if with_faces.empty:
        return
    vid = st.selectbox("Video", with_faces["video_id"].tolist(), key="an_video",
                       format_func=lambda x: x.split("/", 2)[-1])
    ev = evidence(view.path, view.sig, view.run_id, vid, rep.classifier, 12)
    st.markdown(f"Verdict: **{plain(ev.verdict if ev.verdict == an.OPEN_SET_LABEL else style.name(ev.verdict))}** — "
                f"classifier {literal(ev.classifier)}: {plain(style.name(ev.pred_class))}; open-set score "
                f"{ev.open_score:.4g} (threshold {ev.open_threshold:.4g}: {plain(ev.score_definition)}).")
    st.caption(f"Nearest training and validation faces, one per identity, "
               f"{'of any class' if ev.open_set else 'of the verdict class'}, by {plain(ev.distance)} — measured "
               "where the classifiers work, not on the t-SNE map. Of the 12 nearest identities of any class, "
               f"{100 * ev.agreement:.0f} % are of the classifier's class.")
    if ev.faces.empty:
        st.info("No training faces with embeddings to compare with.")
        return
    cols_ = st.columns(6)
    for i, row in enumerate(ev.faces.itertuples()):
        img = _image(row.thumbnail)
        with cols_[i % 6]:
            if img:
                st.image(img, width=64)
            st.caption(f"{plain(style.name(row.true_class))}  \nd = {row.distance:.3f}")


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
    _source_form(view, run_config)
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
