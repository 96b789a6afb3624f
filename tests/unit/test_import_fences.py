"""Import fences. Two rules, both read with ast from every module under lab/:

1. Floors: every module sits on one floor (FLOORS, bottom first) and imports only modules on its own floor or
   below, so the pipeline reads top to bottom and a feature's low half (what `up` calls) stays below the
   pipeline while its commands sit above it. README.md "How it is built" shows the same table.
2. Libraries: each outside library is used by exactly one layer, so layers stay swappable and testable.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.unit.lab_imports import LAB, import_graph

# floor name -> module path prefixes under lab/ (a module takes the floor of its longest matching prefix)
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("errors.py", "findings.py", "state.py", "lock.py", "plan_types.py", "timing.py", "p2s/pki.py",
              "p2s/evidence.py")),
    ("model", ("topology/", "azure/", "plan.py", "secrets.py", "p2s/model.py", "p2s/rules.py", "routing/rules.py")),
    ("render", ("render/", "p2s/render.py", "ha/standby.py", "routing/peers.py", "routing/frr_conf.py",
                "routing/nodes.py", "routing/frr_parse.py", "routing/views.py", "routing/nat_routes.py")),
    ("seams", ("runtime/", "control/", "probes/", "daemons.py")),
    ("core", ("core.py", "status.py", "hooks.py")),
    ("hooks", ("tunnel_units.py", "node_agent.py", "acquire.py", "p2s/creds.py", "p2s/run.py", "p2s/profile.py",
               "ha/agents.py",
               "device/parse.py", "device/checks.py", "device/byo.py", "device/diagnose.py", "routing/vtysh.py",
               "routing/diagnose.py", "routing/collect.py", "routing/run.py")),
    ("pipeline", ("pipeline.py",)),
    ("running", ("ops/", "verify/", "scenarios/", "ha/failover.py", "ha/failover_run.py", "ha/reset.py",
                 "p2s/measure.py",
                 "device/testing.py", "device/reload.py", "ui/")),
    ("entry", ("report/", "cli/", "pytest_plugin.py", "__main__.py", "__init__.py", "guest/")),
]
# library -> the package prefixes (relative module paths) allowed to import it
FENCES = {
    "docker": ("runtime/",),
    "pyroute2": ("runtime/",),
    "vici": ("control/",),
    "scapy": ("probes/",),
    "rich": ("report/", "cli/"),
}


def floor_of(rel: str) -> int:
    """The floor index of lab/<rel> ("pkg/" for a package's __init__)."""
    if rel.endswith("/__init__.py"):
        rel = rel.removesuffix("__init__.py")
    best = max(((len(p), i) for i, (_, prefixes) in enumerate(FLOORS) for p in prefixes if rel.startswith(p)),
               default=None)
    if best is None and rel.endswith("/"):
        return 0  # a feature package's __init__ (a docstring) spans floors: it must import nothing
    if best is None:
        raise AssertionError(f"lab/{rel} sits on no floor: add it to FLOORS in {Path(__file__).name} and the README")
    return best[1]


def rel_path(module: str) -> str:
    parts = module.split(".")[1:]
    path = LAB.joinpath(*parts)
    return str(path.relative_to(LAB)) + "/" if path.is_dir() else str(path.with_suffix(".py").relative_to(LAB))


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


MODULES = sorted(LAB.rglob("*.py"))
GRAPH = import_graph()


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(LAB)) for p in MODULES])
def test_module_respects_import_fences(path: Path) -> None:
    rel = str(path.relative_to(LAB))
    for lib in imported_roots(path) & set(FENCES):
        assert rel.startswith(FENCES[lib]), f"lab/{rel} imports {lib}; only {FENCES[lib]} may"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_module_imports_only_its_floor_or_below(module: str) -> None:
    if module == "lab":
        return
    mine = floor_of(rel_path(module))
    for target in sorted(GRAPH[module]):
        theirs = floor_of(rel_path(target))
        assert theirs <= mine, (f"{module} ({FLOORS[mine][0]}) imports {target} ({FLOORS[theirs][0]}): "
                                "a floor imports only its own floor and those below (see FLOORS)")


def test_floors_order_the_pipeline() -> None:
    order = [name for name, _ in FLOORS]
    assert order.index("core") < order.index("hooks") < order.index("pipeline") < order.index("running")
    assert floor_of("device/parse.py") < floor_of("pipeline.py") < floor_of("device/testing.py")


def test_fence_check_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("import docker.errors\nfrom scapy.all import IP\nfrom . import x\n")
    assert imported_roots(sample) == {"docker", "scapy"}
