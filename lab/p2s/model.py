"""Point-to-site, as pure data: the clients a topology declares, their public addresses and identities.

Clients are containers on the Internet bridge; their public addresses come from the benchmarking range
198.18.0.0/15 (room for VpnGw5's 10,000 clients and more) in lab order (every gateway's clients, gateways
sorted), so plan, render and status agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from lab.plan_types import Iface, NodePlan, Route
from lab.topology.model import Gateway, P2sClient, Topology

CLIENT_NET = IPv4Network("198.18.0.0/15")
FIRST_CLIENT = 10  # 198.18.0.10 is the first client's public address
MAX_CLIENTS = CLIENT_NET.num_addresses - FIRST_CLIENT - 1
# Measured by bench/p2s.py (docs/p2s.md): each client container with its charon costs this much memory.
MIB_PER_CLIENT = 3.7
MEMORY_SHARE = 0.75  # clients may use this share of the machine's available memory
THUMBPRINT = re.compile(r"^[0-9A-Fa-f]{40}$")


@dataclass(frozen=True)
class ClientSpec:
    """One client as the lab runs it."""

    name: str
    gateway: str
    public_ip: IPv4Address
    trusted: bool  # False: its certificate comes from a CA the gateway does not trust
    revoked_by_name: bool  # listed by name in p2s.revoked (thumbprints are matched once certificates exist)
    user_cert: bool = False  # the user's own certificate and key (p2s.clients[i].certificate), not generated

    @property
    def identity(self) -> str:
        """The certificate subject, also the IKE and EAP identity."""
        return f"CN={self.name}"


def declared(gw_name: str, gw: Gateway) -> list[P2sClient]:
    """The clients of one gateway, a count expanded to <gw>-client1..N."""
    if gw.p2s is None:
        return []
    if isinstance(gw.p2s.clients, int):
        return [P2sClient(name=f"{gw_name}-client{i}") for i in range(1, gw.p2s.clients + 1)]
    return [c if isinstance(c, P2sClient) else P2sClient(name=c) for c in gw.p2s.clients]


def clients(topo: Topology) -> list[ClientSpec]:
    """Every client of the lab, in order; public addresses beyond the range are left out (checks report it)."""
    out: list[ClientSpec] = []
    for g, gw in sorted(topo.gateways.items()):
        for c in declared(g, gw):
            if len(out) >= MAX_CLIENTS:
                return out
            revoked = gw.p2s is not None and c.name in gw.p2s.revoked
            out.append(ClientSpec(c.name, g, CLIENT_NET.network_address + FIRST_CLIENT + len(out),
                                  c.issuer == "root", revoked, c.certificate is not None))
    return out


def gateway_id(gw_name: str, lab: str) -> str:
    """The gateway certificate's DNS name (Azure: the gateway's VPN server name), also its IKE identity."""
    return f"{gw_name}.{lab}.vpn.lab"


def p2s_gateways(topo: Topology) -> list[str]:
    return [g for g, gw in sorted(topo.gateways.items()) if gw.p2s is not None]


def pool_name(gw_name: str) -> str:
    return f"p2s-{gw_name}"


def client_nodes(topo: Topology, segment: str) -> list[NodePlan]:
    """One container per client on the Internet segment, its default route on-link there."""
    return [NodePlan(name=c.name, role="client", group=c.gateway,
                     ifaces=(Iface("eth0", segment, (IPv4Interface(f"{c.public_ip}/{CLIENT_NET.prefixlen}"),)),),
                     routes=(Route(IPv4Network("0.0.0.0/0"), dev="eth0"),), daemons=("charon",))
            for c in clients(topo)]


def pool_routes(gw: Gateway, via: IPv4Address) -> tuple[Route, ...]:
    """A VNet host's route to the client pool: via instance 0, which holds every P2S SA (active-active
    hosts would otherwise spread replies over both instances by ECMP)."""
    return (Route(gw.p2s.address_pool, via=(via,)),) if gw.p2s is not None and gw.is_active_active else ()
