"""Cross-reference checks a schema cannot express: names that must exist, addresses that must not clash.

Each check is a pure function of the model returning findings, so every problem is reported at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from ipaddress import IPv4Address, IPv4Network
from itertools import combinations

from lab.azure import facts
from lab.azure.address_views import nat_pairs, overlaps
from lab.findings import Finding
from lab.topology.model import Gateway, Topology

VNET_MAX_PREFIXLEN = 29
SITE_MAX_PREFIXLEN = 30


def check_topology(topo: Topology) -> list[Finding]:
    return [
        *check_references(topo),
        *check_unique_names(topo),
        *check_public_ips(topo),
        *check_address_spaces(topo),
        *check_prefix_sizes(topo),
        *check_hosts(topo),
        *check_device_pairs(topo),
        *check_gateway_subnets(topo),
    ]


def check_gateway_subnets(topo: Topology) -> Iterator[Finding]:
    """GatewaySubnet and named subnets: inside the VNet, big enough, not overlapping each other."""
    for g, gw in topo.gateways.items():
        path = f"gateways.{g}.vnet"
        yield from _gateway_subnet_size(f"{path}.gateway_subnet", gw)
        named = [(f"{path}.gateway_subnet", gw.vnet.gateway_prefix),
                 *((f"{path}.subnets.{n}", net) for n, net in gw.vnet.subnets.items())]
        for where, net in named:
            if not any(net.subnet_of(space) for space in gw.vnet.address_space):
                yield Finding(where, f"subnet {net} is not inside the VNet's address space "
                              f"({', '.join(map(str, gw.vnet.address_space))})",
                              "choose a prefix inside one address-space prefix")
        for (pa, a), (pb, b) in combinations(named, 2):
            if a.overlaps(b):
                yield Finding(pb, f"subnet {b} overlaps {a} ({pa})", "subnets of a VNet must not overlap")


def _gateway_subnet_size(path: str, gw: Gateway) -> Iterator[Finding]:
    gs = gw.vnet.gateway_subnet
    if gs is None:
        return
    why = f"Azure: {facts.SOURCES['gateway_subnet']}"
    if gs.prefixlen > facts.GATEWAY_SUBNET_MIN_PREFIXLEN:
        yield Finding(path, f"GatewaySubnet {gs} is too small: Azure's smallest is "
                      f"/{facts.GATEWAY_SUBNET_MIN_PREFIXLEN}", f"use a /{facts.GATEWAY_SUBNET_RECOMMENDED_PREFIXLEN} "
                      f"or larger ({why})")
    elif gs.prefixlen > facts.GATEWAY_SUBNET_RECOMMENDED_PREFIXLEN:
        yield Finding(path, f"GatewaySubnet {gs} is smaller than the /{facts.GATEWAY_SUBNET_RECOMMENDED_PREFIXLEN} "
                      "Azure recommends (some configurations need more addresses)",
                      f"use a /{facts.GATEWAY_SUBNET_RECOMMENDED_PREFIXLEN} or larger ({why})", severity="warning")


def check_device_pairs(topo: Topology) -> Iterator[Finding]:
    """A site names its device's public address once: `public_ip` (one device) or `public_ips` (a pair)."""
    for s, site in topo.sites.items():
        path = f"sites.{s}"
        if site.public_ip is not None and site.public_ips is not None:
            yield Finding(f"{path}.public_ips", "a site has either public_ip (one device) or public_ips "
                          "(a device pair), found both", "keep public_ips: [a, b] for two device instances, "
                          "or public_ip: a for one")
        elif site.public_ip is None and site.public_ips is None:
            yield Finding(f"{path}.public_ip", "the site's VPN device needs a public IP",
                          "add public_ip: 198.51.100.10 (or public_ips: [a, b] for a device pair)")
        elif site.public_ips is not None and site.device.config is not None:
            yield Finding(f"{path}.device.config", "a device pair (public_ips) is rendered by the lab: "
                          "its own config describes one device", "remove device.config, or use public_ip")


