"""The open-set verdict, measured: which novelty score tells "resembles no known class" (after `dfatlas demo`).

For every finished run of a demo workspace, each candidate score is fitted as
`engine.openset` fits it (reference: the super-set's training faces; the
current `centroid` verdict: the validation faces) and thresholded on the known
VALIDATION videos (the θ population) so that 5 % of them are flagged
(`centroid`: its own rule, ratio > 1). At VIDEO level (a video's score is the
mean of its faces'), against the known TEST videos of the super-set:

- AUROC of each kind of unknown vs the known test videos, and the share of that
  kind flagged at the threshold:
  * novel    — the never-seen manipulation (`synth-novel`: recompress-splice, another
               artefact family, held out of every training database);
  * real     — photos of real people (scikit-image astronaut and camera, matplotlib
               grace_hopper, the 100 LFW faces of scikit-image's lfw_subset) as
               still videos of jittered crops (`testkit.openset_probes`);
  * non-face — windows of text, landscapes, textures and objects from scikit-image /
               scikit-learn / matplotlib images and lfw_subset's non-face patches,
               fed as if they were face crops;
  * near     — `synth-variants` (variants of two known methods): reported apart,
               no target (it should land next to its parents);
- FA: the share of known TEST videos flagged (target <= 5 %);
- known ACC / new ACC (as open-world attribution papers, e.g. OW-DFA, report them):
  known ACC = share of known test videos whose verdict is their true class (a flag
  counts as wrong; Binary: real vs fake), new ACC = share of the never-seen
  manipulation's videos flagged "resembles no known class".

Scores: the current centroid distance / radius; kNN distance to the training
faces (k = 1, 5, 10, 20) and to the validation faces (each video's own identity
left out); Mahalanobis with a shared LedoitWolf or OAS covariance; kNN +
Mahalanobis (each standardised on the validation faces, summed); per-class
calibrated radii (each class's kNN distance over its validation 95th percentile);
max-softmax (MSP) of the run's default classifier; energy (-logsumexp of the
head's logits: Attribution's linear head, ArcFaceMod's scaled cosines); and
another layer: kNN on the pooled mean and standard deviation of the backbone's
third stage (not stored by `dfatlas embed`: computed here from the crops; the
training reference thinned to 2 faces per video), alone and added to kNN +
Mahalanobis. Thresholds: `engine.openset.upper_threshold` (split-conformal).

    .venv/bin/python bench/bench_openset.py --workspace WS [--json out.json]

Figures describe the SYNTHETIC benchmark's runs only, not real detectors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import analysis as an  # noqa: E402
from engine.approaches import UNATTRIBUTED  # noqa: E402
from engine.analysis.verdict import face_probs  # noqa: E402
from engine.config import FacesSection, OpenSetSection  # noqa: E402
from engine.openset import (CentroidRatio, Combined, KnnDistance, Mahalanobis, MaxSoftmax, group_mean,  # noqa: E402
                            normalise, upper_threshold)
from engine.runs import read_runs  # noqa: E402
from engine.store import arrow_to_matrix  # noqa: E402
from engine.store import analyses as set_table  # noqa: E402
from engine.store.faces import face_rows  # noqa: E402
from engine.workspace import resolve_workspace  # noqa: E402

KINDS = ("novel", "real", "nonface", "near")
FALSE_ALARM = 0.05


def auroc(negative: np.ndarray, positive: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if not len(negative) or not len(positive):
        return float("nan")
    y = np.r_[np.zeros(len(negative)), np.ones(len(positive))]
    s = np.r_[negative, positive]
    return float(roc_auc_score(y, np.nan_to_num(s, nan=np.inf, posinf=1e30)))


# --- the data of one run -------------------------------------------------------------------------

class Part:
    """Faces of one population: embeddings, video ids, the classifier's probabilities, head logits."""

    def __init__(self, emb, video_id, probs=None, logits=None, identity=None, true_class=None, crops=None):
        self.emb = np.asarray(emb, np.float32)
        self.crops = crops  # uint8 crops (probes) or their workspace paths (stored faces), for other layers
        self.layer = None
        self.video_id = np.asarray(video_id, dtype=object)
        self.probs, self.logits = probs, logits
        self.identity = None if identity is None else np.asarray(identity, dtype=object)
        self.true_class = None if true_class is None else np.asarray(true_class, dtype=object)


