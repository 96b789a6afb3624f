"""Topology -> the FRR of each node that runs BGP: its ASN, router ID, sessions and originated prefixes."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Network

from lab.azure.nat import instance_rules, static_view, translate
from lab.plan import device_names, instance_names, standby_name
from lab.plan_types import Plan
from lab.routing import nat_routes
from lab.routing.frr_conf import Node, render_frr
from lab.routing.nat_routes import NatPeer
from lab.routing.peers import Session, by_node, gateway_bgp_ip, sessions
from lab.topology.model import Gateway, Topology


def frr_nodes(topo: Topology, tunnel_ifaces: bool = True) -> dict[str, Node]:
    """Every gateway instance and rendered site device with a BGP session (BYO devices bring their own);
    `tunnel_ifaces`: sessions over route-based tunnel interfaces (libipsec), else over the charon's ipsec0."""
    out: dict[str, Node] = {}
    for node, found in by_node(sessions(topo, tunnel_ifaces)).items():
        built = _gateway_node(topo, node, found) or _site_node(topo, node, found)
        if built is not None:
            out[node] = built
    return out


FRR = ("zebra", "staticd", "bgpd")  # the daemons (lab/daemons.py) a BGP node runs after charon, in start order


def with_frr(plan: Plan, topo: Topology) -> Plan:
    """The plan with FRR's daemons on every node that has an frr.conf: rendered, or a device's own."""
    names = frr_node_names(topo)
    return replace(plan, nodes=tuple(replace(n, daemons=n.daemons + FRR) if n.name in names else n
                                     for n in plan.nodes))


def frr_node_names(topo: Topology) -> set[str]:
    """The nodes that run FRR: those the lab renders an frr.conf for and the devices that bring their own."""
    byo = {n for s, site in topo.sites.items() if site.device.frr_config for n in device_names(s, site)}
    return set(render_frr_files(topo)) | byo


def render_frr_files(topo: Topology, tunnel_ifaces: bool = True) -> dict[str, str]:
    """node -> frr.conf text, for the nodes the lab renders (not a BYO device's own frr.conf). An active-standby
    gateway's warm standby gets its active's config: after a failover it holds the floating BGP IP and the
    tunnels, and its bgpd (running, its sessions idle until then) peers from there."""
    byo = {n for s, site in topo.sites.items() if site.device.frr_config for n in device_names(s, site)}
    nodes = frr_nodes(topo, tunnel_ifaces)
    for g, gw in sorted(topo.gateways.items()):
        standby, active = standby_name(g, gw), f"{g}-0"
        if standby and active in nodes:
            nodes[standby] = replace(nodes[active], name=standby)
    return {n: render_frr(node) for n, node in sorted(nodes.items()) if n not in byo}


def _gateway_node(topo: Topology, node: str, found: list[Session]) -> Node | None:
    for g, gw in sorted(topo.gateways.items()):
        names = instance_names(g, gw)
        if node in names:
            i, vnet = names.index(node), tuple(gw.vnet.address_space)
            nat = nat_peers(topo, g, i, found)
            return Node(name=node, router_id=gateway_bgp_ip(gw, i), asn=found[0].local_asn, sessions=tuple(found),
                        networks=tuple(advertised_static(topo, g, gw, i) + nat_routes.networks(vnet, nat)),
                        vnet=vnet, nat=nat)
    return None


def advertised_static(topo: Topology, g: str, gw: Gateway, index: int = 0) -> list[IPv4Network]:
    """Azure advertises its VNet prefixes and the address prefixes of each local network gateway connected
    without BGP (faq: "What address prefixes will Azure VPN gateways advertise to me?"); with BGP route
    translation, those prefixes post-NAT ("the learned routes with post-NAT address prefixes", nat-overview)."""
    static: list[IPv4Network] = []
    for c in topo.connections.values():
        if c.gateway == g and not c.enable_bgp and c.site in topo.sites:
            own = topo.sites[c.site or ""].address_space
            rules = instance_rules(c, gw, "IngressSnat", index) if gw.enable_bgp_route_translation_for_nat else []
            static += translate(list(own), rules)
    return list(dict.fromkeys([*gw.vnet.address_space, *sorted(static)]))


def nat_peers(topo: Topology, g: str, index: int, found: list[Session]) -> tuple[NatPeer, ...]:
    """Each Azure session of instance `index` under BGP route translation (none when it is off): what it learns
    translated (IngressSnat) and the VNet it is shown (EgressSnat); a connection without rules: neither."""
    gw = topo.gateways[g]
    if not gw.enable_bgp_route_translation_for_nat:
        return ()
    out = []
    for s in found:
        conn = topo.connections[s.connection]
        own = conn.gateway == g and conn.site is not None
        ingress = instance_rules(conn, gw, "IngressSnat", index) if own else []
        egress = instance_rules(conn, gw, "EgressSnat", index) if own else []
        seen = static_view(s.local_ip, egress)
        out.append(NatPeer(remote_ip=s.remote_ip, remote_asn=s.remote_asn, connection=s.connection,
                           ingress=tuple((r.internal, r.external) for _, r in ingress),
                           vnet_view=tuple(translate(list(gw.vnet.address_space), egress)),
                           next_hop=seen if seen != s.local_ip else None))
    return tuple(out)


def _site_node(topo: Topology, node: str, found: list[Session]) -> Node | None:
    for s, site in sorted(topo.sites.items()):
        if node in device_names(s, site) and site.bgp is not None:
            own = site.bgp.advertise or site.address_space
            return Node(name=node, router_id=found[0].local_ip, asn=site.bgp.asn, sessions=tuple(found),
                        networks=tuple(own))
    return None


FRR_HEADER = "! Device FRR configuration for site {site} <-> gateway {gw}, generated by `lab device-config`.\n"


def render_frr_device(topo: Topology, gateway: str, site: str) -> str | None:
    """The frr.conf the lab renders for the site's device, limited to its sessions with `gateway` (None when no
    BGP connection joins them). It is what a device needs beside its IPsec config: the ASN, one neighbor per
    gateway instance, the host route to each Azure BGP IP through its tunnel, the prefixes to advertise."""
    s = topo.sites.get(site)
    if s is None:
        return None
    conns = {c for c, conn in topo.connections.items() if conn.gateway == gateway and conn.site == site}
    node = frr_nodes(topo).get(device_names(site, s)[0])
    if node is None:
        return None
    mine = tuple(x for x in node.sessions if x.connection in conns)
    if not mine:
        return None
    text = render_frr(Node(node.name, node.router_id, node.asn, mine, node.networks))
    return FRR_HEADER.format(site=site, gw=gateway) + text.split("\n", 1)[1]
