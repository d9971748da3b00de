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



class Progress:
    """How a stage reports: `task(desc, unit)` gives a `tick(done, total)` callback; `message(text)` a line.

    This one draws tqdm bars and prints messages on stderr (the CLI, the demo).
    """

    @contextmanager
    def task(self, desc: str, unit: str = "it"):
        bar, tick = progress_tick(desc, unit)
        try:
            yield tick
        finally:
            bar.close()

    def message(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)


class SilentProgress(Progress):
    """Reports nothing (library calls, tests)."""

    @contextmanager
    def task(self, desc: str, unit: str = "it"):
        yield lambda *_: None

    def message(self, text: str) -> None:
        pass


class CallbackProgress(Progress):
    """Forwards every tick as `callback(desc, done, total)` (a background job's progress row)."""

    def __init__(self, callback):
        self.callback = callback

    @contextmanager
    def task(self, desc: str, unit: str = "it"):
        yield lambda done, total=None, *_: self.callback(desc, done, total)

    def message(self, text: str) -> None:
        pass


bars = Progress()
silent = SilentProgress()
