"""Reliability 4: the dashboard is safe to open, and nothing unpickles what a user hands in.

- `dfatlas serve` (a real process) listens on loopback only; .streamlit/config.toml
  says the same;
- uploads: size and type limits, sanitised names, written under the workspace only;
- the Analyse page reads no path outside `[dashboard] allowed_roots`, symlink
  escapes included (a chosen folder, or a link inside an allowed folder);
- SQL takes user values only as parameters: every interpolation into SQL text
  in the code is a reviewed constant fragment (a source scan), and hostile
  query parameters leave the store untouched;
- no pickle / torch.load without weights_only=True anywhere (a source scan),
  and a booby-trapped checkpoint is refused without running its code.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.reliability.reliability_util import ROOT, cli_env, wait_for

pytestmark = pytest.mark.timeout(300)
CODE_DIRS = ("engine", "dashboard", "data_catalog", "bench")


def code_files() -> list[Path]:
    files = [ROOT / "streamlit_app.py"]
    for d in CODE_DIRS:
        files += sorted((ROOT / d).rglob("*.py"))
    return files


# --- bound to localhost ------------------------------------------------------------------

def test_streamlit_config_is_local_and_quiet():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["address"] == "127.0.0.1"
    assert cfg["server"]["enableXsrfProtection"] is True
    assert 0 < cfg["server"]["maxUploadSize"] <= 200
    assert cfg["browser"]["gatherUsageStats"] is False
    assert cfg["client"]["showErrorDetails"] in ("none", False)


def _other_ipv4() -> str | None:
    """A non-loopback address of this machine, if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))  # no packet is sent (UDP connect)
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith("127.") else ip


@pytest.mark.slow
def test_serve_listens_on_loopback_only(tmp_path):
    import psutil

    from engine.commands.serve import free_port

    port = free_port("127.0.0.1", 18650)
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", "--workspace", str(tmp_path / "ws"),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(ROOT),
                            env=cli_env(tmp_path / "ws"), start_new_session=True)

    def listening() -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        assert wait_for(lambda: listening() or proc.poll() is not None, 120, every=0.3), "dashboard never listened"
        assert proc.poll() is None
        procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        addrs = set()
        for p in procs:
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN and c.laddr.port == port:
                    addrs.add(c.laddr.ip)
        assert addrs and addrs <= {"127.0.0.1", "::1"}, addrs
        other = _other_ipv4()
        if other:
            with socket.socket() as s:
                s.settimeout(1.0)
                assert s.connect_ex((other, port)) != 0, f"reachable on {other}:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_serve_command_line_binds_what_was_asked(capsys):
    from engine.commands.serve import streamlit_command

    cmd = streamlit_command(ROOT / "streamlit_app.py", "127.0.0.1", 8501, 50)
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.maxUploadSize") + 1] == "50"
    from engine.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1"


# --- uploads ---------------------------------------------------------------------------

AVI_HEAD = b"RIFF\x00\x00\x00\x00AVI LIST" + b"\x00" * 64
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64

HOSTILE_NAMES = ["../../../../tmp/evil.avi", "..\\..\\windows\\evil.avi", "/etc/cron.d/evil.mp4",
                 ".hidden.mp4", "a\x00b.avi", "名前 with spaces;rm -rf ~.mp4", "x" * 400 + ".avi",
                 "'; DROP TABLE videos; --.mp4", "CON.avi", "..", "...mp4"]


