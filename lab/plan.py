"""Topology -> Plan: decide every node, interface, address and route of a lab (pure, deterministic).

Addressing, Azure-like: each address-space prefix is one subnet on its VNet's (or site's) segment.
Gateway instance i sits at the 4th+i address of the GatewaySubnet (and of every other VNet prefix;
Azure reserves .0-.3), a site's VPN
device at the 1st address of every site prefix; test hosts live in any prefix and route through the
gateway (or device) address of their own prefix. An address in each prefix is also what libipsec needs:
it refuses a CHILD_SA whose local selector holds no local address. All public IPs share one Internet
bridge with on-link default routes, so no router is needed there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from lab.azure.nat import device_bgp_ips, translate
from lab.p2s.model import client_nodes, pool_routes
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
    """The instances that carry tunnels when the lab is up: <gw>-0 and <gw>-1 (active-active), or <gw>-0
    (active-standby, whose warm standby is `standby_name`)."""
    count = 2 if gw.is_active_active else 1
    return [f"{gw_name}-{i}" for i in range(count)]


def standby_name(gw_name: str, gw: Gateway) -> str | None:
    """An active-standby gateway's second instance container: config loaded, no tunnel until failover."""
    return None if gw.is_active_active else f"{gw_name}-1"


def _inside_base(gw: Gateway, prefix: int) -> IPv4Address:
    """Instances take the 4th address on (Azure reserves .0-.3) of the GatewaySubnet in the prefix that
    holds it, and of the prefix itself elsewhere (libipsec needs a local address in every local selector)."""
    net, gs = gw.vnet.address_space[prefix], gw.vnet.gateway_prefix
    return gs.network_address if gs.subnet_of(net) else net.network_address


def gateway_inside_ip(gw: Gateway, index: int, prefix: int = 0) -> IPv4Address:
    """Where VNet hosts send: instance `index`'s address (A/A), or the floating address (A/S, index 0)."""
    return _inside_base(gw, prefix) + 4 + index


def own_inside_ip(gw: Gateway, index: int, prefix: int = 0) -> IPv4Address:
    """An A/S instance's own inside address (.5, .6): it stays when the floating .4 moves away."""
    return _inside_base(gw, prefix) + 5 + index


def device_names(site_name: str, site: Site) -> list[str]:
    """A site's device containers: <site> for one public IP, <site>-0 and <site>-1 for a device pair."""
    ips = site.device_ips
    return [site_name] if len(ips) < 2 else [f"{site_name}-{i}" for i in range(len(ips))]


def site_node_names(topo: Topology) -> set[str]:
    """Every site device container name (a device pair's are not the site's own name)."""
    return {n for s, site in topo.sites.items() for n in device_names(s, site)}


def site_inside_ip(site: Site, prefix: int = 0, index: int = 0) -> IPv4Address:
    """Device instance `index` sits at the 1st+index address of each site prefix (LAN hosts route via it)."""
    return site.address_space[prefix].network_address + 1 + index


def _public_iface(ip: IPv4Address) -> Iface:
    return Iface("eth0", INTERNET, (IPv4Interface(f"{ip}/24"),))


def _inside(gw: Gateway, index: int) -> tuple[IPv4Interface, ...]:
    """A/A: .4+i per prefix. A/S: own .5+i first (the primary: deleting a primary address deletes its
    secondaries), then, on the initial active, the floating .4 that moves on failover."""
    spaces = gw.vnet.address_space
    if gw.is_active_active:
        return tuple(IPv4Interface(f"{gateway_inside_ip(gw, index, k)}/{n.prefixlen}") for k, n in enumerate(spaces))
    own = tuple(IPv4Interface(f"{own_inside_ip(gw, index, k)}/{n.prefixlen}") for k, n in enumerate(spaces))
    floating = tuple(IPv4Interface(f"{gateway_inside_ip(gw, 0, k)}/{n.prefixlen}") for k, n in enumerate(spaces))
    return own + (floating if index == 0 else ())


def gateway_nodes(name: str, gw: Gateway, segment: str) -> list[NodePlan]:
    """Every instance container; an A/S standby's Internet link has no address until it takes over."""
    names = instance_names(name, gw) + [s for s in [standby_name(name, gw)] if s]
    nodes = []
    for i, inst in enumerate(names):
        public = _public_iface(gw.public_ips[i]) if i < len(gw.public_ips) and inst != standby_name(name, gw) \
            else Iface("eth0", INTERNET, ())
        nodes.append(
            NodePlan(
                name=inst,
                role="gateway",
                group=name,
                ifaces=(public, Iface("eth1", segment, _inside(gw, i))),
                routes=(Route(DEFAULT, dev="eth0"),),
                loopbacks=_bgp_loopback(gw.bgp.apipa if gw.bgp else [], i) + _nat_loopback(gw, i),
                daemons=("charon",),
            )
        )
    return nodes


