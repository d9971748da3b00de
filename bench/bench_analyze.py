"""Analysing unknown sets on the SYNTHETIC benchmark (after `dfatlas demo`).

For every finished run of a demo workspace:
1. the unseen "variants of two known methods" set's fakes (`synth-variants/fake/`,
   variants of poisson-swap and upsample-texture) analysed as an UNLABELLED set:
   the verdict shares (known classes and "resembles no known class", `engine.analysis.verdict`),
   and per variant method where its videos go;
2. the whole `synth-variants` folder (real/ + fake/ = labels) analysed WITH labels:
   AUC / FPR / FNR / HTER at the run's validation threshold (video level);
3. the open-set rate ("resembles no known class") on the known test split of the
   training super-set and on the unseen sets (their stored cross-db embeddings),
   at face and video level, thresholded to flag 5 % of the validation videos
   (bench/bench_openset.py measures the candidate scores);
4. wall time of each analysis (faces, embed, classify, map, store) vs the run's
   own face-extraction rate as the baseline.

    .venv/bin/python bench/bench_analyze.py --workspace dfatlas-workspace [--json out.json]

Figures measured here describe the synthetic benchmark only, not real detectors.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import analysis as an  # noqa: E402
from engine.config import load_config  # noqa: E402
from engine.runs import read_runs  # noqa: E402
from engine.store.analyses import face_extraction_cost  # noqa: E402
from engine.workspace import resolve_workspace  # noqa: E402


def _pct(x) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.1f} %"


def method_of(relpath: str) -> str:
    parts = relpath.split("/")
    return parts[1] if len(parts) > 2 else (parts[-2] if len(parts) > 1 else "?")


def bench(ws_dir: str, config: str | None, replace: bool, workers: int | None, tsne_jobs: int | None = None) -> dict:
    ws = resolve_workspace(ws_dir)
    cfg_path = Path(config) if config else ws.root / "demo-data" / "demo.toml"
    cfg = load_config(cfg_path)
    if tsne_jobs is not None:
        import dataclasses

        cfg = dataclasses.replace(cfg, projection=dataclasses.replace(cfg.projection, n_jobs=tsne_jobs))
    store = ws.store()
    data_root = Path(cfg.source("synth-variants").root)
    runs = sorted((r for r in read_runs(store).values() if r.status == "finished"), key=lambda r: (r.approach, r.run_id))
    out = {"config": str(cfg_path), "runs": []}
    for i, run in enumerate(runs):
        run_id, approach = run.run_id, run.approach
        first = replace and i == 0  # later runs add their analysis to the same sets (faces reused)
        res = {"run_id": run_id, "approach": approach}
        with ws.lock(f"bench analyze {run_id}", wait=True):
            t0 = time.perf_counter()
            rep = an.analyze(ws, cfg, run_id, data_root / "fake", name="variants-fakes", replace=first,
                             workers=workers)
            res["unlabelled_s"] = time.perf_counter() - t0
            res["unlabelled_timings"] = rep.timings
            t0 = time.perf_counter()
            rep_l = an.analyze(ws, cfg, run_id, data_root, name="variants-labelled", replace=first,
                               workers=workers)
            res["labelled_s"] = time.perf_counter() - t0
        res["n_videos"], res["n_faces"] = rep.n_videos, rep.n_faces
        res["classifier"] = rep.classifier
        res["pred_shares"] = rep.class_shares[["class", "video_share", "face_share"]].to_dict("records")
        v = rep.videos.loc[rep.videos["verdict"] != an.NO_FACE_LABEL].copy()
        v["method"] = v["relpath"].map(method_of)
        res["per_method"] = {m: g["verdict"].value_counts(normalize=True).round(3).to_dict() for m, g in v.groupby("method")}
        res["open_set_unknown"] = {"face": rep.open_set["face_rate"], "video": rep.open_set["video_rate"]}
        res["metrics_labelled"] = rep_l.metrics
        known_test = list(run.split_datasets("test"))
        unseen = [f"{d}/test" for d in cfg.sources.cross_db]
        rates = an.open_set_rates(store, run_id, known_test + unseen)
        res["open_set_rates"] = rates.to_dict("records")
        cost = face_extraction_cost(store, run.settings_key, an.UNKNOWN_DB)
        res["baseline_face_cpu_s_per_video"] = cost["seconds"] / max(1, cost["videos"])
        out["runs"].append(res)
    return out


def print_summary(out: dict) -> None:
    print("SYNTHETIC benchmark — analysing the unseen set of variants of poisson-swap and upsample-texture\n")
    for r in out["runs"]:
        shares = ", ".join(f"{c['class']} {_pct(c['video_share'])}" for c in r["pred_shares"][:4])
        m = r["metrics_labelled"] or {}
        print(f"[{r['approach']}] {r['run_id']} ({r['classifier']}): {r['n_videos']} fake videos, {r['n_faces']} faces, "
              f"{r['unlabelled_s']:.1f} s unlabelled / {r['labelled_s']:.1f} s labelled")
        print(f"  verdicts (videos): {shares}")
        for meth, shares_m in r["per_method"].items():
            print(f"    {meth}: " + ", ".join(f"{k} {_pct(v)}" for k, v in shares_m.items()))
        if m:
            auc = m.get("auc")
            print(f"  with labels (video level): AUC {'n/a' if auc is None else f'{auc:.3f}'}, FPR {_pct(m.get('fpr'))}, "
                  f"FNR {_pct(m.get('fnr'))}, HTER {_pct(m.get('hter'))}")
        print("  open-set rate (faces / videos): unknown fakes "
              f"{_pct(r['open_set_unknown']['face'])} / {_pct(r['open_set_unknown']['video'])}; " + "; ".join(
                  f"{x['dataset']} {_pct(x['face_open_rate'])} / {_pct(x['video_open_rate'])}" for x in r["open_set_rates"]))
        t = r["unlabelled_timings"]
        print("  stage times: " + ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in t.items())
              + f"; baseline face extraction of the run's own data: {r['baseline_face_cpu_s_per_video']:.2f} CPU s/video")
        print()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspace", required=True)
    p.add_argument("--config", help="default: WORKSPACE/demo-data/demo.toml")
    p.add_argument("--workers", type=int)
    p.add_argument("--tsne-jobs", type=int, default=None,
                   help="openTSNE threads for placing the sets (default: the config's; 1 is far faster on a busy machine)")
    p.add_argument("--keep", action="store_true", help="do not replace earlier analyses of the same sets")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()
    out = bench(args.workspace, args.config, not args.keep, args.workers, args.tsne_jobs)
    print_summary(out)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