def head_logits(model, emb: np.ndarray) -> np.ndarray | None:
    """Class logits from stored embeddings: Attribution's linear head on its pre-logit features, ArcFaceMod's
    scale x cosines to its class weights; None for heads without class logits (Binary, TripletLoss)."""
    import torch

    m = model.model
    with torch.no_grad():
        x = torch.from_numpy(np.asarray(emb, np.float32))
        if model.criterion is not None and hasattr(model.criterion, "cosines"):
            return (model.criterion.cosines(x) * model.criterion.scale).numpy()
        if m.head.out_features == len(model.classes) and x.shape[1] == m.head.in_features:
            return m.head(x).numpy()
    return None


def stored_part(store, run, datasets, classifier, model, unseen_only=False) -> Part:
    tbl = set_table.labelled_embeddings(store, run.run_id, datasets)
    df = tbl.drop_columns(["embedding"]).to_pandas()
    emb = arrow_to_matrix(tbl.column("embedding"))
    if unseen_only:
        keep = (df["true_class"] == "unseen-fake").to_numpy()
    else:
        keep = (np.isin(df["true_class"].to_numpy(dtype=object), list(run.classes))
                & np.isin(df["database"].to_numpy(dtype=object), list(run.superset)))
    df, emb = df.loc[keep].reset_index(drop=True), emb[keep]
    probs = face_probs(store, run, classifier, df["face_id"], datasets)
    if probs is None:  # Binary stores only its real-score: [P(real), P(fake)]
        from engine.store.predictions import face_scores

        t = face_scores(store, run.run_id, classifier, list(datasets)).to_pandas().set_index("face_id")
        real = t["real_score"].reindex(df["face_id"]).to_numpy(float)
        probs = np.stack([real, 1 - real], 1) if np.isfinite(real).all() else None
    rows = face_rows(store, run.settings_key, df["video_id"].unique().tolist()).to_pandas()
    paths = rows.set_index("face_id")["crop_path"].reindex(df["face_id"]).tolist()
    return Part(emb, df["video_id"], probs, head_logits(model, emb), df["identity"], df["true_class"], paths)


def probe_parts(ws, store, run, classifier, model, real_videos, non_face_videos) -> dict[str, Part]:
    from engine.classify import apply_to_embeddings

    parts = {}
    for kind, videos in (("real", real_videos), ("nonface", non_face_videos)):
        crops = np.concatenate([v.crops for v in videos])
        vid = np.repeat([f"probe/{v.name}" for v in videos], [len(v.crops) for v in videos])
        out = model.predict(crops)
        emb = out["embedding"]
        if classifier == "native":
            probs = out.get("probs")  # attribution: the softmax; binary: [P(real), P(fake)]
        else:
            probs = apply_to_embeddings(store, run.run_id, emb, names=[classifier])[classifier]["probs"]
        parts[kind] = Part(emb, vid, probs, head_logits(model, emb), crops=crops)
    return parts


LAYER = "layer3"


def add_layer_features(ws, model, parts: dict[str, Part], per_video: int = 2) -> bool:
    """Pooled mean and standard deviation of the backbone's `LAYER` feature maps for every part (the training
    reference: `per_video` faces per video). False when the backbone has no such stage."""
    import torch

    from engine.faces import read_crops

    stage = getattr(model.model.backbone, LAYER, None)
    if stage is None:
        return False
    got: list = []
    hook = stage.register_forward_hook(lambda m, i, o: got.append(torch.cat([o.mean((2, 3)), o.std((2, 3))], 1).numpy()))
    try:
        for name, part in parts.items():
            crops = part.crops
            keep = np.ones(len(part.emb), bool)
            if name == "train":
                keep = pd.Series(part.video_id).groupby(part.video_id).cumcount().to_numpy() < per_video
            if isinstance(crops, list):
                crops = read_crops(ws, [c for c, k in zip(crops, keep) if k], size=model.input_size)
            else:
                crops = crops[keep]
            got.clear()
            model.predict(crops)
            part.layer = (np.concatenate(got), keep)
    finally:
        hook.remove()
    return True