def test_uploads_are_limited_sanitised_and_kept_in_the_workspace(workspace, tmp_path):
    from dashboard.uploads import save_uploads
    from engine.analysis import AnalysisError

    before = set(tmp_path.parent.rglob("*"))
    files = [(n, (AVI_HEAD if n.endswith("avi") else MP4_HEAD) + b"x" * 100) for n in HOSTILE_NAMES]
    files += [("big.mp4", MP4_HEAD + b"x" * (2 * 2**20)),      # over the limit
              ("notes.txt", b"hello"),                           # wrong type
              ("fake.mp4", b"#!/bin/sh\necho pwned\n"),          # video suffix, not a video
              ("riff.avi", b"RIFF\x00\x00\x00\x00WAVEfmt ")]     # RIFF but not AVI
    res = save_uploads(workspace, "../../Case 42", files, max_upload_mb=1)
    uploads = workspace.uploads_dir.resolve()
    assert res.folder.resolve().parent == uploads
    assert re.fullmatch(r"case-42-\d{8}-\d{6}(-\d+)?", res.folder.name), res.folder.name
    refused = " ".join(res.refused)
    assert "big.mp4" in refused and "notes.txt" in refused and "fake.mp4" in refused and "riff.avi" in refused
    assert len(res.saved) + len(res.refused) == len(files)
    for name in res.saved:
        assert re.fullmatch(r"[A-Za-z0-9_.-]{1,110}", name), name
        assert not name.startswith("."), name
        p = (res.folder / name).resolve()
        assert p.parent == res.folder.resolve() and p.is_file()
    assert len(set(res.saved)) == len(res.saved)
    created = {p for p in set(tmp_path.parent.rglob("*")) - before}
    assert all(str(p.resolve()).startswith(str(workspace.root.resolve())) for p in created), created
    # two sessions uploading a set of the same name in the same second: two folders, nothing overwritten
    two = [save_uploads(workspace, "same", [("a.avi", AVI_HEAD)], max_upload_mb=1) for _ in range(3)]
    assert len({r.folder for r in two}) == 3
    with pytest.raises(AnalysisError):
        save_uploads(workspace, "nothing", [("a.txt", b"x"), ("b.mp4", b"not a video")], max_upload_mb=1)


# --- allowed roots ------------------------------------------------------------------------------

@pytest.fixture
def roots(tmp_path):
    from testkit.media import face_video

    allowed = tmp_path / "data" / "allowed"
    outside = tmp_path / "data" / "allowed-not"       # shares the prefix, not the folder
    secret = tmp_path / "secret"
    face_video(allowed / "set1" / "a.avi", size=(64, 48), n_frames=2, face_px=20)
    face_video(outside / "b.avi", size=(64, 48), n_frames=2, face_px=20)
    face_video(secret / "private.avi", size=(64, 48), n_frames=2, face_px=20)
    os.symlink(secret, allowed / "escape", target_is_directory=True)      # a folder link leaving the root
    os.symlink(secret, allowed / "set1" / "inner", target_is_directory=True)  # a link inside a chosen folder
    os.symlink(secret / "private.avi", allowed / "set1" / "linked.avi")  # a file link leaving the root
    return {"allowed": allowed, "outside": outside, "secret": secret}


def test_chosen_folder_must_resolve_inside_allowed_roots(roots):
    from engine.analysis import AnalysisError, resolve_under_roots

    allowed = roots["allowed"]
    assert resolve_under_roots(allowed / "set1", [allowed]) == (allowed / "set1").resolve()
    for bad in (allowed / "escape", allowed / ".." / "allowed-not", roots["outside"], allowed / "set1" / ".." / "..",
                Path("/etc"), "~"):
        with pytest.raises(AnalysisError):
            resolve_under_roots(bad, [allowed])
    with pytest.raises(AnalysisError):
        resolve_under_roots(allowed / "set1", [])


def test_no_file_outside_the_roots_is_read_through_links(roots, workspace):
    """A folder inside the roots may hold links leaving them: the analysis lists (and so reads)
    only videos whose real path is inside the roots; the others are reported, not read."""
    from data_catalog.taxonomy import paper_taxonomy
    from engine.analysis import collect_videos

    allowed = roots["allowed"]
    inp = collect_videos(allowed / "set1", "s", None, paper_taxonomy(), roots=[allowed])
    real = {os.path.realpath(r.path) for r in inp.records}
    assert all(p.startswith(str(allowed.resolve()) + os.sep) for p in real), real
    assert [Path(r.path).name for r in inp.records] == ["a.avi"]
    assert any("outside" in p.kind for p in inp.problems), inp.problems


