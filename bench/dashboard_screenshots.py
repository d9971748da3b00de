"""Screenshots of the dashboard's main views into docs/screenshots/ (small, palette PNGs).

    .venv/bin/python bench/dashboard_screenshots.py [--workspace DIR] [--prefix demo-]

Without --workspace it uses the test fixture store (synthetic, 1,500 points);
with a demo workspace it shows the real pipeline's output (analyse a set with the TripletLoss run first,
e.g. `dfatlas analyze --run TRIPLET-RUN --input WS/demo-data/synth-novel/fake --name mystery`: one view
shows it beside a cross-database set). Every view is taken at 1280×720 (a laptop
or projector); the layout-critical ones (Explore with a selection, Tables) also at 1024×768 and
1920×1080, named `NAME-WxH.png`.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "screenshots"

SIZES = [(1280, 720), (1024, 768), (1920, 1080)]
AT_EVERY_SIZE = {"explore-selection", "tables"}
VIEWS = [
    ("explore", "", "", True),
    ("explore-selection", "", "", "select"),
    ("explore-crossdb-unknown", "", "run={triplet}&db={crossdb}&db={unknown}", True),
    ("explore-correct", "", "colour=correct&run={arcfacemod}&clf=lr", True),
    ("compare", "compare", "", True),
    ("curves", "curves", "", "chart"),
    ("tables", "tables", "", False),
    ("runs", "runs", "", False),
]


def save_small(png: bytes, path: Path) -> None:
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    img.thumbnail((1920, 1920))
    img.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", type=Path)
    ap.add_argument("--prefix", default="", help="file name prefix, e.g. 'demo-' for a demo workspace")
    ap.add_argument("--views", default="", help="comma-separated view names (default: all)")
    args = ap.parse_args()
    from testkit.browser import browser_available, chromium_page, dashboard_server, error_count, lasso, map_frame

    why = browser_available()
    if why:
        sys.exit(f"cannot take screenshots: {why}")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        ws = args.workspace
        if ws is None:
            from testkit.dashboard_store import build_fixture_store

            ws = Path(tmp) / "ws"
            build_fixture_store(ws, n_points=1500)
        ids = names_of(ws)
        with dashboard_server(ws) as url:
            for width, height in SIZES:
                with chromium_page(width, height) as page:
                    for name, path, query, has_map in VIEWS:
                        if args.views and name not in args.views.split(","):
                            continue
                        if (width, height) != SIZES[0] and name not in AT_EVERY_SIZE:
                            continue
                        stem = args.prefix + name + ("" if (width, height) == SIZES[0] else f"-{width}x{height}")
                        page.goto(f"{url}/{path}?{query.format(**ids)}", timeout=60000)
                        if has_map == "chart":
                            page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=60000)
                        elif has_map:
                            map_frame(page)
                        else:
                            page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60000)
                        if has_map == "select":
                            lasso(page, ((0.1, 0.1), (0.5, 0.1), (0.5, 0.55), (0.1, 0.55)))
                            page.get_by_text("Selection:", exact=False).first.wait_for(timeout=60000)
                        page.wait_for_timeout(1500)
                        assert error_count(page) == 0, f"error element on {name}"
                        save_small(page.screenshot(), OUT / f"{stem}.png")
                        print(f"docs/screenshots/{stem}.png  {(OUT / f'{stem}.png').stat().st_size / 1e3:.0f} kB")


def names_of(ws: Path) -> dict:
    """What the views' links name, from the workspace's store: approach -> run id, `crossdb` (a cross-database
    set, the variants one when there is one) and `unknown` (the newest analysed set the TripletLoss run
    embedded; run `dfatlas analyze` first for a demo workspace)."""
    from engine.runs import read_runs
    from engine.store.analyses import list_sets
    from engine.workspace import Workspace

    store = Workspace(Path(ws)).store(read_only=True)
    names = {r.approach: r.run_id for r in read_runs(store).values()}
    crossdb = list(dict.fromkeys(list_sets(store, "cross_db")["dataset"]))
    unknown = list_sets(store, "unknown", names.get("triplet"))["dataset"].tolist()
    if not crossdb or not unknown:
        sys.exit("the workspace needs a cross-database set and an analysed set of the TripletLoss run "
                 "(dfatlas analyze --run TRIPLET-RUN --input DIR --name mystery)")
    names["crossdb"] = next((d for d in crossdb if "variants" in d), crossdb[0])
    names["unknown"] = unknown[0]
    return names


if __name__ == "__main__":
    main()
