"""Azure VPN Gateway NAT rules: Azure's rules for them, and the address views they create.

A connection's IngressSnat rules make its site's prefixes appear translated to the VNet; its EgressSnat rules
make the VNet's prefixes appear translated to the site (facts.SOURCES["nat"]). The gateway does the
translation (lab.render.nftables); the site's device sees only the external (post-NAT) VNet prefixes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from ipaddress import IPv4Address, IPv4Network

from lab.azure import facts
from lab.findings import Finding
from lab.topology.model import Connection, Gateway, NatRule, Topology

WHY = f"Azure: {facts.SOURCES['nat']}"
WHY_BGP = f"Azure: {facts.SOURCES['nat_bgp']}"
TRANSLATION = "enable_bgp_route_translation_for_nat"


def check_nat(topo: Topology) -> Iterator[Finding]:
    """Every NAT rule and every connection's use of one, each problem with its field path and fix."""
    for g, gw in topo.gateways.items():
        if gw.nat_rules and gw.sku not in facts.NAT_SKUS:
            yield Finding(f"gateways.{g}.nat_rules", f"NAT rules need VpnGw2 or larger, not {gw.sku}",
                          f"set the gateway's sku to one of {', '.join(facts.NAT_SKUS)} ({WHY})")
        for r, rule in gw.nat_rules.items():
            yield from _rule(f"gateways.{g}.nat_rules.{r}", gw, rule)
        yield from _translation(f"gateways.{g}.{TRANSLATION}", g, gw, topo)
    for c, conn in topo.connections.items():
        own = topo.gateways.get(conn.gateway)
        if own is not None:
            yield from _connection(f"connections.{c}", conn, own)
            yield from _bgp_connection(f"connections.{c}", conn, own, topo)


def _translation(path: str, g: str, gw: Gateway, topo: Topology) -> Iterator[Finding]:
    """BGP route translation acts on BGP connections with NAT rules: without both it would do nothing."""
    if not gw.enable_bgp_route_translation_for_nat:
        return
    if not gw.nat_rules:
        yield Finding(path, "BGP route translation translates routes by NAT rules, and the gateway has none",
                      f"add gateways.{g}.nat_rules (and list them on a BGP connection), or remove {TRANSLATION}")
    elif not any(c.gateway == g and c.enable_bgp and c.site and (c.ingress_nat_rules or c.egress_nat_rules)
                 for c in topo.connections.values()):
        yield Finding(path, "no BGP connection of this gateway uses NAT rules: there is no route to translate",
                      "set enable_bgp: true on a connection that lists ingress_nat_rules or egress_nat_rules, "
                      f"or remove {TRANSLATION} ({WHY_BGP})")


def _rule(path: str, gw: Gateway, rule: NatRule) -> Iterator[Finding]:
    for key in ("internal_mappings", "external_mappings"):
        if len(getattr(rule, key)) != facts.NAT_PREFIXES_PER_MAPPING:
            yield Finding(f"{path}.{key}", f"a NAT rule maps one prefix, found {len(getattr(rule, key))}",
                          f"create one rule per prefix ({WHY})")
    if rule.type == "Static" and rule.internal.prefixlen != rule.external.prefixlen:
        yield Finding(f"{path}.external_mappings", f"a Static rule maps 1:1: {rule.internal} and {rule.external} "
                      "differ in length", "use prefixes of the same length, or type: Dynamic")
    if rule.ip_configuration_id is not None and rule.ip_configuration_id >= len(gw.public_ips):
        yield Finding(f"{path}.ip_configuration_id", f"instance {rule.ip_configuration_id} does not exist",
                      "use 0, or 1 on an active-active gateway (or omit it: every instance)")
    if rule.mode == "EgressSnat" and not any(rule.internal.subnet_of(s) for s in gw.vnet.address_space):
        yield Finding(f"{path}.internal_mappings", f"EgressSnat translates VNet prefixes: {rule.internal} is not "
                      "inside the VNet's address space", "use a VNet prefix, or mode: IngressSnat")


def _connection(path: str, conn: Connection, gw: Gateway) -> Iterator[Finding]:
    for key, mode in (("ingress_nat_rules", "IngressSnat"), ("egress_nat_rules", "EgressSnat")):
        names = getattr(conn, key)
        if names and conn.use_policy_based_traffic_selectors:
            yield Finding(f"{path}.{key}", "the lab does not model NAT with policy-based traffic selectors "
                          "(emulation limit)", "set use_policy_based_traffic_selectors: false")
        if names and conn.vnet_to_vnet:
            yield Finding(f"{path}.{key}", "NAT rules are not supported on VNet-to-VNet connections",
                          f"remove them; NAT applies to site-to-site connections only ({WHY})")
            continue
        for i, name in enumerate(names):
            rule = gw.nat_rules.get(name)
            if rule is None:
                yield Finding(f"{path}.{key}[{i}]", f"NAT rule {name!r} is not defined on gateway {conn.gateway}",
                              f"define it under gateways.{conn.gateway}.nat_rules or remove it")
            elif rule.mode != mode:
                yield Finding(f"{path}.{key}[{i}]", f"NAT rule {name!r} is {rule.mode}, not {mode}",
                              f"list it under {'egress' if mode == 'IngressSnat' else 'ingress'}_nat_rules")