def _bgp_loopback(addresses: list[IPv4Address], index: int) -> tuple[IPv4Interface, ...]:
    """A BGP peer address of instance `index` that is not on a link (APIPA, a device's loopback) goes on lo."""
    return (IPv4Interface(f"{addresses[index]}/32"),) if index < len(addresses) else ()


def _nat_loopback(gw: Gateway, index: int) -> tuple[IPv4Interface, ...]:
    """The instance's inside address as EgressSnat rules translate it: the local_ts the site narrows to is
    the VNet's external prefix, and libipsec routes a CHILD_SA only with a local address inside it."""
    inside = _inside(gw, index)[0].ip
    out = []
    for rule in gw.nat_rules.values():
        if rule.mode == "EgressSnat" and rule.ip_configuration_id in (None, index) and inside in rule.internal:
            net = translate([IPv4Network(f"{inside}/32")], [("", rule)])[0]
            out.append(IPv4Interface(f"{net.network_address}/32"))
    return tuple(dict.fromkeys(out))


def site_nodes(name: str, site: Site, segment: str, bgp_ips: list[IPv4Address] | None = None) -> list[NodePlan]:
    """One device container per site public IP, all on the site's LAN segment. `bgp_ips`: each device's own BGP
    address (default: the site's peer IPs; behind NAT, lab.azure.nat.device_bgp_ips)."""
    nodes = []
    for i, (node, ip) in enumerate(zip(device_names(name, site), site.device_ips, strict=True)):
        inside = tuple(IPv4Interface(f"{site_inside_ip(site, k, i)}/{net.prefixlen}")
                       for k, net in enumerate(site.address_space))
        nodes.append(NodePlan(name=node, role="site", group=name,
                              ifaces=(_public_iface(ip), Iface("eth1", segment, inside)),
                              routes=(Route(DEFAULT, dev="eth0"),), daemons=("charon",),
                              loopbacks=_site_loopback(site, i, inside, bgp_ips)))
    return nodes


def _site_loopback(site: Site, index: int, inside: tuple[IPv4Interface, ...],
                   bgp_ips: list[IPv4Address] | None = None) -> tuple[IPv4Interface, ...]:
    peers = bgp_ips if bgp_ips is not None else site.bgp.peers if site.bgp else []
    if index < len(peers) and peers[index] in {a.ip for a in inside}:
        return ()
    return _bgp_loopback(peers, index)


def host_node(name: str, group: str, ip: IPv4Address, lan: IPv4Network, segment: str,
              gateways: tuple[IPv4Address, ...]) -> NodePlan:
    return NodePlan(
        name=name,
        role="host",
        group=group,
        ifaces=(Iface("eth0", segment, (IPv4Interface(f"{ip}/{lan.prefixlen}"),)),),
        routes=(Route(DEFAULT, via=gateways),),
    )


def prefix_of(ip: IPv4Address, spaces: list[IPv4Network]) -> int:
    """Index of the address-space prefix holding `ip` (checks guarantee there is one)."""
    return next(k for k, net in enumerate(spaces) if ip in net)


def build_plan(topo: Topology) -> Plan:
    nodes: list[NodePlan] = []
    segments = [INTERNET]
    for i, (gname, gw) in enumerate(sorted(topo.gateways.items())):
        seg = f"vnet{i}"
        segments.append(seg)
        nodes += gateway_nodes(gname, gw, seg)
        spaces = gw.vnet.address_space
        for hname, ip in sorted(gw.vnet.hosts.items()):
            k = prefix_of(ip, spaces)
            via = tuple(gateway_inside_ip(gw, i, k) for i in range(len(instance_names(gname, gw))))
            host = host_node(hname, gname, ip, spaces[k], seg, via)
            extra = pool_routes(gw, gateway_inside_ip(gw, 0, k))  # point-to-site (lab/p2s/model.py)
            nodes.append(replace(host, routes=host.routes + extra) if extra else host)
    for i, (sname, site) in enumerate(sorted(topo.sites.items())):
        seg = f"site{i}"
        segments.append(seg)
        nodes += site_nodes(sname, site, seg, device_bgp_ips(topo, sname))
        for hname, ip in sorted(site.hosts.items()):
            k = prefix_of(ip, site.address_space)
            via = tuple(site_inside_ip(site, k, i) for i in range(len(site.device_ips)))
            nodes.append(host_node(hname, sname, ip, site.address_space[k], seg, via))
    nodes += client_nodes(topo, INTERNET)
    return Plan(lab=topo.name, nodes=tuple(nodes), segments=tuple(segments))
