"""BGP route translation for NAT (enableBgpRouteTranslationForNat), pure parts: the rules `lab validate` applies,
the sessions' post-NAT addresses, and the FRR policy that makes FRR (which cannot rewrite a prefix) advertise and
use external mappings (lab/routing/nat_routes.py). tests/integration/test_nat_bgp.py runs it with real FRR."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

from lab.azure.nat import check_nat, static_view
from lab.plan import build_plan
from lab.routing.nodes import frr_nodes, render_frr_files
from lab.topology.load import load_file
from lab.topology.model import Topology

ROOT = Path(__file__).resolve().parents[2]
N, A = IPv4Network, IPv4Address


def topo(name: str = "nat-bgp", edit: Any = None) -> Topology:
    loaded, _ = load_file(ROOT / "topologies" / f"{name}.yml")
    if edit is None:
        return loaded
    data = loaded.model_dump(mode="json")
    edit(data)
    return Topology.model_validate(data)


def test_static_view_maps_an_address_through_static_rules_both_ways() -> None:
    rules = list(topo().gateways["azgw"].nat_rules.items())
    egress = [r for r in rules if r[1].mode == "EgressSnat"]
    ingress = [r for r in rules if r[1].mode == "IngressSnat"]
    assert static_view(A("10.0.1.4"), egress) == A("100.0.1.4")
    assert static_view(A("100.0.2.254"), ingress, inward=True) == A("10.0.1.254")
    assert static_view(A("10.3.0.254"), ingress, inward=True) == A("10.3.0.254")  # no rule: unchanged


def test_sessions_address_each_other_post_nat_and_the_device_holds_its_pre_nat_address() -> None:
    t = topo()
    nodes = frr_nodes(t)
    azure = {s.connection: s for s in nodes["azgw-0"].sessions}
    assert (azure["azgw-branch1"].local_ip, azure["azgw-branch1"].remote_ip) == (A("10.0.1.4"), A("100.0.2.254"))
    (branch1,) = nodes["branch1"].sessions
    assert (branch1.local_ip, branch1.remote_ip) == (A("10.0.1.254"), A("100.0.1.4"))  # Azure's BGP IP post-NAT
    (branch2,) = nodes["branch2"].sessions  # no NAT rules: the addresses themselves
    assert (branch2.local_ip, branch2.remote_ip) == (A("10.3.0.254"), A("10.0.1.4"))
    plan = {n.name: n for n in build_plan(t).nodes}
    assert IPv4Interface("10.0.1.254/32") in plan["branch1"].loopbacks  # not the post-NAT 100.0.2.254


def test_each_session_gets_its_nat_view() -> None:
    peers = {p.connection: p for p in frr_nodes(topo())["azgw-0"].nat}
    b1, b2 = peers["azgw-branch1"], peers["azgw-branch2"]
    assert b1.ingress == ((N("10.0.1.0/24"), N("100.0.2.0/24")),) and b1.vnet_view == (N("100.0.1.0/24"),)
    assert b1.next_hop == A("100.0.1.4")
    assert b2.ingress == () and b2.vnet_view == (N("10.0.1.0/24"),) and b2.next_hop is None
    assert set(frr_nodes(topo())["azgw-0"].networks) == {N("10.0.1.0/24"), N("100.0.1.0/24"), N("100.0.2.0/24")}


def _block(text: str, head: str) -> list[str]:
    """The lines of one route-map entry (its head line and the indented lines after it)."""
    lines = text.splitlines()
    i = lines.index(head)
    out = [head]
    for line in lines[i + 1:]:
        if not line.startswith(" "):
            break
        out.append(line)
    return out


def test_gateway_policy_tags_learned_internal_mappings_and_advertises_external_ones() -> None:
    conf = render_frr_files(topo())["azgw-0"]
    # learned 10.0.1.0/24 from branch1 (exactly the rule's internal mapping): tagged, next hop its post-NAT address
    assert "ip prefix-list NAT-INT-1 seq 5 permit 10.0.1.0/24" in conf
    assert _block(conf, "route-map NAT-IN-1 permit 5")[2:] == [" set large-community 65515:1:1 additive",
                                                               " set ip next-hop peer-address"]
    # ... kept out of the kernel and out of every advertisement
    assert "  table-map NAT-FIB" in conf and _block(conf, "route-map NAT-FIB deny 5")[1] == \
        " match large-community NAT-LEARNED"
    assert " match large-community NAT-LEARNED" in _block(conf, "route-map NAT-OUT-2 deny 5")
    # branch1 sees the VNet as 100.0.1.0/24 only, with Azure's post-NAT BGP IP as next hop; branch2 untranslated
    assert "ip prefix-list NAT-HIDE-1 seq 5 permit 10.0.1.0/24" in conf
    assert "ip prefix-list NAT-HIDE-2 seq 5 permit 100.0.1.0/24" in conf
    assert " set ip next-hop 100.0.1.4" in _block(conf, "route-map NAT-OUT-1 permit 1000")
    assert " set ip next-hop 100.0.1.4" not in _block(conf, "route-map NAT-OUT-2 permit 1000")
    # branch2 gets 100.0.2.0/24 only while branch1's 10.0.1.0/24 is learned, with Azure's transit AS path
    assert "  neighbor 10.3.0.254 advertise-map NAT-ADV-2 exist-map NAT-HAS-2" in conf
    assert "advertise-map NAT-ADV-1" not in conf  # no other connection translates for branch1
    assert _block(conf, "route-map NAT-ADV-2 permit 11")[1:] == [" match ip address prefix-list NAT-EXT-1",
                                                                 " set as-path prepend 65010"]
    assert _block(conf, "route-map NAT-HAS-2 permit 11")[1:] == [" match large-community NAT-LEARNED-1"]
    assert " bgp conditional-advertisement timer 5" in conf


def test_without_translation_the_gateway_keeps_azures_plain_prefix_lists() -> None:
    conf = render_frr_files(topo(edit=lambda d: d["gateways"]["azgw"].update(
        enable_bgp_route_translation_for_nat=False)))["azgw-0"]
    assert "NAT-" not in conf and "  neighbor 100.0.2.254 prefix-list AZURE-OUT out" in conf
    assert "  network 100.0.1.0/24" not in conf


def test_two_translated_connections_each_advertise_the_others_external_mapping() -> None:
    def bgp(d: dict) -> None:
        d["gateways"]["azgw"].update(bgp={"asn": 65515}, enable_bgp_route_translation_for_nat=True)
        for k, site in enumerate(("branch1", "branch2"), 2):
            d["sites"][site]["bgp"] = {"asn": 65000 + 10 * k, "peer_ip": f"100.0.{k}.254"}
            d["connections"][f"azgw-{site}"]["enable_bgp"] = True
    conf = render_frr_files(topo("nat-overlap", bgp))["azgw-0"]
    hop = " set ip next-hop 100.0.1.4"  # both branches see Azure's BGP IP through the EgressSnat rule
    assert _block(conf, "route-map NAT-ADV-1 permit 12")[1:] == [" match ip address prefix-list NAT-EXT-2",
                                                                 " set as-path prepend 65030", hop]
    assert _block(conf, "route-map NAT-ADV-2 permit 11")[1:] == [" match ip address prefix-list NAT-EXT-1",
                                                                 " set as-path prepend 65020", hop]
    sessions = {s.node: s for s in frr_nodes(topo("nat-overlap", bgp))["branch2"].sessions}
    assert sessions["branch2"].local_ip == A("10.0.1.254")  # 100.0.3.254 before branch2's IngressSnat rule


def test_a_device_advertising_other_than_the_rules_internal_mapping_is_warned() -> None:
    t = topo(edit=lambda d: d["sites"]["branch1"]["bgp"].update(advertise=["10.0.1.0/25"]))
    (w,) = [f for f in check_nat(t) if f.path == "sites.branch1.bgp.advertise"]
    assert w.severity == "warning" and "learned untranslated" in w.message and "exact prefixes" in str(w.hint)
    assert not [f for f in check_nat(topo()) if f.severity == "warning"]
