"""The graph the page draws, from the topology, its plan and one `lab inspect` snapshot. Pure.

Columns, left to right: VNet hosts, gateway instances, the Internet, site devices (and P2S clients, and the
instances of a VNet-to-VNet peer gateway), LAN hosts behind them. Every tunnel is one edge through the
Internet, colored by its state: up (both ends' IKE_SA ESTABLISHED with a CHILD_SA INSTALLED), connecting
(an SA exists but is not there yet), down (no SA, or an end's node is not running).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from lab.plan import device_names, instance_names, standby_name
from lab.plan_types import Plan
from lab.render.tunnels import Tunnel, tunnels
from lab.routing.views import BgpPeerStatus
from lab.status import LabStatus, TunnelStatus
from lab.topology.model import Topology

COL_X = (20.0, 160.0, 450.0, 600.0, 830.0)  # VNet hosts, instances, Internet, far ends, far hosts
NODE_W, NODE_H, HOST_W, HOST_H = 180.0, 54.0, 120.0, 40.0
INTERNET_W = 150.0
PITCH = 72.0  # vertical distance between two rows
CLIENT_PITCH = 44.0
TOP = 40.0
WIDTH = 970.0


@dataclass(frozen=True)
class GNode:
    id: str
    kind: str  # gateway, standby, site, host, client, internet
    label: str
    sub: tuple[str, ...]  # lines under the label (addresses, role)
    state: str  # the node's runtime state (running, exited, paused, missing, ...)
    x: float
    y: float
    w: float
    h: float
    active: bool | None = None  # gateway instances: active (carries tunnels) or standby
    fault: str = ""  # the active fault on this node, if any


@dataclass(frozen=True)
class GEdge:
    id: str
    a: str
    b: str
    kind: str  # tunnel, p2s, lan
    state: str  # up, connecting, down ("" for LAN links)
    label: str
    bgp: str = ""  # "BGP Established, 3 in / 2 out" when the connection runs BGP
    ends: tuple[tuple[str, str], ...] = ()  # (node, connection name on that node) of a tunnel's two ends


@dataclass(frozen=True)
class Graph:
    width: float
    height: float
    nodes: list[GNode] = field(default_factory=list)
    edges: list[GEdge] = field(default_factory=list)

    def node(self, node_id: str) -> GNode:
        return next(n for n in self.nodes if n.id == node_id)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Live:
    """What the graph needs from a running lab beside `lab inspect`: the active instance of each
    active-standby gateway and the active faults per node."""

    status: LabStatus
    active: Mapping[str, str] = field(default_factory=dict)  # gateway -> its active instance node
    faults: Mapping[str, str] = field(default_factory=dict)  # node -> fault description


def sides(topo: Topology) -> tuple[list[str], list[str]]:
    """Gateways drawn left of the Internet, and those drawn right (the far end of a VNet-to-VNet
    connection whose other gateway is already on the left)."""
    left: list[str] = []
    right: list[str] = []
    for g in sorted(topo.gateways):
        peers = {c.peer_gateway if c.gateway == g else c.gateway for c in topo.connections.values()
                 if c.peer_gateway and g in (c.gateway, c.peer_gateway)}
        (right if peers & set(left) else left).append(g)
    return left, right


class _Column:
    """Rows handed out top to bottom in one column pair (devices, their hosts)."""

    def __init__(self) -> None:
        self.y = TOP

    def take(self, rows: int, pitch: float = PITCH) -> float:
        y, self.y = self.y, self.y + max(rows, 1) * pitch
        return y


def build_graph(topo: Topology, plan: Plan, live: Live) -> Graph:
    states = {n.name: n.state for n in live.status.nodes}
    addrs = {n.name: n.addresses for n in live.status.nodes}
    nodes: list[GNode] = []
    left, right = sides(topo)
    lcol, rcol = _Column(), _Column()
    for g in left:
        nodes += _gateway_nodes(topo, plan, g, lcol, (COL_X[1], COL_X[0]), states, live)
    for g in right:
        nodes += _gateway_nodes(topo, plan, g, rcol, (COL_X[3], COL_X[4]), states, live)
    for s in sorted(topo.sites):
        nodes += _site_nodes(topo, plan, s, rcol, states, addrs, live)
    nodes += _client_nodes(plan, rcol, live)
    height = max(lcol.y, rcol.y) + 10
    clients = [c.public_ip for c in live.status.p2s_clients]
    nodes.append(GNode("internet", "internet", "Internet", _public_prefixes(topo, clients), "running",
                       COL_X[2] - INTERNET_W / 2, TOP - 20, INTERNET_W, height - TOP + 10))
    edges = _tunnel_edges(topo, live) + _p2s_edges(live) + _lan_edges(plan, topo, live)
    return Graph(WIDTH, height + 20, nodes, edges)


def _gateway_nodes(topo: Topology, plan: Plan, g: str, col: _Column, xs: tuple[float, float],
                   states: Mapping[str, str], live: Live) -> list[GNode]:
    gw = topo.gateways[g]
    insts = instance_names(g, gw) + ([s] if (s := standby_name(g, gw)) else [])
    hosts = [n for n in plan.nodes if n.role == "host" and n.group == g]
    y0 = col.take(max(len(insts), len(hosts)))
    out = []
    active = live.active.get(g)
    for i, node in enumerate(insts):
        is_active = node == active if active else node in instance_names(g, gw)
        ip = str(gw.public_ips[i]) if i < len(gw.public_ips) else ""
        if not gw.is_active_active:
            ip = str(gw.public_ips[0]) if is_active else ""
        sub = (f"gateway {g} · {gw.sku}", ip or "standby (no public IP)")
        out.append(GNode(node, "gateway" if is_active else "standby", node, sub, states.get(node, "missing"),
                         xs[0], y0 + i * PITCH, NODE_W, NODE_H, active=is_active, fault=live.faults.get(node, "")))
    for i, h in enumerate(hosts):
        out.append(_host(h.name, states, live, xs[1], y0 + i * PITCH + (NODE_H - HOST_H) / 2, h.ifaces))
    return out


def _host(name: str, states: Mapping[str, str], live: Live, x: float, y: float, ifaces: Sequence) -> GNode:
    ips = tuple(str(a.ip) for i in ifaces for a in i.addresses)
    return GNode(name, "host", name, ips[:1], states.get(name, "missing"), x, y, HOST_W, HOST_H,
                 fault=live.faults.get(name, ""))


def _site_nodes(topo: Topology, plan: Plan, s: str, col: _Column, states: Mapping[str, str],
                addrs: Mapping[str, list[str]], live: Live) -> list[GNode]:
    site = topo.sites[s]
    devs = device_names(s, site)
    hosts = [n for n in plan.nodes if n.role == "host" and n.group == s]
    y0 = col.take(max(len(devs), len(hosts)))
    lan = ", ".join(map(str, site.address_space))
    out = [GNode(d, "site", d, (f"site {s} · {ip}", lan), states.get(d, "missing"), COL_X[3], y0 + i * PITCH,
                 NODE_W, NODE_H, fault=live.faults.get(d, ""))
           for i, (d, ip) in enumerate(zip(devs, site.device_ips, strict=True))]
    for i, h in enumerate(hosts):
        out.append(_host(h.name, states, live, COL_X[4], y0 + i * PITCH + (NODE_H - HOST_H) / 2, h.ifaces))
    return out


def _client_nodes(plan: Plan, col: _Column, live: Live) -> list[GNode]:
    by_name = {c.name: c for c in live.status.p2s_clients}
    states = {n.name: n.state for n in live.status.nodes}
    out = []
    for n in (n for n in plan.nodes if n.role == "client"):
        c = by_name.get(n.name)
        sub = (f"P2S · {c.virtual_ip or c.state}",) if c else ("P2S",)
        out.append(GNode(n.name, "client", n.name, sub, states.get(n.name, "missing"), COL_X[3],
                         col.take(1, CLIENT_PITCH), NODE_W, HOST_H, fault=live.faults.get(n.name, "")))
    return out


def _public_prefixes(topo: Topology, clients: Sequence[str] = ()) -> tuple[str, ...]:
    ips = [str(ip) for gw in topo.gateways.values() for ip in gw.public_ips]
    ips += [str(ip) for site in topo.sites.values() for ip in site.device_ips] + list(clients)
    return tuple(sorted({".".join(ip.split(".")[:3]) + ".0/24" for ip in ips if ip.count(".") == 3}))


# ---- edges --------------------------------------------------------------------------------------------


def tunnel_state(status: LabStatus, ends: Sequence[tuple[str, str]]) -> str:
    """up / connecting / down for one tunnel from both ends' IKE_SAs (an end whose node does not run
    makes the tunnel down at once: the other end keeps its SA until DPD says the peer is dead)."""
    running = {n.name for n in status.nodes if n.state == "running"}
    if any(node not in running for node, _ in ends):
        return "down"
    per_end = [_end_state([t for t in status.tunnels if t.node == node and t.connection == conn])
               for node, conn in ends]
    if all(s == "up" for s in per_end):
        return "up"
    return "connecting" if any(s != "down" for s in per_end) else "down"


def _end_state(sas: Sequence[TunnelStatus]) -> str:
    if any(t.state == "ESTABLISHED" and any(c.state == "INSTALLED" for c in t.children) for t in sas):
        return "up"
    return "connecting" if sas else "down"


def _tunnel_ends(t: Tunnel, live: Live, topo: Topology) -> tuple[tuple[str, str], tuple[str, str]]:
    """The two (node, connection) ends; an active-standby gateway's tunnel sits on its active instance."""
    def on_active(node: str) -> str:
        g = node.rsplit("-", 1)[0]
        gw = topo.gateways.get(g)
        return live.active.get(g, node) if gw is not None and not gw.is_active_active else node

    return (on_active(t.azure.node), t.azure.conn), (on_active(t.peer.node), t.peer.conn)


