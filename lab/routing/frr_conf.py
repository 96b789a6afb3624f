"""frr.conf for a gateway instance or a rendered BGP site, as a pure function of its sessions.

Azure's side (facts.BGP_SOURCES): keepalive 60 s / hold 180 s; it advertises its VNet prefixes, the
static prefixes of its other local network gateways and what it learned from other peers, never a default
route nor anything overlapping the VNet; it filters a peer's routes identical to or inside the VNet; more
than 4,000 prefixes from a peer drop the session; towards an APIPA peer it waits (passive). Both sides peer
from a non-connected address over the tunnel interface: ebgp-multihop, update-source, and a /32 host route
to the other side's peer IP into the tunnel (Azure adds it itself; a device needs it configured).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from lab.azure import facts
from lab.routing import nat_routes
from lab.routing.nat_routes import NatPeer
from lab.routing.peers import Session

HEADER = """\
! Rendered by lab (lab/routing/frr_conf.py); zebra, staticd and bgpd read it through vtysh.
frr defaults traditional
hostname {node}
log file /lab/frr.log informational
!
"""
TIMERS = {"azure": (facts.BGP_KEEPALIVE_S, facts.BGP_HOLD_S), "fast": facts.BGP_FAST_TIMERS_S}
# Not an Azure fact: how soon a side retries a failed TCP connect (FRR's default is 120 s, which would keep
# `lab up` waiting when a session is tried before its tunnel is up).
CONNECT_RETRY_S = {"azure": 2, "fast": 1}
MULTIHOP = 255  # peers are not on a connected subnet: the tunnel interface is a hop (vendor samples use 255)
MAX_PATHS = 8  # ECMP over the tunnels of an active-active pair
# FRR 8.4 compares a peer's prefix count with its maximum-prefix *before* counting the prefix that just arrived
# (measured: at 4,000 the 4,001st is accepted and the 4,002nd drops the session). One less makes the 4,001st
# drop it, as Azure does. (A burst of more than 4,000 at session start is not caught until the next update:
# FRR counts those once their next hop resolves, without checking; docs/routing.md.)
FRR_MAX_PREFIX = facts.BGP_MAX_PREFIXES - 1


@dataclass(frozen=True)
class Node:
    """What one node's FRR needs: its sessions, the prefixes it originates, and (Azure) its VNet."""

    name: str
    router_id: IPv4Address
    asn: int
    sessions: tuple[Session, ...]
    networks: tuple[IPv4Network, ...]
    vnet: tuple[IPv4Network, ...] = ()  # non-empty: an Azure gateway instance (its filters apply)
    # non-empty: BGP route translation for NAT, one entry per Azure session (lab/routing/nat_routes.py)
    nat: tuple[NatPeer, ...] = ()


def render_frr(node: Node) -> str:
    lines = [HEADER.format(node=node.name).rstrip("\n")]
    lines += host_routes(node.sessions)
    if node.vnet:
        lines += azure_prefix_lists(node.vnet)
    if node.nat:
        lines += nat_routes.policy_lines(node.asn, node.vnet, node.nat)
    lines += _router(node)
    return "\n".join(lines) + "\n"


def host_routes(sessions: tuple[Session, ...]) -> list[str]:
    """The /32 route to each peer's BGP address through the tunnel that carries the session."""
    lines = []
    for ip, iface, conn in sorted({(s.remote_ip, s.iface, s.connection) for s in sessions}):
        lines += [f"! BGP peer of {conn}: host route through its tunnel", f"ip route {ip}/32 {iface}"]
    return lines + ["!"] if lines else []


def supernets(net: IPv4Network) -> list[IPv4Network]:
    """Every prefix that contains `net` (a route that overlaps the VNet from above), longest first."""
    return [net.supernet(new_prefix=p) for p in range(net.prefixlen - 1, -1, -1)]


def azure_prefix_lists(vnet: tuple[IPv4Network, ...]) -> list[str]:
    """AZURE-IN drops a peer's routes identical to or inside the VNet; AZURE-OUT sends the VNet's own prefixes
    and nothing else that overlaps it, and never a default route."""
    inbound = [f"deny {n} le 32" for n in vnet] + ["permit 0.0.0.0/0 le 32"]
    outbound = [f"permit {n}" for n in vnet] + ["deny 0.0.0.0/0"]
    outbound += [f"deny {n} le 32" for n in vnet]
    over = sorted({s for n in vnet for s in supernets(n)} - {IPv4Network("0.0.0.0/0")},
                  key=lambda s: (s.prefixlen, s), reverse=True)
    outbound += [f"deny {s}" for s in over] + ["permit 0.0.0.0/0 le 32"]
    return ([f"ip prefix-list AZURE-IN seq {5 * (k + 1)} {rule}" for k, rule in enumerate(inbound)]
            + [f"ip prefix-list AZURE-OUT seq {5 * (k + 1)} {rule}" for k, rule in enumerate(outbound)] + ["!"])


def _router(node: Node) -> list[str]:
    lines = [f"router bgp {node.asn}", f" bgp router-id {node.router_id}", " no bgp ebgp-requires-policy",
             " no bgp network import-check", " bgp bestpath as-path multipath-relax"]
    lines += nat_routes.router_lines() if node.nat else []
    for s in node.sessions:
        lines += _neighbor(s)
    lines += [" !", " address-family ipv4 unicast"]
    lines += [f"  network {n}" for n in node.networks]
    lines.append(f"  maximum-paths {MAX_PATHS}")
    lines += nat_routes.family_lines(node.nat)
    for s in node.sessions:
        lines += _neighbor_af(s, node.nat)
    return lines + [" exit-address-family", "!"]


def _neighbor(s: Session) -> list[str]:
    n = f" neighbor {s.remote_ip}"
    keepalive, hold = TIMERS[s.timers]
    lines = [f"{n} remote-as {s.remote_asn}", f"{n} description {s.connection} via {s.tunnel}",
             f"{n} update-source {s.local_ip}", f"{n} ebgp-multihop {MULTIHOP}", f"{n} timers {keepalive} {hold}",
             f"{n} timers connect {CONNECT_RETRY_S[s.timers]}"]
    if s.passive:
        lines.append(f"{n} passive")
    return lines


def _neighbor_af(s: Session, nat: tuple[NatPeer, ...] = ()) -> list[str]:
    n = f"  neighbor {s.remote_ip}"
    if not s.azure:
        return []
    k = next((k for k, p in enumerate(nat, 1) if p.remote_ip == s.remote_ip), 0)
    policy = nat_routes.neighbor_lines(k, nat[k - 1], nat) if k else [f"{n} prefix-list AZURE-IN in",
                                                                       f"{n} prefix-list AZURE-OUT out"]
    return [*policy, f"{n} maximum-prefix {FRR_MAX_PREFIX}"]
