"""The guided tour for class: seven steps on the demo workspace, each a view (run, databases, colour,
highlight) and two or three sentences about it. The page is `dashboard/pages/tour.py`; `dfatlas demo`
prints its URL.

A step names runs by approach and databases by role, so the same tour works on the `--size small` demo,
the default one and any workspace with those approaches. Its view is applied through the sidebar's own
state (run, classifier, databases, colour: the URL shows them as on every page) plus a highlight, a map
selection the step sets (`hl` in the URL).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from data_catalog.records import UNSEEN_FAKE
from engine.approaches import choose_classifier

from . import controls, queries


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    text: str
    approach: str | None = "attribution"
    colour: str = "pred"
    with_unseen: bool = False          # add the set whose fakes come from methods no run was trained on
                                       # (the one named '*variants*' when there is one: the demo's)
    highlight: str | None = None       # 'mistake': the most frequent confusion; 'unseen': the unseen fakes
    beside: str | None = None          # a second approach drawn beside the first (linked maps)
    numbers: bool = False              # show the paper's Table 1 instead of a map


STEPS = (
    Step("benchmark", "What you are looking at",
         "Every point is one face from a test video, placed so that faces the model finds similar lie close "
         "together (a t-SNE map of its embeddings). The videos come from a SYNTHETIC benchmark: drawn faces, "
         "manipulated by real algorithms (Poisson blending, warping, up-sampling, …), one class per method. "
         "Here colour shows each face's true class.", colour="true"),
    Step("binary", "Binary: real or fake, nothing more",
         "A detector trained only to say real or fake. Its map has two colours: it separates the fakes from "
         "the reals but has no reason to keep the methods apart, so it cannot say which method made a fake.",
         approach="binary"),
    Step("attribution", "Attribution: one cluster per method",
         "The same backbone trained with one class per method plus real. Now every method forms its own "
         "cluster: the model attributes each fake to the method that made it. Colour is the predicted class."),
    Step("mistake", "Colour = predicted, marker = true: reading a mistake",
         "Colour is what the model predicted; the marker's shape is the true class. A face whose colour does "
         "not match its marker is a mistake: the highlighted faces are the most frequent confusion, shown "
         "with their true shape inside another class's colour.", highlight="mistake"),
    Step("metric-heads", "TripletLoss and ArcFaceMod side by side",
         "Two metric-learning heads on the same backbone: TripletLoss pulls faces of one class together and "
         "pushes others away; ArcFaceMod adds class margins on a sphere. Hover on one map to see the same "
         "face on the other: compare how tight and how far apart the clusters are.",
         approach="triplet", beside="arcfacemod"),
    Step("unseen", "Methods the model never saw",
         "This set holds fakes made by variants of the known methods, which no run was trained on. The "
         "highlighted faces (unseen fakes) land next to their parent methods: the map tells an analyst "
         "which known method a new fake resembles.", with_unseen=True, highlight="unseen"),
    Step("numbers", "What the numbers mean",
         "Real is the positive class, as in biometrics: FPR is the share of fakes accepted as real, FNR the "
         "share of reals rejected. The threshold θ is set once, on the training databases' validation split, "
         "at FPR = 10 %, and never on the test set; HTER is the mean of FPR and FNR at θ.", numbers=True),
)


def step_at(index: int) -> Step:
    return STEPS[max(0, min(index, len(STEPS) - 1))]


def run_of(ov: dict, approach: str | None) -> str | None:
    """The first finished run of an approach (the sidebar's order), None when the workspace has none."""
    runs = ov["runs"]
    hit = runs.loc[(runs["approach"] == approach) & (runs["status"] == "finished"), "run_id"]
    return str(hit.iloc[0]) if len(hit) else None


def classifier_of(ov: dict, run_id: str) -> str | None:
    pred = ov["predicted"]
    have = sorted(set(pred.loc[pred["run_id"] == run_id, "classifier"]))
    if not have:
        return None
    runs = ov["runs"].set_index("run_id")
    return choose_classifier(runs.loc[run_id, "approach"], have)


def datasets_of(path: str, sig: tuple, ov: dict, run_id: str, classifier: str, with_unseen: bool) -> list[str]:
    """The super-set's test splits, plus (`with_unseen`) a shown set with unseen fakes: the demo's variants
    set when present (fakes by variants of the known methods), else the one with the most unseen fakes."""
    shown = controls.map_datasets(ov, run_id, classifier)
    meta = ov["datasets"].set_index("dataset")
    out = [d for d in shown if d in meta.index and meta.loc[d, "role"] == "superset"] or shown[:1]
    if with_unseen:
        others = [d for d in shown if d not in out]
        if others:
            pts = queries.map_points(path, sig, run_id, classifier, tuple(others), "video")
            counts = pts.loc[pts["true_class"] == UNSEEN_FAKE].drop_duplicates("video_id")["dataset"].value_counts()
            counts = counts[counts > 0]  # a categorical column counts its absent values too
            variants = [d for d in counts.index if "variants" in str(d)]
            if len(counts):
                out.append(str(variants[0] if variants else counts.index[0]))
    return out


def most_frequent_mistake(pts: pd.DataFrame) -> tuple[str, str] | None:
    """(true, predicted) of the most frequent confusion between two known classes among the shown videos."""
    v = pts.drop_duplicates("video_id")
    known = ~v["true_class"].isin([UNSEEN_FAKE, queries.UNLABELLED]) & ~v["pred"].isin([queries.NO_PRED])
    wrong = v.loc[known & (v["true_class"].to_numpy(dtype=object) != v["pred"].to_numpy(dtype=object))]
    if wrong.empty:
        return None
    top = wrong.groupby(["true_class", "pred"]).size().sort_values(ascending=False, kind="stable")
    true, pred = top.index[0]
    return str(true), str(pred)


def highlight_selection(step: Step, pts: pd.DataFrame) -> dict | None:
    """The map selection a step highlights (the map component's selection kinds), None for no highlight."""
    if step.highlight == "mistake":
        pair = most_frequent_mistake(pts)
        return {"kind": "cell", "true": pair[0], "pred": pair[1]} if pair else None
    if step.highlight == "unseen" and (pts["true_class"] == UNSEEN_FAKE).any():
        return {"kind": "search", "query": UNSEEN_FAKE}
    return None


def describe(selection: dict | None) -> str:
    """The `hl` URL value of a highlight: 'cell:TRUE>PRED', 'search:QUERY' or ''."""
    if not selection:
        return ""
    if selection["kind"] == "cell":
        return f"cell:{selection['true']}>{selection['pred']}"
    return f"search:{selection['query']}"
