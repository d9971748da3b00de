"""The video drill-down panel: one video's faces, per-frame scores, verdict, nearest training identities, place.

Pages open it with a video id — from a map point click (the map component's `click` value), a video picker
or search, a table row, or the Analyse report — through `open_video`; `panel` draws whatever video is open.
It reads `engine.analysis.video_drilldown` (cached in `dashboard.queries.drilldown`) and draws its own small
position map, so it does not depend on how (or whether) the page draws a map.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from . import figures, queries
from .plain import literal, plain

OPEN_KEY = "_drill_video"   # {"video": id, "source": where it was opened from}
MAX_NEAREST = 12
MAX_BACKGROUND = 5000  # map points drawn behind the video in the panel's own map


def open_video(video_id: str | None, source: str) -> None:
    """Make `video_id` the open drill-down (None closes it)."""
    st.session_state[OPEN_KEY] = None if not video_id else {"video": str(video_id), "source": source}


def opened() -> dict | None:
    v = st.session_state.get(OPEN_KEY)
    return v if isinstance(v, dict) and v.get("video") else None


def from_click(value_click, key: str = "map") -> None:
    """Open the video of a new map click (the component's value `click = {video, seq}`; each seq once)."""
    if not isinstance(value_click, dict) or not value_click.get("video"):
        return
    seen = f"_drill_click_seq:{key}"
    if st.session_state.get(seen) != value_click.get("seq"):
        st.session_state[seen] = value_click.get("seq")
        open_video(value_click["video"], "map point")


def picker(view, key: str, candidates: list[str] | None = None, label: str = "Open a video") -> None:
    """A search box and a video picker (the way in that needs no map): opens the chosen video."""
    text = st.text_input("Find a video (part of its name)", key=f"{key}_find", placeholder="e.g. 000123")
    options = list(candidates or [])
    if text.strip():
        options = queries.find_videos(view.path, view.sig, view.run_id, text.strip(), 50) + \
            [o for o in options if text.strip().lower() in o.lower()]
        options = list(dict.fromkeys(options))
    if not options:
        if text.strip():
            st.caption("No video of this run matches.")
        return
    current = (opened() or {}).get("video")

    def chosen():
        open_video(st.session_state.get(f"{key}_pick"), "video picker")

    st.selectbox(label, options, index=options.index(current) if current in options else None, key=f"{key}_pick",
                 on_change=chosen, placeholder="choose a video", format_func=lambda v: v.split("/", 1)[-1])


def panel(view, video_id: str | None = None, show_map: bool = True, key: str = "drill",
          map_datasets: tuple[str, ...] | None = None) -> None:
    """Draw the drill-down of `video_id` (default: the open one) under the view's run, classifier and aggregation."""
    info = opened()
    video_id = video_id or (info or {}).get("video")
    if not video_id:
        return
    d = queries.drilldown(view.path, view.sig, view.run_id, video_id, view.classifier, view.aggregation, view.top_k,
                          MAX_NEAREST)
    style = Names(d, view.style)
    with st.container(key=f"{key}_panel", border=True):
        shown_name = d.original_name or d.relpath
        st.markdown(f"**Video {literal(shown_name)}** · {literal(d.dataset)}"
                    + (f" · true class {plain(style.name(d.true_class))}" if d.true_class else "")
                    + (" · :orange-badge[SYNTHETIC]" if d.synthetic else ""))
        if d.original_name and d.original_name != d.relpath.rsplit("/", 1)[-1]:
            st.caption(f"on disk: {literal(d.relpath)}")
        if opened() and st.button("Close the drill-down", key=f"{key}_close", icon=":material/close:",
                                  type="tertiary"):
            open_video(None, "")
            st.rerun()
        if info and info.get("source"):
            st.caption(f"opened from: {plain(info['source'])}")
        if d.frames.empty:
            st.info(f"No face of this video was found ({plain(d.status or 'not extracted')}"
                    f"{': ' + plain(d.reason) if d.reason else ''}): no verdict.")
            return
        decision = {True: "accepted as real", False: "rejected as fake", None: "θ undefined"}[d.accepted_as_real]
        verdict = style.name(d.verdict)
        st.markdown(
            f"**Verdict: {plain(verdict)}** · predicted class {plain(style.name(d.pred_class))} "
            f"(majority of frames, {100 * (d.agreement or 0):.0f} % of {len(d.frames)}) · "
            f"real-score {d.real_score:.3f} ({plain(d.scoring)}) · θ = "
            f"{'—' if d.theta is None else f'{d.theta:.3f}'}: {decision} · open-set score "
            f"{'—' if d.open_ratio is None else f'{d.open_ratio:.2f}'} × its threshold (> 1: resembles no known "
            f"class)")
        st.caption(f"Classifier {plain(d.classifier)}; its class shares over the frames (the video's nearest known "
                   "classes): " + ", ".join(f"{plain(style.name(c))} {100 * v:.0f} %" for c, v in
                                             sorted(d.class_shares.items(), key=lambda kv: -kv[1])[:3])
                   + f" · open-set score: {plain(d.score_definition)}")
        thumbs = [bytes(t) if isinstance(t, (bytes, bytearray, memoryview)) else b"" for t in d.frames["thumbnail"]]
        caps = [f"#{int(r.frame_index)} {plain(style.name(r.pred_class)) if r.pred_class else '—'} "
                f"{'' if r.real_score != r.real_score else f'{r.real_score:.2f}'}" for r in d.frames.itertuples()]
        have = [i for i, b in enumerate(thumbs) if b]
        st.markdown("**Its faces, frame by frame** (predicted class, real-score)")
        if have:
            st.image([thumbs[i] for i in have], caption=[caps[i] for i in have], width=64)
        st.plotly_chart(figures.frame_scores_figure(d.frames["frame_index"], d.frames["real_score"], d.theta),
                        key=f"{key}_chart", config={"displaylogo": False})
        _nearest(d, style)
        if show_map:
            _position(view, d, key, map_datasets)


class Names:
    """Class id -> display name: the run's taxonomy as the engine read it, else the page's style."""

    def __init__(self, d, style):
        self.d, self.style = d, style

    def name(self, c) -> str:
        if not isinstance(c, str):
            return "—"
        shown = self.d.display(c)
        return shown if shown != c else self.style.name(c)


def _nearest(d, style) -> None:
    of = ("of any class (the video resembles none)" if d.open_set
          else f"of its class, {plain(style.name(d.pred_class))}")
    st.markdown(f"**Nearest training faces** {of} — at most one per identity, in the model's **embedding space** "
                f"({len(d.nearest)} identities; distance: {plain(d.distance)})")
    if d.nearest.empty:
        st.caption("No training faces with embeddings to compare with.")
        return
    if d.neighbour_agreement is not None:
        st.caption(f"{100 * d.neighbour_agreement:.0f} % of the nearest identities of any class are of the "
                   f"predicted class {plain(style.name(d.pred_class))}.")
    thumbs = [bytes(t) if isinstance(t, (bytes, bytearray, memoryview)) else b"" for t in d.nearest["thumbnail"]]
    caps = [f"{plain(style.name(r.true_class))} · d {r.distance:.3f}" for r in d.nearest.itertuples()]
    have = [i for i, b in enumerate(thumbs) if b]
    if have:
        st.image([thumbs[i] for i in have], caption=[caps[i] for i in have], width=64)


def _position(view, d, key: str, map_datasets) -> None:
    if d.position is None:
        st.caption("Not on this run's map.")
        return
    datasets = tuple(dict.fromkeys(tuple(map_datasets or view.datasets) + (d.dataset,)))
    pts = queries.map_points(view.path, view.sig, view.run_id, view.classifier, datasets, "frame")
    mine = (pts["video_id"] == d.video_id).to_numpy()
    rest = np.flatnonzero(~mine)
    if len(rest) > MAX_BACKGROUND:  # an even sample of the rest is enough to see where the video lies
        keep = np.zeros(len(pts), bool)
        keep[rest[np.linspace(0, len(rest) - 1, MAX_BACKGROUND).astype(int)]] = True
        pts, mine = pts.loc[keep | mine], mine[keep | mine]
    st.markdown("**Its place on the map** (its faces outlined, × their mean)")
    st.plotly_chart(figures.position_figure(pts.loc[~mine], pts.loc[mine], view.style), key=f"{key}_map",
                    config={"displaylogo": False})
