"""Rendered tunnel ends: selectors per VPN type, VNet-to-VNet, connection modes, device overrides."""

from __future__ import annotations

from typing import Any

from lab.azure import facts
from lab.azure.proposals import default_esp_proposals
from lab.render.connections import expected_children, refused_peers, render_swanctl
from lab.render.nftables import render_nftables
from lab.render.swanctl import Tree
from tests.topology.builders import base, model, second_gateway


def rendered(data: dict[str, Any]) -> dict[str, dict[str, Tree]]:
    topo = model(data)
    return {node: cfg.connections for node, cfg in render_swanctl(topo, {c: "k" for c in topo.connections}).items()}


def child(conns: dict[str, dict[str, Tree]], node: str, conn: str, name: str) -> Tree:
    return conns[node][conn]["children"][name]  # type: ignore[index,return-value]


def policy_based_two_by_two() -> dict[str, Any]:
    data = base()
    data["gateways"]["azgw"].update(vpn_type="PolicyBased", sku="Basic")
    data["gateways"]["azgw"]["vnet"]["address_space"] = ["10.1.0.0/16", "10.3.0.0/16"]
    data["sites"]["onprem"]["address_space"] = ["10.2.0.0/16", "10.4.0.0/16"]
    data["connections"]["c1"]["ike_version"] = "IKEv1"
    return data


def test_policy_based_has_one_child_per_prefix_pair_named_alike_on_both_ends() -> None:
    conns = rendered(policy_based_two_by_two())
    names = ["c1-0-0", "c1-0-1", "c1-1-0", "c1-1-1"]
    assert list(conns["azgw-0"]["c1"]["children"]) == names == list(conns["onprem"]["c1"]["children"])
    gw, site = child(conns, "azgw-0", "c1", "c1-0-1"), child(conns, "onprem", "c1", "c1-0-1")
    assert (gw["local_ts"], gw["remote_ts"]) == (["10.1.0.0/16"], ["10.4.0.0/16"])
    assert (site["local_ts"], site["remote_ts"]) == (["10.4.0.0/16"], ["10.1.0.0/16"])
    assert gw["life_time"] == f"{facts.POLICY_BASED_CHILD_LIFETIME_S}s"
    assert conns["azgw-0"]["c1"]["version"] == "1" and "dpd_delay" not in conns["azgw-0"]["c1"]


def test_route_based_gateway_offers_any_to_any_and_the_device_keeps_it_unless_it_narrows() -> None:
    conns = rendered(base())
    gw, site = child(conns, "azgw-0", "c1", "c1"), child(conns, "onprem", "c1", "c1")
    assert (gw["local_ts"], gw["remote_ts"]) == (["0.0.0.0/0"], ["0.0.0.0/0"])
    assert (site["local_ts"], site["remote_ts"]) == (["0.0.0.0/0"], ["0.0.0.0/0"])
    data = base()
    data["sites"]["onprem"]["device"] = {"traffic_selectors": "prefixes"}
    site = child(rendered(data), "onprem", "c1", "c1")
    assert (site["local_ts"], site["remote_ts"]) == (["10.2.0.0/16"], ["10.1.0.0/16"])


def test_vnet_to_vnet_is_any_to_any_on_both_ends_and_one_initiates() -> None:
    data = second_gateway(base(), active_active=True, public_ips=["203.0.113.90", "203.0.113.91"])
    data["connections"] = {"v2v": {"gateway": "azgw", "peer_gateway": "west"}}
    conns = rendered(data)
    assert list(conns["azgw-0"]) == ["v2v-0", "v2v-1"] and list(conns["west-1"]) == ["v2v"]
    a, b = child(conns, "azgw-0", "v2v-1", "v2v-1"), child(conns, "west-1", "v2v", "v2v")
    assert (a["local_ts"], a["remote_ts"]) == (["0.0.0.0/0"], ["0.0.0.0/0"])
    assert (b["local_ts"], b["remote_ts"]) == (["0.0.0.0/0"], ["0.0.0.0/0"])
    assert (a["start_action"], b["start_action"]) == ("start", "none")
    assert conns["azgw-0"]["v2v-1"]["remote_addrs"] == ["203.0.113.91"]
    assert conns["azgw-0"]["v2v-1"]["proposals"] == conns["west-1"]["v2v"]["proposals"]


