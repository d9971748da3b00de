"""Screenshots of the dashboard's main views into docs/screenshots/ (small, palette PNGs).

    .venv/bin/python bench/dashboard_screenshots.py [--workspace DIR] [--prefix demo-]

Without --workspace it uses the test fixture store (synthetic, 1,500 points);
with a demo workspace it shows the real pipeline's output. Every view is taken at 1280×720 (a laptop
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
    ("explore-crossdb-unknown", "", "run={triplet}&db=synth-x/test&db=unknown/mystery", True),
    ("explore-correct", "", "colour=correct&run={arcfacemod}&clf=lr", True),
    ("compare", "compare", "", True),
    ("curves", "curves", "", True),
    ("tables", "tables", "", False),
    ("runs", "runs", "", False),
]


def save_small(png: bytes, path: Path) -> None:
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    img.thumbnail((1920, 1920))
    img.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


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
        ids = run_ids_of(ws)
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
                        if has_map:
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


def run_ids_of(ws: Path) -> dict:
    """approach -> run id of the workspace's store (the views' links name runs by approach)."""
    from engine.runs import read_runs
    from engine.workspace import Workspace

    return {r.approach: r.run_id for r in read_runs(Workspace(Path(ws)).store(read_only=True)).values()}


if __name__ == "__main__":
    main()
