"""`dfatlas serve`: start the dashboard on localhost with a workspace fixed at launch."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from data_catalog.errors import AtlasError

from ..config import DashboardSection
from .common import add_config_arg, add_parser, add_workspace_arg, config_of, option_arg, workspace_of

ENTRY = Path(__file__).resolve().parents[2] / "streamlit_app.py"
# Serves ENTRY behind the Host check and anti-framing headers (dashboard.http_guard), on every route.
GUARDED_LAUNCHER = ENTRY.with_name("dashboard_server.py")


def register(sub) -> None:
    p = add_parser(sub, "serve", "open the dashboard (Streamlit) on this machine",
                   "dfatlas serve --workspace ./dfatlas-workspace --port 8501")
    add_workspace_arg(p)
    add_config_arg(p, required=False)
    p.add_argument("--port", type=option_arg(DashboardSection, "port"), default=None,
                   help="first port to try; the next free one is used if taken (default: [dashboard] port of --config, "
                        "else 8501)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: localhost only; ::1 for IPv6 loopback; another address exposes "
                        "the dashboard — only ever on request here, never from a config file)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="another host name the browser may use to reach the dashboard (repeatable); "
                        "connections naming any other host are refused (DNS-rebinding guard)")
    p.add_argument("--max-upload-mb", type=option_arg(DashboardSection, "max_upload_mb"), default=None,
                   help="upload limit of the Analyse page (default: [dashboard] max_upload_mb of --config, else 200)")
    p.set_defaults(func=run)


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
STOP_GRACE_S = 10.0  # how long a stopped server may take before it is killed


def check_host(host: str) -> str:
    """The address to bind: refused when empty (it would silently mean every interface)."""
    host = (host or "").strip()
    if not host:
        raise AtlasError("--host is empty: name the address to bind (default 127.0.0.1; 0.0.0.0 or :: for every "
                         "interface, which exposes the dashboard)")
    return host


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_of(host: str, port: int) -> str:
    """http://host:port, with IPv6 literals in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def port_is_free(host: str, port: int) -> bool:
    """Whether `port` can be bound on `host` (IPv4 or IPv6, whichever the address is)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise AtlasError(f"--host {host!r}: not an address this machine can bind ({exc.strerror})") from None
    for family, kind, proto, _name, addr in infos[:1]:
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(addr)
            except OSError:
                return False
    return True


def free_port(host: str, start: int, tries: int = 50) -> int:
    """`start`, or the next free port after it."""
    for port in range(start, start + tries):
        if 0 < port < 65536 and port_is_free(host, port):
            return port
    raise AtlasError(f"no free port in {start}..{start + tries - 1} on {host}; pass another --port")


def allowed_hosts(host: str, extra=()) -> list[str]:
    """Host names a WebSocket may name in its Host header (DNS-rebinding guard): the loopback names,
    the bound address, and any the user adds."""
    names = list(LOOPBACK_NAMES) + ([host] if host not in LOOPBACK_NAMES else []) + list(extra)
    return list(dict.fromkeys(names))


def streamlit_command(entry: Path, host: str, port: int, max_upload_mb: int = 200, extra_hosts=()) -> list[str]:
    """The `streamlit run` command line: the guarded launcher serving `entry`; safety settings passed
    explicitly (not only via .streamlit/)."""
    return [sys.executable, "-m", "streamlit", "run", str(GUARDED_LAUNCHER),
            "--server.address", host, "--server.port", str(port), "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--server.maxUploadSize", str(max_upload_mb),
            "--client.showErrorDetails", "none", "--server.fileWatcherType", "none",
            *[arg for name in allowed_hosts(host, extra_hosts) for arg in ("--server.allowedHosts", name)],
            "--", str(entry)]


def run_server(cmd: list[str], env: dict, cwd: str) -> int:
    """Run the Streamlit server as a child and stay its supervisor until it ends.

    SIGTERM, SIGINT and SIGHUP sent to dfatlas are forwarded to the server, which is then waited for
    (killed after `STOP_GRACE_S`), so stopping `dfatlas serve` / `dfatlas demo` by any signal leaves no
    server holding the port. Returns the server's exit code (0 when stopped by a signal).
    """
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, start_new_session=True)
    stopping = {"signal": None}

    def forward(signum, _frame):
        stopping["signal"] = signum
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        while True:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if stopping["signal"] is not None:
                    try:
                        code = proc.wait(timeout=STOP_GRACE_S)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
                        code = proc.wait()
                    break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if proc.poll() is None:  # an exception on our side: never leave the server behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return 0 if stopping["signal"] is not None else code


def dashboard_settings(args) -> None:
    """Fill --port and --max-upload-mb left out from the config's [dashboard] section (else its defaults). The
    address to bind is not taken from a config: exposing the dashboard is asked for on the command line."""
    section = config_of(args).dashboard if getattr(args, "config", None) else DashboardSection()
    for name, value in (("port", section.port), ("max_upload_mb", section.max_upload_mb)):
        if getattr(args, name, None) is None:
            setattr(args, name, value)


def run(args) -> int:
    dashboard_settings(args)
    ws = workspace_of(args)
    if not ENTRY.is_file():
        raise AtlasError(f"dashboard entry {ENTRY} not found (is dfatlas installed from a checkout?)")
    host = check_host(args.host)
    if not is_loopback(host):
        print(f"warning: binding to {host} exposes the dashboard beyond this machine; browsers must reach it as "
              f"{host} or a name given with --allow-host", file=sys.stderr)
    port = free_port(host, args.port)
    if port != args.port:
        print(f"port {args.port} is taken; using {port}", file=sys.stderr)
    if not ws.store_path.exists():
        print(f"note: no store in {ws.root} yet; the page will say how to make one (e.g. `dfatlas demo`)",
              file=sys.stderr)
    env = dict(os.environ, DFATLAS_WORKSPACE=str(ws.root))
    for attempt in range(3):
        print(f"dashboard: {url_of(host, port)}  (workspace {ws.root}; Ctrl+C to stop)", flush=True)
        started = time.monotonic()
        code = run_server(streamlit_command(ENTRY, host, port, args.max_upload_mb, args.allow_host), env,
                          str(ENTRY.parent))
        # Another server took the port between our check and Streamlit's bind: try the next one.
        if code != 0 and time.monotonic() - started < 20 and not port_is_free(host, port):
            port = free_port(host, port + 1)
            print(f"port taken meanwhile; retrying on {port}", file=sys.stderr)
            continue
        return code
    raise AtlasError(f"could not start the dashboard: ports around {args.port} keep being taken")
