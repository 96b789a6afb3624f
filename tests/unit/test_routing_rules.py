"""Azure's BGP rules (lab/routing/rules.py): one test per rule, each value read from lab.azure.facts."""

from __future__ import annotations

from typing import Any

import pytest

from lab.azure import facts
from tests.topology.builders import at, base, findings, model, second_gateway


def bgp(site_peer: str = "10.2.255.254", site_asn: int = 65010, **gw: Any) -> dict[str, Any]:
    """The base lab with BGP on its connection: gateway default ASN, site ASN 65010."""
    data = base()
    data["gateways"]["azgw"]["bgp"] = {"asn": facts.BGP_ASN, **gw}
    data["sites"]["onprem"]["bgp"] = {"asn": site_asn, "peer_ip": site_peer}
    data["connections"]["c1"]["enable_bgp"] = True
    return data


def active_active(data: dict[str, Any]) -> dict[str, Any]:
    data["gateways"]["azgw"]["public_ips"] = ["203.0.113.10", "203.0.113.11"]
    return data


def test_a_valid_bgp_lab_has_no_bgp_findings() -> None:
    assert [f for f in findings(bgp()) if "bgp" in f.path] == []
    topo = model(bgp())
    assert topo.gateways["azgw"].bgp is not None and topo.gateways["azgw"].bgp.asn == facts.BGP_ASN == 65515


def test_gateway_enable_bgp_is_gone_with_a_hint() -> None:
    data = base()
    data["gateways"]["azgw"]["enable_bgp"] = True
    (f,) = at(data, "gateways.azgw.enable_bgp", "error")
    assert "connections.<name>.enable_bgp" in (f.hint or "")


@pytest.mark.parametrize("sku", sorted(facts.SKUS))
def test_bgp_follows_the_sku(sku: str) -> None:
    data = bgp()
    data["gateways"]["azgw"]["sku"] = sku
    assert bool(at(data, "gateways.azgw.bgp", "error")) == (not facts.SKUS[sku].bgp)


def test_bgp_needs_a_route_based_gateway() -> None:
    data = bgp()
    data["gateways"]["azgw"].update(vpn_type="PolicyBased", sku="Basic")
    data["connections"]["c1"]["ike_version"] = "IKEv1"
    (f,) = at(data, "gateways.azgw.bgp", "error")
    assert "RouteBased" in f.message


@pytest.mark.parametrize("asn", [*facts.AZURE_RESERVED_ASNS, 23456, 64496, 64511, 65535, 65551, facts.ASN_MAX])
def test_reserved_asns_are_refused_for_the_device(asn: int) -> None:
    found = at(bgp(site_asn=asn), "sites.onprem.bgp.asn", "error")  # 65515 is also the gateway's own
    assert any("reserved by" in f.message and "64512-65514" in (f.hint or "") for f in found)


@pytest.mark.parametrize("asn", [1, 64512, 65514, 65521, 65534, 65552, 4_200_000_000, 4_294_967_294])
def test_public_private_and_32_bit_asns_are_allowed(asn: int) -> None:
    assert not at(bgp(site_asn=asn), "sites.onprem.bgp.asn")


def test_asn_beyond_32_bits_is_refused_by_the_schema() -> None:
    (f,) = at(bgp(site_asn=facts.ASN_MAX + 1), "sites.onprem.bgp.asn", "error")
    assert "less than or equal" in f.message


def test_gateway_may_keep_65515_but_not_another_reserved_asn() -> None:
    assert not at(bgp(), "gateways.azgw.bgp.asn")
    (f,) = at(bgp(asn=65517), "gateways.azgw.bgp.asn", "error")
    assert "reserved by Azure" in f.message


def test_same_asn_on_both_ends_is_refused() -> None:
    (f,) = at(bgp(site_asn=65020, asn=65020), "sites.onprem.bgp.asn", "error")
    assert "different ASNs" in (f.hint or "")


@pytest.mark.parametrize("ip", ["169.254.20.255", "169.254.23.0", "169.254.100.1", "10.1.200.1"])
def test_gateway_apipa_must_be_inside_azures_range(ip: str) -> None:
    (f,) = at(bgp(apipa=[ip]), "gateways.azgw.bgp.apipa[0]", "error")
    assert f"{facts.APIPA_RANGE[0]} to {facts.APIPA_RANGE[1]}" in f.message