def check_references(topo: Topology) -> Iterator[Finding]:
    for cname, conn in topo.connections.items():
        path = f"connections.{cname}"
        if conn.gateway not in topo.gateways:
            yield Finding(f"{path}.gateway", f"gateway {conn.gateway!r} is not defined",
                          f"define it under 'gateways:' or use one of: {_known(topo.gateways)}")
        yield from _check_other_end(path, conn.gateway, conn.site, conn.peer_gateway, topo)


def _check_other_end(path: str, gateway: str, site: str | None, peer: str | None,
                     topo: Topology) -> Iterator[Finding]:
    """A connection ends at exactly one of: an on-prem site, or another gateway of the lab."""
    if (site is None) == (peer is None):
        found = "both" if site is not None else "neither"
        yield Finding(f"{path}.site" if site is not None else path,
                      f"a connection needs exactly one of 'site' (site-to-site) or 'peer_gateway' "
                      f"(VNet-to-VNet), found {found}",
                      "keep 'site: NAME' for an on-prem site, or 'peer_gateway: NAME' for another gateway")
    elif site is not None and site not in topo.sites:
        yield Finding(f"{path}.site", f"site {site!r} is not defined",
                      f"define it under 'sites:' or use one of: {_known(topo.sites)}")
    elif peer is not None and peer not in topo.gateways:
        yield Finding(f"{path}.peer_gateway", f"gateway {peer!r} is not defined",
                      f"define it under 'gateways:' or use one of: {_known(topo.gateways)}")
    elif peer == gateway:
        yield Finding(f"{path}.peer_gateway", f"a VNet-to-VNet connection joins two gateways, found {peer!r} twice",
                      "name the other gateway")


def _known(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "(none defined)"


def check_unique_names(topo: Topology) -> Iterator[Finding]:
    """Gateways, sites and hosts become containers named lab-<lab>-<name>: names must not collide."""
    seen: dict[str, str] = {}
    for path, name in _node_names(topo):
        if name in seen:
            yield Finding(path, f"name {name!r} is already used at {seen[name]}", "give each node its own name")
        else:
            seen[name] = path


def _node_names(topo: Topology) -> Iterator[tuple[str, str]]:
    for g, gw in topo.gateways.items():
        yield f"gateways.{g}", g
        for h in gw.vnet.hosts:
            yield f"gateways.{g}.vnet.hosts.{h}", h
    for s, site in topo.sites.items():
        yield f"sites.{s}", s
        if site.public_ips is not None:
            yield from ((f"sites.{s}.public_ips[{i}]", f"{s}-{i}") for i in range(len(site.public_ips)))
        for h in site.hosts:
            yield f"sites.{s}.hosts.{h}", h


def public_ips(topo: Topology) -> Iterator[tuple[str, IPv4Address]]:
    for g, gw in topo.gateways.items():
        for i, ip in enumerate(gw.public_ips):
            yield f"gateways.{g}.public_ips[{i}]", ip
    for s, site in topo.sites.items():
        if site.public_ips is not None:
            yield from ((f"sites.{s}.public_ips[{i}]", ip) for i, ip in enumerate(site.public_ips))
        elif site.public_ip is not None:
            yield f"sites.{s}.public_ip", site.public_ip


def address_spaces(topo: Topology) -> Iterator[tuple[str, IPv4Network]]:
    for g, gw in topo.gateways.items():
        for i, net in enumerate(gw.vnet.address_space):
            yield f"gateways.{g}.vnet.address_space[{i}]", net
    for s, site in topo.sites.items():
        for i, net in enumerate(site.address_space):
            yield f"sites.{s}.address_space[{i}]", net


def check_public_ips(topo: Topology) -> Iterator[Finding]:
    seen: dict[IPv4Address, str] = {}
    spaces = list(address_spaces(topo))
    for path, ip in public_ips(topo):
        if ip in seen:
            yield Finding(path, f"public IP {ip} is already used at {seen[ip]}", "every public IP must be unique")
        seen.setdefault(ip, path)
        if not ip.is_global and not ip.is_reserved and not _is_documentation(ip):
            yield Finding(
                path,
                f"public IP {ip} is a private address",
                "use a documentation range such as 203.0.113.0/24 or 198.51.100.0/24",
            )
        for spath, net in spaces:
            if ip in net:
                yield Finding(path, f"public IP {ip} lies inside address space {net} ({spath})")


def _is_documentation(ip: IPv4Address) -> bool:
    return any(ip in IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))


