"""No import cycle anywhere in lab/: every module can be read (and changed) knowing only what is below it."""

from __future__ import annotations

from pathlib import Path

from tests.unit.lab_imports import find_cycle, import_graph


def test_lab_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_cycle_check_sees_a_lazy_import_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "lab"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from lab.b import thing\n")
    (pkg / "b.py").write_text("def f():\n    from lab import c\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lab.a import x\n")
    graph = import_graph(pkg)
    assert graph["lab.a"] == {"lab.b"} and graph["lab.b"] == {"lab.c"} and graph["lab.c"] == {"lab.a"}
    assert find_cycle(graph) == ["lab.a", "lab.b", "lab.c", "lab.a"]


def test_cycle_check_passes_a_layered_graph() -> None:
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
