"""Topology -> BGP sessions: who peers with whom, from which address, over which tunnel (pure).

Each BGP-enabled tunnel (lab.render.tunnels) carries one session. The Azure end peers from its default BGP
IP (GatewaySubnet) or, towards an on-prem APIPA peer, from the instance's custom APIPA address, and then
waits for the device to connect (Azure does not initiate from APIPA). Each end adds the /32 host route to
the other end's peer IP into its tunnel interface (Azure does so itself; a device must be configured to).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv4Address

from lab.azure import facts
from lab.azure.nat import instance_rules, static_view
from lab.plan import gateway_inside_ip, instance_names
from lab.render.tunnel_ifaces import ifname, routed_ends
from lab.render.tunnels import End, Tunnel, tunnels
from lab.routing.rules import is_apipa
from lab.topology.model import Gateway, Site, Topology

# The tunnel interface a node's BGP session and host route use: a route-based tunnel end's own (vti-<conn>,
# lab/render/tunnel_ifaces.py); a device that narrows keeps its charon's one libipsec TUN.
SHARED_TUN = "ipsec0"


@dataclass(frozen=True)
class Session:
    """One side of one BGP session, as the node running it configures it."""

    node: str
    connection: str  # topology connection
    tunnel: str  # that node's swanctl connection name (the tunnel carrying the session)
    local_asn: int
    local_ip: IPv4Address  # update-source, on the node (eth1, or lo)
    remote_asn: int
    remote_ip: IPv4Address
    passive: bool  # waits for the other side to connect
    azure: bool  # this side is a gateway instance (Azure's filters and limits apply)
    timers: str  # "azure" | "fast"
    peer_node: str = ""  # the node at the other end of the tunnel
    iface: str = SHARED_TUN


def gateway_bgp_ip(gw: Gateway, index: int) -> IPv4Address:
    """Instance `index`'s default BGP peer IP: "VPN Gateway allocates a single IP address from the
    GatewaySubnet range for active-standby VPN gateways, or two IP addresses for active-active" (faq). The
    lab's instances already have their inside address in the GatewaySubnet (lab.plan); it is their BGP IP
    (active-standby: the floating address, which moves to the standby on failover)."""
    gs = gw.vnet.gateway_prefix
    k = next((k for k, net in enumerate(gw.vnet.address_space) if gs.subnet_of(net)), 0)
    return gateway_inside_ip(gw, index if gw.is_active_active else 0, k)


def azure_bgp_ip(gw: Gateway, index: int, remote: IPv4Address) -> IPv4Address:
    """Azure picks its APIPA address only when the local network gateway's peer IP is APIPA (howto)."""
    apipa = gw.bgp.apipa if gw.bgp else []
    if is_apipa(remote) and index < len(apipa):
        return apipa[index]
    return gateway_bgp_ip(gw, index)


def site_peer_ip(site: Site, device: int) -> IPv4Address | None:
    peers = site.bgp.peers if site.bgp else []
    return peers[device] if device < len(peers) else None


def sessions(topo: Topology, tunnel_ifaces: bool = True) -> list[Session]:
    """Both sides of every session of every BGP-enabled connection (rules guarantee the settings exist)."""
    out: list[Session] = []
    for t in tunnels(topo):
        conn = topo.connections[t.connection]
        if conn.enable_bgp:
            found = _tunnel_sessions(topo, t)
            out += _on_ifaces(topo, t, found) if tunnel_ifaces else found
    return out


def _index(node: str, names: list[str]) -> int:
    return names.index(node) if node in names else 0


def _tunnel_sessions(topo: Topology, t: Tunnel) -> list[Session]:
    conn = topo.connections[t.connection]
    gw = topo.gateways[conn.gateway]
    i = _index(t.azure.node, instance_names(conn.gateway, gw))
    asn = gw.bgp.asn if gw.bgp else facts.BGP_ASN
    if conn.peer_gateway is not None:
        peer = topo.gateways[conn.peer_gateway]
        j = _index(t.peer.node, instance_names(conn.peer_gateway, peer))
        peer_asn = peer.bgp.asn if peer.bgp else facts.BGP_ASN
        a_ip, b_ip = gateway_bgp_ip(gw, i), gateway_bgp_ip(peer, j)
        return [_side(t.azure, t, conn.bgp_timers, (asn, a_ip), (peer_asn, b_ip), False, True),
                _side(t.peer, t, conn.bgp_timers, (peer_asn, b_ip), (asn, a_ip), False, True)]
    site = topo.sites[conn.site or ""]
    j = int(t.peer.node.rsplit("-", 1)[1]) if len(site.device_ips) > 1 else 0
    remote = site_peer_ip(site, j)
    if site.bgp is None or remote is None:
        return []
    a_ip = azure_bgp_ip(gw, i, remote)
    apipa = is_apipa(remote) and not facts.APIPA_AZURE_INITIATES
    # Across the tunnel's NAT each side addresses the other post-NAT (facts.SOURCES["nat_bgp"]): the local
    # network gateway's peer IP is the device's address after IngressSnat, the device peers with Azure's BGP IP
    # after EgressSnat. Without NAT rules both views are the addresses themselves.
    own = static_view(remote, instance_rules(conn, gw, "IngressSnat", i), inward=True)
    azure_seen = static_view(a_ip, instance_rules(conn, gw, "EgressSnat", i))
    return [_side(t.azure, t, conn.bgp_timers, (asn, a_ip), (site.bgp.asn, remote), apipa, True),
            _side(t.peer, t, conn.bgp_timers, (site.bgp.asn, own), (asn, azure_seen), False, False)]


def _side(end: End, t: Tunnel, timers: str, local: tuple[int, IPv4Address], remote: tuple[int, IPv4Address],
          passive: bool, azure: bool) -> Session:
    other = t.peer if end is t.azure else t.azure
    return Session(node=end.node, connection=t.connection, tunnel=end.conn, local_asn=local[0],
                   local_ip=local[1], remote_asn=remote[0], remote_ip=remote[1], passive=passive, azure=azure,
                   timers=timers, peer_node=other.node)


def _on_ifaces(topo: Topology, t: Tunnel, sides: list[Session]) -> list[Session]:
    """Each side's session over its tunnel end's own interface where it has one (route-based)."""
    routed = {e.node for e in routed_ends(topo, t)}
    return [replace(s, iface=ifname(s.tunnel)) if s.node in routed else s for s in sides]


def by_node(found: list[Session]) -> dict[str, list[Session]]:
    out: dict[str, list[Session]] = {}
    for s in found:
        out.setdefault(s.node, []).append(s)
    return dict(sorted(out.items()))
