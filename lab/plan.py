"""Topology -> Plan: decide every node, interface, address and route of a lab (pure, deterministic).

Addressing, Azure-like: gateway instance i sits at the 4th+i address of its VNet's first prefix (Azure
reserves .1-.3), a site's VPN device at the 1st address of its LAN; test hosts route through them. All
public IPs share one Internet bridge with on-link default routes, so no router is needed there.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from lab.plan_types import Iface, NodePlan, Plan, Route
from lab.topology.model import Gateway, Site, Topology

INTERNET = "inet"
DEFAULT = IPv4Network("0.0.0.0/0")


@dataclass(frozen=True)
class Names:
    """Deterministic names shared by runtime, control and reports."""

    lab: str

    def container(self, node: str) -> str:
        return f"lab-{self.lab}-{node}"

    def namespace(self) -> str:
        return f"lab-{self.lab}"


def instance_names(gw_name: str, gw: Gateway) -> list[str]:
    """A gateway runs as one container per instance: <gw>-0, <gw>-1 (active-active)."""
    count = 2 if gw.active_active else 1
    return [f"{gw_name}-{i}" for i in range(count)]


def gateway_inside_ip(gw: Gateway, index: int) -> IPv4Address:
    return gw.vnet.address_space[0].network_address + 4 + index


def site_inside_ip(site: Site) -> IPv4Address:
    return site.address_space[0].network_address + 1


def _extra_prefix_addresses(spaces: list[IPv4Network]) -> tuple[IPv4Interface, ...]:
    """libipsec needs a local address inside every local traffic selector: one /32 per extra prefix."""
    return tuple(IPv4Interface(f"{net.network_address + 1}/32") for net in spaces[1:])


def _public_iface(ip: IPv4Address) -> Iface:
    return Iface("eth0", INTERNET, (IPv4Interface(f"{ip}/24"),))


def gateway_nodes(name: str, gw: Gateway, segment: str) -> list[NodePlan]:
    lan = gw.vnet.address_space[0]
    nodes = []
    for i, inst in enumerate(instance_names(name, gw)):
        inside = IPv4Interface(f"{gateway_inside_ip(gw, i)}/{lan.prefixlen}")
        nodes.append(
            NodePlan(
                name=inst,
                role="gateway",
                group=name,
                ifaces=(_public_iface(gw.public_ips[i]), Iface("eth1", segment, (inside,))),
                routes=(Route(DEFAULT, dev="eth0"),),
                loopbacks=_extra_prefix_addresses(gw.vnet.address_space),
                runs_charon=True,
            )
        )
    return nodes


def site_node(name: str, site: Site, segment: str) -> NodePlan:
    lan = site.address_space[0]
    inside = IPv4Interface(f"{site_inside_ip(site)}/{lan.prefixlen}")
    return NodePlan(
        name=name,
        role="site",
        group=name,
        ifaces=(_public_iface(site.public_ip), Iface("eth1", segment, (inside,))),
        routes=(Route(DEFAULT, dev="eth0"),),
        loopbacks=_extra_prefix_addresses(site.address_space),
        runs_charon=True,
    )


def host_node(name: str, group: str, ip: IPv4Address, lan: IPv4Network, segment: str,
              gateways: tuple[IPv4Address, ...]) -> NodePlan:
    return NodePlan(
        name=name,
        role="host",
        group=group,
        ifaces=(Iface("eth0", segment, (IPv4Interface(f"{ip}/{lan.prefixlen}"),)),),
        routes=(Route(DEFAULT, via=gateways),),
    )


def build_plan(topo: Topology) -> Plan:
    nodes: list[NodePlan] = []
    segments = [INTERNET]
    for i, (gname, gw) in enumerate(sorted(topo.gateways.items())):
        seg = f"vnet{i}"
        segments.append(seg)
        insts = gateway_nodes(gname, gw, seg)
        nodes += insts
        via = tuple(gateway_inside_ip(gw, k) for k in range(len(insts)))
        for hname, ip in sorted(gw.vnet.hosts.items()):
            nodes.append(host_node(hname, gname, ip, gw.vnet.address_space[0], seg, via))
    for i, (sname, site) in enumerate(sorted(topo.sites.items())):
        seg = f"site{i}"
        segments.append(seg)
        nodes.append(site_node(sname, site, seg))
        for hname, ip in sorted(site.hosts.items()):
            nodes.append(host_node(hname, sname, ip, site.address_space[0], seg, (site_inside_ip(site),)))
    return Plan(lab=topo.name, nodes=tuple(nodes), segments=tuple(segments))
