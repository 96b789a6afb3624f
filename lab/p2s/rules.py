"""Azure's point-to-site rules (and the lab's own limits), as pure checks with the offending field's path."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Network
from itertools import combinations

from lab.azure import facts
from lab.findings import Finding
from lab.p2s.model import CLIENT_NET, MAX_CLIENTS, MEMORY_SHARE, MIB_PER_CLIENT, THUMBPRINT, clients, declared
from lab.topology.checks import address_spaces, public_ips
from lab.topology.model import Gateway, P2sClient, Topology


def check_p2s(topo: Topology) -> list[Finding]:
    found: list[Finding] = []
    for g, gw in sorted(topo.gateways.items()):
        if gw.p2s is not None:
            found += _gateway(f"gateways.{g}.p2s", g, gw)
    found += _pools(topo)
    for c in topo.connections:
        if c == "p2s" and any(gw.p2s for gw in topo.gateways.values()):
            found.append(Finding(f"connections.{c}", "the name 'p2s' is the point-to-site connection's",
                                 "rename the connection"))
    found += _lab_limits(topo)
    return found


def _gateway(path: str, name: str, gw: Gateway) -> Iterator[Finding]:
    p2s = gw.p2s
    assert p2s is not None
    if gw.vpn_type == "PolicyBased":
        yield Finding(path, "a PolicyBased gateway does not support point-to-site", "use vpn_type: RouteBased")
    elif p2s.tunnel_type == "IKEv2" and facts.SKUS[gw.sku].p2s_ikev2 == 0:
        yield Finding(f"{path}.tunnel_type", f"the {gw.sku} SKU does not support IKEv2 point-to-site",
                      "use VpnGw1 or larger (Basic offers SSTP only)")
    elif p2s.tunnel_type != "IKEv2":
        yield Finding(f"{path}.tunnel_type", f"{p2s.tunnel_type} is not emulated: the lab runs IKEv2 clients",
                      "set tunnel_type: IKEv2")
    count = len(declared(name, gw))
    limit = facts.SKUS[gw.sku].p2s_ikev2
    if limit and count > limit:
        yield Finding(f"{path}.clients", f"{count} clients: the {gw.sku} SKU allows {limit} IKEv2 P2S connections",
                      "use fewer clients or a larger SKU")
    if count > p2s.address_pool.num_addresses - 2:
        yield Finding(f"{path}.address_pool", f"{p2s.address_pool} has room for fewer than {count} clients",
                      "use a larger pool")
    names = {c.name for c in declared(name, gw)}
    for i, item in enumerate(p2s.revoked):
        if item not in names and not THUMBPRINT.match(item):
            yield Finding(f"{path}.revoked[{i}]", f"{item!r} is neither a client of this gateway nor a SHA-1 "
                          "thumbprint", "write 40 hex digits or a client name")
    for i, root in enumerate(p2s.root_certificates):
        if not root.endswith((".pem", ".crt", ".cer")):
            yield Finding(f"{path}.root_certificates[{i}]", f"{root!r} is not a PEM certificate file",
                          "name a .pem/.crt/.cer file")
    yield from _user_clients(path, gw)


def _user_clients(path: str, gw: Gateway) -> Iterator[Finding]:
    """A user's own client certificate needs its key (the client authenticates with it), and `issuer` only
    chooses the CA of a generated certificate."""
    listed = gw.p2s.clients if gw.p2s is not None and isinstance(gw.p2s.clients, list) else []
    for i, c in enumerate(listed):
        if not isinstance(c, P2sClient) or (c.certificate is None and c.key is None):
            continue
        where = f"{path}.clients[{i}]"
        if c.certificate is None or c.key is None:
            have, missing = ("certificate", "key") if c.key is None else ("key", "certificate")
            yield Finding(f"{where}.{missing}", f"client {c.name!r} has a {have} but no {missing}",
                          "give both certificate and key (PEM paths), or neither")
        if c.issuer == "untrusted":
            yield Finding(f"{where}.issuer", f"client {c.name!r} brings its own certificate: issuer applies only to "
                          "generated ones", "drop issuer: untrusted")


def _pools(topo: Topology) -> Iterator[Finding]:
    """A pool must not overlap the VNet, any site, or another gateway's pool: traffic could not be routed."""
    pools = [(f"gateways.{g}.p2s.address_pool", gw.p2s.address_pool)
             for g, gw in sorted(topo.gateways.items()) if gw.p2s is not None]
    spaces: list[tuple[str, IPv4Network]] = list(address_spaces(topo))
    for path, pool in pools:
        for spath, net in spaces:
            if pool.overlaps(net):
                yield Finding(path, f"address pool {pool} overlaps {net} ({spath})",
                              "choose a pool outside every VNet and site address space")
    for (pa, a), (pb, b) in combinations(pools, 2):
        if a.overlaps(b):
            yield Finding(pb, f"address pool {b} overlaps {a} ({pa})", "give each gateway its own pool")


def _lab_limits(topo: Topology) -> Iterator[Finding]:
    total = sum(len(declared(g, gw)) for g, gw in topo.gateways.items())
    if total > MAX_CLIENTS:
        yield Finding("gateways", f"{total} P2S clients: the lab has public addresses ({CLIENT_NET}) for "
                      f"{MAX_CLIENTS}", "use fewer clients")
    used = {c.public_ip: c.name for c in clients(topo)}
    for path, ip in public_ips(topo):
        if ip in used:
            yield Finding(path, f"public IP {ip} is the P2S client {used[ip]!r}'s address",
                          f"the lab gives P2S clients {CLIENT_NET} (from .10 on): use another address")
    seen: dict[str, str] = {}
    for c in clients(topo):
        where = f"gateways.{c.gateway}.p2s.clients"
        if c.name in seen:
            yield Finding(where, f"client name {c.name!r} is already used by gateway {seen[c.name]!r}",
                          "give each client its own name")
        seen.setdefault(c.name, c.gateway)
        if c.name in topo.gateways or c.name in topo.sites:
            yield Finding(where, f"client name {c.name!r} is already a gateway or site", "rename the client")


def machine_limit(topo: Topology, mem_available_bytes: int) -> Finding | None:
    """What this machine can hold, not what Azure allows: each client container costs MIB_PER_CLIENT
    (measured); the clients may use MEMORY_SHARE of the memory available now."""
    total = sum(len(declared(g, gw)) for g, gw in topo.gateways.items())
    avail_mib = mem_available_bytes / 2**20
    limit = int(avail_mib * MEMORY_SHARE / MIB_PER_CLIENT)
    if total <= limit:
        return None
    return Finding("gateways", f"{total} P2S clients: this machine's limit is {limit} (not Azure's): "
                   f"{MIB_PER_CLIENT} MiB measured per client, {avail_mib:,.0f} MiB available, "
                   f"{MEMORY_SHARE:.0%} of it for clients", "use fewer clients, or a machine with more memory")
