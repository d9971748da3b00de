"""The map component on a page: the run's payload, the view's config, its state and selection."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

from dashboard import controls, queries

from . import legends
from . import scatter_map, selection, view_state, write_url


def run_payload(view, run_id: str):
    """The payload of one run: every classifier with predictions, every dataset the sidebar offers it."""
    ov = queries.overview(view.path, view.sig)
    pred = ov["predicted"]
    clfs = set(pred.loc[pred["run_id"] == run_id, "classifier"])
    datasets = sorted({d for c in clfs for d in controls.map_datasets(ov, run_id, c)})
    return queries.map_payload(view.path, view.sig, run_id, tuple(datasets))


def explore_map(view, pts, key: str = "map", height: int = 620, command: dict | None = None):
    """Draw the Explore map; returns (rows of `pts` selected, the selection or None, the state).

    The map is a fragment: a change that only the browser needs (zoom, legend entries, density, highlight)
    reruns the map alone, to keep the state and the URL; a change of the selection (or of the legend
    while there is one) reruns the page, whose panel shows the selected rows."""
    payload = run_payload(view, view.run_id)
    if payload is None:
        return None
    state = view_state(key)
    sel = selection.valid(state.get("selection"), payload.hash)
    if command and "select" in command and command.get("seq") != st.session_state.get(f"_{key}_command_seq"):
        st.session_state[f"_{key}_command_seq"] = command.get("seq")  # a new selection command: it wins this run
        sel = dict(command["select"], hash=payload.hash) if command.get("select") else None
        state["selection"] = sel
    config = legends.map_config(view, pts, height=height)
    config["highlight_sets"] = {"label": "unknown sets", "datasets": unknown_sets(view)}
    st.session_state[f"_{key}_panel"] = _panel_inputs(dict(state, selection=sel), payload.hash)
    st.session_state[f"_{key}_drawn_by_page"] = True
    _map_fragment(payload, key, config, state, command)
    rows = selection.selected_rows(pts, sel, view.level, view.colour, state.get("hidden_colour") or (),
                                   state.get("hidden_marker") or (), {c: view.style.name(c) for c in view.style.order()})
    write_url(dict(state, selection=sel))
    return rows, sel, state


def _panel_inputs(state: dict, payload_hash: str) -> str:
    """What the page's selection panel depends on: the selection, and the hidden entries while there is one."""
    sel = selection.valid(state.get("selection"), payload_hash)
    hidden = (sorted(state.get("hidden_colour") or []), sorted(state.get("hidden_marker") or [])) if sel else None
    return json.dumps([sel, hidden], sort_keys=True, default=str)


@st.fragment
def _map_fragment(payload, key: str, config: dict, state: dict, command: dict | None) -> None:
    scatter_map(payload, key=key, config=config, view_state=state, command=command)
    if st.session_state.get(f"_{key}_drawn_by_page"):  # this run is the page's: nothing more to do
        st.session_state[f"_{key}_drawn_by_page"] = False
        return
    now = view_state(key)  # the map alone reran: its value changed
    if _panel_inputs(now, payload.hash) != st.session_state.get(f"_{key}_panel"):
        st.rerun()  # the selection changed: the page's panel follows
    write_url(dict(now, selection=selection.valid(now.get("selection"), payload.hash)))


def unknown_sets(view) -> list[str]:
    """The shown datasets that are unknown (analysed) sets: the toolbar offers to highlight them."""
    ds = queries.overview(view.path, view.sig)["datasets"]
    unknown = set(ds.loc[ds["role"] == "unknown", "dataset"])
    return [d for d in view.datasets if d in unknown]


def linked_map(view, pts, run_id: str, classifier: str, key: str, group: str, height: int = 480) -> dict | None:
    """One of Compare's maps: hover and selection are shared in the browser with the others of `group`."""
    payload = run_payload(view, run_id)
    if payload is None:
        return None
    return scatter_map(payload, key=key, config=legends.map_config(view, pts, classifier, height=height),
                       view_state=view_state(key, url=False), group=group)


def no_rows() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)