# --- candidate scores ---------------------------------------------------------------------------

def knn_left_out(reference: Part, query: Part, k: int, same_query: bool) -> np.ndarray:
    """k-th nearest cosine distance to the reference faces; for the reference's own faces (`same_query`) the
    faces of the query face's own identity are left out."""
    from sklearn.neighbors import NearestNeighbors

    r = normalise(reference.emb)
    extra = 0
    if same_query:
        extra = int(pd.Series(reference.identity).value_counts().max())
    n = min(len(r), k + extra)
    d, idx = NearestNeighbors(n_neighbors=n, algorithm="brute").fit(r).kneighbors(normalise(query.emb))
    d = d * d / 2.0
    if same_query:
        valid = reference.identity[idx] != query.identity[:, None]
        rank = np.cumsum(valid, axis=1)
        pos = np.argmax((rank == k) & valid, axis=1)
        return d[np.arange(len(d)), pos]
    return d[:, k - 1]


def per_class_radii(reference: Part, val: Part, classes: np.ndarray, val_classes: np.ndarray, k: int):
    """A scorer: min over classes of (k-th NN distance to that class's reference faces) / (the 95th percentile
    of that distance over the class's own validation faces)."""
    fitted = []
    for c in np.unique(classes):
        s = KnnDistance(k).fit(reference.emb[classes == c])
        q = np.quantile(s.face_scores(val.emb[val_classes == c]), 0.95) if (val_classes == c).any() else np.nan
        fitted.append((s, q))

    def score(part: Part) -> np.ndarray:
        cols = [s.face_scores(part.emb) / q for s, q in fitted if np.isfinite(q) and q > 0]
        return np.min(np.stack(cols, 1), 1)
    return score


def energy(part: Part) -> np.ndarray:
    lg = part.logits.astype(np.float64)
    m = lg.max(1)
    return -(m + np.log(np.exp(lg - m[:, None]).sum(1)))


def candidates(run, parts: dict[str, Part], classifier: str, osm_default) -> dict:
    """{name: (face score function of a Part, video rule or None, fixed threshold or None)}."""
    ref, val = parts["train"], parts["val"]
    cls_index = {c: i for i, c in enumerate(run.classes)}
    ref_cls = np.asarray([cls_index[c] for c in ref.true_class])
    val_cls = np.asarray([cls_index[c] for c in val.true_class])
    out = {}
    cen = CentroidRatio(run.kind.embedding_metric).fit(val.emb, val_cls, val.video_id)
    out["centroid / radius (current)"] = (lambda p: cen.face_scores(p.emb),
                                          lambda p: cen.video_scores(p.emb, p.video_id)[1], 1.0)
    for k in (1, 5, 10, 20):
        s = KnnDistance(k).fit(ref.emb)
        out[f"knn train faces k={k}"] = (lambda p, s=s: s.face_scores(p.emb), None, None)
    out["knn val faces k=10 (own identity left out)"] = (
        lambda p: knn_left_out(val, p, 10, same_query=p is val), None, None)
    for shrink in ("ledoit-wolf", "oas"):
        m = Mahalanobis(run.kind.embedding_metric, shrink).fit(ref.emb, ref_cls)
        out[f"mahalanobis {shrink}"] = (lambda p, m=m: m.face_scores(p.emb), None, None)
    comb = Combined([KnnDistance(10), Mahalanobis(run.kind.embedding_metric, "ledoit-wolf")]).fit(ref.emb, ref_cls)
    comb.calibrate(val.emb)
    out["knn+mahalanobis (k=10, ledoit-wolf)"] = (lambda p: comb.face_scores(p.emb), None, None)
    if ref.layer is not None:
        lx, keep = ref.layer
        lk = KnnDistance(10).fit(lx)
        out[f"other layer: knn on {LAYER} (pooled mean+std)"] = (lambda p: lk.face_scores(p.layer[0]), None, None)
        v = lk.face_scores(val.layer[0])
        c, sc = np.median(v), np.quantile(v, 0.95) - np.median(v)
        out[f"knn+mahalanobis + knn {LAYER} (sum)"] = (
            lambda p: comb.face_scores(p.emb) + (lk.face_scores(p.layer[0]) - c) / sc, None, None)
    pcr = per_class_radii(ref, val, ref_cls, val_cls, 10)
    out["per-class radii (knn k=10)"] = (pcr, None, None)
    if val.probs is not None:
        msp = MaxSoftmax()
        out[f"msp ({classifier})"] = (lambda p: msp.face_scores(p.emb, p.probs), None, None)
    if val.logits is not None:
        out["energy (head logits)"] = (energy, None, None)
    out[f"default: {osm_default.score} ({osm_default.describe})"] = (
        lambda p: osm_default.scorer.face_scores(p.emb, p.probs), None, None)
    return out


