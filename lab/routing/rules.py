"""Azure's BGP rules as pure checks (`lab validate`): each finding names the field and the fix.

Facts come from `lab.azure.facts` (BGP_SOURCES cites the pages). Connections whose ends are undefined are
left to `lab.topology.checks`.
"""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network

from lab.azure import facts
from lab.findings import Finding
from lab.topology.model import Connection, Gateway, Site, Topology

APIPA_LOW, APIPA_HIGH = (IPv4Address(a) for a in facts.APIPA_RANGE)
APIPA = IPv4Network(facts.APIPA_NETWORK)
PRIVATE_ASN_HINT = "use your own public ASN or a private one: 64512-65514, 65521-65534 or 4200000000-4294967294"


def check_bgp(topo: Topology) -> list[Finding]:
    found: list[Finding] = []
    for g, gw in topo.gateways.items():
        found += _gateway(f"gateways.{g}", gw)
    for s, site in topo.sites.items():
        found += _site(f"sites.{s}", s, site, topo)
    for c, conn in topo.connections.items():
        if conn.enable_bgp:
            found += _connection(f"connections.{c}", conn, topo)
    return found


def is_apipa(ip: IPv4Address) -> bool:
    return ip in APIPA


def reserved_asn(asn: int) -> str | None:
    """Why Azure refuses this ASN for an on-prem device, or None."""
    if asn in facts.AZURE_RESERVED_ASNS:
        return "reserved by Azure"
    if any(lo <= asn <= hi for lo, hi in facts.IANA_RESERVED_ASN_RANGES):
        return "reserved by IANA"
    return None


def _gateway(path: str, gw: Gateway) -> Iterator[Finding]:
    if gw.bgp is None:
        return
    if gw.vpn_type == "PolicyBased":
        yield Finding(f"{path}.bgp", "BGP needs a RouteBased gateway",
                      "remove bgp, or set vpn_type: RouteBased (VpnGw1 or larger)")
    elif not facts.SKUS[gw.sku].bgp:
        yield Finding(f"{path}.bgp", f"the {gw.sku} SKU does not support BGP", "use VpnGw1 or larger")
    why = reserved_asn(gw.bgp.asn)
    if why and gw.bgp.asn != facts.BGP_ASN:
        yield Finding(f"{path}.bgp.asn", f"ASN {gw.bgp.asn} is {why}", f"keep the default 65515, or {PRIVATE_ASN_HINT}")
    instances = 2 if gw.is_active_active else 1
    if len(gw.bgp.apipa) > instances:
        yield Finding(f"{path}.bgp.apipa", f"{len(gw.bgp.apipa)} APIPA addresses for {instances} instance(s)",
                      "list one custom APIPA BGP address per gateway instance")
    for i, ip in enumerate(gw.bgp.apipa):
        if not APIPA_LOW <= ip <= APIPA_HIGH:
            yield Finding(f"{path}.bgp.apipa[{i}]", f"{ip} is outside Azure's APIPA range for VPN "
                          f"({facts.APIPA_RANGE[0]} to {facts.APIPA_RANGE[1]})", "pick an address such as 169.254.21.1")
    if len(gw.bgp.apipa) == 2 and gw.bgp.apipa[0] == gw.bgp.apipa[1]:
        yield Finding(f"{path}.bgp.apipa[1]", f"both instances use {gw.bgp.apipa[0]}",
                      "the second instance's APIPA address must differ from the first")


def _site(path: str, name: str, site: Site, topo: Topology) -> Iterator[Finding]:
    bgp = site.bgp
    if bgp is None:
        return
    why = reserved_asn(bgp.asn)
    if why:
        yield Finding(f"{path}.bgp.asn", f"ASN {bgp.asn} is {why}: Azure refuses it for an on-prem device",
                      PRIVATE_ASN_HINT)
    yield from _peer_count(path, site)
    vnets = [(g, net) for g, gw in topo.gateways.items() for net in gw.vnet.address_space
             if any(c.gateway == g and c.site == name for c in topo.connections.values())]
    field = "peer_ips" if bgp.peer_ips else "peer_ip"
    for k, ip in enumerate(bgp.peers):
        at = f"{path}.bgp.{field}" + (f"[{k}]" if bgp.peer_ips else "")
        if ip in site.device_ips:
            yield Finding(at, f"{ip} is the device's public IP", "use another address on the device, such as a "
                          "loopback address or an APIPA address (169.254.x.x)")
        for g, net in vnets:
            if ip in net:
                yield Finding(at, f"{ip} lies inside the VNet address space {net} of gateway {g!r}",
                              "the BGP peer IP must not come from the VNet: use a loopback or APIPA address")
        yield from _apipa_clash(at, ip, topo)
    if bgp.peer_ips and bgp.peer_ips[0] == bgp.peer_ips[1]:
        yield Finding(f"{path}.bgp.peer_ips[1]", "both device instances use one BGP peer IP", "give each its own")


