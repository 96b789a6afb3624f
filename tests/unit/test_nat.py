"""NAT rules, pure parts: address translation, the nftables lines, the site's selectors, verify's targets and
the inner addresses the decryption check reports."""

from __future__ import annotations

from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

from lab.azure.nat import node_rules, translate
from lab.plan import build_plan
from lab.probes.esp import Decryption
from lab.probes.pcap import WireFrame
from lab.render.nftables import nat_rules
from lab.render.tunnel_ifaces import tunnel_ifaces
from lab.render.tunnels import tunnels
from lab.topology.load import load_file
from lab.topology.model import NatRule
from lab.verify.checks_sa import inner_pairs
from lab.verify.targets import build_targets

ROOT = Path(__file__).resolve().parents[2]
N = IPv4Network


def rule(mode: str, internal: str, external: str, kind: str = "Static") -> tuple[str, NatRule]:
    return "r", NatRule(type=kind, mode=mode, internal_mappings=[N(internal)], external_mappings=[N(external)])


def test_static_rule_keeps_host_bits_and_leaves_other_prefixes() -> None:
    r = [rule("EgressSnat", "10.1.0.0/24", "100.64.1.0/24")]
    assert translate([N("10.1.0.10/32"), N("10.7.0.0/16")], r) == [N("100.64.1.10/32"), N("10.7.0.0/16")]
    assert translate([N("10.1.0.0/16")], r) == [N("10.1.0.0/16"), N("100.64.1.0/24")]


def test_dynamic_rule_maps_to_its_pool() -> None:
    assert translate([N("10.1.0.0/24")], [rule("EgressSnat", "10.1.0.0/24", "100.64.9.0/30", "Dynamic")]) \
        == [N("100.64.9.0/30")]


def test_nft_lines_translate_both_directions_for_static_only() -> None:
    static = nat_rules([rule("IngressSnat", "10.2.0.0/24", "100.64.2.0/24")])
    assert static == [
        ("postrouting", 'iifname != "eth1" oifname "eth1" ip saddr 10.2.0.0/24 snat ip prefix to 100.64.2.0/24 '
                        'comment "r: IngressSnat Static 10.2.0.0/24 <-> 100.64.2.0/24"'),
        ("prerouting", 'iifname "eth1" ip daddr 100.64.2.0/24 dnat ip prefix to 10.2.0.0/24 '
                       'comment "r: IngressSnat Static 10.2.0.0/24 <-> 100.64.2.0/24"'),
    ]
    dynamic = nat_rules([rule("EgressSnat", "10.1.0.0/24", "100.64.9.0/30", "Dynamic")])
    assert [c for c, _ in dynamic] == ["postrouting"]
    assert "snat ip to 100.64.9.0-100.64.9.3" in dynamic[0][1]


def test_nat_topology_site_sees_only_translated_vnet_and_targets_use_it() -> None:
    topo, warnings = load_file(ROOT / "topologies" / "nat.yml")
    assert warnings == []
    (t,) = tunnels(topo)
    assert [c.remote_ts for c in t.peer.children] == [(N("0.0.0.0/0"),)]  # route-based device: any-to-any
    (site_iface,) = tunnel_ifaces(topo, build_plan(topo))["onprem"]
    assert site_iface.routes == (N("100.64.1.0/24"),)  # ... routing only the translated VNet into its tunnel
    assert [n for n, _ in node_rules(topo, "azgw", 0)] == ["site-in", "vnet-out"]
    plan = build_plan(topo)
    gw0 = next(n for n in plan.nodes if n.name == "azgw-0")
    assert gw0.loopbacks == (IPv4Interface("100.64.1.5/32"),)  # libipsec needs a local address in local_ts
    targets = build_targets(topo, plan)
    assert targets.dst_ip("vm1", "pc1") == "100.64.2.10"
    assert targets.dst_ip("pc1", "vm1") == "100.64.1.10"


def test_inner_pairs_names_addresses_of_decrypted_packets_once() -> None:
    frame = WireFrame.__new__(WireFrame)
    packet = bytes([0x45]) + bytes(11) + bytes([10, 2, 0, 10, 100, 64, 1, 10])
    ds = [Decryption(frame, True, inner=packet), Decryption(frame, True, inner=packet),
          Decryption(frame, False, inner=b"")]
    assert inner_pairs(ds) == ["10.2.0.10 -> 100.64.1.10"]


def test_rule_with_ip_configuration_id_applies_on_that_instance_only() -> None:
    topo, _ = load_file(ROOT / "topologies" / "nat.yml")
    data = topo.model_dump(mode="json")
    gw = data["gateways"]["azgw"]
    gw.update(public_ips=["203.0.113.10", "203.0.113.11"], active_active=True)
    gw["nat_rules"]["vnet-out"]["ip_configuration_id"] = 1
    aa = type(topo).model_validate(data)
    assert [n for n, _ in node_rules(aa, "azgw", 0)] == ["site-in"]
    assert [n for n, _ in node_rules(aa, "azgw", 1)] == ["site-in", "vnet-out"]
    by_instance = {i.peer_ip.exploded: i.routes for i in tunnel_ifaces(aa, build_plan(aa))["onprem"]}
    assert by_instance == {"203.0.113.10": (N("10.1.0.0/24"),), "203.0.113.11": (N("100.64.1.0/24"),)}