def test_analyse_page_starts_jobs_confined_to_the_roots():
    """The page passes its roots to the job (`--allowed-root`), so the job itself enforces them."""
    src = (ROOT / "dashboard" / "pages" / "analyse.py").read_text()
    assert "--allowed-root" in src
    from engine.cli import build_parser

    args = build_parser().parse_args(["analyze", "--run", "r", "--input", "x", "--allowed-root", "/a",
                                      "--allowed-root", "/b"])
    assert args.allowed_root == ["/a", "/b"]


# --- SQL only with parameters ---------------------------------------------------------------------

SQL_TEXT = re.compile(r"\b(SELECT|INSERT|DELETE|UPDATE|CREATE|DROP)\b.*\b(FROM|INTO|SET|TABLE)\b|\bWHERE\b", re.S)
SQL_CALLS = {"execute", "executemany", "sql", "df", "arrow", "scalar", "query"}
# Every expression interpolated into SQL text, reviewed: none carries a user value.
REVIEWED = {
    ("engine/store/connection.py", "aggs"): "min() of the schema's own column names (information_schema), double-quoted",
    ("engine/store/connection.py", "cols"): "column names of the caller's Arrow table, double-quoted",
    ("engine/store/connection.py", "table"): "table name from engine code",
    ("engine/store/connection.py", "verb"): "literal INSERT / INSERT OR REPLACE",
    ("engine/store/connection.py", "view"): "'_incoming_' + table",
    ("engine/store/evaluation.py", "_VIDEO_CODES"): "module constant SQL",
    ("engine/store/evaluation.py", "probs"): "literal ', p.probs' or ''",
    ("engine/store/evaluation.py", "where"): "literal 'WHERE fv.settings_key = ?' or ''",
    ("engine/store/predictions.py", "where"): "literal predicates with ? parameters",
    ("engine/store/interchange.py", "cols"): "column names of the engine's own Arrow builders, double-quoted",
    ("engine/store/interchange.py", "table"): "literal table names (_insert_new's callers in interchange.py)",
    ("engine/store/projections.py", "' '.join(joins)"): "run_map_points: LEFT JOINs with numbered aliases p0, p1, ... "
                                                     "(the classifier names and run id are ? parameters)",
    ("engine/store/projections.py", "''.join(cols)"): "run_map_points: the numbered aliases' columns as pred_idx_<i>, "
                                                     "real_score_<i>, probs_<i> (i a loop counter)",
    ("engine/store/runs.py", "table"): "literal table names of discard_run_results' tuple",
    ("engine/store/runs.py", "where"): "literal predicates with ? parameters (discard_run_results)",
}


def sql_interpolations() -> set[tuple[str, str]]:
    found = set()
    for f in code_files():
        rel = f.relative_to(ROOT).as_posix()
        tree = ast.parse(f.read_text(), str(f))
        for n in ast.walk(tree):
            if isinstance(n, ast.JoinedStr):
                lit = "".join(v.value for v in n.values if isinstance(v, ast.Constant))
                if SQL_TEXT.search(lit):
                    found |= {(rel, ast.unparse(v.value)) for v in n.values if isinstance(v, ast.FormattedValue)}
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in SQL_CALLS and n.args:
                a = n.args[0]
                if isinstance(a, ast.Call) and isinstance(a.func, ast.Attribute) and a.func.attr == "format":
                    found.add((rel, "format:" + ast.unparse(a.func.value)))
                elif isinstance(a, ast.BinOp) and isinstance(a.op, (ast.Mod, ast.Add)):
                    found.add((rel, "binop:" + ast.unparse(a)))
    return found


def test_sql_text_interpolates_only_reviewed_constants():
    new = sorted(sql_interpolations() - set(REVIEWED))
    assert not new, ("SQL text built from these expressions: pass values as ? parameters, or review the "
                     f"expression and add it to REVIEWED with the reason it carries no user value: {new}")