def _peer_count(path: str, site: Site) -> Iterator[Finding]:
    bgp = site.bgp
    assert bgp is not None
    pair = site.public_ips is not None
    if bgp.peer_ip is not None and bgp.peer_ips is not None:
        yield Finding(f"{path}.bgp.peer_ips", "found both peer_ip and peer_ips",
                      "peer_ips: [a, b] for a device pair (public_ips), peer_ip for one device")
    elif pair and bgp.peer_ips is None:
        yield Finding(f"{path}.bgp.peer_ips", "a device pair needs one BGP peer IP per device",
                      "write peer_ips: [a, b] (Azure: one local network gateway per device, each with its peer IP)")
    elif not pair and bgp.peer_ip is None:
        yield Finding(f"{path}.bgp.peer_ip", "the device's BGP peer IP is missing",
                      "add peer_ip: an address on the device's loopback, or an APIPA address such as 169.254.21.2")


def _apipa_clash(at: str, ip: IPv4Address, topo: Topology) -> Iterator[Finding]:
    """"The APIPA BGP addresses must not overlap between the on-premises VPN devices and all connected Azure
    VPN gateways" (howto)."""
    for g, gw in topo.gateways.items():
        if gw.bgp and ip in gw.bgp.apipa:
            yield Finding(at, f"{ip} is also gateway {g!r}'s APIPA BGP address",
                          "APIPA addresses must not overlap between devices and gateways")


def _connection(path: str, conn: Connection, topo: Topology) -> Iterator[Finding]:
    gw = topo.gateways.get(conn.gateway)
    if gw is None:
        return
    if gw.bgp is None:
        yield Finding(f"{path}.enable_bgp", f"gateway {conn.gateway!r} has no BGP settings",
                      f"add gateways.{conn.gateway}.bgp: {{asn: {facts.BGP_ASN}}}")
    peer = topo.gateways.get(conn.peer_gateway or "")
    if peer is not None:
        yield from _vnet_to_vnet(path, conn, gw, peer)
    site = topo.sites.get(conn.site or "")
    if site is not None:
        yield from _site_connection(path, conn, gw, site)
        yield from _shared_tun_limit(path, site)


def _shared_tun_limit(path: str, site: Site) -> Iterator[Finding]:
    """A device that narrows (traffic_selectors: prefixes) makes the CHILD_SA site LAN <-> VNet: a BGP peer IP
    outside it is not carried. A route-based device keeps 0/0 with its own tunnel interface (docs/route-based.md)."""
    outside = [ip for ip in (site.bgp.peers if site.bgp else []) if not any(ip in n for n in site.address_space)]
    if outside and site.device.traffic_selectors == "prefixes":
        yield Finding(f"{path}.enable_bgp", f"the device's BGP peer IP {outside[0]} is outside its narrowed traffic "
                      "selectors (site LAN <-> VNet): the tunnel does not carry the session",
                      "keep any-to-any selectors (device.traffic_selectors: any) or pick a peer IP inside the "
                      "site's address space", severity="warning")


def _vnet_to_vnet(path: str, conn: Connection, gw: Gateway, peer: Gateway) -> Iterator[Finding]:
    if peer.bgp is None:
        yield Finding(f"{path}.enable_bgp", f"gateway {conn.peer_gateway!r} has no BGP settings",
                      f"add gateways.{conn.peer_gateway}.bgp with an ASN other than {gw.bgp.asn if gw.bgp else 65515}")
    elif gw.bgp is not None and gw.bgp.asn == peer.bgp.asn:
        yield Finding(f"{path}.enable_bgp", f"both gateways use ASN {gw.bgp.asn}",
                      f"give gateways.{conn.peer_gateway}.bgp.asn another ASN (for example 65050)")


def _site_connection(path: str, conn: Connection, gw: Gateway, site: Site) -> Iterator[Finding]:
    if site.bgp is None:
        yield Finding(f"{path}.enable_bgp", f"site {conn.site!r} has no BGP settings",
                      f"add sites.{conn.site}.bgp: {{asn: 65010, peer_ip: 169.254.21.2}}")
        return
    if gw.bgp is not None and site.bgp.asn == gw.bgp.asn:
        yield Finding(f"sites.{conn.site}.bgp.asn", f"the site uses the gateway's ASN {gw.bgp.asn}",
                      "on-prem and Azure need different ASNs")
    instances = 2 if gw.is_active_active else 1
    apipa = gw.bgp.apipa if gw.bgp else []
    if any(is_apipa(ip) for ip in site.bgp.peers) and len(apipa) < instances:
        yield Finding(f"gateways.{conn.gateway}.bgp.apipa",
                      f"site {conn.site!r} peers from an APIPA address: without a custom APIPA BGP address on each "
                      "of the gateway's instances the BGP session cannot establish",
                      f"list {instances} address(es) from {facts.APIPA_RANGE[0]}-{facts.APIPA_RANGE[1]}")
