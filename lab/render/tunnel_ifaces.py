"""Route-based tunnels as real interfaces: which tunnel ends get one, their names, addresses and routes.

libipsec (kernel without ESP) has one TUN `ipsec0` per charon and picks the outbound SA by the first
policy whose selectors match, so two 0.0.0.0/0 <-> 0.0.0.0/0 CHILD_SAs cannot share a charon. Each
route-based tunnel end therefore gets its own charon in its own network namespace inside the node's
container; the veth pair between the container's main namespace and that tunnel namespace is the
tunnel interface (`vti-<conn>` in `ip link`), and routes to the peer's prefixes point into it.

IKE and ESP still leave from the node's public IP with nothing rewritten: the tunnel namespace holds the
public IP too (/32 on its lo), sends via the veth, and the main namespace forwards (accept_local on the
veth); inbound UDP 500/4500 from the peer's public IP is steered into the tunnel namespace by a policy
rule placed before the `local` rule. The peer sees exactly what a single charon would send.

Pure: the runtime only executes what is rendered here (lab/render/tunnel_scripts.py writes the scripts).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network

from lab.azure.nat import instance_rules, translate
from lab.plan import INTERNET, instance_names, standby_name
from lab.plan_types import Plan
from lab.render.tunnels import End, Tunnel, pairs_mode, tunnels
from lab.topology.model import NatRule, Topology

TUNNELS_DIR = "tunnels"  # /lab/tunnels/<conn>/ in the container: strongswan.conf, vici socket, logs
IFNAME_MAX = 15
PREFIX = "vti-"
# Each tunnel's veth pair takes a /31 here; Azure's APIPA BGP range (169.254.21.0-169.254.22.255) stays free.
LINK_NET = IPv4Network("169.254.128.0/17")
STEER_PREF = 100  # main namespace: "from <peer> udp dport 500|4500 -> tunnel k" rules ...
LOCAL_PREF = 110  # ... then the `local` rule, moved from priority 0 (and still before libipsec's 220)
TABLE_BASE = 1000  # main namespace: routing table 1000+k holds tunnel k's default route (for steering)
# An active-standby gateway's warm standby runs a quiet copy of each tunnel charon, so a takeover only
# initiates. Up to this many tunnels; above, the standby's tunnel charons start at takeover (its agent runs
# start.sh and loads each one): 100 mirrored charons doubled a VpnGw4 gateway's start-up load (docs/route-based.md).
MIRROR_MAX = 8


@dataclass(frozen=True)
class TunnelIface:
    """One route-based tunnel end on one node: its interface, namespace, charon unit and routes."""

    node: str  # the container (gateway instance, standby, or site device)
    conn: str  # the swanctl connection name on that node (unique there)
    index: int  # k: position among the node's tunnels (link /31, routing table)
    public_ip: IPv4Address  # the node's public IP: IKE/ESP source, also held in the tunnel namespace
    peer_ip: IPv4Address  # the other end's public IP: its UDP 500/4500 is steered into the tunnel
    routes: tuple[IPv4Network, ...]  # prefixes routed into the interface while its CHILD_SA is up
    src: IPv4Address  # preferred source of those routes (the node's inside address)
    anchors: tuple[IPv4Address, ...] = ()  # addresses on the tunnel namespace's lo (see `_anchors`)
    # An Azure end's NAT rules for this connection on this instance: applied in the tunnel namespace, so each
    # connection translates on its own and two sites may share a prefix (docs/azure-model.md "NAT rules").
    nat: tuple[tuple[str, NatRule], ...] = ()

    @property
    def ifname(self) -> str:
        return ifname(self.conn)

    @property
    def netns(self) -> str:
        """The tunnel namespace's name inside the container (`ip netns list`)."""
        return f"tun-{self.conn}"

    @property
    def unit(self) -> str:
        """The charon's key beside node names: LabDir resolves it to nodes/<node>/tunnels/<conn>/."""
        return f"{self.node}/{TUNNELS_DIR}/{self.conn}"

    @property
    def dir(self) -> str:
        """The tunnel's directory inside the container."""
        return f"/lab/{TUNNELS_DIR}/{self.conn}"

    @property
    def main_addr(self) -> IPv4Address:
        return LINK_NET.network_address + 2 * self.index

    @property
    def tunnel_addr(self) -> IPv4Address:
        return self.main_addr + 1

    @property
    def table(self) -> int:
        return TABLE_BASE + self.index


