"""The sidebar controls shared by every page, synced with the URL (st.query_params).

Widgets carry `key=`; on a session's first run the keys are seeded from the
query string, and after every run the query string is rewritten from them,
so a view is shareable as a link.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
import streamlit as st


from engine.approaches import choose_classifier, display_label
from engine.classify import CLASSIFIERS, classifier_order
from engine.embedding_import import import_note
from engine.metrics import AGGREGATIONS, DEFAULT_AGGREGATION, DEFAULT_TOP_K
from engine.scores import LEVELS

from .figures import COLOUR_MODES, ClassStyle

# widget key -> query parameter
PARAMS = {"run": "run", "classifier": "clf", "datasets": "db", "level": "level", "colour": "colour",
          "aggregation": "agg", "top_k": "k"}
ALL = frozenset(PARAMS)
AGGREGATION_NAMES = {"mean": "mean (the paper's)", "median": "median", "max-fake": "max-fake (lowest frame)",
                     "top-k": "top-k (mean of the k most fake frames)"}


@dataclass(frozen=True)
class View:
    path: str
    sig: tuple
    run_id: str
    approach: str
    status: str
    classifier: str | None
    datasets: tuple[str, ...]
    level: str
    colour: str
    style: ClassStyle
    aggregation: str = DEFAULT_AGGREGATION  # a video's real-score from its frames' (engine.metrics.AGGREGATIONS)
    top_k: int = DEFAULT_TOP_K


def _seed_from_url() -> None:
    if st.session_state.get("_url_seeded"):
        return
    st.session_state["_url_seeded"] = True
    qp = st.query_params
    for key, param in PARAMS.items():
        if param in qp and key not in st.session_state:
            st.session_state[key] = qp.get_all(param) if key == "datasets" else qp.get(param)
    if "top_k" in st.session_state:  # the URL gives text
        try:
            st.session_state["top_k"] = max(1, int(st.session_state["top_k"]))
        except (TypeError, ValueError):
            st.session_state["top_k"] = DEFAULT_TOP_K


def _valid(key: str, options: list, default):
    """Keep a widget's state inside its options (the store may have changed)."""
    v = st.session_state.get(key)
    if isinstance(default, list):
        v = [x for x in (v or []) if x in options] if v is not None else None
        if not v:
            st.session_state[key] = default
        else:
            st.session_state[key] = v
    elif v not in options:
        st.session_state[key] = default


def _write_url(view: View) -> None:
    want = {"run": view.run_id, "clf": view.classifier or "", "db": list(view.datasets), "level": view.level,
            "colour": view.colour, "agg": "" if view.aggregation == DEFAULT_AGGREGATION else view.aggregation,
            "k": str(view.top_k) if view.aggregation == "top-k" else ""}
    current = {k: (st.query_params.get_all(k) if k == "db" else st.query_params.get(k)) for k in want}
    if current != want:  # only the sidebar's own parameters: the map keeps its own (sel, zoom, hc, hm)
        for k, v in want.items():
            if v in ("", []):
                st.query_params.pop(k, None)
            else:
                st.query_params[k] = v


def run_label(runs: pd.DataFrame):
    by_id = runs.set_index("run_id")

    def fmt(run_id: str) -> str:
        r = by_id.loc[run_id]
        name = display_label(r["approach"], "native")
        extra = "" if r["status"] == "finished" else f" — {r['status']}"
        return f"{name} ({run_id}){extra}"

    return fmt


def map_datasets(ov: dict, run_id: str, classifier: str | None) -> list[str]:
    """Datasets that can be shown for a run: everything predicted except the super-set's train/val."""
    pred = ov["predicted"]
    have = pred.loc[(pred["run_id"] == run_id) & (pred["classifier"] == classifier), "dataset"].unique().tolist()
    ds = ov["datasets"].set_index("dataset")
    skip = {d for d in have if d in ds.index and ds.loc[d, "role"] == "superset" and ds.loc[d, "split"] in
            ("train", "val")}
    role_rank = {"superset": 0, "cross_db": 1, "unknown": 2}
    return sorted((d for d in have if d not in skip),
                  key=lambda d: (role_rank.get(ds.loc[d, "role"], 3) if d in ds.index else 3, d))


class _Hidden:
    """Stands in for the sidebar on a page that does not use a control: the control is not drawn and
    its value (kept in session state, so it survives the page) is passed through."""

    @staticmethod
    def _value(label, options=None, *, key, **_kw):
        return st.session_state.get(key)

    selectbox = radio = multiselect = number_input = _value


