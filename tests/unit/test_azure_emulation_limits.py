"""Warnings where the libipsec emulation cannot follow Azure (one ipsec0, policy-selected SAs, IKEv1 pairs)."""

from __future__ import annotations

from typing import Any

from tests.topology.builders import at, base, second_gateway


def sites(count: int, selectors: str) -> dict[str, Any]:
    data = base()
    data["sites"] = {f"s{i}": {"public_ip": f"198.51.100.{i + 1}", "address_space": [f"10.{20 + i}.0.0/16"],
                               "device": {"traffic_selectors": selectors}} for i in range(count)}
    data["connections"] = {f"c{i}": {"gateway": "azgw", "site": f"s{i}"} for i in range(count)}
    return data


def test_any_to_any_devices_on_one_gateway_no_longer_warn() -> None:
    """Each route-based tunnel has its own charon and interface now (docs/route-based.md)."""
    assert not at(sites(3, "any"), "gateways.azgw")
    assert not at(sites(3, "prefixes"), "gateways.azgw")


def test_a_rendered_any_to_any_device_towards_two_gateways_does_not_warn() -> None:
    data = second_gateway(sites(1, "any"))
    data["connections"]["c9"] = {"gateway": "west", "site": "s0"}
    assert not at(data, "sites.s0.device.traffic_selectors")


def test_a_device_with_its_own_config_towards_two_gateways_warns() -> None:
    data = second_gateway(sites(1, "any"))
    data["sites"]["s0"]["device"]["config"] = "conn x {}"
    data["connections"]["c9"] = {"gateway": "west", "site": "s0"}
    (f,) = at(data, "sites.s0.device.traffic_selectors", "warning")
    assert "azgw, west" in f.message and "one charon" in f.message


def test_ikev1_narrowing_keeps_only_the_first_prefix_pair() -> None:
    data = base()
    data["sites"]["onprem"]["address_space"] = ["10.2.0.0/16", "10.3.0.0/16"]
    data["sites"]["onprem"]["device"] = {"traffic_selectors": "prefixes"}
    data["connections"]["c1"]["ike_version"] = "IKEv1"
    (f,) = at(data, "connections.c1.ike_version", "warning")
    assert "10.2.0.0/16 <-> 10.1.0.0/16" in f.message
    data["connections"]["c1"]["use_policy_based_traffic_selectors"] = True
    assert not at(data, "connections.c1.ike_version")
