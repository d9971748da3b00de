"""The layout's rules, checked on the source: data flows one way, SQL lives in the store package,
approach-specific behaviour lives in the approach registry, and docs/ARCHITECTURE.md names real things."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+(OR\s+REPLACE\s+)?INTO|DELETE\s+FROM|UPDATE\s+\w+\s+SET|"
                 r"CREATE\s+(TABLE|VIEW))\b", re.S)
MAX_LINES = 550


def sources(*folders: str, exclude: tuple[str, ...] = ()) -> list[Path]:
    out = []
    for folder in folders:
        base = ROOT / folder
        files = [base] if base.suffix == ".py" else sorted(base.rglob("*.py"))
        out += [f for f in files if not any(f.relative_to(ROOT).as_posix().startswith(e) for e in exclude)]
    return out


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module a file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def string_constants(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            yield node.lineno, text


def test_nothing_in_the_engine_imports_the_command_line():
    bad = [(p.relative_to(ROOT).as_posix(), m) for p in sources("engine", exclude=("engine/commands", "engine/cli.py"))
           for m in imported_modules(p) if m.startswith(("engine.commands", "engine.cli"))]
    assert not bad, bad


def test_data_flows_one_way():
    rules = {"data_catalog": ("engine", "dashboard", "dfatlas"), "engine": ("dashboard", "dfatlas"),
             "dashboard": ("engine.commands", "engine.cli", "dfatlas"),
             # the API calls the engine's functions (no detour through the CLI; no Streamlit)
             "dfatlas": ("dashboard", "engine.commands", "engine.cli", "streamlit")}
    bad = [(p.relative_to(ROOT).as_posix(), m) for folder, banned in rules.items() for p in sources(folder)
           for m in imported_modules(p) if m.startswith(banned)]
    assert not bad, bad


def test_no_sql_outside_the_store_package():
    # bench_store.py benchmarks the store's own SQL against alternatives: the one exception.
    files = sources("engine", "dashboard", "data_catalog", "streamlit_app.py", ".ci", "bench",
                    exclude=("engine/store/", "bench/bench_store.py"))
    bad = [f"{p.relative_to(ROOT).as_posix()}:{line}: {text.strip()[:60]}" for p in files
           for line, text in string_constants(p) if SQL.search(text)]
    assert not bad, "\n".join(bad)


def _approach_literals(node, names) -> bool:
    if isinstance(node, ast.Constant):
        return node.value in names
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_approach_literals(e, names) for e in node.elts)
    return False


def test_no_approach_comparisons_outside_the_registry():
    """`approach == "binary"`, `in ("triplet", "arcfacemod")`, {"triplet": ...} tables: the registry's job."""
    from engine.approaches import approach_names

    names = set(approach_names())
    bad = []
    for p in sources("engine", "dashboard", exclude=("engine/approaches/",)):
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            hit = False
            if isinstance(node, ast.Compare):
                hit = any(_approach_literals(x, names) for x in [node.left, *node.comparators])
            elif isinstance(node, ast.Dict):
                hit = any(k is not None and _approach_literals(k, names) for k in node.keys)
            elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                hit = sum(isinstance(e, ast.Constant) and e.value in names for e in node.elts) >= 2
            if hit:
                bad.append(f"{p.relative_to(ROOT).as_posix()}:{node.lineno}")
    assert not bad, bad


def test_modules_stay_small():
    big = [(p.relative_to(ROOT).as_posix(), n) for p in sources("engine", "dashboard", "data_catalog")
           if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not big, big


def test_one_meaning_per_module_name():
    """No two modules of one name in engine/ and dashboard/; the store's modules are named by their tables,
    the CLI's by their sub-command and the dashboard's pages by their page, so those three folders are left out."""
    seen: dict[str, str] = {}
    clash = []
    for p in sources("engine", "dashboard", exclude=("engine/store/", "engine/commands/", "dashboard/pages/")):
        if p.name == "__init__.py":
            continue
        rel = p.relative_to(ROOT).as_posix()
        if p.stem in seen:
            clash.append((seen[p.stem], rel))
        seen[p.stem] = rel
    assert not clash, clash


def architecture_names() -> list[str]:
    """Every `engine.x.y` / `dashboard.x` / `data_catalog.x` name in docs/ARCHITECTURE.md's backticks."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    found = re.findall(r"`((?:engine|dashboard|data_catalog)(?:\.[A-Za-z_][A-Za-z0-9_]*)+)(?:\(\))?`", text)
    return sorted(set(found))


def test_architecture_doc_names_real_modules_and_functions():
    names = architecture_names()
    assert len(names) > 40, "docs/ARCHITECTURE.md should name the modules and functions it describes"
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
            continue
        except ImportError:
            pass
        mod, _, attr = name.rpartition(".")
        try:
            obj = importlib.import_module(mod)
        except ImportError:
            owner, _, cls = mod.rpartition(".")  # module.Class.method
            try:
                obj = getattr(importlib.import_module(owner), cls)
            except (ImportError, AttributeError):
                missing.append(name)
                continue
        if not hasattr(obj, attr):
            missing.append(name)
    assert not missing, missing


@pytest.mark.parametrize("page", sorted(p.name for p in (ROOT / "dashboard" / "pages").glob("*.py")))
def test_pages_compute_no_metric(page):
    """Dashboard pages lay out and call: metrics come from engine.scores / engine.evaluation / engine.metrics."""
    mods = imported_modules(ROOT / "dashboard" / "pages" / page)
    assert not any(m.startswith("sklearn") for m in mods), mods
    text = (ROOT / "dashboard" / "pages" / page).read_text()
    assert "far_threshold" not in text and "roc_curve" not in text
