"""Which address spaces each network sees, after NAT: where overlapping prefixes are allowed.

Azure's reason for NAT is connecting networks whose address spaces overlap (facts.SOURCES["nat"]): a gateway
sees each site through its connection's IngressSnat rules, and a site sees the VNet through its connection's
EgressSnat rules. Two networks may share a prefix as long as no one sees them overlap: "the address spaces for
all External Mappings must not overlap with each other and with the networks connected without NAT". A view is
one such point of sight; `overlaps` reports every clash in every view, each at the field that would fix it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network
from itertools import combinations

from lab.azure import facts
from lab.azure.nat import rules_of, translate
from lab.findings import Finding
from lab.topology.model import NatRule, Topology

WHY = f"Azure: {facts.SOURCES['nat']}"


@dataclass(frozen=True)
class Seen:
    """One prefix of one network as a viewer sees it."""

    network: str  # "gateway <g>" (its VNet) or "site <s>"
    origin: IPv4Network  # the network's own prefix
    prefix: IPv4Network  # as the viewer sees it (origin, or translated by a NAT rule)
    path: str  # the address_space[i] field of `origin`
    rules: str | None = None  # the connection's *_nat_rules field that decides how the viewer sees it

    @property
    def translated(self) -> bool:
        return self.prefix != self.origin


@dataclass(frozen=True)
class View:
    viewer: str  # e.g. "gateway azgw" or "site branch1 (connection azgw-branch1)"
    seen: tuple[Seen, ...]


def views(topo: Topology) -> list[View]:
    """Each gateway's view (its VNet, its sites through ingress rules, its VNet-to-VNet peers) and each
    site-to-site connection's view from the site (the site, the VNet through egress rules)."""
    out = [View(f"gateway {g}", tuple(_gateway_view(topo, g))) for g in sorted(topo.gateways)]
    for c, conn in sorted(topo.connections.items()):
        gw, site = topo.gateways.get(conn.gateway), topo.sites.get(conn.site or "")
        if gw is None or site is None:
            continue  # a dangling name is check_references' finding
        own = [Seen(f"site {conn.site}", n, n, f"sites.{conn.site}.address_space[{i}]")
               for i, n in enumerate(site.address_space)]
        vnet = _translated(f"gateway {conn.gateway}", gw.vnet.address_space, f"gateways.{conn.gateway}.vnet",
                           rules_of(conn, gw, "EgressSnat"), f"connections.{c}.egress_nat_rules")
        out.append(View(f"site {conn.site} (connection {c})", (*own, *vnet)))
    return out


def _gateway_view(topo: Topology, g: str) -> Iterator[Seen]:
    gw = topo.gateways[g]
    yield from _own(f"gateway {g}", gw.vnet.address_space, f"gateways.{g}.vnet")
    for c, conn in sorted(topo.connections.items()):
        if conn.gateway == g and conn.site in topo.sites:
            site = topo.sites[conn.site or ""]
            yield from _translated(f"site {conn.site}", site.address_space, f"sites.{conn.site}",
                                   rules_of(conn, gw, "IngressSnat"), f"connections.{c}.ingress_nat_rules")
        other = conn.peer_gateway if conn.gateway == g else conn.gateway if conn.peer_gateway == g else None
        if other is not None and other in topo.gateways and other != g:
            yield from _own(f"gateway {other}", topo.gateways[other].vnet.address_space, f"gateways.{other}.vnet")


def _own(network: str, spaces: list[IPv4Network], base: str) -> Iterator[Seen]:
    yield from (Seen(network, n, n, f"{base}.address_space[{i}]") for i, n in enumerate(spaces))


def _translated(network: str, spaces: list[IPv4Network], base: str, rules: list[tuple[str, NatRule]],
                rules_path: str) -> Iterator[Seen]:
    for i, net in enumerate(spaces):
        for seen in translate([net], rules):
            yield Seen(network, net, seen, f"{base}.address_space[{i}]", rules_path)


def nat_pairs(topo: Topology) -> set[frozenset[str]]:
    """Pairs of networks a viewer sees together with one of them translated: NAT decides whether they may
    overlap (`overlaps`); any other overlapping pair is refused as before NAT existed."""
    return {frozenset((a.network, b.network)) for v in views(topo) for a, b in combinations(v.seen, 2)
            if a.network != b.network and (a.translated or b.translated)}


def overlaps(topo: Topology) -> list[Finding]:
    """Every clash, as one viewer sees them, of two networks whose overlap NAT is meant to resolve; once each."""
    pairs, found = nat_pairs(topo), dict[tuple[str, str], Finding]()
    for view in views(topo):
        for a, b in combinations(view.seen, 2):
            if frozenset((a.network, b.network)) in pairs and a.prefix.overlaps(b.prefix):
                f = _clash(view.viewer, a, b)
                found.setdefault((f.path, f.message), f)
    return list(found.values())


def _clash(viewer: str, a: Seen, b: Seen) -> Finding:
    """Named at the NAT rules that would fix it: a translated prefix's own rules (its external mapping
    clashes), else the rules that could translate the untranslated one."""
    fix, other = (a, b) if a.translated and not b.translated else (b, a) if b.translated else \
        ((b, a) if b.rules else (a, b))
    how = f"as {fix.prefix}" if fix.translated else "untranslated"
    was = f" (translated from {other.origin})" if other.translated else ""
    hint = (f"map {fix.network}'s {fix.origin} to an external prefix that overlaps nothing else {viewer} sees: "
            "external mappings must not overlap each other nor networks connected without NAT")
    if other.translated and other.prefix == fix.prefix and other.rules and other.rules.endswith("ingress_nat_rules"):
        hint = ("one IngressSnat rule cannot serve two different on-premises networks: give each site its own rule "
                "and external prefix")
    if not fix.translated:
        mode = "EgressSnat" if fix.network.startswith("gateway") else "IngressSnat"
        hint = f"add an {mode} rule for {fix.origin} to {fix.rules or fix.path}, mapping it to a prefix no one uses"
    return Finding(fix.rules or fix.path, f"{viewer} would see {fix.network}'s {fix.origin} {how}, overlapping "
                   f"{other.network}'s {other.prefix}{was}", f"{hint} ({WHY})")


def sharing_connections(topo: Topology) -> list[str]:
    """Site-to-site connections whose site shares a prefix with another network its gateway sees: only NAT
    keeps them apart, so their translation must be the connection's own (a tunnel interface each)."""
    out = []
    for c, conn in sorted(topo.connections.items()):
        gw, site = topo.gateways.get(conn.gateway), topo.sites.get(conn.site or "")
        if gw is None or site is None:
            continue
        others = [s.origin for v in views(topo) if v.viewer == f"gateway {conn.gateway}" for s in v.seen
                  if s.network != f"site {conn.site}"]
        if any(a.overlaps(b) for a in site.address_space for b in others):
            out.append(c)
    return out
