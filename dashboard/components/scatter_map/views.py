"""The map component on a page: the run's payload, the view's config, its state and selection."""

from __future__ import annotations

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
    """Draw the Explore map; returns (rows of `pts` selected, the selection or None, the state)."""
    payload = run_payload(view, view.run_id)
    if payload is None:
        return None
    state = view_state(key)
    sel = selection.valid(state.get("selection"), payload.hash)
    if command and command.get("seq") != st.session_state.get(f"_{key}_command_seq"):
        st.session_state[f"_{key}_command_seq"] = command.get("seq")  # a new command: it wins this run
        sel = dict(command["select"], hash=payload.hash) if command.get("select") else None
        state["selection"] = sel
    value = scatter_map(payload, key=key, config=legends.map_config(view, pts, height=height),
                        view_state=state, command=command)
    if value.get("click"):
        st.session_state[f"_{key}_click"] = value["click"]  # the clicked point's video (drill-down)
    rows = selection.selected_rows(pts, sel, view.level, view.colour, state.get("hidden_colour") or (),
                                   state.get("hidden_marker") or (), {c: view.style.name(c) for c in view.style.order()})
    write_url(dict(state, selection=sel))
    return rows, sel, state


def linked_map(view, pts, run_id: str, classifier: str, key: str, group: str, height: int = 480) -> dict | None:
    """One of Compare's maps: hover and selection are shared in the browser with the others of `group`."""
    payload = run_payload(view, run_id)
    if payload is None:
        return None
    return scatter_map(payload, key=key, config=legends.map_config(view, pts, classifier, height=height),
                       view_state=view_state(key, url=False), group=group)


def no_rows() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)
