"""Read BGP state from a running lab's nodes (vtysh JSON) into the views of lab.routing.views."""

from __future__ import annotations

from pathlib import Path

from lab.device.diagnose import Diagnosis
from lab.plan import instance_names
from lab.routing.diagnose import Evidence, diagnose_bgp
from lab.routing.frr_parse import parse_frr
from lab.routing.peers import Session, by_node, sessions
from lab.routing.views import BgpPeerStatus, RouteRow, advertised_routes, learned_routes, peer_status
from lab.routing.vtysh import vtysh_json
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


def bgp_diagnoses(runtime: Runtime, lab: str, topo: Topology, nodes_dir: Path) -> list[Diagnosis]:
    """Read each site-facing Azure session's evidence from the running lab, then diagnose it (pure)."""
    found = sessions(topo)
    azure = [s for s in found if s.azure and topo.connections[s.connection].site is not None]
    device_side = {(s.node, str(s.remote_ip)): s for s in found if not s.azure}
    evidence = {}
    for s in azure:
        data = vtysh_json(runtime, lab, s.node, f"show bgp neighbors {s.remote_ip} json")
        neighbor = (data or {}).get(str(s.remote_ip), {}) if isinstance(data, dict) else {}
        conf = nodes_dir / s.peer_node / "frr.conf"
        route = runtime.exec(lab, s.peer_node, ["ip", "route", "get", str(s.local_ip)], timeout=5)
        dev = device_side.get((s.peer_node, str(s.local_ip)))
        evidence[(s.node, str(s.remote_ip))] = Evidence(
            device=parse_frr(conf.read_text()) if conf.is_file() else None, neighbor=neighbor,
            route=route.output.strip() if route.ok else "", device_iface=dev.iface if dev else "ipsec0")
    return diagnose_bgp(topo, azure, evidence)
