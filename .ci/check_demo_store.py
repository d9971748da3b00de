"""CI smoke check of a finished `dfatlas demo --no-serve` workspace: four runs,
metrics for every database, projections for every run."""

import sys

from engine.evaluation import metrics_table
from engine.workspace import resolve_workspace

ws = resolve_workspace(sys.argv[1])
store = ws.store(read_only=True)
runs = store.df("SELECT run_id, approach, status FROM runs ORDER BY approach")
problems = []
if sorted(runs.approach) != ["arcfacemod", "attribution", "binary", "triplet"] or set(runs.status) != {"finished"}:
    problems.append(f"expected four finished runs, got {runs.to_dict('records')}")
# Table rows name the test database (its test split for the super-set, all of it for cross-db sets).
datasets = set(store.df("SELECT DISTINCT database FROM datasets WHERE role IN ('superset', 'cross_db')").database)
table = metrics_table(store, list(runs.run_id), level="video")
for run_id in runs.run_id:
    got = set(table[table.run_id == run_id].dataset)
    if datasets - got:
        problems.append(f"{run_id}: no metrics for {sorted(datasets - got)}")
    n = store.scalar("SELECT count(*) FROM projection_points p JOIN projections j USING (projection_id) "
                     "WHERE j.run_id = ?", [run_id])
    if not n:
        problems.append(f"{run_id}: no projection points")
if problems:
    print("demo smoke check FAILED:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"demo smoke check: 4 runs, metrics for {len(datasets)} test datasets each, projections present")