def video_scores(fn_face, fn_video, part: Part) -> np.ndarray:
    if fn_video is not None:
        return np.asarray(fn_video(part))
    return group_mean(fn_face(part), part.video_id)[1]


# --- known / novel accuracy -----------------------------------------------------------------------

def video_truth_and_pred(store, run, classifier, datasets) -> pd.DataFrame:
    from engine.scores import sample_scores

    v = sample_scores(store, run, classifier, datasets, level="video")
    return v[["video_id", "true_class", "pred_class"]]


def known_accuracy(run, test_videos: pd.DataFrame, flagged: pd.Series) -> float:
    pred = test_videos["pred_class"].fillna(UNATTRIBUTED).astype(int).to_numpy()
    true = test_videos["true_class"].to_numpy(dtype=object)
    if run.kind.attributes:
        correct = np.asarray([run.class_name(p) for p in pred], dtype=object) == true
    else:
        correct = (pred == 0) == (true == run.classes[0])
    ok = correct & ~test_videos["video_id"].map(flagged).fillna(False).to_numpy(bool)
    return float(ok.mean())


# --- the benchmark -----------------------------------------------------------------------------------

def bench(ws_dir: str, section: OpenSetSection, seed: int = 0, layers: bool = True) -> dict:
    from engine.embed import load_model
    from engine.faces.detector import FaceFinder
    from engine.faces.driver import resolve_face_models
    from testkit.openset_probes import non_face_videos, real_face_videos

    ws = resolve_workspace(ws_dir)
    store = ws.store(read_only=True)
    runs = sorted((r for r in read_runs(store).values() if r.status == "finished"), key=lambda r: (r.approach, r.run_id))
    if not runs:
        raise SystemExit(f"no finished run in {ws.root}: run `dfatlas demo --workspace {ws.root}` first")
    out = {"workspace": str(ws.root), "loadavg_start": os.getloadavg(), "false_alarm": FALSE_ALARM,
           "section": section.__dict__, "runs": []}
    faces = runs[0].section(FacesSection, "faces")
    models = resolve_face_models(faces)
    t0 = time.perf_counter()
    with FaceFinder({k: str(v.path) for k, v in models.items()}, faces.detector, faces.tiling) as finder:
        real = real_face_videos(faces.frames_per_video, faces.crop_size, faces.box_scale, faces.crop_format,
                                faces.crop_quality, seed, finder)
    non_face = non_face_videos(faces.frames_per_video, faces.crop_size, faces.box_scale, faces.crop_format,
                               faces.crop_quality, seed)
    out["probes"] = {"real_videos": len(real), "real_sources": sorted({v.source for v in real}),
                     "non_face_videos": len(non_face), "non_face_sources": sorted({v.source for v in non_face}),
                     "seconds": time.perf_counter() - t0}
    cross = list(runs[0].config.get("sources", {}).get("cross_db", []))
    for run in runs:
        t1 = time.perf_counter()
        classifier = an.default_classifier(run, an.available_classifiers(store, run))
        model = load_model(ws, run, "cpu")
        parts = {s: stored_part(store, run, run.split_datasets(s), classifier, model) for s in ("train", "val", "test")}
        parts["novel"] = stored_part(store, run, [f"{d}/test" for d in cross if d == "synth-novel"], classifier, model,
                                     unseen_only=True)
        parts["near"] = stored_part(store, run, [f"{d}/test" for d in cross if d == "synth-variants"], classifier,
                                    model, unseen_only=True)
        parts.update(probe_parts(ws, store, run, classifier, model, real, non_face))
        if layers:
            add_layer_features(ws, model, parts)
        osm = an.calibrate_open_set(store, run, None, section, classifier)
        test_videos = video_truth_and_pred(store, run, classifier, run.split_datasets("test"))
        rows = []
        for name, (face_fn, video_fn, fixed) in candidates(run, parts, classifier, osm).items():
            vs = {k: video_scores(face_fn, video_fn, parts[k]) for k in ("val", "test", *KINDS) if len(parts[k].emb)}
            thr = fixed if fixed is not None else upper_threshold(vs["val"], FALSE_ALARM)
            row = {"score": name, "threshold": thr, "fa_val": float(np.mean(vs["val"] > thr)),
                   "fa_test": float(np.mean(vs["test"] > thr))}
            for k in KINDS:
                row[f"auroc_{k}"] = auroc(vs["test"], vs.get(k, np.zeros(0)))
                row[f"flagged_{k}"] = float(np.mean(vs[k] > thr)) if k in vs else float("nan")
            test_ids = np.unique(parts["test"].video_id)
            flagged = pd.Series(vs["test"] > thr, index=test_ids)
            row["known_acc"] = known_accuracy(run, test_videos, flagged)
            row["new_acc"] = row["flagged_novel"]
            rows.append(row)
        out["runs"].append({"run_id": run.run_id, "approach": run.approach, "label": run.kind.label,
                            "classifier": classifier, "n_videos": {k: int(len(np.unique(p.video_id)))
                                                                   for k, p in parts.items()},
                            "rows": rows, "seconds": time.perf_counter() - t1})
    out["loadavg_end"] = os.getloadavg()
    return out


