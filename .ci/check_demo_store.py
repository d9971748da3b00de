"""CI smoke check of a finished `dfatlas demo --no-serve` workspace: four runs,
metrics for every database, projections for every run (through the engine's readers)."""

import sys

from engine.approaches import approach_names
from engine.evaluation import metrics_table
from engine.projection import TSNEMap
from engine.runs import read_runs
from engine.workspace import resolve_workspace

ws = resolve_workspace(sys.argv[1])
store = ws.store(read_only=True)
runs = read_runs(store)
problems = []
if sorted(r.approach for r in runs.values()) != sorted(approach_names(trainable_only=True)) or \
        {r.status for r in runs.values()} != {"finished"}:
    problems.append(f"expected four finished runs, got {[(r.run_id, r.status) for r in runs.values()]}")
table = metrics_table(store, list(runs), level="video")
for run in runs.values():
    # Table rows name the test database (its test split for the super-set, all of it for cross-db sets).
    datasets = set(run.superset) | set(run.cross_db)
    got = set(table[table.run_id == run.run_id].dataset)
    if datasets - got:
        problems.append(f"{run.run_id}: no metrics for {sorted(datasets - got)}")
    tsne_map = TSNEMap.latest(store, run.run_id)
    if tsne_map is None or not tsne_map.n_points(store):
        problems.append(f"{run.run_id}: no projection points")
if problems:
    print("demo smoke check FAILED:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"demo smoke check: {len(runs)} runs, metrics for {len(datasets)} test datasets each, projections present")
