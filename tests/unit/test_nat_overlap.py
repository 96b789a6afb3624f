"""NAT between overlapping address spaces, pure parts: which overlaps NAT resolves (each viewer's sight), the
findings when it does not, and how the lab builds it: each connection translates in its own tunnel namespace
and the gateway routes each site's external prefix into that connection's interface."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from lab.azure.address_views import nat_pairs, overlaps, sharing_connections
from lab.azure.nat import check_nat
from lab.errors import TopologyError
from lab.plan import build_plan
from lab.render.lab_files import render_files
from lab.render.tunnel_ifaces import tunnel_ifaces
from lab.secrets import resolve_keys
from lab.topology.checks import check_topology
from lab.topology.load import load_file
from lab.topology.model import Topology
from lab.verify.targets import build_targets

ROOT = Path(__file__).resolve().parents[2]
N = IPv4Network


def overlap_topo(edit: Any = None) -> Topology:
    topo, _ = load_file(ROOT / "topologies" / "nat-overlap.yml")
    if edit is None:
        return topo
    data = topo.model_dump(mode="json")
    edit(data)
    return Topology.model_validate(data)


def findings(topo: Topology) -> list[tuple[str, str]]:
    return [(f.path, f.message) for f in check_topology(topo)]


def test_azures_nat_example_is_valid_and_every_pair_is_judged_by_nat() -> None:
    topo = overlap_topo()
    assert findings(topo) == []
    assert nat_pairs(topo) == {frozenset({"gateway azgw", "site branch1"}), frozenset({"gateway azgw", "site branch2"}),
                               frozenset({"site branch1", "site branch2"})}
    assert sharing_connections(topo) == ["azgw-branch1", "azgw-branch2"]


def test_a_site_overlapping_the_vnet_needs_an_egress_rule_on_its_connection() -> None:
    topo = overlap_topo(lambda d: d["connections"]["azgw-branch1"].update(egress_nat_rules=[]))
    assert findings(topo) == [(
        "connections.azgw-branch1.egress_nat_rules",
        "site branch1 (connection azgw-branch1) would see gateway azgw's 10.0.1.0/24 untranslated, overlapping "
        "site branch1's 10.0.1.0/24")]


def test_a_site_without_ingress_rule_clashes_with_the_vnet_as_the_gateway_sees_it() -> None:
    topo = overlap_topo(lambda d: d["connections"]["azgw-branch2"].update(ingress_nat_rules=[]))
    (f,) = overlaps(topo)
    assert f.path == "connections.azgw-branch2.ingress_nat_rules"
    assert "gateway azgw would see site branch2's 10.0.1.0/24 untranslated, overlapping gateway azgw's" in f.message
    assert f.hint is not None and "add an IngressSnat rule for 10.0.1.0/24" in f.hint


def test_external_mappings_must_not_overlap_each_other() -> None:
    def same_external(d: dict[str, Any]) -> None:
        d["gateways"]["azgw"]["nat_rules"]["branch2-in"]["external_mappings"] = ["100.0.2.0/25"]
    (f,) = overlaps(overlap_topo(same_external))
    assert f.path == "connections.azgw-branch2.ingress_nat_rules"
    assert "as 100.0.2.0/25, overlapping site branch1's 100.0.2.0/24 (translated from 10.0.1.0/24)" in f.message
    assert f.hint is not None and "external mappings must not overlap" in f.hint


def test_an_external_mapping_must_not_overlap_a_network_connected_without_nat() -> None:
    def plain_site(d: dict[str, Any]) -> None:
        d["sites"]["branch3"] = {"public_ip": "198.51.100.30", "address_space": ["100.0.3.0/24"]}
        d["connections"]["azgw-branch3"] = {"gateway": "azgw", "site": "branch3"}
    (f,) = overlaps(overlap_topo(plain_site))
    assert f.path == "connections.azgw-branch2.ingress_nat_rules"
    assert "overlapping site branch3's 100.0.3.0/24" in f.message


def test_overlap_without_any_nat_keeps_the_plain_message() -> None:
    def no_nat(d: dict[str, Any]) -> None:
        for c in d["connections"].values():
            c.update(ingress_nat_rules=[], egress_nat_rules=[])
    topo = overlap_topo(no_nat)
    assert nat_pairs(topo) == set()
    assert ("sites.branch1.address_space[0]",
            "address space 10.0.1.0/24 overlaps 10.0.1.0/24 (gateways.azgw.vnet.address_space[0])") in findings(topo)


def test_each_connection_translates_in_its_own_namespace_and_routes_its_external_prefix() -> None:
    topo = overlap_topo()
    ifaces = {i.conn: i for i in tunnel_ifaces(topo, build_plan(topo))["azgw-0"]}
    assert {c: i.routes for c, i in ifaces.items()} == {"azgw-branch1": (N("100.0.2.0/24"),),
                                                         "azgw-branch2": (N("100.0.3.0/24"),)}
    assert [n for n, _ in ifaces["azgw-branch1"].nat] == ["branch1-in", "vnet-out"]
    assert ifaces["azgw-branch1"].anchors == (IPv4Address("100.0.1.1"),)  # the VNet as the site sees it
    files, _ = render_files(topo, build_plan(topo), resolve_keys(topo, {}, generate=lambda: "k"), "libipsec")
    text = {str(k): v for k, v in files.items()}
    nft = text["azgw-0/tunnels/azgw-branch2/nat.nft"]
    assert 'iifname "ext" ip daddr 100.0.3.0/24 dnat ip prefix to 10.0.1.0/24' in nft
    assert 'iifname != "ext" oifname "ext" ip saddr 10.0.1.0/24 snat ip prefix to 100.0.3.0/24' in nft
    main = text["azgw-0/nftables.conf"]
    assert main.endswith("table ip labnat\ndelete table ip labnat\n")  # nothing translated in the main namespace
    targets = build_targets(topo, build_plan(topo))
    assert (targets.dst_ip("vm1", "pc1"), targets.dst_ip("vm1", "pc2")) == ("100.0.2.10", "100.0.3.10")
    assert targets.dst_ip("pc2", "vm1") == "100.0.1.10"


@pytest.mark.parametrize("dataplane", ["libipsec", "kernel"])
def test_without_tunnel_interfaces_shared_prefixes_are_refused(dataplane: str) -> None:
    # policy-based traffic selectors: no tunnel interface, so nothing separates the two sites' traffic
    topo = overlap_topo(lambda d: d["connections"]["azgw-branch1"].update(use_policy_based_traffic_selectors=True))
    with pytest.raises(TopologyError) as info:
        render_files(topo, build_plan(topo), resolve_keys(topo, {}, generate=lambda: "k"), dataplane)  # type: ignore[arg-type]
    assert info.value.message.startswith("connections.azgw-branch1: its site shares a prefix")
    assert info.value.exit_code == 2


def test_bgp_on_a_nat_connection_warns_that_routes_are_not_translated() -> None:
    topo = overlap_topo(lambda d: (d["gateways"]["azgw"].update(bgp={"asn": 65515}),
                                   d["sites"]["branch1"].update(bgp={"asn": 65010, "peer_ip": "169.254.21.5"}),
                                   d["connections"]["azgw-branch1"].update(enable_bgp=True)))
    warned = {f.path: f for f in check_nat(topo) if f.severity == "warning"}
    assert set(warned) == {"connections.azgw-branch1.enable_bgp", "sites.branch1.bgp"}
    assert "untranslated" in warned["connections.azgw-branch1.enable_bgp"].message
    assert "enable_bgp_route_translation_for_nat: true" in str(warned["connections.azgw-branch1.enable_bgp"].hint)
    assert "NAT isn't supported with BGP APIPA addresses" in warned["sites.branch1.bgp"].message
