"""Cross-reference checks a schema cannot express: names that must exist, addresses that must not clash.

Each check is a pure function of the model returning findings, so every problem is reported at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from itertools import combinations

from lab.findings import Finding
from lab.topology.model import Topology


def check_topology(topo: Topology) -> list[Finding]:
    return [
        *check_references(topo),
        *check_unique_names(topo),
        *check_public_ips(topo),
        *check_address_spaces(topo),
        *check_hosts(topo),
    ]


def check_references(topo: Topology) -> Iterator[Finding]:
    for cname, conn in topo.connections.items():
        if conn.gateway not in topo.gateways:
            yield Finding(
                f"connections.{cname}.gateway",
                f"gateway {conn.gateway!r} is not defined",
                f"define it under 'gateways:' or use one of: {', '.join(sorted(topo.gateways))}",
            )
        if conn.site not in topo.sites:
            known = ", ".join(sorted(topo.sites)) or "(none defined)"
            yield Finding(
                f"connections.{cname}.site",
                f"site {conn.site!r} is not defined",
                f"define it under 'sites:' or use one of: {known}",
            )


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
        for h in site.hosts:
            yield f"sites.{s}.hosts.{h}", h


def public_ips(topo: Topology) -> Iterator[tuple[str, IPv4Address]]:
    for g, gw in topo.gateways.items():
        for i, ip in enumerate(gw.public_ips):
            yield f"gateways.{g}.public_ips[{i}]", ip
    for s, site in topo.sites.items():
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
    for (pa, a), (pb, b) in combinations(address_spaces(topo), 2):
        if a.overlaps(b):
            yield Finding(
                pb,
                f"address space {b} overlaps {a} ({pa})",
                "VNet and site address spaces must not overlap: traffic could not be routed",
            )


def check_hosts(topo: Topology) -> Iterator[Finding]:
    for g, gw in topo.gateways.items():
        yield from _hosts_inside(f"gateways.{g}.vnet.hosts", gw.vnet.hosts, gw.vnet.address_space)
    for s, site in topo.sites.items():
        yield from _hosts_inside(f"sites.{s}.hosts", site.hosts, site.address_space)


def _hosts_inside(
    path: str, hosts: dict[str, IPv4Address], spaces: list[IPv4Network]
) -> Iterator[Finding]:
    first = spaces[0]
    for name, ip in hosts.items():
        if ip not in first or ip in (first.network_address, first.broadcast_address):
            yield Finding(
                f"{path}.{name}",
                f"host address {ip} is not a usable address of the first address space {first}",
                "test hosts sit on the first prefix's LAN",
            )
