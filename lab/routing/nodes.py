"""Topology -> the FRR of each node that runs BGP: its ASN, router ID, sessions and originated prefixes."""

from __future__ import annotations

from ipaddress import IPv4Network

from lab.plan import device_names, instance_names
from lab.routing.frr_conf import Node, render_frr
from lab.routing.peers import Session, by_node, gateway_bgp_ip, sessions
from lab.topology.model import Gateway, Topology


def frr_nodes(topo: Topology) -> dict[str, Node]:
    """Every gateway instance and rendered site device with a BGP session (BYO devices bring their own)."""
    out: dict[str, Node] = {}
    for node, found in by_node(sessions(topo)).items():
        built = _gateway_node(topo, node, found) or _site_node(topo, node, found)
        if built is not None:
            out[node] = built
    return out


def render_frr_files(topo: Topology) -> dict[str, str]:
    """node -> frr.conf text, for the nodes the lab renders (not a BYO device's own frr.conf)."""
    byo = {n for s, site in topo.sites.items() if site.device.frr_config for n in device_names(s, site)}
    return {n: render_frr(node) for n, node in frr_nodes(topo).items() if n not in byo}


def _gateway_node(topo: Topology, node: str, found: list[Session]) -> Node | None:
    for g, gw in sorted(topo.gateways.items()):
        names = instance_names(g, gw)
        if node in names:
            return Node(name=node, router_id=gateway_bgp_ip(gw, names.index(node)),
                        asn=found[0].local_asn, sessions=tuple(found),
                        networks=tuple(advertised_static(topo, g, gw)), vnet=tuple(gw.vnet.address_space))
    return None


def advertised_static(topo: Topology, g: str, gw: Gateway) -> list[IPv4Network]:
    """Azure advertises its VNet prefixes and the address prefixes of each local network gateway connected
    without BGP (faq: "What address prefixes will Azure VPN gateways advertise to me?")."""
    static = [n for c in topo.connections.values() if c.gateway == g and not c.enable_bgp and c.site in topo.sites
              for n in topo.sites[c.site or ""].address_space]
    return list(dict.fromkeys([*gw.vnet.address_space, *sorted(static)]))


def _site_node(topo: Topology, node: str, found: list[Session]) -> Node | None:
    for s, site in sorted(topo.sites.items()):
        if node in device_names(s, site) and site.bgp is not None:
            own = site.bgp.advertise or site.address_space
            return Node(name=node, router_id=found[0].local_ip, asn=site.bgp.asn, sessions=tuple(found),
                        networks=tuple(own))
    return None
