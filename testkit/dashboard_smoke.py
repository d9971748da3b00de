"""Drive every dashboard page with AppTest on an existing workspace (e.g. the demo's) and fail on
any exception element; walk the guided tour with its Next button, each step showing its own title and a
finished run of its approach.

    .venv/bin/python testkit/dashboard_smoke.py WORKSPACE

Prints what each page shows (headline numbers, messages); exit 1 on an exception.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["compare.py", "curves.py", "tables.py", "analyse.py", "runs.py"]


def main(ws: str) -> int:
    os.environ["DFATLAS_WORKSPACE"] = ws
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=300)
    at.run()
    failures = 0

    def report(name: str) -> None:
        nonlocal failures
        exc = [e.value for e in at.exception]
        failures += bool(exc)
        print(f"[{name}] exceptions={len(exc)} charts={len(at.get('plotly_chart'))} tables={len(at.dataframe)}")
        for m in list(at.info) + list(at.warning):
            print("   msg:", m.value.splitlines()[0][:160])
        for d in at.dataframe[:2]:
            print("   " + d.value.head(6).to_string().replace("\n", "\n   ")[:900])

    runs = next((w for w in at.sidebar.selectbox if w.label == "Run / approach"), None)
    for run_id in (runs.options if runs else [None]):
        if runs is not None:
            box = next(w for w in at.sidebar.selectbox if w.label == "Run / approach")
            ids = [o.split("(")[-1].split(")")[0] for o in box.options]
            box.set_value(ids[box.options.index(run_id)]).run()
        report(f"explore {run_id}")
    for page in PAGES:
        if (ROOT / "dashboard" / "pages" / page).exists():
            at.switch_page(f"dashboard/pages/{page}").run()
            report(page)
    if (ROOT / "dashboard" / "pages" / "tour.py").exists():
        from dashboard import tour

        at.switch_page("dashboard/pages/tour.py").run()
        for i, step in enumerate(tour.STEPS):
            report(f"tour step {i + 1}")
            titles = [h.value for h in at.header]
            missing = [m.value for m in at.info if "has no finished" in m.value]
            if step.title not in titles or missing:
                failures += 1
                print(f"   tour step {i + 1}: headers {titles}, {missing}")
            if i < len(tour.STEPS) - 1:
                at.button(key="tour_next").click().run()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
