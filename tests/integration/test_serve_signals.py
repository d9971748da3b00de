"""`dfatlas serve` supervises its Streamlit server: any stop signal stops the server too; hosts are checked."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _listening(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _wait(cond, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.2)
    return cond()


def _serve(tmp_path: Path, host: str, port: int, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, DFATLAS_WORKSPACE=str(tmp_path / "ws"))
    return subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", "--workspace", str(tmp_path / "ws"),
                             "--host", host, "--port", str(port), *extra], cwd=str(ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_to_serve_stops_its_server(tmp_path, sig):
    import psutil

    from engine.commands.serve import free_port

    port = free_port("127.0.0.1", 18750)
    proc = _serve(tmp_path, "127.0.0.1", port)
    try:
        assert _wait(lambda: _listening("127.0.0.1", port) or proc.poll() is not None, 120), "never listened"
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "serve runs the server as its child"
        proc.send_signal(sig)  # to dfatlas only, as a service manager or `kill PID` would
        assert proc.wait(timeout=30) == 0
        gone, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, [p.pid for p in alive]
        assert not _listening("127.0.0.1", port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_serve_on_ipv6_loopback(tmp_path):
    from engine.commands.serve import free_port, url_of

    port = free_port("::1", 18790)
    assert url_of("::1", port) == f"http://[::1]:{port}"
    proc = _serve(tmp_path, "::1", port)
    try:
        assert _wait(lambda: _listening("::1", port) or proc.poll() is not None, 120), proc.stdout.read1().decode()
        assert proc.poll() is None
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


def test_empty_host_is_refused_and_hosts_are_allow_listed(tmp_path):
    from engine.commands.serve import allowed_hosts, streamlit_command

    out = subprocess.run([sys.executable, "-m", "engine.cli", "serve", "--workspace", str(tmp_path / "ws"),
                          "--host", ""], cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "--host is empty" in out.stderr and "Traceback" not in out.stderr
    cmd = streamlit_command(ROOT / "streamlit_app.py", "10.1.2.3", 8501, extra_hosts=["atlas.lab"])
    hosts = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--server.allowedHosts"]
    assert hosts == allowed_hosts("10.1.2.3", ["atlas.lab"]) == ["localhost", "127.0.0.1", "::1", "10.1.2.3",
                                                                 "atlas.lab"]


def test_a_websocket_naming_a_foreign_host_is_refused(tmp_path):
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 opens the dashboard's WebSocket with
    Host: evil.example (and a matching Origin); the server must refuse it, and accept its own names."""
    from engine.commands.serve import free_port

    port = free_port("127.0.0.1", 18810)
    proc = _serve(tmp_path, "127.0.0.1", port)

    def upgrade(host: str) -> str:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall((f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nOrigin: http://{host}:{port}\r\nSec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: streamlit\r\n\r\n")
                      .encode())
            return s.recv(200).decode(errors="replace").split("\r\n", 1)[0]

    try:
        assert _wait(lambda: _listening("127.0.0.1", port) or proc.poll() is not None, 120)
        assert " 101 " in upgrade("127.0.0.1"), upgrade("127.0.0.1")
        assert " 101 " not in upgrade("evil.example")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
