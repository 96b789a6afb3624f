"""BGP route translation for NAT (Azure's enableBgpRouteTranslationForNat) as FRR policy: pure functions.

Azure (facts.SOURCES["nat_bgp"]): a route learned over a connection's IngressSnat rule (its internal mapping,
exactly) is used and advertised as the rule's external mapping; the VNet is advertised to a connection as its
EgressSnat rules' external mappings; connections without such rules see and give routes untranslated.

FRR cannot rewrite a prefix, so the gateway instance
- originates every external mapping itself (`network`, import-check off): the VNet's views (EgressSnat) and
  each connection's IngressSnat externals, which the tunnel's nftables translate (lab/render/nftables.py);
- tags a learned internal mapping with a large community per connection (route-map NAT-IN-<k>), keeps it
  out of the kernel (table-map NAT-FIB) and out of every advertisement (NAT-OUT-<k> denies the community);
- shows each neighbor only its own view of the VNet (NAT-OUT-<k> denies the other views: NAT-HIDE-<k>);
- advertises connection j's external mapping to the other neighbors only while j's internal mapping is learned
  (conditional advertisement: `advertise-map NAT-ADV-<k> exist-map NAT-HAS-<k>`), with j's ASN prepended so the
  AS path reads as Azure's transit (65515 <j's ASN>);
- rewrites next hops across the NAT: a device's routes point at its post-NAT peer address, and a device whose
  side of the tunnel sees Azure's BGP IP translated gets that address as next hop.
FRR takes one advertise-map per neighbor: with several connections with IngressSnat rules, a neighbor gets all
their external mappings while any of their internal mappings is learned (docs/azure-model.md "NAT and BGP").
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

# Not an Azure fact: how often FRR re-checks the exist-maps (its minimum; the default is 60 s). Azure does not
# document how soon a translated route follows the learned one.
CONDITION_TIMER_S = 5
NAT_TAG = 1  # the large community <gateway ASN>:1:<k> marks an internal mapping learned from neighbor k


@dataclass(frozen=True)
class NatPeer:
    """One Azure BGP session under route translation: what the gateway learns from it translated, and the VNet
    as this connection sees it."""

    remote_ip: IPv4Address
    remote_asn: int
    connection: str
    ingress: tuple[tuple[IPv4Network, IPv4Network], ...]  # (internal, external) of its IngressSnat rules
    vnet_view: tuple[IPv4Network, ...]  # the VNet through its EgressSnat rules (untranslated without any)
    next_hop: IPv4Address | None = None  # Azure's BGP IP as this peer sees it, where EgressSnat changes it


def networks(vnet: tuple[IPv4Network, ...], peers: tuple[NatPeer, ...]) -> list[IPv4Network]:
    """What the instance originates besides its VNet: every view of it and every IngressSnat external mapping."""
    extra = [n for p in peers for n in p.vnet_view] + [ext for p in peers for _, ext in p.ingress]
    return [n for n in dict.fromkeys(extra) if n not in vnet]


def policy_lines(asn: int, vnet: tuple[IPv4Network, ...], peers: tuple[NatPeer, ...]) -> list[str]:
    """Community lists, prefix lists and route-maps (before `router bgp`)."""
    tagged = [(k, p) for k, p in enumerate(peers, 1) if p.ingress]
    lines = [f"! BGP route translation for NAT ({', '.join(p.connection for p in peers)})"]
    for k, _ in tagged:
        lines += [f"bgp large-community-list standard NAT-LEARNED permit {asn}:{NAT_TAG}:{k}",
                  f"bgp large-community-list standard NAT-LEARNED-{k} permit {asn}:{NAT_TAG}:{k}"]
    for k, p in tagged:
        lines += _prefix_list(f"NAT-INT-{k}", [i for i, _ in p.ingress])
        lines += _prefix_list(f"NAT-EXT-{k}", [e for _, e in p.ingress])
    for k, p in enumerate(peers, 1):
        lines += _prefix_list(f"NAT-HIDE-{k}", _hidden(vnet, peers, p))
    lines += _fib_map(tagged)
    for k, p in tagged:
        # The device's next hop is its own (pre-NAT) address: the gateway reaches it at the peer's (post-NAT) one.
        lines += [f"! {p.connection}: its IngressSnat internal mappings are learned tagged, used as external",
                  f"route-map NAT-IN-{k} permit 5", f" match ip address prefix-list NAT-INT-{k}",
                  f" set large-community {asn}:{NAT_TAG}:{k} additive", " set ip next-hop peer-address",
                  f"route-map NAT-IN-{k} permit 10", " match ip address prefix-list AZURE-IN",
                  " set ip next-hop peer-address"]
    for k, p in enumerate(peers, 1):
        lines += _out_map(k, p, vnet, peers, tagged)
    return lines + ["!"]


def _prefix_list(name: str, nets: list[IPv4Network]) -> list[str]:
    return [f"ip prefix-list {name} seq {5 * (i + 1)} permit {n}" for i, n in enumerate(nets)]


def _hidden(vnet: tuple[IPv4Network, ...], peers: tuple[NatPeer, ...], peer: NatPeer) -> list[IPv4Network]:
    """Originated prefixes this neighbor must not get: the VNet's other views (its untranslated prefixes when
    it sees them translated) and its own network's external mappings."""
    views = dict.fromkeys([*vnet, *(n for p in peers for n in p.vnet_view)])
    return [n for n in views if n not in peer.vnet_view] + [e for _, e in peer.ingress]