def table(out: dict) -> str:
    head = ("| approach (classifier) | score | AUROC novel | AUROC real faces | AUROC non-faces | AUROC near-known | "
            "false alarms known test | flagged novel / real / non-face / near | known ACC | new ACC |")
    lines = [head, "|" + "---|" * 10]
    for r in out["runs"]:
        for row in r["rows"]:
            lines.append(
                f"| {r['label']} ({r['classifier']}) | {row['score']} | {row['auroc_novel']:.3f} | "
                f"{row['auroc_real']:.3f} | {row['auroc_nonface']:.3f} | {row['auroc_near']:.3f} | "
                f"{100 * row['fa_test']:.1f} % | {100 * row['flagged_novel']:.0f} / {100 * row['flagged_real']:.0f} / "
                f"{100 * row['flagged_nonface']:.0f} / {100 * row['flagged_near']:.0f} % | "
                f"{100 * row['known_acc']:.1f} % | {100 * row['new_acc']:.1f} % |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspace", required=True)
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--seed", type=int, default=0, help="seed of the probe videos' jitter")
    p.add_argument("--no-layers", action="store_true", help=f"skip the other-layer ({LAYER}) candidates")
    args = p.parse_args()
    out = bench(args.workspace, OpenSetSection(), args.seed, not args.no_layers)
    print("SYNTHETIC benchmark — open-set verdict at video level; threshold: 5 % of known validation videos "
          "flagged (the current centroid verdict: its own ratio > 1)")
    print(f"probes: {out['probes']['real_videos']} real-face videos, {out['probes']['non_face_videos']} non-face videos")
    for r in out["runs"]:
        print(f"{r['label']}: {r['run_id']}, videos {r['n_videos']}, {r['seconds']:.0f} s")
    print(table(out))
    print(f"load average {out['loadavg_start']} -> {out['loadavg_end']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