def ifname(conn: str) -> str:
    """`vti-<conn>` (IFNAMSIZ is 16); a longer name keeps its start, a short hash and its instance suffix
    (`-0`, `-1`), so the two tunnels of an active-active pair still read apart. The interface's alias
    (`ip link`) carries the full connection name."""
    full = PREFIX + conn
    if len(full) <= IFNAME_MAX:
        return full
    head, _, tail = conn.rpartition("-")
    sfx = f"-{tail}" if head and tail.isdigit() and len(tail) <= 2 else ""
    digest = hashlib.sha1(conn.encode()).hexdigest()[:3]
    return f"{PREFIX}{conn[:IFNAME_MAX - len(PREFIX) - 4 - len(sfx)]}~{digest}{sfx}"


def container_of(unit: str) -> str:
    """The node (container) a charon unit runs in: a node name is its own main charon's unit."""
    return unit.split("/", 1)[0]


def by_unit(expected: dict[str, list[tuple[str, list[str]]]], ifaces: dict[str, tuple[TunnelIface, ...]]) \
        -> dict[str, list[tuple[str, list[str]]]]:
    """Re-key node -> [(connection, CHILD_SAs)] by charon unit: a route-based connection is on its own charon."""
    out: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)
    for node, wants in expected.items():
        own = {i.conn: i.unit for i in ifaces.get(node, ())}
        for want in wants:
            out[own.get(want[0], node)].append(want)
    return dict(out)


def unit_of(ifaces: dict[str, tuple[TunnelIface, ...]], node: str, conn: str) -> str:
    """The charon unit holding `conn` on `node`: its own for a route-based tunnel, else the node's."""
    return next((i.unit for i in ifaces.get(node, ()) if i.conn == conn), node)


def narrowing_devices(topo: Topology) -> Topology:
    """The topology with every rendered device that did not choose its selectors narrowing to its prefixes: a
    config for one charon with no tunnel interfaces (`lab device-config`) cannot tell two 0/0 tunnels apart."""
    sites = {name: site.model_copy(update={"device": site.device.model_copy(update={"traffic_selectors": "prefixes"})})
             if "traffic_selectors" not in site.device.model_fields_set else site for name, site in topo.sites.items()}
    return topo.model_copy(update={"sites": sites})


def routed_ends(topo: Topology, t: Tunnel) -> list[End]:
    """The ends of `t` that get a tunnel interface: both ends of a route-based connection (any-to-any
    selectors), except a device that narrows (traffic_selectors: prefixes) or brings its own config."""
    conn = topo.connections[t.connection]
    gw = topo.gateways[conn.gateway]
    if pairs_mode(conn, gw):
        return []
    if conn.site is None:
        return [t.azure, t.peer]
    device = topo.sites[conn.site].device
    keeps_any = device.config is None and device.traffic_selectors == "any"
    return [t.azure, t.peer] if keeps_any else [t.azure]


def tunnel_ifaces(topo: Topology, plan: Plan) -> dict[str, tuple[TunnelIface, ...]]:
    """node -> its tunnel interfaces, sorted by connection; an active-standby standby mirrors its active."""
    ends: dict[str, list[tuple[End, Tunnel]]] = defaultdict(list)
    for t in tunnels(topo):
        for end in routed_ends(topo, t):
            ends[end.node].append((end, t))
    out: dict[str, tuple[TunnelIface, ...]] = {}
    for node, found in sorted(ends.items()):
        found.sort(key=lambda e: e[0].conn)
        src = _inside(plan, node)
        out[node] = tuple(TunnelIface(node, e.conn, k, IPv4Address(e.local_ip), IPv4Address(e.remote_ip),
                                      _peer_prefixes(topo, t, e), src, _anchors(topo, t, e), _nat(topo, t, e))
                          for k, (e, t) in enumerate(found))
    for g, gw in sorted(topo.gateways.items()):
        standby = standby_name(g, gw)
        if standby and f"{g}-0" in out:
            src = _inside(plan, standby)
            out[standby] = tuple(replace(i, node=standby, src=src) for i in out[f"{g}-0"])
    return dict(sorted(out.items()))


