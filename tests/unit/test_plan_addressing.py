"""Plan addressing: every prefix is a subnet with the gateway/device in it; hosts route via their own prefix."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from lab.plan import build_plan
from tests.topology.builders import at, base, model


def two_prefixes(active_active: bool = False) -> dict:
    data = base()
    gw = data["gateways"]["azgw"]
    gw["vnet"] = {"address_space": ["10.1.0.0/16", "10.3.0.0/24"], "hosts": {"vm1": "10.1.0.10", "vm2": "10.3.0.10"}}
    if active_active:
        gw.update(active_active=True, public_ips=["203.0.113.10", "203.0.113.11"])
    data["sites"]["onprem"].update(address_space=["10.2.0.0/16", "10.4.0.0/24"], hosts={"pc1": "10.2.0.10",
                                                                                       "pc2": "10.4.0.10"})
    return data


def test_gateway_and_device_have_an_address_in_every_prefix() -> None:
    plan = build_plan(model(two_prefixes()))
    gw, site = plan.node("azgw-0"), plan.node("onprem")
    # A/S: own addresses (.5) first, then the floating .4 the VNet routes via (it moves on failover).
    assert gw.ifaces[1].addresses == (IPv4Interface("10.1.0.5/16"), IPv4Interface("10.3.0.5/24"),
                                      IPv4Interface("10.1.0.4/16"), IPv4Interface("10.3.0.4/24"))
    assert site.ifaces[1].addresses == (IPv4Interface("10.2.0.1/16"), IPv4Interface("10.4.0.1/24"))
    assert gw.loopbacks == () and site.loopbacks == ()


def test_hosts_route_through_the_gateway_address_of_their_own_prefix() -> None:
    plan = build_plan(model(two_prefixes(active_active=True)))
    vm2, pc2 = plan.node("vm2"), plan.node("pc2")
    assert vm2.ifaces[0].addresses == (IPv4Interface("10.3.0.10/24"),)
    assert vm2.routes[0].via == (IPv4Address("10.3.0.4"), IPv4Address("10.3.0.5"))
    assert pc2.routes[0].dst == IPv4Network("0.0.0.0/0") and pc2.routes[0].via == (IPv4Address("10.4.0.1"),)
    assert plan.node("azgw-1").ifaces[1].addresses[1] == IPv4Interface("10.3.0.5/24")


def test_host_on_a_reserved_address_is_an_error() -> None:
    for vnet_ip in ("10.1.0.3", "10.1.0.4", "10.1.255.255"):
        data = base()
        data["gateways"]["azgw"]["vnet"]["hosts"] = {"vm1": vnet_ip}
        (f,) = at(data, "gateways.azgw.vnet.hosts.vm1", "error")
        assert "is reserved in 10.1.0.0/16" in f.message, vnet_ip
    data = base()
    data["sites"]["onprem"]["hosts"] = {"pc1": "10.2.0.1"}
    (f,) = at(data, "sites.onprem.hosts.pc1", "error")
    assert "VPN device" in (f.hint or "")


def test_host_outside_every_prefix_is_an_error() -> None:
    data = two_prefixes()
    data["gateways"]["azgw"]["vnet"]["hosts"]["vm3"] = "10.5.0.10"
    (f,) = at(data, "gateways.azgw.vnet.hosts.vm3", "error")
    assert "(10.1.0.0/16, 10.3.0.0/24)" in f.message


def test_prefixes_too_small_for_the_lab_are_errors() -> None:
    data = base()
    data["gateways"]["azgw"]["vnet"] = {"address_space": ["10.1.0.0/30"]}
    data["sites"]["onprem"].update(address_space=["10.2.0.0/31"], hosts={})
    assert at(data, "gateways.azgw.vnet.address_space[0]", "error")
    assert at(data, "sites.onprem.address_space[0]", "error")
    data["gateways"]["azgw"]["vnet"] = {"address_space": ["10.1.0.0/29"]}
    data["sites"]["onprem"]["address_space"] = ["10.2.0.0/30"]
    assert not at(data, "gateways.azgw.vnet.address_space[0]") and not at(data, "sites.onprem.address_space[0]")