def test_the_scan_finds_interpolation():
    """The scanner is not blind: it flags a user value formatted into SQL."""
    tree_src = 'con.execute(f"SELECT * FROM videos WHERE dataset = \'{user}\'")\nstore.df("DELETE FROM x WHERE a=" + v)\n'
    p = ROOT / "engine" / "_scan_probe_tmp.py"
    try:
        p.write_text(tree_src)
        found = sql_interpolations()
    finally:
        p.unlink()
    assert ("engine/_scan_probe_tmp.py", "user") in found
    assert any(f == "engine/_scan_probe_tmp.py" and e.startswith("binop:") for f, e in found)


@pytest.mark.slow
def test_hostile_query_parameters_leave_the_store_untouched(tmp_path, monkeypatch):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from tests.reliability.reliability_util import store_counts
    from testkit.dashboard_store import build_fixture_store, run_ids

    ws = tmp_path / "ws"
    build_fixture_store(ws, n_points=120)
    before = store_counts(ws / "atlas.duckdb")
    monkeypatch.setenv("DFATLAS_WORKSPACE", str(ws))
    payloads = [
        {"run": "x' OR '1'='1", "clf": "'; DROP TABLE runs; --", "db": "synth-a/test'; DELETE FROM videos; --",
         "level": "video"},
        {"run": run_ids()["triplet"], "clf": "knn' UNION SELECT * FROM runs --", "db": "../../etc/passwd",
         "level": "frame"},
    ]
    for q in payloads:
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=90)
        for k, v in q.items():
            at.query_params[k] = v
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    assert store_counts(ws / "atlas.duckdb") == before


# --- no unsafe deserialisation -------------------------------------------------------------------

def unsafe_loads() -> list[str]:
    bad = []
    for f in code_files():
        rel = f.relative_to(ROOT).as_posix()
        for n in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in n.names] + ([n.module] if isinstance(n, ast.ImportFrom) and n.module else [])
                if any(x.split(".")[0] in ("pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal")
                       for x in names):
                    bad.append(f"{rel}:{n.lineno}: imports {names}")
            if not isinstance(n, ast.Call):
                continue
            fn = ast.unparse(n.func)
            kw = {k.arg: ast.unparse(k.value) for k in n.keywords}
            if fn.endswith("torch.load") or fn == "load" and False:
                if kw.get("weights_only") != "True":
                    bad.append(f"{rel}:{n.lineno}: {fn} without weights_only=True")
            if fn.split(".")[-1] in ("read_pickle", "loads") and fn.split(".")[0] in ("pd", "pandas", "pickle"):
                bad.append(f"{rel}:{n.lineno}: {fn}")
            if fn.split(".")[-1] == "load" and kw.get("allow_pickle") == "True":
                bad.append(f"{rel}:{n.lineno}: {fn}(allow_pickle=True)")
            if fn in ("eval", "exec"):
                bad.append(f"{rel}:{n.lineno}: {fn}()")
            if fn.endswith("yaml.load") and "SafeLoader" not in kw.get("Loader", ""):
                bad.append(f"{rel}:{n.lineno}: yaml.load without SafeLoader")
    return bad


def test_no_pickle_and_torch_load_only_with_weights_only():
    assert not unsafe_loads()


def test_booby_trapped_checkpoint_is_refused_without_running_code(tmp_path):
    import torch

    from data_catalog.errors import AtlasError
    from engine.models import create_backbone, read_checkpoint

    marker = tmp_path / "pwned"

    class Trap:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "weights.pth"
    torch.save({"format": "dfatlas-checkpoint-1", "model": Trap()}, path)
    with pytest.raises(AtlasError):
        read_checkpoint(path)
    assert not marker.exists()
    with pytest.raises(AtlasError):
        create_backbone("test_resnet", pretrained=False, checkpoint=str(path))
    assert not marker.exists()
