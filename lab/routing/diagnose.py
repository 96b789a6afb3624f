"""`lab diagnose` for BGP: why a session over a tunnel is down, or what the device gets wrong, in one line.

Inputs are read by lab.routing.collect (the device's frr.conf from the state directory, the gateway's
`show bgp neighbors json`, the device's route to Azure's peer IP); this module only compares them with
the sessions Azure expects (lab.routing.peers). Classes: bgp-asn-mismatch, bgp-peer-address-mismatch,
bgp-apipa-not-initiated, bgp-no-route-to-peer, bgp-prefix-limit, bgp-advertises-vnet.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lab.azure import facts
from lab.device.diagnose import Diagnosis
from lab.routing.frr_parse import FrrConfig
from lab.routing.peers import Session
from lab.topology.model import Topology


@dataclass(frozen=True)
class Evidence:
    """What was read for one Azure-side session: the device's config, the gateway's neighbor JSON for that
    peer, and the device's `ip route get <Azure's peer IP>` (empty when not read)."""

    device: FrrConfig | None
    neighbor: Mapping[str, Any]
    route: str = ""
    device_iface: str = "ipsec0"  # the device's tunnel interface for this session


def diagnose_bgp(topo: Topology, azure_sessions: list[Session], evidence: Mapping[tuple[str, str], Evidence]
                 ) -> list[Diagnosis]:
    """One Diagnosis per problem of each Azure-side session (keyed by (gateway node, peer IP))."""
    out = []
    for s in azure_sessions:
        ev = evidence.get((s.node, str(s.remote_ip)))
        if ev is None:
            continue
        up = ev.neighbor.get("bgpState") == "Established"
        for kind, summary, lines in _problems(topo, s, ev):
            out.append(Diagnosis(kind=kind, severity="warning" if up and kind == "bgp-advertises-vnet" else "error",
                                 connection=s.tunnel, gateway_node=s.node, site_node=s.peer_node, summary=summary,
                                 evidence=[*lines, *_live(ev)]))
    return out


def _live(ev: Evidence) -> list[str]:
    n = ev.neighbor
    lines = [f"gateway: BGP state {n.get('bgpState', 'unknown')}"]
    if n.get("lastNotificationReason"):
        lines.append(f"gateway: last notification: {n['lastNotificationReason']}")
    return lines


Problem = tuple[str, str, list[str]]


def _problems(topo: Topology, s: Session, ev: Evidence) -> Iterator[Problem]:
    yield from _limit(s, ev)
    dev = ev.device
    if dev is None:
        return
    yield from _asn(s, dev, ev)
    peer = dev.neighbor(s.local_ip)
    if peer is None:
        known = ", ".join(sorted(dev.neighbors)) or "none"
        yield ("bgp-peer-address-mismatch", f"the device has no BGP neighbor {s.local_ip} (Azure's BGP IP on this "
               f"tunnel); it peers with: {known}", [f"device: neighbor {a}" for a in sorted(dev.neighbors)])
        return
    if peer.update_source and _is_ip(peer.update_source) and peer.update_source != str(s.remote_ip):
        yield ("bgp-peer-address-mismatch", f"the device peers from {peer.update_source}, but the local network "
               f"gateway's BGP peer IP is {s.remote_ip}", [f"device: neighbor {s.local_ip} update-source "
                                                            f"{peer.update_source}"])
    if s.passive and peer.passive:
        yield ("bgp-apipa-not-initiated", f"Azure waits for the device (APIPA peer {s.remote_ip}: Azure does not "
               "initiate) and the device is passive too: nobody opens the session",
               [f"device: neighbor {s.local_ip} passive"])
    yield from _route(s, dev, ev)
    yield from _vnet(topo, s, dev)


def _asn(s: Session, dev: FrrConfig, ev: Evidence) -> Iterator[Problem]:
    peer = dev.neighbor(s.local_ip)
    if dev.asn is not None and dev.asn != s.remote_asn:
        yield ("bgp-asn-mismatch", f"the device runs AS {dev.asn}, the local network gateway says AS "
               f"{s.remote_asn}", [f"device: router bgp {dev.asn}"])
    if peer is not None and peer.remote_as is not None and peer.remote_as != s.local_asn:
        yield ("bgp-asn-mismatch", f"the device expects Azure in AS {peer.remote_as}; the gateway's ASN is "
               f"{s.local_asn}", [f"device: neighbor {s.local_ip} remote-as {peer.remote_as}"])


def _route(s: Session, dev: FrrConfig, ev: Evidence) -> Iterator[Problem]:
    """The device must route Azure's peer IP into the tunnel (faq: "Add a host route of the Azure BGP peer
    IP address on your VPN device ... to the IPsec S2S VPN tunnel")."""
    if not ev.route:
        return
    words = ev.route.split()
    dev_name = words[words.index("dev") + 1] if "dev" in words else ""
    if dev_name != ev.device_iface:
        static = [f"device: ip route {n} {via}" for n, via in dev.routes_to(s.local_ip)]
        yield ("bgp-no-route-to-peer", f"the device routes Azure's BGP IP {s.local_ip} via {dev_name or '?'}, "
               f"not through the tunnel ({ev.device_iface})", [f"device: {ev.route.strip()}", *static])


def _limit(s: Session, ev: Evidence) -> Iterator[Problem]:
    reason = str(ev.neighbor.get("lastNotificationReason", ""))
    if "Maximum Number of Prefixes" in reason:
        yield ("bgp-prefix-limit", f"the device advertised more than {facts.BGP_MAX_PREFIXES} prefixes: Azure "
               "dropped the session", [])
    elif ev.device is not None and len(ev.device.networks) > facts.BGP_MAX_PREFIXES:
        yield ("bgp-prefix-limit", f"the device originates {len(ev.device.networks)} prefixes; Azure accepts "
               f"{facts.BGP_MAX_PREFIXES} and drops the session above", [])


def _vnet(topo: Topology, s: Session, dev: FrrConfig) -> Iterator[Problem]:
    conn = topo.connections[s.connection]
    vnet = topo.gateways[conn.gateway].vnet.address_space
    for net in dev.networks:
        clash = next((v for v in vnet if net.subnet_of(v)), None)
        if clash is not None:
            yield ("bgp-advertises-vnet", f"the device advertises {net}, inside the VNet's own {clash}: Azure "
                   "filters it (and traffic to it stays in the VNet)", [f"device: network {net}"])


def _is_ip(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(p.isdigit() for p in parts)
