"""Import fences: each outside library is used by exactly one layer, so layers stay swappable and testable."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[2] / "lab"
# library -> the package prefixes (relative module paths) allowed to import it
FENCES = {
    "docker": ("runtime/",),
    "pyroute2": ("runtime/",),
    "vici": ("control/",),
    "scapy": ("probes/",),
    "rich": ("report/", "cli/"),
}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


MODULES = sorted(LAB.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(LAB)) for p in MODULES])
def test_module_respects_import_fences(path: Path) -> None:
    rel = str(path.relative_to(LAB))
    for lib in imported_roots(path) & set(FENCES):
        assert rel.startswith(FENCES[lib]), f"lab/{rel} imports {lib}; only {FENCES[lib]} may"


def test_fence_check_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("import docker.errors\nfrom scapy.all import IP\nfrom . import x\n")
    assert imported_roots(sample) == {"docker", "scapy"}