def tunneled_connections(ifaces: dict[str, tuple[TunnelIface, ...]], topo: Topology) -> set[str]:
    """Topology connections whose Azure ends have tunnel interfaces (their NAT is in the tunnel namespace)."""
    conns = {i.conn for found in ifaces.values() for i in found}
    return {t.connection for t in tunnels(topo) if t.azure.conn in conns and t.azure.node in ifaces}


def _instance(topo: Topology, t: Tunnel) -> int:
    conn = topo.connections[t.connection]
    return instance_names(conn.gateway, topo.gateways[conn.gateway]).index(t.azure.node)


def _nat(topo: Topology, t: Tunnel, end: End) -> tuple[tuple[str, NatRule], ...]:
    """The rules the Azure end of a site-to-site tunnel applies (instance_rules: ip_configuration_id)."""
    conn = topo.connections[t.connection]
    if end is not t.azure or conn.site is None:
        return ()
    gw, index = topo.gateways[conn.gateway], _instance(topo, t)
    return tuple(instance_rules(conn, gw, "IngressSnat", index) + instance_rules(conn, gw, "EgressSnat", index))


def units(topo: Topology, plan: Plan) -> dict[str, str]:
    """Every tunnel charon unit -> its node."""
    return {i.unit: node for node, ifaces in tunnel_ifaces(topo, plan).items() for i in ifaces}


def _inside(plan: Plan, node: str) -> IPv4Address:
    """The node's own inside address: the first on its LAN interface (A/S: its own .5/.6, not the
    floating .4 that moves on failover)."""
    lan = next(i for i in plan.node(node).ifaces if i.segment != INTERNET)
    return lan.addresses[0].ip


def _peer_prefixes(topo: Topology, t: Tunnel, end: End) -> tuple[IPv4Network, ...]:
    """Static routes, as Azure takes them from the local network gateway's address space (or the peer
    VNet's, VNet-to-VNet); the site side routes the gateway's VNet prefixes, unless it learns them by BGP."""
    conn = topo.connections[t.connection]
    if conn.enable_bgp and end is not t.azure:  # the device learns the VNet by BGP (FRR: /32 to Azure's peer)
        return ()
    gw, index = topo.gateways[conn.gateway], _instance(topo, t)
    if end is t.azure and conn.site:  # with BGP too: Azure routes the declared prefixes ("as small as a host
        # prefix", bgp-overview), as IngressSnat rules translate them: the VNet sees the site there
        spaces = topo.sites[conn.site].address_space
        return tuple(translate(list(spaces), instance_rules(conn, gw, "IngressSnat", index)))
    if end is t.azure:
        return tuple(topo.gateways[conn.peer_gateway or ""].vnet.address_space)
    # EgressSnat: the VNet as the site sees it
    return tuple(translate(list(gw.vnet.address_space), instance_rules(conn, gw, "EgressSnat", index)))


def _anchors(topo: Topology, t: Tunnel, end: End) -> tuple[IPv4Address, ...]:
    """libipsec 5.9.8 refuses a CHILD_SA whose local selector holds no local address. Any-to-any holds the
    public IP; a narrowing device makes the gateway's selector its VNet prefixes, so an Azure end's tunnel
    namespace also holds each VNet prefix's .1 (Azure reserves .0-.3 of a subnet: never a VM), as the site sees
    it: an EgressSnat rule makes the selector the translated prefix."""
    conn = topo.connections[t.connection]
    if end is t.azure:
        gw = topo.gateways[conn.gateway]
        spaces = translate(list(gw.vnet.address_space), [r for r in _nat(topo, t, end) if r[1].mode == "EgressSnat"])
    elif conn.peer_gateway:
        spaces = topo.gateways[conn.peer_gateway].vnet.address_space
    else:
        return ()
    return tuple(dict.fromkeys(n.network_address + 1 for n in spaces))
