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


def test_two_any_to_any_devices_on_one_gateway_warn() -> None:
    (f,) = at(sites(2, "any"), "gateways.azgw", "warning")
    assert "connections c0, c1" in f.message and "libipsec" in f.message
    assert not at(sites(3, "prefixes"), "gateways.azgw")
    assert not at(sites(1, "any"), "gateways.azgw")


def test_policy_based_selectors_keep_tunnels_apart() -> None:
    data = sites(2, "any")
    data["connections"]["c0"]["use_policy_based_traffic_selectors"] = True
    assert not at(data, "gateways.azgw")


def test_a_device_with_its_own_config_counts_as_any_to_any() -> None:
    data = sites(2, "prefixes")
    for s in data["sites"].values():
        s["device"]["config"] = "conn x {}"
    assert at(data, "gateways.azgw", "warning")


def test_an_any_to_any_device_towards_two_gateways_warns() -> None:
    data = second_gateway(sites(1, "any"))
    data["connections"]["c9"] = {"gateway": "west", "site": "s0"}
    (f,) = at(data, "sites.s0.device.traffic_selectors", "warning")
    assert "azgw, west" in f.message


def test_ikev1_narrowing_keeps_only_the_first_prefix_pair() -> None:
    data = base()
    data["sites"]["onprem"]["address_space"] = ["10.2.0.0/16", "10.3.0.0/16"]
    data["connections"]["c1"]["ike_version"] = "IKEv1"
    (f,) = at(data, "connections.c1.ike_version", "warning")
    assert "10.2.0.0/16 <-> 10.1.0.0/16" in f.message
    data["connections"]["c1"]["use_policy_based_traffic_selectors"] = True
    assert not at(data, "connections.c1.ike_version")
