"""Screenshots of the dashboard's main views into docs/screenshots/ (small, palette PNGs).

    .venv/bin/python bench/dashboard_screenshots.py [--workspace DIR]

Without --workspace it uses the test fixture store (synthetic, 1,500 points);
with a demo workspace it shows the real pipeline's output.
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
    img.thumbnail((1400, 1400))
    img.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", type=Path)
    ap.add_argument("--prefix", default="", help="file name prefix, e.g. 'demo-' for a demo workspace")
    ap.add_argument("--views", default="", help="comma-separated view names (default: all)")
    args = ap.parse_args()
    from testkit.browser import box_select, browser_available, chromium_page, dashboard_server, error_count, \
        wait_for_map
    from testkit.dashboard_store import build_fixture_store, run_ids

    why = browser_available()
    if why:
        sys.exit(f"cannot take screenshots: {why}")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        ws = args.workspace
        if ws is None:
            ws = Path(tmp) / "ws"
            build_fixture_store(ws, n_points=1500)
        ids = run_ids()
        with dashboard_server(ws) as url, chromium_page(1400, 950) as page:
            for name, path, query, has_map in VIEWS:
                if args.views and name not in args.views.split(","):
                    continue
                name = args.prefix + name
                page.goto(f"{url}/{path}?{query.format(**ids)}", timeout=60000)
                if has_map:
                    wait_for_map(page)
                else:
                    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60000)
                if has_map == "select":
                    box_select(page, (0.05, 0.05, 0.5, 0.5))
                    page.get_by_text("Selection:", exact=False).first.wait_for(timeout=60000)
                    page.get_by_text("Selection:", exact=False).first.scroll_into_view_if_needed()
                page.wait_for_timeout(1500)
                assert error_count(page) == 0, f"error element on {name}"
                save_small(page.screenshot(), OUT / f"{name}.png")
                print(f"docs/screenshots/{name}.png  {(OUT / f'{name}.png').stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
