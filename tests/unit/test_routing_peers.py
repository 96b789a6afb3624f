"""Who peers with whom (lab/routing/peers.py) and what each node's frr.conf says (lab/routing/frr_conf.py)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from lab.azure import facts
from lab.routing.frr_conf import FRR_MAX_PREFIX, azure_prefix_lists, supernets
from lab.routing.frr_parse import parse_frr
from lab.routing.nodes import render_frr_files
from lab.routing.peers import sessions
from lab.topology.load import load_file

ROOT = Path(__file__).resolve().parents[2]


def topo(name: str):  # noqa: ANN201
    return load_file(ROOT / "topologies" / f"{name}.yml")[0]


def test_apipa_site_peers_with_each_instances_apipa_and_azure_waits() -> None:
    found = sessions(topo("bgp-active-active"))
    azure = sorted((s.node, str(s.local_ip), s.passive) for s in found if s.azure)
    assert azure == [("azgw-0", "169.254.21.1", True), ("azgw-1", "169.254.22.1", True)]
    site = sorted((str(s.remote_ip), s.passive) for s in found if not s.azure)
    assert site == [("169.254.21.1", False), ("169.254.22.1", False)]


def test_non_apipa_peers_use_the_gateway_subnet_address_and_both_initiate() -> None:
    found = sessions(topo("bgp-transit"))
    hub = {str(s.remote_ip): s for s in found if s.node == "hub-0"}
    assert {str(s.local_ip) for s in hub.values()} == {"10.1.0.4"}
    assert not any(s.passive for s in found)
    assert (hub["10.5.0.4"].remote_asn, hub["10.5.0.4"].azure) == (65050, True)  # VNet-to-VNet


def test_azure_never_sends_a_default_route_nor_the_vnets_overlaps() -> None:
    lines = azure_prefix_lists((IPv4Network("10.1.0.0/16"),))
    out = [ln.split(" ", 5)[5] for ln in lines if "AZURE-OUT" in ln]
    assert out[0] == "permit 10.1.0.0/16" and out[1] == "deny 0.0.0.0/0" and out[-1] == "permit 0.0.0.0/0 le 32"
    assert "deny 10.1.0.0/16 le 32" in out and "deny 10.0.0.0/8" in out and "deny 0.0.0.0/1" in out
    inbound = [ln.split(" ", 5)[5] for ln in lines if "AZURE-IN" in ln]
    assert inbound == ["deny 10.1.0.0/16 le 32", "permit 0.0.0.0/0 le 32"]


def test_supernets_are_every_prefix_above() -> None:
    assert supernets(IPv4Network("10.1.0.0/16"))[0] == IPv4Network("10.0.0.0/15")
    assert len(supernets(IPv4Network("10.1.0.0/16"))) == 16


def test_rendered_gateway_config_has_azures_timers_limits_and_passivity() -> None:
    cfg = render_frr_files(topo("bgp-active-active"))["azgw-0"]
    assert f"timers {facts.BGP_KEEPALIVE_S} {facts.BGP_HOLD_S}" in cfg
    assert f"maximum-prefix {FRR_MAX_PREFIX}" in cfg and FRR_MAX_PREFIX == facts.BGP_MAX_PREFIXES - 1
    parsed = parse_frr(cfg)
    assert parsed.asn == 65515
    peer = parsed.neighbor(IPv4Address("169.254.21.2"))
    assert peer is not None and peer.passive and peer.update_source == "169.254.21.1"
    assert IPv4Network("169.254.21.2/32") in parsed.static_routes  # Azure adds the host route itself


def test_fast_timers_are_named_and_only_where_asked() -> None:
    t = topo("bgp-transit")
    assert "timers 1 3" not in "".join(render_frr_files(t).values())
    fast = t.model_copy(update={"connections": {k: c.model_copy(update={"bgp_timers": "fast"})
                                                for k, c in t.connections.items()}})
    assert all("timers 1 3" in text for text in render_frr_files(fast).values())
