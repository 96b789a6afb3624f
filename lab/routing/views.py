"""vtysh JSON -> what Azure shows: BGP peer status, learned routes, advertised routes (pure parsers).

Azure's views (Get-AzVirtualNetworkGatewayBgpPeerStatus, ...LearnedRoute, ...AdvertisedRoute) list per
instance: the peer, its ASN, state, uptime and route counts; and per route the network, next hop, source
peer, origin (Network for the gateway's own prefixes, EBgp for learned ones) and AS path.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

UNSPEC = "(unspec)"


class BgpPeerStatus(BaseModel):
    node: str
    peer: str
    asn: int
    local_asn: int
    state: str
    uptime: str = ""
    prefixes_in: int = 0
    prefixes_out: int = 0
    connection: str = ""
    last_error: str = ""


class RouteRow(BaseModel):
    node: str
    local_address: str
    network: str
    next_hop: str
    source_peer: str
    origin: str  # Network | EBgp (learned); Igp | Egp | Incomplete (advertised)
    as_path: str
    weight: int = 0
    best: bool = True


def peer_status(node: str, neighbors: dict[str, Any]) -> list[BgpPeerStatus]:
    """`show bgp neighbors json` -> one row per peer."""
    out = []
    for peer, d in sorted(neighbors.items()):
        if not isinstance(d, dict) or "remoteAs" not in d:
            continue
        af = (d.get("addressFamilyInfo") or {}).get("ipv4Unicast") or {}
        up = d.get("bgpState") == "Established"
        out.append(BgpPeerStatus(
            node=node, peer=peer, asn=d["remoteAs"], local_asn=d.get("localAs", 0), state=d.get("bgpState", "?"),
            uptime=d.get("bgpTimerUpString", "") if up else "", prefixes_in=af.get("acceptedPrefixCounter", 0),
            prefixes_out=af.get("sentPrefixCounter", 0), connection=(d.get("nbrDesc") or "").split(" via ")[0],
            last_error=d.get("lastNotificationReason", "") or "" if not up else ""))
    return out


def learned_routes(node: str, router_id: str, local_of: dict[str, str], table: dict[str, Any]) -> list[RouteRow]:
    """`show bgp ipv4 unicast json` -> every path: the gateway's own (Network) and learned ones (EBgp);
    `local_of` maps a peer to this node's address on that session."""
    rows = []
    for network, paths in sorted((table.get("routes") or {}).items()):
        for p in paths:
            own = p.get("peerId", UNSPEC) == UNSPEC
            hop = next((h.get("ip", "") for h in p.get("nexthops", [])), "")
            local_address = router_id if own else local_of.get(p.get("peerId", ""), router_id)
            rows.append(RouteRow(
                node=node, local_address=local_address, network=network,
                next_hop=local_address if own or hop == "0.0.0.0" else hop,
                source_peer=local_address if own else p.get("peerId", ""), origin="Network" if own else "EBgp",
                as_path=p.get("path", ""), weight=p.get("weight", 0), best=bool(p.get("bestpath"))))
    return rows


ORIGINS = {"i": "Igp", "e": "Egp", "?": "Incomplete"}


def advertised_routes(node: str, local_address: str, local_asn: int, peer: str,
                      adv: dict[str, Any]) -> list[RouteRow]:
    """`show bgp ipv4 unicast neighbors PEER advertised-routes json` -> what the peer receives: next hop the
    session's own address, the local ASN prepended (eBGP)."""
    rows = []
    for network, r in sorted((adv.get("advertisedRoutes") or {}).items()):
        path = " ".join(x for x in (str(local_asn), r.get("path", "")) if x)
        rows.append(RouteRow(node=node, local_address=local_address, network=network, next_hop=local_address,
                             source_peer=peer, origin=ORIGINS.get(r.get("bgpOriginCode", "i"), "Igp"),
                             as_path=path, weight=r.get("weight", 0)))
    return rows