def sidebar(path: str, sig: tuple, ov: dict, shown=ALL) -> View | None:
    """Draw the shared controls that act on the current page (`shown`); None when there is nothing to
    choose yet. Every control's value is kept and stays in the URL, drawn or not."""
    _seed_from_url()
    for key in PARAMS:  # keep the values of controls this page does not draw (Streamlit drops them)
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
    runs = ov["runs"]
    if runs.empty:
        return None
    hidden = _Hidden()

    def bar(key):  # where control `key` goes: the sidebar, or nowhere on this page
        return st.sidebar if key in shown else hidden
    run_ids = runs["run_id"].tolist()
    _valid("run", run_ids, run_ids[min(1, len(run_ids) - 1)] if len(run_ids) > 1 else run_ids[0])
    run_id = bar("run").selectbox("Run / approach", run_ids, key="run", format_func=run_label(runs))
    row = runs.loc[runs["run_id"] == run_id].iloc[0]

    clfs = ov["classifiers"]
    available = set(clfs.loc[clfs["run_id"] == run_id, "classifier"]) | set(
        ov["predicted"].loc[ov["predicted"]["run_id"] == run_id, "classifier"])
    options = classifier_order(available)
    classifier = None
    if options:
        default = choose_classifier(row["approach"], options)
        # A run change starts from the new run's default classifier (the paper's choice for its approach);
        # on the session's first run the URL's classifier applies when the run has it.
        if st.session_state.get("_classifier_run") not in (None, run_id):
            st.session_state["classifier"] = default
        st.session_state["_classifier_run"] = run_id
        _valid("classifier", options, default)
        classifier = bar("classifier").selectbox("Classifier", options, key="classifier",
                                  format_func=lambda c: CLASSIFIERS[c].title if c in CLASSIFIERS else c)
    dsets = map_datasets(ov, run_id, classifier) if classifier else []
    ds_meta = ov["datasets"].set_index("dataset")
    default_ds = [d for d in dsets if d in ds_meta.index and ds_meta.loc[d, "role"] == "superset"] or dsets[:1]
    _valid("datasets", dsets, default_ds)
    datasets = bar("datasets").multiselect("Test database(s)", dsets, key="datasets",
                              format_func=lambda d: f"{d} ({ds_meta.loc[d, 'role']})" if d in ds_meta.index else d)
    _valid("level", list(LEVELS), "video")
    level = bar("level").radio("Level", LEVELS, key="level", horizontal=True,
                     help="video: a video's real-score comes from its frames' (Video score), its class is the majority vote")
    _valid("aggregation", list(AGGREGATIONS), DEFAULT_AGGREGATION)
    aggregation = bar("aggregation").selectbox(
        "Video score", list(AGGREGATIONS), key="aggregation", format_func=AGGREGATION_NAMES.get,
        help="how a video's real-score comes from its frames' (video level; θ is recomputed on validation videos "
             "scored the same way). A video's predicted class stays the majority of its frames.")
    top_k = DEFAULT_TOP_K
    if aggregation == "top-k":
        if not isinstance(st.session_state.get("top_k"), int) or st.session_state["top_k"] < 1:
            st.session_state["top_k"] = DEFAULT_TOP_K
        top_k = int(bar("aggregation").number_input("k (most fake frames averaged)", min_value=1, max_value=1000,
                                                     step=1, key="top_k") or DEFAULT_TOP_K)
    _valid("colour", list(COLOUR_MODES), "pred")
    colour = bar("colour").radio("Colour by", list(COLOUR_MODES), key="colour", format_func=COLOUR_MODES.get)
    view = View(path, sig, run_id, row["approach"], row["status"], classifier, tuple(datasets), level, colour,
                ClassStyle.for_run(row["classes"], row.get("taxonomy_json")), aggregation, top_k)
    lacking = import_note(_stored_config(row.get("config_json")))
    if lacking:  # an imported run: what its pages cannot show (thumbnails, a frame level of its own)
        st.sidebar.info(lacking[:1].upper() + lacking[1:] + ".")
    _write_url(view)
    _remember(view)
    return view


def _stored_config(config_json) -> dict:
    try:
        cfg = json.loads(config_json) if isinstance(config_json, str) else {}
    except ValueError:
        return {}
    return cfg if isinstance(cfg, dict) else {}


def _remember(view: View) -> None:
    """The (run, classifier) pairs this session looked at, most recent last (Compare's defaults)."""
    if view.classifier is None:
        return
    pick = f"{view.run_id}|{view.classifier}"
    seen = st.session_state.setdefault("_viewed", [])
    if not seen or seen[-1] != pick:
        if pick in seen:
            seen.remove(pick)
        seen.append(pick)


def viewed() -> list[str]:
    return list(st.session_state.get("_viewed", []))


def current() -> View | None:
    return st.session_state.get("_view")
