"""Full mesh active-active (a device pair with `public_ips` against an A/A gateway): nodes, tunnels, agents."""

from __future__ import annotations

from collections import Counter
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from lab.core import Lab
from lab.ha import agents as ha
from lab.plan import build_plan, site_node_names
from lab.render.connections import expected_children
from lab.render.graph import render_graph
from lab.render.tunnels import tunnels
from lab.state import LabDir
from lab.topology.load import load_file

ROOT = Path(__file__).resolve().parents[2]


def full_mesh() -> Lab:
    topo, found = load_file(ROOT / "topologies" / "active-active-full-mesh.yml")
    assert found == []
    return Lab(topo, build_plan(topo), LabDir(Path("/nonexistent")))


def test_device_pair_is_two_site_nodes_on_one_lan() -> None:
    lab = full_mesh()
    assert site_node_names(lab.topo) == {"onprem-0", "onprem-1"}
    assert lab.plan.node("onprem-0").ifaces[1].addresses == (IPv4Interface("10.2.0.1/16"),)
    assert lab.plan.node("onprem-1").ifaces[1].addresses == (IPv4Interface("10.2.0.2/16"),)
    assert lab.plan.node("onprem-1").ifaces[0].addresses == (IPv4Interface("198.51.100.11/24"),)
    assert lab.plan.node("pc1").routes[0].via == (IPv4Address("10.2.0.1"), IPv4Address("10.2.0.2"))


def test_every_gateway_instance_has_a_tunnel_to_every_device() -> None:
    ts = tunnels(full_mesh().topo)
    assert sorted((t.azure.node, t.peer.node) for t in ts) == [
        ("azgw-0", "onprem-0"), ("azgw-0", "onprem-1"), ("azgw-1", "onprem-0"), ("azgw-1", "onprem-1")]
    assert len({t.secret for t in ts}) == 4
    ends = [e for t in ts for e in (t.azure, t.peer)]
    assert len({(e.node, e.conn) for e in ends}) == 8  # connection names unique per node
    wants = expected_children(full_mesh().topo)
    assert Counter({n: len(c) for n, c in wants.items()}) == Counter(
        {"azgw-0": 2, "azgw-1": 2, "onprem-0": 2, "onprem-1": 2})


def test_lan_hosts_of_a_device_pair_get_the_ecmp_agent() -> None:
    assert ha.ecmp_hosts(full_mesh()) == [("vm1", ["10.1.0.4", "10.1.0.5"]), ("pc1", ["10.2.0.1", "10.2.0.2"])]


def test_graph_draws_each_device_instance() -> None:
    text = render_graph(full_mesh().topo, "mermaid")
    assert "onprem_0" in text and "198.51.100.11" in text and "azgw_1 <-->|azgw-onprem-1| onprem_1" in text
