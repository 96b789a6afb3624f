"""`lab apply` of NAT rule changes, pure part: the commands that redo a connection's NAT in place, and which
rendered files they bring into effect. Removing every rule removes every table, route and address of them."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from lab.ops.apply import plan_changes
from lab.ops.apply_nat import handled_files, nat_work
from lab.plan import build_plan
from lab.render.lab_files import render_files
from lab.render.tunnel_ifaces import tunnel_ifaces
from lab.secrets import resolve_keys
from lab.topology.load import load_file
from lab.topology.model import Topology

ROOT = Path(__file__).resolve().parents[2]


def nat_topo() -> Topology:
    topo, _ = load_file(ROOT / "topologies" / "nat.yml")
    return topo


def without_nat(topo: Topology) -> Topology:
    data: dict[str, Any] = topo.model_dump(mode="json")
    data["gateways"]["azgw"]["nat_rules"] = {}
    data["connections"]["azgw-onprem"].update(ingress_nat_rules=[], egress_nat_rules=[])
    return Topology.model_validate(data)


def work(old: Topology, new: Topology, nft: set[str]) -> dict[str, list[str]]:
    plans = [{n.name: n for n in build_plan(t).nodes} for t in (old, new)]
    ifaces = [tunnel_ifaces(t, build_plan(t)) for t in (old, new)]
    return {w.node: [" ".join(c) for c in w.commands] for w in nat_work(*ifaces, *plans, nft)}


def test_removing_every_rule_removes_tables_routes_and_addresses() -> None:
    old = nat_topo()
    out = work(old, without_nat(old), {"azgw-0", "azgw-1"})
    assert out["azgw-0"] == [
        "nft -f /lab/nftables.conf",
        "ip addr del 100.64.1.5/32 dev lo",
        "ip netns exec tun-azgw-onprem nft delete table ip labnat",
        "ip -n tun-azgw-onprem addr del 100.64.1.1/32 dev lo",
        "ip -n tun-azgw-onprem addr add 10.1.0.1/32 dev lo",
        "ip route del 100.64.2.0/24 proto static",
        "nsenter --net=/proc/1/ns/net flock /lab/tunnels/.lock sh /lab/tunnels/routes.sh",
    ]
    assert out["onprem"] == ["ip route del 100.64.1.0/24 proto static",
                             "nsenter --net=/proc/1/ns/net flock /lab/tunnels/.lock sh /lab/tunnels/routes.sh"]


def test_adding_rules_loads_the_tunnel_table_and_no_node_is_rewired() -> None:
    new = nat_topo()
    old = without_nat(new)
    assert [c.kind for c in plan_changes(old, new) if c.refusal] == []
    out = work(old, new, set())
    assert "ip netns exec tun-azgw-onprem nft -f /lab/tunnels/azgw-onprem/nat.nft" in out["azgw-1"]
    assert "ip addr add 100.64.1.6/32 dev lo" in out["azgw-1"]


def test_only_nat_files_of_changed_nodes_are_handled_live() -> None:
    old, new = nat_topo(), without_nat(nat_topo())
    files, _ = render_files(new, build_plan(new), resolve_keys(new, {}, generate=lambda: "k"), "libipsec")
    ifaces = [tunnel_ifaces(t, build_plan(t)) for t in (old, new)]
    plans = [{n.name: n for n in build_plan(t).nodes} for t in (old, new)]
    handled = handled_files(files, nat_work(*ifaces, *plans, set()), *ifaces)
    assert PurePosixPath("azgw-0/tunnels/setup.sh") in handled
    assert PurePosixPath("onprem/tunnels/routes.sh") in handled
    assert not any(p.name in ("swanctl.conf", "strongswan.conf") for p in handled)