@pytest.mark.parametrize("ip", ["169.254.21.0", "169.254.22.255"])
def test_apipa_range_ends_are_allowed(ip: str) -> None:
    assert not at(bgp(apipa=[ip]), "gateways.azgw.bgp.apipa[0]")


def test_apipa_addresses_differ_per_instance() -> None:
    data = active_active(bgp(apipa=["169.254.21.1", "169.254.21.1"]))
    (f,) = at(data, "gateways.azgw.bgp.apipa[1]", "error")
    assert "must differ" in (f.hint or "")


def test_one_apipa_address_per_instance() -> None:
    (f,) = at(bgp(apipa=["169.254.21.1", "169.254.22.1"]), "gateways.azgw.bgp.apipa", "error")
    assert "2 APIPA addresses for 1 instance" in f.message


def test_apipa_site_needs_gateway_apipa_on_every_instance() -> None:
    data = active_active(bgp(site_peer="169.254.21.2", apipa=["169.254.21.1"]))
    (f,) = at(data, "gateways.azgw.bgp.apipa", "error")
    assert "cannot establish" in f.message
    ok = active_active(bgp(site_peer="169.254.21.2", apipa=["169.254.21.1", "169.254.22.1"]))
    assert not at(ok, "gateways.azgw.bgp.apipa")


def test_site_and_gateway_apipa_must_not_overlap() -> None:
    (f,) = at(bgp(site_peer="169.254.21.1", apipa=["169.254.21.1"]), "sites.onprem.bgp.peer_ip", "error")
    assert "must not overlap" in (f.hint or "")


def test_peer_ip_is_not_the_devices_public_ip() -> None:
    (f,) = at(bgp(site_peer="198.51.100.10"), "sites.onprem.bgp.peer_ip", "error")
    assert "public IP" in f.message


def test_peer_ip_is_not_inside_the_vnet() -> None:
    (f,) = at(bgp(site_peer="10.1.200.1"), "sites.onprem.bgp.peer_ip", "error")
    assert "inside the VNet address space 10.1.0.0/16" in f.message


def test_connection_bgp_needs_settings_on_both_ends() -> None:
    data = base()
    data["connections"]["c1"]["enable_bgp"] = True
    paths = [f.path for f in findings(data) if f.severity == "error"]
    assert paths.count("connections.c1.enable_bgp") == 2


def test_device_pair_needs_one_peer_ip_per_device() -> None:
    data = bgp()
    site = data["sites"]["onprem"]
    site.pop("public_ip")
    site["public_ips"] = ["198.51.100.10", "198.51.100.11"]
    assert at(data, "sites.onprem.bgp.peer_ips", "error")
    site["bgp"] = {"asn": 65010, "peer_ips": ["10.52.255.1", "10.52.255.2"]}
    assert not at(data, "sites.onprem.bgp.peer_ips")


def test_vnet_to_vnet_bgp_needs_two_asns() -> None:
    data = second_gateway(base(), bgp={"asn": facts.BGP_ASN})
    data["gateways"]["azgw"]["bgp"] = {}
    data["connections"] = {"v2v": {"gateway": "azgw", "peer_gateway": "west", "enable_bgp": True}}
    (f,) = at(data, "connections.v2v.enable_bgp", "error")
    assert "both gateways use ASN 65515" in f.message
    data["gateways"]["west"]["bgp"] = {"asn": 65050}
    assert not at(data, "connections.v2v.enable_bgp")


def test_peer_ip_outside_the_narrowed_selectors_is_a_warning_on_the_shared_tun() -> None:
    data = bgp(site_peer="10.52.255.254")
    assert not at(data, "connections.c1.enable_bgp")  # route-based device: 0/0 and its own tunnel interface
    data["sites"]["onprem"]["device"] = {"traffic_selectors": "prefixes"}
    (f,) = at(data, "connections.c1.enable_bgp")
    assert f.severity == "warning" and "narrowed traffic selectors" in f.message