def test_responder_only_gateway_never_initiates() -> None:
    data = base()
    data["connections"]["c1"].update(connection_mode="ResponderOnly")
    conns = rendered(data)
    gw, site = child(conns, "azgw-0", "c1", "c1"), child(conns, "onprem", "c1", "c1")
    assert (gw["start_action"], gw["close_action"], gw["dpd_action"]) == ("none", "none", "clear")
    assert (site["start_action"], site["close_action"], site["dpd_action"]) == ("start", "start", "restart")
    assert gw["esp_proposals"] == default_esp_proposals("RouteBased", initiates=False)
    assert "reauth_time" not in conns["azgw-0"]["c1"]  # a reauth would send a new IKE_SA_INIT
    assert conns["onprem"]["c1"]["rekey_time"] == f"{facts.IKE_SA_LIFETIME_S}s"


def test_initiator_only_gateway_drops_ike_sa_inits_from_the_peer() -> None:
    data = base()
    data["connections"]["c1"]["connection_mode"] = "InitiatorOnly"
    topo = model(data)
    assert refused_peers(topo) == {"azgw-0": [("198.51.100.10", "c1")]}
    text = render_nftables(refused_peers(topo)["azgw-0"])
    assert "ip saddr 198.51.100.10 udp dport 500 @th,128,64 0 @th,216,8 & 0x20 == 0 counter drop" in text
    assert "ip saddr 198.51.100.10 udp dport 4500 @th,64,32 0 @th,160,64 0 @th,248,8 & 0x20 == 0 counter drop" in text
    assert "chain prerouting" not in render_nftables(None)
    assert child(rendered(data), "azgw-0", "c1", "c1")["start_action"] == "start"


def test_device_overrides_are_rendered_on_the_site_only() -> None:
    data = base()
    data["sites"]["onprem"]["device"] = {"ike_proposals": ["aes128-sha1-modp1024"], "esp_proposals": ["aes128-sha1"],
                                         "ike_lifetime_seconds": 3600, "child_lifetime_seconds": 1200,
                                         "dpd_delay_seconds": 0}
    conns = rendered(data)
    site, gw = conns["onprem"]["c1"], conns["azgw-0"]["c1"]
    assert site["proposals"] == ["aes128-sha1-modp1024"] and site["rekey_time"] == "3600s" and "dpd_delay" not in site
    assert child(conns, "onprem", "c1", "c1")["esp_proposals"] == ["aes128-sha1"]
    assert child(conns, "onprem", "c1", "c1")["life_time"] == "1200s"
    assert gw["rekey_time"] == f"{facts.IKE_SA_LIFETIME_S}s" and gw["dpd_delay"] == "31s"
    assert child(conns, "azgw-0", "c1", "c1")["life_time"] == f"{facts.ROUTE_BASED_CHILD_LIFETIME_S}s"


def test_expected_children_name_every_rendered_connection() -> None:
    topo = model(policy_based_two_by_two())
    conns = rendered(policy_based_two_by_two())
    expected = expected_children(topo)
    assert set(expected) == set(conns)
    for node, wants in expected.items():
        assert {c: list(conns[node][c]["children"]) for c, _ in wants} == dict(wants)  # type: ignore[arg-type]


def test_kernel_tunnel_namespaces_reach_the_internet_only_with_ike_and_esp() -> None:
    """Kernel data plane, route-based: what leaves a tunnel namespace for eth0 is its charon's IKE or ESP; an
    ICMP error xfrm0 sends towards a spoofed source is dropped (libipsec nodes render without the guard)."""
    from pathlib import Path, PurePosixPath

    from lab.plan import build_plan
    from lab.render.lab_files import render_files
    from lab.topology.load import load_file

    topo, _ = load_file(Path(__file__).resolve().parents[2] / "topologies" / "s2s-route-based.yml")
    keys = {c: "k" for c in topo.connections}
    kernel, _ = render_files(topo, build_plan(topo), keys, "kernel")
    libipsec, _ = render_files(topo, build_plan(topo), keys, "libipsec")
    guard = 'iifname "vti-*" oifname "eth0" counter drop'
    for node in ("azgw-0", "onprem"):
        text = kernel[PurePosixPath(node) / "nftables.conf"]
        lines = [ln.strip() for ln in text.splitlines()]
        assert lines.index('iifname "vti-*" oifname "eth0" meta l4proto esp accept') < next(
            i for i, ln in enumerate(lines) if ln.startswith(guard))
        assert 'iifname "vti-*" oifname "eth0" udp sport { 500, 4500 } accept' in lines
        assert guard not in libipsec[PurePosixPath(node) / "nftables.conf"]
    assert guard not in render_nftables(None)
