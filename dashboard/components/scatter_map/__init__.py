"""The embedding map as a Streamlit component (components v1, `declare_component(path=...)`), drawn
by regl-scatterplot (WebGL) with a marker-shape layer of our own: colour = predicted class,
marker = true class.

How the point bytes reach the page: the run's payload (`payload.MapPayload`, one Arrow IPC buffer) is
a bytes argument of the component, which Streamlit sends as binary inside its websocket message —
once per (map key, payload hash). Later reruns pass `payload=None` and the same hash; a browser
frame that lost its copy (page reload, navigating away and back) asks again through its value
(`have`/`req`), and `answered` (the last request the bytes were sent for) lets a frame that asked, was
answered and still holds nothing (that render was overtaken by the next before it reached the frame) ask
once more. No extra HTTP route: the built files are served by Streamlit under /component/…,
so they pass the same Host and framing checks (`dashboard.http_guard`) as the rest of the page.

`config` (what the page shows; a change redraws in the browser, no point data is sent):
classifier, datasets, level, colour, colour_title, colour_legend [{id, name, color}], marker,
marker_title, marker_legend [{id, name, symbol}], class_names {id: name}, height, and optionally
- `highlight` {"datasets": [...], "videos": [...]}: always drawn last and larger, the others dimmed;
- `highlight_sets` {"label": "unknown sets", "datasets": [...]}: offered as a toolbar toggle
  ("Highlight unknown sets"); its state is the value's `highlight_on` (and `hu=1` in the URL).

The component's value (JSON) carries the view state back, never point data:
- `selection`: {"kind": "lasso" | "box", "polygon": [[x, y], ...] (map coordinates)} |
  {"kind": "cell", "true", "pred"} | {"kind": "search", "query"} | {"kind": "videos", "videos": [...]},
  each with the payload `hash` it was made on (`selection.selected_rows` turns it into rows);
- `zoom` [x, y, camera distance] or None (the whole map), `hidden_colour`, `hidden_marker` (legend
  entries hidden), `density`, `highlight_on`;
- `click` {"video": video id, "dataset", "level": "frame" | "video", "seq": n}: the last point clicked
  (a click also selects that point's video). `clicked(key)` returns it once per click: the video
  drill-down opens from it.
`view_state()` keeps the state across reruns and page changes and in the URL (st.query_params).

`command` (one-off, applied once per new `seq`): {"seq": n, "select": selection | None, "zoom": bool}
sets or clears the selection (and zooms to it); {"seq": n, "focus": {"video": id} | None} highlights
one video (drawn last and larger) and zooms to it — "show this video on the map".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import streamlit as st

BUILD_DIR = Path(__file__).resolve().parent / "build"
URL_PARAMS = ("sel", "zoom", "hc", "hm", "hu")
STATE_KEYS = ("selection", "zoom", "hidden_colour", "hidden_marker", "density", "highlight_on")
_component = None


def available() -> bool:
    """The built files are present and the plotly fallback is not asked for (DFATLAS_MAP=plotly)."""
    return os.environ.get("DFATLAS_MAP", "").strip().lower() != "plotly" and (BUILD_DIR / "index.html").is_file()


def _declared():
    global _component
    if _component is None:
        import streamlit.components.v1 as components

        _component = components.declare_component("dfatlas_scatter_map", path=str(BUILD_DIR))
    return _component


def _sent() -> dict:
    return st.session_state.setdefault("_scatter_map_sent", {})


def scatter_map(payload, key: str, config: dict, view_state: dict | None = None, command: dict | None = None,
                group: str | None = None) -> dict:
    """Draw the map; returns its value (see the module docstring; {} before the first).

    `payload` is a `MapPayload`; its bytes are sent only when this frame does not hold them yet.
    `group`: maps of one group share hover and selection in the browser (Compare's two maps).
    """
    value = st.session_state.get(key) or {}
    sent = _sent()
    asked = value.get("req")  # "<frame id>:<count>" of the frame's payload requests (a new or reloaded frame asks)
    resend = value.get("have") != payload.hash and asked is not None and sent.get(key + ":req") != asked
    send = sent.get(key) != payload.hash or resend
    if send:
        sent[key] = payload.hash
        sent[key + ":req"] = asked
    out = _declared()(payload=payload.data if send else None, payload_hash=payload.hash, answered=sent.get(key + ":req"),
                      config=config,
                      view_state=view_state or {}, command=command, group=group, key=key, default={},
                      height=config.get("height", 620))
    return out or {}


# ---- view state: across reruns, page changes and in the URL --------------------------------------

def _from_url() -> dict:
    qp = st.query_params
    state = {}
    try:
        if "sel" in qp:
            state["selection"] = json.loads(qp.get("sel"))
        if "zoom" in qp:
            state["zoom"] = [float(v) for v in qp.get("zoom").split(",")][:3]
    except (ValueError, TypeError):
        pass  # a hand-edited URL: start from the full map
    state["hidden_colour"] = qp.get_all("hc")
    state["hidden_marker"] = qp.get_all("hm")
    state["highlight_on"] = qp.get("hu") == "1"
    return state


def view_state(key: str, url: bool = True) -> dict:
    """The map's last known state: its component value this run, else what this session saw before
    (another page visited in between), else the URL's (a shared link)."""
    saved = f"_scatter_map_state:{key}"
    value = st.session_state.get(key)
    if isinstance(value, dict) and value:
        st.session_state[saved] = {k: value.get(k) for k in STATE_KEYS}
    elif saved not in st.session_state:
        st.session_state[saved] = _from_url() if url else {}
    return dict(st.session_state[saved])


def write_url(state: dict) -> None:
    """Put the selection, zoom, hidden legend entries and the highlight in the URL (only when they changed)."""
    want = {
        "hu": "1" if state.get("highlight_on") else None,
        "sel": json.dumps(state["selection"], separators=(",", ":")) if state.get("selection") else None,
        "zoom": ",".join(f"{v:g}" for v in state["zoom"]) if state.get("zoom") else None,
        "hc": list(state.get("hidden_colour") or []) or None,
        "hm": list(state.get("hidden_marker") or []) or None,
    }
    qp = st.query_params
    for name, v in want.items():
        have = qp.get_all(name) if name in ("hc", "hm") else qp.get(name)
        if v is None:
            if name in qp:
                del qp[name]
        elif have != v:
            qp[name] = v


def clicked(key: str = "map", state=None) -> dict | None:
    """The point clicked on map `key` since the last call ({"video", "dataset", "level", "seq"}), else None:
    each click is returned once (the video drill-down opens from it). `state`: st.session_state."""
    state = st.session_state if state is None else state
    value = state.get(key)
    hit = value.get("click") if isinstance(value, dict) else None
    seen = f"_scatter_map_click_seen:{key}"
    if not isinstance(hit, dict) or not hit.get("video") or state.get(seen) == hit.get("seq"):
        return None
    state[seen] = hit.get("seq")
    return {k: hit.get(k) for k in ("video", "dataset", "level", "seq")}
