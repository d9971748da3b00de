"""Page layout for laptop and projector screens (1024×768, 1280×720) as well as large ones.

Streamlit lays columns out by fixed ratios and keeps a wide sidebar and page margins; at 1280×720
that left the Explore map 310 px wide. These rules give the map most of the width (at least half the
window at 1024 and 1280 px), narrow the sidebar and margins on small screens, and keep the panel
beside the map (it scrolls on its own, `PANEL_HEIGHT` tall, the map's height); on windows under 820 px
tall the map and the panel shrink to the window's height so the whole map is in view.
"""

from __future__ import annotations

import streamlit as st

MAP_HEIGHT = 620
PANEL_HEIGHT = MAP_HEIGHT + 60  # the map plus its caption

_CSS = """
<style>
@media (max-width: 1400px) {
  section[data-testid="stSidebar"] { width: 240px !important; min-width: 240px !important; }
  div[data-testid="stMainBlockContainer"] { padding-left: 1.5rem !important; padding-right: 1.5rem !important; }
  .st-key-explore_body div[data-testid="stColumn"]:first-child { flex: 9 1 0 !important; width: auto !important; }
  .st-key-explore_body div[data-testid="stColumn"]:last-child { flex: 4 1 0 !important; width: auto !important; }
}
@media (max-width: 1100px) {
  section[data-testid="stSidebar"] { width: 200px !important; min-width: 200px !important; }
  div[data-testid="stMainBlockContainer"] { padding-left: 0.75rem !important; padding-right: 0.75rem !important; }
  .st-key-explore_body div[data-testid="stColumn"]:first-child { flex: 7 1 0 !important; }
  .st-key-explore_body div[data-testid="stColumn"]:last-child { flex: 3 1 0 !important; }
}
@media (max-height: 820px) {
  div[data-testid="stMainBlockContainer"] { padding-top: 2.5rem !important; }
  div[data-testid="stMainBlockContainer"] h1 { font-size: 1.6rem !important; padding: 0.25rem 0 !important; }
  .st-key-explore_body iframe { height: max(400px, calc(100vh - 150px)) !important; }
  .st-key-explore_panel { height: max(440px, calc(100vh - 110px)) !important; }
}
</style>
"""


def map_beside_panel() -> None:
    """The rules above, for the page being drawn (an invisible element)."""
    st.html(_CSS)