def check_address_spaces(topo: Topology) -> Iterator[Finding]:
    """Overlapping address spaces are refused, except between networks NAT rules translate apart: those
    are judged as each viewer sees them (lab.azure.address_views)."""
    nat = nat_pairs(topo)
    for (pa, a), (pb, b) in combinations(address_spaces(topo), 2):
        if a.overlaps(b) and frozenset((_network(pa), _network(pb))) not in nat:
            yield Finding(
                pb,
                f"address space {b} overlaps {a} ({pa})",
                "VNet and site address spaces must not overlap: traffic could not be routed "
                "(or, for a site, translate it apart with NAT rules: docs/azure-model.md \"NAT rules\")",
            )
    yield from overlaps(topo)


def _network(path: str) -> str:
    """"gateway <g>" or "site <s>" from an address_spaces() path."""
    kind, name = path.split(".")[:2]
    return f"{kind.removesuffix('s')} {name}"


def check_hosts(topo: Topology) -> Iterator[Finding]:
    for g, gw in topo.gateways.items():
        count = 2 if gw.is_active_active else 3  # A/S: floating .4, own .5 and .6
        reserved = {net: _vnet_reserved(net, count) for net in gw.vnet.address_space}
        yield from _hosts_inside(f"gateways.{g}.vnet.hosts", gw.vnet.hosts, reserved,
                                 "Azure reserves the first four and the last address of a subnet; "
                                 "the gateway instances use the next")
        gs = gw.vnet.gateway_prefix
        for h, ip in gw.vnet.hosts.items():
            if ip in gs and not any(ip in r for r in reserved.values()):
                yield Finding(f"gateways.{g}.vnet.hosts.{h}", f"host address {ip} is inside the GatewaySubnet {gs}",
                              "Azure deploys no VMs into the GatewaySubnet: use an address outside it")
    for s, site in topo.sites.items():
        devices = max(1, len(site.device_ips))
        reserved = {net: {net.network_address + i for i in range(1 + devices)} | {net.broadcast_address}
                    for net in site.address_space}
        yield from _hosts_inside(f"sites.{s}.hosts", site.hosts, reserved,
                                 "the site's VPN device instances use the first addresses of each prefix")


def _vnet_reserved(net: IPv4Network, instances: int) -> set[IPv4Address]:
    first = net.network_address
    return {first + i for i in range(4 + instances)} | {net.broadcast_address}


def _hosts_inside(path: str, hosts: dict[str, IPv4Address], reserved: dict[IPv4Network, set[IPv4Address]],
                  why: str) -> Iterator[Finding]:
    """A test host sits in one of the address space's prefixes, on an address the lab leaves free."""
    spaces = ", ".join(map(str, reserved))
    for name, ip in hosts.items():
        net = next((n for n in reserved if ip in n), None)
        if net is None:
            yield Finding(f"{path}.{name}", f"host address {ip} is not inside the address space ({spaces})",
                          "give the host an address in one of the prefixes")
        elif ip in reserved[net]:
            yield Finding(f"{path}.{name}", f"host address {ip} is reserved in {net}", f"{why}: use another address")


def check_prefix_sizes(topo: Topology) -> Iterator[Finding]:
    """Each prefix is one subnet with the lab's gateway or device address in it: it needs room."""
    for path, net in address_spaces(topo):
        limit = VNET_MAX_PREFIXLEN if path.startswith("gateways.") else SITE_MAX_PREFIXLEN
        if net.prefixlen > limit:
            yield Finding(path, f"prefix {net} is too small: the lab needs /{limit} or larger",
                          "Azure's smallest subnet is a /29 (5 reserved addresses)" if limit == VNET_MAX_PREFIXLEN
                          else "the site's VPN device and a host each need an address")
