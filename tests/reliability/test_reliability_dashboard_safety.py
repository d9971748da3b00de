"""Reliability 4b: the dashboard server refuses foreign Host names and framing; names are shown as text.

- a real `dfatlas serve` (subprocess, free port, stopped in a finally): a foreign Host header is refused on
  every HTTP route (the page, static files, health, a route no one has added yet) and on the WebSocket
  upgrade (DNS rebinding); its own names (loopback, [::1], --allow-host) work; every response forbids
  framing by another site;
- the pages render user-controlled names (folders, refused uploads, sets) as plain text, never as
  Markdown links or images (AppTest);
- the Analyse page's upload label shows the limit in force (the server's --max-upload-mb when smaller).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.reliability.reliability_util import ROOT

pytestmark = pytest.mark.timeout(300)

# Markdown that would render as a link or image, or text GFM would autolink (what `plain` must prevent).
ACTIVE_MARKDOWN = re.compile(r"(?<!\\)\]\(|(?<!\\)<[a-z]|://|www\.|@\w", re.IGNORECASE)
HOSTILE = ["[x](http://evil.example/a)", "![](http://evil.example/img.png)", "<img src=http://evil.example/h.png>",
           "mail@evil.example www.evil.example :red[x] :smile:", "1. `code` **b** | c $x$ &amp;"]


# --- the server -------------------------------------------------------------------------------------------

def _get(port: int, path: str, host: str) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def _upgrade(port: int, host: str) -> str:
    """The status line of a WebSocket upgrade naming `host` (with a matching Origin, as a rebinding page sends)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall((f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Origin: http://{host}\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: streamlit\r\n\r\n")
                  .encode())
        return s.recv(200).decode(errors="replace").split("\r\n", 1)[0]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`dfatlas serve` on a free loopback port with one extra allowed name; stopped afterwards."""
    from engine.commands.serve import free_port
    from testkit.dashboard_store import build_fixture_store

    ws = tmp_path_factory.mktemp("guard") / "ws"
    build_fixture_store(ws, n_points=60)
    port = free_port("127.0.0.1", 18870)
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", "--workspace", str(ws), "--port", str(port),
                             "--allow-host", "atlas.lab"], cwd=str(ROOT),
                            env=dict(os.environ, DFATLAS_WORKSPACE=str(ws)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if _get(port, "/_stcore/health", f"127.0.0.1:{port}")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read1().decode()
            time.sleep(0.3)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("path", ["/", "/_stcore/health", "/static/", "/component/some.future.route/index.html",
                                  "/_stcore/host-config"])
def test_a_foreign_host_is_refused_on_every_route(served, path):
    status, headers, _ = _get(served, path, f"evil.example:{served}")
    assert status in (400, 403), (path, status)
    assert headers.get("x-frame-options") == "SAMEORIGIN"


def test_a_foreign_host_is_refused_on_the_websocket(served):
    assert " 101 " not in _upgrade(served, f"evil.example:{served}")
    assert " 101 " not in _upgrade(served, f"localhost.evil.example:{served}")
    assert " 101 " in _upgrade(served, f"127.0.0.1:{served}")  # the guard lets the page's own socket through


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "[::1]", "atlas.lab"])
def test_own_names_load_the_page_and_framing_is_forbidden(served, name):
    status, headers, body = _get(served, "/", f"{name}:{served}")
    assert status == 200 and b'<div id="root">' in body
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in headers["content-security-policy"]


# --- names as plain text -----------------------------------------------------------------------------------

def test_plain_and_literal_leave_no_markdown_active():
    from dashboard.plain import WORD_JOINER, literal, plain

    for name in HOSTILE:
        assert not ACTIVE_MARKDOWN.search(plain(name)), plain(name)
        assert plain(name).replace("\\", "").replace(WORD_JOINER, "") == name  # nothing lost, only escaped
    assert literal("unknown/case") == "`unknown/case`"
    assert literal("a`b") == "``a`b``" and literal("`x") == "`` `x ``"
    assert plain("two\nlines") == "two lines" and plain("faces: 5/12") == "faces: 5/12"


PAGE_SCRIPT = """
import runpy
import streamlit as st
from dashboard import controls, queries

path = queries.store_path()
sig = queries.signature(path)
st.session_state["_view"] = controls.sidebar(path, sig, queries.overview(path, sig))
runpy.run_path({page!r}, run_name="__analyse_page__")
"""


def _analyse_page(workspace, allowed, max_mb):
    from streamlit.testing.v1 import AppTest

    from tests.helpers.analyze_fixture import RUN_ID, build_store, run_config

    store = build_store(workspace.root)
    cfg = run_config() | {"dashboard": {"allowed_roots": [str(allowed)], "max_upload_mb": max_mb}}
    store.execute("UPDATE runs SET config_json = ? WHERE run_id = ?", [json.dumps(cfg), RUN_ID])
    page = str(ROOT / "dashboard" / "pages" / "analyse.py")
    return AppTest.from_string(PAGE_SCRIPT.format(page=page), default_timeout=90)


def _bodies(at) -> list[str]:
    return [str(e.value) for kind in ("markdown", "caption", "info", "error", "warning", "success", "subheader")
            for e in getattr(at, kind)]


@pytest.mark.slow
def test_folder_and_refused_upload_names_render_as_text(workspace, tmp_path, monkeypatch):
    from dashboard.plain import plain
    from engine import jobs

    monkeypatch.setattr(jobs, "start_background", lambda *a: None)
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    folder = "![](https:evil.example) [x](javascript:alert(1))"  # a folder name cannot hold a "/"
    os.symlink(outside, allowed / folder)  # chosen, it is refused with a message quoting its name
    at = _analyse_page(workspace, allowed, 1).run()
    assert not at.exception, at.exception
    at.selectbox(key="an_sub").set_value(folder).run()
    errors = [str(e.value) for e in at.error]
    assert errors and any(plain(folder) in e for e in errors), errors
    for body in _bodies(at):
        assert not ACTIVE_MARKDOWN.search(body), body

    at.radio(key="an_mode").set_value("Upload videos").run()
    avi = b"RIFF\0\0\0\0AVI LIST" + bytes(64)
    at.file_uploader(key="an_upload").set_value([("good.avi", avi, "video/x-msvideo"),
                                                 (HOSTILE[1] + ".mp4", b"not a video", "video/mp4")]).run()
    at.text_input(key="an_name").set_value("case-b")
    at.button(key="an_go").click().run()
    assert not at.exception, at.exception
    refused = [str(w.value) for w in at.warning if str(w.value).startswith("Refused")]
    assert refused and plain(HOSTILE[1] + ".mp4") in refused[0], refused
    for body in _bodies(at):
        assert not ACTIVE_MARKDOWN.search(body), body


@pytest.mark.slow
@pytest.mark.parametrize("config_mb, server_mb, shown", [(1, 200, "1"), (500, 5, "5")])
def test_upload_label_shows_the_limit_in_force(workspace, tmp_path, config_mb, server_mb, shown):
    from streamlit import config

    (tmp_path / "allowed").mkdir()
    before = config.get_option("server.maxUploadSize")
    config.set_option("server.maxUploadSize", server_mb)
    try:
        at = _analyse_page(workspace, tmp_path / "allowed", config_mb).run()
        at.radio(key="an_mode").set_value("Upload videos").run()
        assert not at.exception, at.exception
        label = at.file_uploader(key="an_upload").label
        assert f"at most {shown} MB" in label, label
    finally:
        config.set_option("server.maxUploadSize", before)