def _bgp_connection(path: str, conn: Connection, gw: Gateway, topo: Topology) -> Iterator[Finding]:
    """NAT on a BGP connection: what Azure says about route translation, APIPA peers and exact prefixes."""
    site = topo.sites.get(conn.site or "")
    if not (conn.enable_bgp and (conn.ingress_nat_rules or conn.egress_nat_rules)) or site is None:
        return
    if not gw.enable_bgp_route_translation_for_nat:
        yield Finding(f"{path}.enable_bgp", "BGP routes over this connection's NAT rules are learned and advertised "
                      "untranslated (the gateway's BGP route translation is off)", f"set gateways.{conn.gateway}."
                      f"{TRANSLATION}: true to translate them as Azure's \"Enable BGP Route Translation\" does "
                      f"({WHY_BGP})", severity="warning")
    apipa = [ip for ip in (site.bgp.peers if site.bgp else []) if ip in IPv4Network(facts.APIPA_NETWORK)]
    if apipa:
        yield Finding(f"sites.{conn.site}.bgp", f"BGP peer IP {apipa[0]} is APIPA on a connection with NAT rules: "
                      "Azure's NAT FAQ says \"NAT isn't supported with BGP APIPA addresses\" (its \"NAT and "
                      "routing\" section says an APIPA peer needs no NAT rule); the lab peers over it untranslated",
                      "use a non-APIPA peer IP: the post-NAT address, inside an IngressSnat rule's external mapping "
                      f"({WHY_BGP})", severity="warning")
    if gw.enable_bgp_route_translation_for_nat and site.bgp is not None and not site.device.frr_config:
        inner = {r.internal for _, r in rules_of(conn, gw, "IngressSnat")}
        odd = [n for n in (site.bgp.advertise or site.address_space) if inner and n not in inner]
        if odd:
            yield Finding(f"sites.{conn.site}.bgp.advertise", f"{odd[0]} is not exactly an IngressSnat rule's "
                          f"internal mapping ({', '.join(map(str, sorted(inner)))}): it is learned untranslated",
                          "advertise exactly the rules' internal mappings (Azure: \"The on-premises BGP routers must "
                          f"advertise the exact prefixes as defined in the IngressSNAT rules\", {WHY_BGP})",
                          severity="warning")


def static_view(ip: IPv4Address, rules: list[tuple[str, NatRule]], inward: bool = False) -> IPv4Address:
    """An address as the other side of these rules sees it: a Static rule's internal mapping becomes its external
    one (`inward`: the reverse, external back to internal); Dynamic rules and other addresses stay as they are.
    BGP peers address each other so across the tunnel's NAT (SOURCES["nat_bgp"]: post-NAT peer IPs)."""
    for _, r in rules:
        src, dst = (r.external, r.internal) if inward else (r.internal, r.external)
        if r.type == "Static" and ip in src:
            return IPv4Address(int(dst.network_address) + int(ip) - int(src.network_address))
    return ip


def rules_of(conn: Connection, gw: Gateway, mode: str) -> list[tuple[str, NatRule]]:
    """The connection's defined rules of one mode (undefined names are validate's job)."""
    names = conn.ingress_nat_rules if mode == "IngressSnat" else conn.egress_nat_rules
    return [(n, gw.nat_rules[n]) for n in names if n in gw.nat_rules]


def translate(prefixes: list[IPv4Network], rules: list[tuple[str, NatRule]]) -> list[IPv4Network]:
    """Prefixes as the other side sees them: a prefix a rule's internal mapping covers becomes its external one
    (a prefix inside it maps to the same offset); the rest stay as they are."""
    out: list[IPv4Network] = []
    for net in prefixes:
        out.append(next((_map(net, r) for _, r in rules if net.subnet_of(r.internal)), net))
        out += [r.external for _, r in rules if r.internal.subnet_of(net) and r.internal != net]
    return list(dict.fromkeys(out))


def _map(net: IPv4Network, rule: NatRule) -> IPv4Network:
    if rule.type == "Dynamic" or rule.internal.prefixlen != rule.external.prefixlen:
        return rule.external
    offset = int(net.network_address) - int(rule.internal.network_address)
    return IPv4Network((int(rule.external.network_address) + offset, net.prefixlen))


def instance_rules(conn: Connection, gw: Gateway, mode: str, instance: int) -> list[tuple[str, NatRule]]:
    """The connection's rules of one mode that apply on one gateway instance (ip_configuration_id)."""
    return [(n, r) for n, r in rules_of(conn, gw, mode) if r.ip_configuration_id in (None, instance)]


def node_rules(topo: Topology, gateway: str, instance: int, skip: Collection[str] = ()) -> list[tuple[str, NatRule]]:
    """Every rule the gateway instance applies: the rules its site-to-site connections use (but `skip`), once
    each."""
    gw, out = topo.gateways[gateway], dict[str, NatRule]()
    for c, conn in sorted(topo.connections.items()):
        if conn.gateway == gateway and conn.site is not None and c not in skip:
            for mode in ("IngressSnat", "EgressSnat"):
                out.update(instance_rules(conn, gw, mode, instance))
    return sorted(out.items())


def device_bgp_ips(topo: Topology, site: str) -> list[IPv4Address]:
    """The site device's own BGP addresses, one per device: the local network gateway's peer IPs are post-NAT
    (SOURCES["nat_bgp"]), so a Static IngressSnat rule of a connection to the site maps each back to the address
    the device holds."""
    bgp = topo.sites[site].bgp
    out = []
    for ip in bgp.peers if bgp else []:
        views = [static_view(ip, rules_of(conn, topo.gateways[conn.gateway], "IngressSnat"), inward=True)
                 for _, conn in sorted(topo.connections.items())
                 if conn.site == site and conn.gateway in topo.gateways]
        out.append(next((v for v in views if v != ip), ip))
    return out
