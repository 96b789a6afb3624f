"""What `lab verify` probes and what it must never see in clear, derived purely from the lab's plan.

Reachability: every VNet host <-> every host behind the far end of each of its gateway's connections
(a site, or the peer gateway's VNet), ICMP and UDP, both ways. Selectors: from each of those hosts, a
probe to an address no prefix of the lab contains, and a probe to each far host from a spoofed source
outside every prefix; no tunnel may carry either. A route-based pair (0.0.0.0/0 selectors on both ends,
tunnel interfaces: docs/route-based.md) has no source selector to enforce: there the routes decide, so only
the probe to an unrouted destination is sent (it must not be carried, nor leak).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network

from lab.azure.nat import rules_of, translate
from lab.plan import INTERNET
from lab.plan_types import Plan
from lab.probes.results import ProbeSpec
from lab.render.tunnel_ifaces import routed_ends
from lab.render.tunnels import tunnels
from lab.topology.model import NatRule, Topology

# Candidate /16s for addresses outside every selector, first free ones win (10.99.0.1 in the reference lab).
OUTSIDE_CANDIDATES = tuple(IPv4Network(f"10.{b}.0.0/16") for b in range(99, 90, -1)) + (
    IPv4Network("172.31.0.0/16"), IPv4Network("192.168.254.0/24"))


@dataclass(frozen=True)
class ProbeOptions:
    count: int = 10
    selector_count: int = 3
    interval_s: float = 0.02
    timeout_s: float = 1.0


@dataclass(frozen=True)
class Pair:
    """A host behind a gateway (`host_a`) and a host behind the other end of one of its connections: a
    site, or the peer gateway of a VNet-to-VNet connection (`host_b`); groups name the charon sides."""

    host_a: str
    host_b: str
    group_a: str  # the gateway (its instances are nodes <gateway>-<i>)
    group_b: str  # the site, or the peer gateway
    route_based: bool = False  # any-to-any on both ends: routes, not selectors, decide what a tunnel carries


@dataclass(frozen=True)
class Targets:
    pairs: tuple[Pair, ...]
    host_ips: dict[str, str]  # host node -> its address
    public_ips: dict[str, str]  # public address -> gateway/site node
    groups: dict[str, str]  # charon node -> its gateway/site group
    inner: dict[str, str]  # address -> what it is; none may appear in clear on the Internet link
    outside: str  # an address outside every prefix (selector probes)
    spoofed: str  # a source address outside every prefix (selector probes)
    # (src host, dst host) -> the address src reaches dst at, where NAT rules translate it (lab.azure.nat)
    seen: dict[tuple[str, str], str] = field(default_factory=dict)

    def dst_ip(self, src: str, dst: str) -> str:
        return self.seen.get((src, dst), self.host_ips[dst])

    @property
    def echo_nodes(self) -> list[str]:
        return sorted({p.host_a for p in self.pairs} | {p.host_b for p in self.pairs})

    def group_of(self, host: str) -> str | None:
        """The gateway or site whose charon node(s) route for `host`."""
        for p in self.pairs:
            if host in (p.host_a, p.host_b):
                return p.group_a if host == p.host_a else p.group_b
        return None


def holders(public_ips: dict[str, str], *reads: dict[str, dict[str, list[str]]]) -> dict[str, tuple[str, ...]]:
    """Public address -> the nodes that held it in any of the reads (node -> its live interfaces' cidr
    addresses). An active-standby gateway's address moves with its active: after a failover the plan's node no
    longer has it."""
    held: dict[str, set[str]] = {}
    for live in reads:
        for node, links in live.items():
            for ip in {a.split("/")[0] for addrs in links.values() for a in addrs} & set(public_ips):
                held.setdefault(ip, set()).add(node)
    return {ip: tuple(sorted(nodes)) for ip, nodes in sorted(held.items())}


def held_now(t: Targets, held: dict[str, tuple[str, ...]]) -> Targets:
    """The public addresses mapped to the one node that holds each now. An address held by none or by two keeps
    the plan's node: the SPIs on the wire then belong to no SA of it, and check_spis names the holders."""
    moved = {ip: nodes[0] for ip, nodes in held.items() if len(nodes) == 1 and ip in t.public_ips}
    return replace(t, public_ips={**t.public_ips, **moved})


def free_addresses(topo: Topology) -> tuple[str, str]:
    """Two addresses in prefixes no gateway VNet or site uses: a destination and a spoofed source."""
    used = [n for gw in topo.gateways.values() for n in gw.vnet.address_space]
    used += [n for site in topo.sites.values() for n in site.address_space]
    free = [n for n in OUTSIDE_CANDIDATES if not any(n.overlaps(u) for u in used)]
    return str(free[0].network_address + 1), str(free[1].network_address + 5)