def _fib_map(tagged: list[tuple[int, NatPeer]]) -> list[str]:
    if not tagged:
        return []
    return ["! learned internal mappings stay out of the kernel: the VNet reaches them at their external mapping",
            "route-map NAT-FIB deny 5", " match large-community NAT-LEARNED", "route-map NAT-FIB permit 10"]


def _out_map(k: int, peer: NatPeer, vnet: tuple[IPv4Network, ...], peers: tuple[NatPeer, ...],
             tagged: list[tuple[int, NatPeer]]) -> list[str]:
    name, hop = f"NAT-OUT-{k}", [f" set ip next-hop {peer.next_hop}"] if peer.next_hop else []
    lines = [f"! {peer.connection}: what Azure advertises to it"]
    if tagged:
        lines += [f"route-map {name} deny 5", " match large-community NAT-LEARNED"]
    if _hidden(vnet, peers, peer):
        lines += [f"route-map {name} deny 10", f" match ip address prefix-list NAT-HIDE-{k}"]
    lines += [f"route-map {name} permit 1000", " match ip address prefix-list AZURE-OUT", *hop]
    # The advertise-map's set clauses are the ones a conditionally advertised route carries (FRR 8.4, tried).
    for j, p in tagged:
        if j != k:
            lines += [f"route-map NAT-ADV-{k} permit {10 + j}", f" match ip address prefix-list NAT-EXT-{j}",
                      f" set as-path prepend {p.remote_asn}", *hop]
    for j, _ in tagged:
        if j != k:
            lines += [f"route-map NAT-HAS-{k} permit {10 + j}", f" match large-community NAT-LEARNED-{j}"]
    return lines


def router_lines() -> list[str]:
    """Under `router bgp`."""
    return [f" bgp conditional-advertisement timer {CONDITION_TIMER_S}"]


def family_lines(peers: tuple[NatPeer, ...]) -> list[str]:
    """Under `address-family ipv4 unicast`, before the neighbors."""
    return ["  table-map NAT-FIB"] if any(p.ingress for p in peers) else []


def neighbor_lines(k: int, peer: NatPeer, peers: tuple[NatPeer, ...]) -> list[str]:
    """Neighbor k's policy (it replaces the plain AZURE-IN / AZURE-OUT prefix lists)."""
    n = f"  neighbor {peer.remote_ip}"
    inbound = f"route-map NAT-IN-{k}" if peer.ingress else "prefix-list AZURE-IN"
    lines = [f"{n} {inbound} in", f"{n} route-map NAT-OUT-{k} out"]
    if any(p.ingress for j, p in enumerate(peers, 1) if j != k):
        lines.append(f"{n} advertise-map NAT-ADV-{k} exist-map NAT-HAS-{k}")
    return lines
