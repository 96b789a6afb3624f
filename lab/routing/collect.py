"""Read BGP state from a running lab's nodes (vtysh JSON) into the views of lab.routing.views."""

from __future__ import annotations

from lab.plan import instance_names
from lab.routing.daemons import vtysh_json
from lab.routing.peers import Session, by_node, sessions
from lab.routing.views import BgpPeerStatus, RouteRow, advertised_routes, learned_routes, peer_status
from lab.runtime.base import Runtime
from lab.topology.model import Topology


def peer_statuses(runtime: Runtime, lab: str, nodes: list[str]) -> list[BgpPeerStatus]:
    out: list[BgpPeerStatus] = []
    for node in nodes:
        data = vtysh_json(runtime, lab, node, "show bgp neighbors json")
        out += peer_status(node, data) if isinstance(data, dict) else []
    return out


def gateway_sessions(topo: Topology, gateway: str) -> dict[str, list[Session]]:
    """instance -> its sessions, for each instance of `gateway` that runs BGP."""
    gw = topo.gateways[gateway]
    mine = by_node(sessions(topo))
    return {n: mine[n] for n in instance_names(gateway, gw) if n in mine}


def routes(runtime: Runtime, lab: str, per_node: dict[str, list[Session]], learned: bool,
           advertised: bool) -> list[RouteRow]:
    rows: list[RouteRow] = []
    for node, found in per_node.items():
        local_of = {str(s.remote_ip): str(s.local_ip) for s in found}
        router_id = str(found[0].local_ip)
        if learned:
            table = vtysh_json(runtime, lab, node, "show bgp ipv4 unicast json")
            rows += learned_routes(node, router_id, local_of, table) if isinstance(table, dict) else []
        if advertised:
            for s in found:
                adv = vtysh_json(runtime, lab, node, f"show bgp ipv4 unicast neighbors {s.remote_ip} "
                                 "advertised-routes json")
                rows += advertised_routes(node, str(s.local_ip), s.local_asn, str(s.remote_ip),
                                          adv) if isinstance(adv, dict) else []
    return rows
