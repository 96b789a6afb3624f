"""The routes check's pure parts (lab/verify/routes.py): which probes to run, which interface carried them."""

from __future__ import annotations

from pathlib import Path

from lab.core import load
from lab.routing.views import RouteRow
from lab.verify.routes import carriers, parse_counters, probes

ROOT = Path(__file__).resolve().parents[2]


def row(node: str, network: str, origin: str = "EBgp", best: bool = True) -> RouteRow:
    return RouteRow(node=node, local_address="x", network=network, next_hop="10.2.255.254", source_peer="p",
                    origin=origin, as_path="65010", best=best)


def test_counters_and_carriers() -> None:
    before = parse_counters("vti-a-0 10\nvti-a-1 5\nipsec0 7\ngarbage\n")
    after = parse_counters("vti-a-0 26\nvti-a-1 5\nipsec0 7\n")
    assert before == {"vti-a-0": 10, "vti-a-1": 5, "ipsec0": 7}
    assert carriers(before, after) == {"vti-a-0": 16}


def test_probes_go_from_a_host_behind_the_node_to_a_host_inside_the_prefix(tmp_path: Path) -> None:
    lab = load(ROOT / "tests" / "integration" / "data" / "bgp-basic.yml", tmp_path)
    found = probes(lab, [row("azgw-0", "10.2.0.0/16"), row("azgw-0", "10.20.0.0/16"),
                         row("onprem", "10.1.0.0/16"), row("azgw-0", "10.1.0.0/16", origin="Network"),
                         row("onprem", "10.9.0.0/16", best=False)])
    assert [(p.node, p.network, p.source, p.target) for p in found] == [
        ("azgw-0", "10.2.0.0/16", "vm1", "10.2.0.10"), ("azgw-0", "10.20.0.0/16", "vm1", ""),
        ("onprem", "10.1.0.0/16", "pc1", "10.1.0.10")]
