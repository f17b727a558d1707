"""The dependency rules of docs/architecture.md, checked on the imports of every module (ast).

- services/ imports only services/ (never scripts/, bench/ or tests/);
- a service package imports itself, services/common and services/genproto, never another service;
- services/common imports no concrete service;
- scripts/ imports services/ and scripts/ (never bench/ or tests/);
- bench/ imports services/, scripts/ and bench/ (never tests/);
- tests/ may import anything.

Imports inside functions count too, and relative imports are resolved to the module they name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"services", "scripts", "bench", "tests"}
MAY_IMPORT = {
    "services": {"services"},
    "scripts": {"services", "scripts"},
    "bench": {"services", "scripts", "bench"},
}
SHARED_SERVICE_PACKAGES = {"common", "genproto"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path = REPO) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative ones resolved."""
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            if node.module:
                found.append((node.lineno, ".".join([*base, node.module])))
            else:  # from . import x: each name may be a module
                found += [(node.lineno, ".".join([*base, alias.name])) for alias in node.names]
    return found


def violations(top: str, root: Path = REPO) -> list[str]:
    """Every import in ``root/top`` that breaks a rule, as ``path:line imports name``."""
    bad = []
    for path in sorted((root / top).rglob("*.py")):
        where = path.relative_to(root).parts
        for line, name in imports(path, root):
            parts = name.split(".")
            if parts[0] not in FIRST_PARTY:
                continue
            allowed = parts[0] in MAY_IMPORT[top]
            if allowed and top == "services" and len(where) > 2 and len(parts) > 1:
                own = where[1]
                if own == "common":
                    allowed = parts[1] in SHARED_SERVICE_PACKAGES
                elif own != "genproto":
                    allowed = parts[1] in SHARED_SERVICE_PACKAGES | {own}
            if not allowed:
                bad.append(f"{path.relative_to(root)}:{line} imports {name}")
    return bad


@pytest.mark.parametrize("top", sorted(MAY_IMPORT))
def test_imports_point_one_way(top: str) -> None:
    assert list((REPO / top).rglob("*.py")), f"no modules under {top}/"
    bad = violations(top)
    assert not bad, "imports against the dependency rules (docs/architecture.md):\n" + "\n".join(bad)


def test_the_import_reader_sees_absolute_relative_and_nested_imports() -> None:
    files = imports(REPO / "scripts" / "monitoring" / "files.py")
    names = {name for _line, name in files}
    assert "services.common" in names  # from services.common import catalog
    assert "scripts.monitoring.rules" in names  # from .rules import rule_documents


def test_forbidden_imports_are_reported(tmp_path: Path) -> None:
    (tmp_path / "services" / "hello").mkdir(parents=True)
    (tmp_path / "services" / "common").mkdir()
    (tmp_path / "scripts").mkdir()
    (tmp_path / "services" / "hello" / "app.py").write_text(
        "from services.common import config\n"
        "from services.hello.views import hello\n"
        "from services.response import faults\n"
        "def later():\n"
        "    import scripts.local\n"
    )
    (tmp_path / "services" / "common" / "web.py").write_text("from ..incidents import views\n")
    (tmp_path / "scripts" / "tool.py").write_text("from services.common import config\nimport bench.run\n")
    assert violations("services", tmp_path) == [
        "services/common/web.py:1 imports services.incidents",
        "services/hello/app.py:3 imports services.response",
        "services/hello/app.py:5 imports scripts.local",
    ]
    assert violations("scripts", tmp_path) == ["scripts/tool.py:2 imports bench.run"]
