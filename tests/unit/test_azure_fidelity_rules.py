"""Azure rules added for fidelity: GatewaySubnet, connection modes, the tunnel-limit hint (lab.azure.facts)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from lab.azure import facts
from lab.plan import build_plan, gateway_inside_ip, own_inside_ip
from tests.topology.builders import at, base, model
from tests.unit.test_azure_rules import policy_based, with_sites

GS = "gateways.azgw.vnet.gateway_subnet"


def with_gateway_subnet(prefix: str, **vnet: object) -> dict:
    data = base()
    data["gateways"]["azgw"]["vnet"].update(gateway_subnet=prefix, **vnet)
    return data


def test_gateway_subnet_default_keeps_the_instances_addresses() -> None:
    """Omitted: the first /29 of the first prefix, so existing topologies keep .4/.5/.6 and load unchanged."""
    topo = model(base())
    assert str(topo.gateways["azgw"].vnet.gateway_prefix) == "10.1.0.0/29"
    assert gateway_inside_ip(topo.gateways["azgw"], 0) == IPv4Address("10.1.0.4")
    assert not at(base(), GS)


def test_instance_inside_addresses_come_from_the_gateway_subnet() -> None:
    topo = model(with_gateway_subnet("10.1.255.0/27"))
    gw = topo.gateways["azgw"]
    assert (gateway_inside_ip(gw, 0), own_inside_ip(gw, 0), own_inside_ip(gw, 1)) == (
        IPv4Address("10.1.255.4"), IPv4Address("10.1.255.5"), IPv4Address("10.1.255.6"))
    plan = build_plan(topo)
    inside = {str(a) for a in plan.node("azgw-0").ifaces[1].addresses}
    assert inside == {"10.1.255.5/16", "10.1.255.4/16"}  # own, then the floating address (active-standby)
    assert plan.node("vm1").routes[0].via == (IPv4Address("10.1.255.4"),)


def test_gateway_subnet_smaller_than_azures_minimum_is_an_error() -> None:
    assert facts.GATEWAY_SUBNET_MIN_PREFIXLEN == 29
    (f,) = at(with_gateway_subnet("10.1.255.0/30"), GS, "error")
    assert "too small" in f.message and "/27" in (f.hint or "")
    assert not at(with_gateway_subnet("10.1.255.0/29"), GS, "error")


@pytest.mark.parametrize("prefix", ["10.1.255.0/29", "10.1.255.0/28"])
def test_gateway_subnet_smaller_than_the_recommended_27_warns(prefix: str) -> None:
    (f,) = at(with_gateway_subnet(prefix), GS, "warning")
    assert "/27" in f.message
    assert not at(with_gateway_subnet("10.1.255.0/27"), GS)
    assert not at(with_gateway_subnet("10.1.254.0/24"), GS)


def test_gateway_subnet_overlapping_another_subnet_is_an_error() -> None:
    data = with_gateway_subnet("10.1.255.0/27", subnets={"frontend": "10.1.255.0/24"})
    (f,) = at(data, "gateways.azgw.vnet.subnets.frontend", "error")
    assert "overlaps 10.1.255.0/27" in f.message
    assert not at(with_gateway_subnet("10.1.255.0/27", subnets={"frontend": "10.1.1.0/24"}), "gateways.azgw.vnet"
                  ".subnets.frontend")


def test_gateway_subnet_outside_the_vnet_is_an_error() -> None:
    (f,) = at(with_gateway_subnet("10.7.0.0/27"), GS, "error")
    assert "not inside the VNet's address space" in f.message


def test_a_host_inside_the_gateway_subnet_is_an_error() -> None:
    data = with_gateway_subnet("10.1.0.0/27")  # vm1 is 10.1.0.10
    (f,) = at(data, "gateways.azgw.vnet.hosts.vm1", "error")
    assert "GatewaySubnet" in f.message


@pytest.mark.parametrize("mode", ["InitiatorOnly", "ResponderOnly"])
def test_connection_modes_need_a_route_based_ikev2_connection(mode: str) -> None:
    assert facts.CONNECTION_MODE_VPN_TYPES == ("RouteBased",) and facts.CONNECTION_MODE_IKE_VERSIONS == ("IKEv2",)
    (f,) = at(policy_based(connection_mode=mode), "connections.c1.connection_mode", "error")
    assert "RouteBased gateways only" in f.message
    data = base()
    data["connections"]["c1"].update(connection_mode=mode, ike_version="IKEv1")
    (f,) = at(data, "connections.c1.connection_mode", "error")
    assert "IKEv2 connections only" in f.message
    data["connections"]["c1"]["ike_version"] = "IKEv2"
    assert not at(data, "connections.c1.connection_mode")
    assert not at(policy_based(), "connections.c1.connection_mode")  # Default is fine anywhere


def test_tunnel_limit_hint_names_a_sku_that_holds_them_or_says_none_does() -> None:
    data = base()
    data["gateways"]["azgw"]["sku"] = "VpnGw1"
    (f,) = at(with_sites(data, 31), "gateways.azgw", "error")
    assert "choose VpnGw4 or larger" in (f.hint or "")
    data = base()
    data["gateways"]["azgw"]["sku"] = "VpnGw4"
    (f,) = at(with_sites(data, 101), "gateways.azgw", "error")
    assert "no SKU allows more than 100" in (f.hint or "") and "larger SKU" not in (f.hint or "")
