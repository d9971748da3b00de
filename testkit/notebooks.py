"""Run a notebook top to bottom with nbclient, as the tests and `.ci/run` do: a cell that raises fails it.

    python testkit/notebooks.py docs/notebooks/atlas.ipynb --workspace WS [--set PATH] [--timeout S]

The kernel is this interpreter's (`python3` kernel of ipykernel) with this process's environment plus
DFATLAS_WORKSPACE / DFATLAS_NOTEBOOK_SET; nothing is written back into the notebook file, which is
committed without outputs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def run_notebook(path: str | Path, workspace: str | Path, notebook_set: str | Path | None = None,
                 timeout: int = 600):
    """Execute every cell (in the notebook's folder); returns the executed notebook (outputs in memory)."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ, DFATLAS_WORKSPACE=str(workspace))
    if notebook_set is not None:
        env["DFATLAS_NOTEBOOK_SET"] = str(notebook_set)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)
    return nb


def errors(nb) -> list[str]:
    """The error outputs of an executed notebook (empty when every cell ran)."""
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebook")
    p.add_argument("--workspace", required=True)
    p.add_argument("--set", dest="notebook_set")
    p.add_argument("--timeout", type=int, default=600, help="per cell, seconds")
    args = p.parse_args(argv)
    start = time.perf_counter()
    nb = run_notebook(args.notebook, args.workspace, args.notebook_set, args.timeout)
    cells = sum(c.cell_type == "code" for c in nb.cells)
    print(f"notebook {args.notebook}: {cells} code cells ran in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
