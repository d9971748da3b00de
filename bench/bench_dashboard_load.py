"""Five concurrent dashboard sessions changing controls: errors and script times.

Each session is a Streamlit `AppTest` (the real script, its own session state)
in its own thread, all on one fixture store (testkit/dashboard_store.py) and
sharing the process's `st.cache_data`, as browser sessions of one `dfatlas
serve` share a server. Every step picks a random control (run, classifier,
level, colour mode, density, databases) and a random value, reruns the script
and records the wall time of that rerun (the first load of each session
is reported apart). Prints the median and 95th percentile script time, errors, reruns per session, and a one-session
baseline measured in the same run.

    python bench/bench_dashboard_load.py --sessions 5 --seconds 60 --points 5000

Timings on a shared 2-core machine are noisy; compare the ratio to the
one-session baseline rather than absolute values.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
APP = str(ROOT / "streamlit_app.py")
RADIO_VALUES = {"Colour by": ["true", "correct", "database", "pred"], "Level": ["video", "frame"]}


def _widgets(at):
    """(kind, widget) pairs of the sidebar controls a user changes."""
    out = []
    for w in at.sidebar.selectbox:
        if w.label in ("Run / approach", "Classifier") and w.options:
            out.append(("select", w))
    for w in at.sidebar.radio:
        if w.label in ("Level", "Colour by") and w.options:
            out.append(("radio", w))
    for w in at.sidebar.multiselect:
        if w.options:
            out.append(("multi", w))
    for w in at.toggle:
        out.append(("toggle", w))
    return out


_COMPILE_LOCK = threading.Lock()


def _one_script_cache_lock() -> None:
    """Serialise page compilation across AppTest instances, as one server does.

    A `streamlit run` server has ONE script cache whose lock serialises compiling the
    pages; every AppTest instance has its own, so sessions in threads compile the same
    pages at once — and CPython 3.11's AST constructor is not thread-safe
    (python/cpython gh-106905: "SystemError: AST constructor recursion depth mismatch").
    """
    from streamlit.runtime.scriptrunner import script_cache

    cls = script_cache.ScriptCache
    if getattr(cls, "_dfatlas_locked", False):
        return
    original = cls.get_bytecode

    def get_bytecode(self, script_path):
        with _COMPILE_LOCK:
            return original(self, script_path)

    cls.get_bytecode = get_bytecode
    cls._dfatlas_locked = True


def session(ws: str, seconds: float, seed: int, times: list, errors: list, steps: list, first: list) -> None:
    from streamlit.testing.v1 import AppTest

    rng = random.Random(seed)
    t0 = time.perf_counter()
    at = AppTest.from_file(APP, default_timeout=120)
    try:
        at.run()
    except Exception as exc:  # noqa: BLE001
        errors.append([f"first run: {type(exc).__name__}: {exc}"[:300]])
        steps.append(0)
        return
    first.append(time.perf_counter() - t0)
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if at.exception:
            errors.append([str(e.value)[:300] for e in at.exception])
            at = AppTest.from_file(APP, default_timeout=120)
        widgets = _widgets(at)
        if not widgets:
            errors.append(["no controls on the page"])
            break
        kind, w = rng.choice(widgets)
        if kind == "select":
            w.select_index(rng.randrange(len(w.options)))
        elif kind == "radio":  # raw values (the page shows formatted labels)
            w.set_value(rng.choice(RADIO_VALUES.get(w.label) or list(w.options)))
        elif kind == "multi":
            opts = list(w.options)
            w.set_value(rng.sample(opts, rng.randint(1, len(opts))))
        else:
            w.set_value(not w.value)
        t = time.perf_counter()
        try:
            at.run()
        except Exception as exc:  # noqa: BLE001 - a crash of the script runner is an error to report
            errors.append([f"{type(exc).__name__}: {exc}"[:300]])
            at = AppTest.from_file(APP, default_timeout=120)
            at.run()
        times.append(time.perf_counter() - t)
        if at.exception:
            errors.append([str(e.value)[:300] for e in at.exception])
        n += 1
    steps.append(n)


def run_load(ws: str | Path, sessions: int = 5, seconds: float = 60.0, seed: int = 0) -> dict:
    """Run `sessions` concurrent sessions for `seconds`; returns times (s), errors and steps."""
    import numpy as np

    os.environ["DFATLAS_WORKSPACE"] = str(ws)
    _one_script_cache_lock()
    times: list = []
    errors: list = []
    steps: list = []
    first: list = []
    threads = [threading.Thread(target=session, args=(str(ws), seconds, seed + i, times, errors, steps, first),
                                daemon=True)
               for i in range(sessions)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 300)
    wall = time.perf_counter() - t0
    arr = np.asarray(times) if times else np.zeros(1)
    return {"sessions": sessions, "seconds": round(wall, 1), "reruns": int(sum(steps)), "steps": steps,
            "errors": errors, "n_errors": len(errors), "alive": sum(t.is_alive() for t in threads),
            "median_s": float(np.median(arr)), "p95_s": float(np.percentile(arr, 95)), "max_s": float(arr.max()),
            "first_load_s": [round(x, 2) for x in first]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--points", type=int, default=5000, help="points in the fixture store")
    ap.add_argument("--workspace", help="an existing workspace instead of the fixture store")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        ws = args.workspace
        if not ws:
            from testkit.dashboard_store import build_fixture_store

            ws = str(Path(tmp) / "ws")
            build_fixture_store(Path(ws), n_points=args.points)
        base = run_load(ws, sessions=1, seconds=min(args.seconds, 20.0), seed=100)
        load = run_load(ws, sessions=args.sessions, seconds=args.seconds, seed=0)
    out = {"points": args.points, "baseline_1_session": base, "load": load,
           "p95_ratio_vs_1_session": load["p95_s"] / base["p95_s"] if base["p95_s"] else None}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for name, r in (("1 session (baseline)", base), (f"{args.sessions} sessions", load)):
            print(f"{name:22} reruns {r['reruns']:5d}  errors {r['n_errors']}  median {r['median_s']:.3f} s  "
                  f"p95 {r['p95_s']:.3f} s  max {r['max_s']:.3f} s  ({r['seconds']} s wall; first loads "
                  f"{', '.join(f'{x:.1f}' for x in r['first_load_s'])} s)")
        print(f"p95 ratio {args.sessions} sessions / 1 session: {out['p95_ratio_vs_1_session']:.2f}x "
              f"({args.points} points; 2 shared cores: noisy)")
    return 1 if load["n_errors"] or base["n_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
