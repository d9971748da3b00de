"""The embedding map as a Streamlit component (components v1, `declare_component(path=...)`), drawn
by regl-scatterplot (WebGL) with a marker-shape shader of our own: colour = predicted class,
marker = true class.

How the point bytes reach the page: the run's payload (`payload.MapPayload`, one Arrow IPC buffer) is
a bytes argument of the component, which Streamlit sends as binary inside its websocket message —
once per (map key, payload hash). Later reruns pass `payload=None` and the same hash; a browser
frame that lost its copy (page reload, navigating away and back) asks again through its value
(`need`/`req`). No extra HTTP route: the built files are served by Streamlit under /component/…,
so they pass the same Host and framing checks (`dashboard.http_guard`) as the rest of the page.

The component's value (JSON) carries the view state back: the selection (polygon / box / cell /
search / videos, with the payload hash), zoom, hidden legend entries, density and clicks.
`view_state()` keeps it across reruns and page changes and in the URL (st.query_params).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import streamlit as st

BUILD_DIR = Path(__file__).resolve().parent / "build"
URL_PARAMS = ("sel", "zoom", "hc", "hm")
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
    """Draw the map; returns its state (selection, zoom, hidden entries, click; {} before the first).

    `payload` is a `MapPayload`; its bytes are sent only when this frame does not hold them yet.
    `config`: classifier, datasets, level, colour, colour_title, colour_legend [{id, name, color}],
    marker_legend [{id, name, symbol}], class_names {id: name}, height.
    """
    value = st.session_state.get(key) or {}
    sent = _sent()
    asked = value.get("req")  # the frame's count of payload requests (a reloaded frame asks again)
    resend = value.get("have") != payload.hash and asked is not None and sent.get(key + ":req") != asked
    send = sent.get(key) != payload.hash or resend
    if send:
        sent[key] = payload.hash
        sent[key + ":req"] = asked
    out = _declared()(payload=payload.data if send else None, payload_hash=payload.hash, config=config,
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
    return state


def view_state(key: str, url: bool = True) -> dict:
    """The map's last known state: its component value this run, else what this session saw before
    (another page visited in between), else the URL's (a shared link)."""
    saved = f"_scatter_map_state:{key}"
    value = st.session_state.get(key)
    if isinstance(value, dict) and value:
        st.session_state[saved] = {k: value.get(k) for k in ("selection", "zoom", "hidden_colour",
                                                              "hidden_marker", "density")}
    elif saved not in st.session_state:
        st.session_state[saved] = _from_url() if url else {}
    return dict(st.session_state[saved])


def write_url(state: dict) -> None:
    """Put the selection, zoom and hidden legend entries in the URL (only when they changed)."""
    want = {
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
