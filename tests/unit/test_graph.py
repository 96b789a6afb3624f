"""`lab graph`: pure render of each reference topology, pinned as golden files (--update-golden rewrites)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.render.graph import render_graph
from lab.topology.load import load_file

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "graph"
CASES = ["s2s-route-based", "policy-based-basic", "vnet-to-vnet", "active-active"]


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
@pytest.mark.parametrize("case", CASES)
def test_graph_golden(case: str, fmt: str, update_golden: bool) -> None:
    topo, _ = load_file(ROOT / "topologies" / f"{case}.yml")
    text = render_graph(topo, fmt)  # type: ignore[arg-type]
    path = GOLDEN / f"{case}.{'mmd' if fmt == 'mermaid' else 'dot'}"
    if update_golden:
        path.write_text(text)
    assert text == path.read_text()
    assert render_graph(topo, fmt) == text  # deterministic  # type: ignore[arg-type]


def test_graph_colors_running_states() -> None:
    topo, _ = load_file(ROOT / "topologies" / "s2s-route-based.yml")
    text = render_graph(topo, "dot", {("azgw-0", "azgw-onprem"): "down"})
    assert 'label="azgw-onprem: down" color="red"' in text
    mmd = render_graph(topo, "mermaid", {("azgw-0", "azgw-onprem"): "up"})
    assert "linkStyle 0 stroke:green" in mmd and "azgw-onprem: up" in mmd