def _tunnel_edges(topo: Topology, live: Live) -> list[GEdge]:
    out: list[GEdge] = []
    for t in tunnels(topo):
        a, b = _tunnel_ends(t, live, topo)
        if any(e.ends == (a, b) for e in out):
            continue
        state = tunnel_state(live.status, (a, b))
        # the id names the planned instance, so a tunnel keeps its id when an active-standby gateway fails over
        out.append(GEdge(f"{t.azure.node}~{t.azure.conn}", a[0], b[0], "tunnel", state, f"{t.connection}: {state}",
                         bgp_label(live.status.bgp_peers, (a, b)), (a, b)))
    return out


def bgp_label(peers: Sequence[BgpPeerStatus], ends: Sequence[tuple[str, str]]) -> str:
    """The BGP session of a tunnel as the gateway end's bgpd sees it (the far end's if the gateway has none)."""
    for node, conn in ends:
        mine = [p for p in peers if p.node == node and (not p.connection or p.connection == conn)]
        if mine:
            p = mine[0]
            counts = f", {p.prefixes_in} in / {p.prefixes_out} out" if p.state == "Established" else ""
            return f"BGP {p.state}{counts}"
    return ""


def _p2s_edges(live: Live) -> list[GEdge]:
    out = []
    instances = {n.group: n.name for n in live.status.nodes if n.role == "gateway" and n.name.endswith("-0")}
    for c in live.status.p2s_clients:
        gw_node = live.active.get(c.gateway) or instances.get(c.gateway, f"{c.gateway}-0")
        state = {"connected": "up", "refused": "down"}.get(c.state, "down")
        label = f"P2S {c.state}" + (f" ({c.reason})" if c.reason else "")
        out.append(GEdge(f"{c.name}~p2s", gw_node, c.name, "p2s", state, label))
    return out


def _lan_edges(plan: Plan, topo: Topology, live: Live) -> list[GEdge]:
    out = []
    for h in (n for n in plan.nodes if n.role == "host"):
        if h.group in topo.gateways:
            gw = topo.gateways[h.group]
            via = live.active.get(h.group) or instance_names(h.group, gw)[0]
        else:
            via = device_names(h.group, topo.sites[h.group])[0]
        out.append(GEdge(f"{h.name}~lan", h.name, via, "lan", "", ""))
    return out
