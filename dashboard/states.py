"""Empty and broken states: a friendly message with the command that fixes it, never a traceback."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import duckdb
import streamlit as st

from data_catalog.errors import AtlasError
from engine.store import StoreBusy, StoreDamaged, StoreError, StoreMissing
from engine.store.connection import damaged, is_damage
from engine.workspace import Workspace
from .plain import literal, plain

DEMO = "dfatlas demo --workspace {ws}"


@contextmanager
def guard(ws: str):
    """Turn store and user errors inside a page into st.info / st.warning."""
    try:
        yield
    except StoreMissing as exc:
        st.info(f"**No results yet.** {plain(exc)}\n\nTo build the synthetic demo here:\n\n"
                f"```\n{DEMO.format(ws=ws)}\n```")
    except StoreBusy as exc:
        st.warning(f"**The store is busy.** {plain(exc)}\n\nThe page reads it again on the next interaction; "
                   "a job writing it right now (training, embedding) holds it briefly.")
        st.button("Try again", key="_retry_busy")
    except StoreDamaged as exc:
        damaged_store(exc)
    except StoreError as exc:
        st.warning(f"**The store cannot be read.** {plain(exc)}")
    except AtlasError as exc:
        st.warning(plain(exc))
    except duckdb.Error as exc:
        if is_damage(exc):
            damaged_store(damaged(Workspace(Path(ws)).store_path, exc))
            return
        st.warning(f"**The store could not be queried** ({type(exc).__name__}): {plain(str(exc).splitlines()[0])}\n\n"
                   f"If it comes from an older or partial pipeline run, run the pipeline again, e.g. "
                   f"`{DEMO.format(ws=ws)}`.")


def damaged_store(exc: StoreDamaged) -> None:
    """A damaged store: how to recover it — never `dfatlas demo`, which builds another store."""
    st.error(f"**The store is damaged.** {plain(exc)}\n\nThe dashboard only reads it, and no dfatlas job writes "
             "into it until it is restored or replaced.")


def no_runs(ws: str) -> None:
    st.info("**No trained runs in this workspace yet.** Train the four approaches with\n\n"
            "```\ndfatlas train --config CONFIG --workspace " + ws + "\n```\n\nor build the synthetic demo with "
            f"`{DEMO.format(ws=ws)}`.")


def run_not_ready(view, ws: str) -> bool:
    """A run that is still training (or failed): say so; True when the page should stop."""
    if view.status == "finished":
        return False
    if view.status in ("created", "training"):
        st.info(f"**Run {literal(view.run_id)} is still {plain(view.status)}.** Its embeddings and predictions "
                f"appear here when it has finished (`dfatlas train`, then `dfatlas embed`, `dfatlas classify`, "
                f"`dfatlas project`). Pick a finished run in the sidebar meanwhile.")
    else:
        st.warning(f"**Run {literal(view.run_id)} {plain(view.status)}.** Re-run `dfatlas train --config CONFIG "
                   f"--workspace {ws}` to resume it.")
    return True


def no_predictions(view, ws: str) -> None:
    st.info(f"**No predictions for run {literal(view.run_id)} yet.** Compute them with\n\n"
            f"```\ndfatlas embed --config CONFIG --workspace {ws} --run {view.run_id}\n"
            f"dfatlas classify --config CONFIG --workspace {ws} --run {view.run_id}\n```")


def map_state(view, ws: str, status: dict | None) -> None:
    """How the run's map was made, and a clear note when it is out of date against the run's embeddings
    (engine.projection.TSNEMap.status); nothing without a map (`no_projection` says that)."""
    if status is None:
        return
    command = f"```\ndfatlas project --config CONFIG --workspace {ws} --run {view.run_id}\n```"
    if status["reference_changed"]:
        st.warning(f"**This map is older than run {literal(view.run_id)}'s embeddings.** They were made again after "
                   f"the map was fitted, so its positions no longer match them. Fit it again with\n\n{command}")
    missing = sum(n for d, n in status["unplaced"].items() if d in view.datasets)
    if missing:
        st.info(f"**{missing:,} faces of the chosen databases are not on this map yet** (embedded after it was "
                f"made). Place them with\n\n{command}")
    st.caption(f"Map: {plain(status['describe'])}")


def no_projection(view, ws: str) -> None:
    st.info(f"**No t-SNE map for run {literal(view.run_id)} yet.** Compute the projections (cached; a few seconds to "
            f"minutes) with\n\n```\ndfatlas project --config CONFIG --workspace {ws} --run {view.run_id}\n```\n\n"
            "The metrics below do not need it.")