def build_targets(topo: Topology, plan: Plan) -> Targets:
    pairs = []
    routed = {t.connection for t in tunnels(topo) if len(routed_ends(topo, t)) == 2}
    for cname, conn in sorted(topo.connections.items()):
        far = conn.site or conn.peer_gateway or ""
        far_hosts = topo.sites[far].hosts if conn.site else topo.gateways[far].vnet.hosts
        pairs += [Pair(a, b, conn.gateway, far, cname in routed) for a in sorted(topo.gateways[conn.gateway].vnet.hosts)
                  for b in sorted(far_hosts)]
    host_ips, public, groups, inner = {}, {}, {}, {}
    for node in plan.nodes:
        for iface in node.ifaces:
            for addr in iface.addresses:
                if iface.segment == INTERNET:
                    public[str(addr.ip)] = node.name
                else:
                    inner[str(addr.ip)] = f"{node.name} {iface.name}"
        inner.update({str(a.ip): f"{node.name} lo" for a in node.loopbacks})
        if node.role == "host":
            host_ips[node.name] = str(node.ifaces[0].addresses[0].ip)
        if node.runs("charon"):
            groups[node.name] = node.group
    outside, spoofed = free_addresses(topo)
    inner.update({outside: "selector probe destination", spoofed: "selector probe spoofed source"})
    seen = translated_views(topo)
    inner.update({ip: f"{dst} (translated)" for (_, dst), ip in seen.items()})
    return Targets(tuple(dict.fromkeys(pairs)), host_ips, public, groups, inner, outside, spoofed, seen)


def translated_views(topo: Topology) -> dict[tuple[str, str], str]:
    """Where NAT rules apply: a VNet host reaches a site host at its IngressSnat external address, and the
    site host reaches the VNet host at its EgressSnat external address."""
    seen = {}
    for _, conn in sorted(topo.connections.items()):
        if conn.site is None:
            continue
        gw, site = topo.gateways[conn.gateway], topo.sites[conn.site]
        ingress, egress = rules_of(conn, gw, "IngressSnat"), rules_of(conn, gw, "EgressSnat")
        for a, a_ip in gw.vnet.hosts.items():
            for b, b_ip in site.hosts.items():
                seen[(a, b)], seen[(b, a)] = _as_seen(b_ip, ingress), _as_seen(a_ip, egress)
    return {k: str(v) for k, v in seen.items() if v is not None}


def _as_seen(ip: IPv4Address, rules: list[tuple[str, NatRule]]) -> IPv4Address | None:
    """The address translated by one of the rules, or None when none covers it."""
    out = translate([IPv4Network(f"{ip}/32")], rules)[0].network_address
    return out if out != ip else None


def reach_specs(t: Targets, port: int, opt: ProbeOptions) -> list[ProbeSpec]:
    """ICMP and UDP, each pair both ways; the UDP goes to the far host's echo responder on `port`."""
    specs = []
    for p in t.pairs:
        for src, dst in ((p.host_a, p.host_b), (p.host_b, p.host_a)):
            for kind in ("icmp", "udp"):
                specs.append(ProbeSpec(id=f"{kind}:{src}>{dst}", purpose="reach", kind=kind, src_node=src,
                                       dst=t.dst_ip(src, dst), dst_node=dst, count=opt.count,
                                       interval_s=opt.interval_s, timeout_s=opt.timeout_s,
                                       port=port if kind == "udp" else 0))
    return specs


def selector_specs(t: Targets, opt: ProbeOptions) -> list[ProbeSpec]:
    """Per host: ICMP to an address outside every prefix; per pair direction: ICMP from a spoofed source."""
    base = ProbeSpec(id="", purpose="selector", kind="icmp", src_node="", dst="", count=opt.selector_count,
                     interval_s=opt.interval_s, timeout_s=opt.timeout_s)
    specs = [base.model_copy(update={"id": f"outside:{h}>{t.outside}", "src_node": h, "dst": t.outside})
             for h in t.echo_nodes]
    for p in (p for p in t.pairs if not p.route_based):
        for src, dst in ((p.host_a, p.host_b), (p.host_b, p.host_a)):
            specs.append(base.model_copy(update={"id": f"spoofed:{src}>{dst}", "src_node": src, "src": t.spoofed,
                                                 "dst": t.dst_ip(src, dst), "dst_node": dst}))
    return specs


def by_node(specs: list[ProbeSpec]) -> dict[str, list[ProbeSpec]]:
    out: dict[str, list[ProbeSpec]] = {}
    for s in specs:
        out.setdefault(s.src_node, []).append(s)
    return out

