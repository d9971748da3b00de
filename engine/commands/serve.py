"""`dfatlas serve`: start the dashboard on localhost with a workspace fixed at launch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from data_catalog.errors import AtlasError

from .common import add_parser, add_workspace_arg, workspace_of

ENTRY = Path(__file__).resolve().parents[2] / "streamlit_app.py"


def register(sub) -> None:
    p = add_parser(sub, "serve", "open the dashboard (Streamlit) on this machine",
                   "dfatlas serve --workspace ./dfatlas-workspace --port 8501")
    add_workspace_arg(p)
    p.add_argument("--port", type=int, default=8501, help="first port to try; the next free one is used if taken")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: localhost only; another address exposes the dashboard)")
    p.add_argument("--max-upload-mb", type=int, default=200, help="upload limit of the Analyse page")
    p.set_defaults(func=run)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str, start: int, tries: int = 50) -> int:
    """`start`, or the next free port after it."""
    for port in range(start, start + tries):
        if 0 < port < 65536 and port_is_free(host, port):
            return port
    raise AtlasError(f"no free port in {start}..{start + tries - 1} on {host}; pass another --port")


def streamlit_command(entry: Path, host: str, port: int, max_upload_mb: int = 200) -> list[str]:
    """The `streamlit run` command line; safety settings passed explicitly (not only via .streamlit/)."""
    return [sys.executable, "-m", "streamlit", "run", str(entry),
            "--server.address", host, "--server.port", str(port), "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--server.maxUploadSize", str(max_upload_mb),
            "--client.showErrorDetails", "none", "--server.fileWatcherType", "none"]


def run(args) -> int:
    ws = workspace_of(args)
    if not ENTRY.is_file():
        raise AtlasError(f"dashboard entry {ENTRY} not found (is dfatlas installed from a checkout?)")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: binding to {args.host} exposes the dashboard beyond this machine", file=sys.stderr)
    port = free_port(args.host, args.port)
    if port != args.port:
        print(f"port {args.port} is taken; using {port}", file=sys.stderr)
    if not ws.store_path.exists():
        print(f"note: no store in {ws.root} yet; the page will say how to make one (e.g. `dfatlas demo`)",
              file=sys.stderr)
    env = dict(os.environ, DFATLAS_WORKSPACE=str(ws.root))
    for attempt in range(3):
        print(f"dashboard: http://{args.host}:{port}  (workspace {ws.root}; Ctrl+C to stop)", flush=True)
        started = time.monotonic()
        try:
            code = subprocess.call(streamlit_command(ENTRY, args.host, port, args.max_upload_mb), env=env,
                                   cwd=str(ENTRY.parent))
        except KeyboardInterrupt:
            return 0
        # Another server took the port between our check and Streamlit's bind: try the next one.
        if code != 0 and time.monotonic() - started < 20 and not port_is_free(args.host, port):
            port = free_port(args.host, port + 1)
            print(f"port taken meanwhile; retrying on {port}", file=sys.stderr)
            continue
        return code
    raise AtlasError(f"could not start the dashboard: ports around {args.port} keep being taken")
