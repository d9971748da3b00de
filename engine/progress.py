"""Progress reporting for long stages: tqdm bars on stderr and count callbacks.

Engine functions report progress as `tick(done, total)` callbacks; the CLI,
the demo and the pipeline stages turn them into bars here, so nothing in the
engine imports the command-line package.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager


def progress(iterable=None, total=None, desc: str = "", unit: str = "it", disable: bool | None = None):
    """A tqdm progress bar on stderr (quiet when stderr is not a terminal and CI asks)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                disable=disable, mininterval=0.5)


def progress_tick(desc: str, unit: str = "it"):
    """A progress bar and a `tick(done, total)` callback for engine functions
    that report progress as counts; close the bar when done."""
    bar = progress(total=None, desc=desc, unit=unit)

    def tick(done, total=None, *_):
        if total is not None:
            bar.total = total
        bar.update(done - bar.n)

    return bar, tick


@contextmanager
def stage(name: str):
    """Print a stage's name and, at the end, its wall time."""
    print(f"» {name} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    yield
    print(f"  {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
