"""Azure's rules for gateways and connections, as pure checks over the model.

Each rule reads the value it enforces from `facts`, so a test and the docs cite the same number.
Connections whose ends are undefined are skipped here: `lab.topology.checks` reports those.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import chain

from lab.azure import facts
from lab.azure.algorithms import is_aead
from lab.azure.nat import check_nat
from lab.azure.proposals import custom_proposals
from lab.findings import Finding
from lab.p2s.rules import check_p2s
from lab.routing.rules import check_bgp
from lab.topology.model import Connection, Gateway, IpsecPolicy, Topology


def check_azure_rules(topo: Topology) -> list[Finding]:
    found: list[Finding] = []
    for g, gw in topo.gateways.items():
        found += _gateway_rules(f"gateways.{g}", gw)
    found += _tunnel_limits(topo)
    found += check_p2s(topo)  # point-to-site (lab/p2s/rules.py)
    found += check_bgp(topo)  # BGP (lab/routing/rules.py)
    found += check_nat(topo)  # NAT rules (lab/azure/nat.py)
    for c, conn in topo.connections.items():
        own = topo.gateways.get(conn.gateway)
        if own is not None:
            found += _connection_rules(f"connections.{c}", conn, own, topo)
    return found


def _gateway_rules(path: str, gw: Gateway) -> Iterator[Finding]:
    sku = facts.SKUS[gw.sku]
    policy_based = gw.vpn_type == "PolicyBased"
    if policy_based and gw.sku not in facts.POLICY_BASED_SKUS:
        yield Finding(f"{path}.sku", f"a PolicyBased gateway must use the Basic SKU, not {gw.sku}",
                      "use vpn_type: RouteBased for VpnGw1-5")
    if gw.active_active and policy_based:
        yield Finding(f"{path}.active_active", "active-active needs a RouteBased gateway",
                      "set active_active: false or vpn_type: RouteBased")
    elif gw.active_active and not sku.active_active:
        yield Finding(f"{path}.active_active", f"the {gw.sku} SKU does not support active-active",
                      "use VpnGw1 or larger")
    want = 2 if gw.is_active_active else 1
    if len(gw.public_ips) != want:
        mode = "an active-active" if gw.active_active else "an active-standby"
        yield Finding(f"{path}.public_ips", f"{mode} gateway has {want} public IP(s), found {len(gw.public_ips)}",
                      f"list exactly {want} address(es)")


def _tunnel_limits(topo: Topology) -> Iterator[Finding]:
    """Connections per gateway; a VNet-to-VNet connection counts on both of its gateways."""
    ends = chain.from_iterable(
        [c.gateway] * _azure_connections(c.site, topo) + ([c.peer_gateway] if c.peer_gateway else [])
        for c in topo.connections.values())
    for g, count in sorted(Counter(ends).items()):
        gw = topo.gateways.get(g)
        if gw is None:
            continue
        policy_based = gw.vpn_type == "PolicyBased"
        limit = facts.POLICY_BASED_MAX_S2S if policy_based else facts.SKUS[gw.sku].s2s_tunnels
        tunnels = count * facts.TUNNELS_PER_CONNECTION
        if tunnels > limit:
            why = f"a PolicyBased gateway supports {limit} S2S connection" if policy_based \
                else f"the {gw.sku} SKU allows {limit} S2S/VNet-to-VNet tunnels"
            yield Finding(f"gateways.{g}", f"{count} connections use this gateway (a device pair counts as two, "
                          f"one per local network gateway): {why}", _tunnel_hint(tunnels, policy_based))


def _tunnel_hint(tunnels: int, policy_based: bool) -> str:
    """Name the smallest SKU that holds `tunnels`, or say that none does (VpnGw4 and VpnGw5 both allow 100)."""
    bigger = [s.name for s in facts.SKUS.values() if s.s2s_tunnels >= tunnels]
    if bigger:
        sku = facts.SKUS[bigger[0]]
        return f"remove connections or use vpn_type: RouteBased ({sku.name} allows {sku.s2s_tunnels} tunnels)" \
            if policy_based else f"remove connections or choose {sku.name} or larger"
    top = max(s.s2s_tunnels for s in facts.SKUS.values())
    return f"no SKU allows more than {top} tunnels: remove connections (Azure suggests Virtual WAN beyond that)"


def _azure_connections(site: str | None, topo: Topology) -> int:
    """A device pair is two local network gateways in Azure, so one lab connection to it is two of Azure's."""
    found = topo.sites.get(site or "")
    return 2 if found is not None and found.public_ips is not None else 1


def _connection_rules(path: str, conn: Connection, gw: Gateway, topo: Topology) -> Iterator[Finding]:
    if gw.vpn_type == "PolicyBased" and conn.ike_version not in facts.POLICY_BASED_IKE_VERSIONS:
        yield Finding(f"{path}.ike_version", "a PolicyBased gateway supports IKEv1 only", "set ike_version: IKEv1")
    if gw.vpn_type == "RouteBased" and conn.ike_version == "IKEv1" and not facts.SKUS[gw.sku].route_based_ikev1:
        yield Finding(f"{path}.ike_version", f"IKEv1 on a RouteBased gateway needs VpnGw1 or larger, not {gw.sku}",
                      "set ike_version: IKEv2 or choose a larger SKU")
    if conn.use_policy_based_traffic_selectors and gw.vpn_type == "PolicyBased":
        yield Finding(f"{path}.use_policy_based_traffic_selectors",
                      "applies to RouteBased gateways only (a PolicyBased gateway always uses prefix pairs)")
    if gw.vpn_type == "PolicyBased" and conn.dpd_timeout_seconds != facts.DPD_TIMEOUT_DEFAULT_S:
        yield Finding(f"{path}.dpd_timeout_seconds", "a PolicyBased gateway does not support DPD: ignored",
                      severity="warning")
    yield from _connection_mode_rule(path, conn, gw)
    yield from _traffic_selector_rules(path, conn)
    yield from _vnet_to_vnet_rules(path, conn, gw, topo)
    yield from _quick_mode_limit(path, conn, gw, topo)
    if conn.ipsec_policy is not None:
        yield from _policy_rules(f"{path}.ipsec_policy", conn.ipsec_policy, conn, gw)


def _connection_mode_rule(path: str, conn: Connection, gw: Gateway) -> Iterator[Finding]:
    """Azure: "The Connection Mode property only applies to route-based VPN gateways that use IKEv2"."""
    if conn.connection_mode == "Default":
        return
    if gw.vpn_type not in facts.CONNECTION_MODE_VPN_TYPES:
        yield Finding(f"{path}.connection_mode", f"{conn.connection_mode} applies to RouteBased gateways only; "
                      f"gateway {conn.gateway!r} is {gw.vpn_type}", "remove connection_mode (Default)")
    elif conn.ike_version not in facts.CONNECTION_MODE_IKE_VERSIONS:
        yield Finding(f"{path}.connection_mode", f"{conn.connection_mode} applies to IKEv2 connections only, "
                      f"this one is {conn.ike_version}", "set ike_version: IKEv2 or remove connection_mode")


def _traffic_selector_rules(path: str, conn: Connection) -> Iterator[Finding]:
    """Azure: custom traffic selectors take effect with UsePolicyBasedTrafficSelectors; the lab renders them on
    site-to-site connections only."""
    if not conn.traffic_selector_policies:
        return
    if not conn.use_policy_based_traffic_selectors:
        yield Finding(f"{path}.traffic_selector_policies", "custom traffic selectors need policy-based traffic "
                      "selectors on the connection", "set use_policy_based_traffic_selectors: true")
    if conn.peer_gateway is not None:
        yield Finding(f"{path}.traffic_selector_policies", "the lab renders custom traffic selectors on "
                      "site-to-site connections only (a lab limit)", "remove them from this VNet-to-VNet connection")


def _vnet_to_vnet_rules(path: str, conn: Connection, gw: Gateway, topo: Topology) -> Iterator[Finding]:
    peer = topo.gateways.get(conn.peer_gateway or "")
    if peer is None:
        return
    for field, name, end in (("gateway", conn.gateway, gw), ("peer_gateway", conn.peer_gateway, peer)):
        if end.vpn_type not in facts.VNET_TO_VNET_VPN_TYPES:
            yield Finding(f"{path}.{field}", f"VNet-to-VNet needs RouteBased gateways; {name!r} is {end.vpn_type}",
                          f"set gateways.{name}.vpn_type: RouteBased")


def _quick_mode_limit(path: str, conn: Connection, gw: Gateway, topo: Topology) -> Iterator[Finding]:
    """Prefix pairs become one quick-mode SA each; Azure negotiates at most MAX_QUICK_MODE_SAS."""
    if gw.vpn_type != "PolicyBased" and not conn.use_policy_based_traffic_selectors:
        return
    site = topo.sites.get(conn.site or "")
    peer = topo.gateways.get(conn.peer_gateway or "")
    remote = site.address_space if site else peer.vnet.address_space if peer else []
    pairs = len(gw.vnet.address_space) * len(remote)
    if pairs > facts.MAX_QUICK_MODE_SAS:
        yield Finding(path, f"{pairs} prefix pairs: Azure negotiates at most {facts.MAX_QUICK_MODE_SAS} "
                      "quick-mode SAs", "summarise prefixes", severity="warning")


def _policy_rules(path: str, pol: IpsecPolicy, conn: Connection, gw: Gateway) -> Iterator[Finding]:
    if not facts.SKUS[gw.sku].custom_policy:
        yield Finding(path, f"the {gw.sku} SKU does not support custom IPsec/IKE policies",
                      "remove ipsec_policy or choose VpnGw1 or larger")
    gcm_enc = pol.ipsec_encryption.startswith("GCMAES")
    gcm_int = pol.ipsec_integrity.startswith("GCMAES")
    if (gcm_enc or gcm_int) and pol.ipsec_encryption != pol.ipsec_integrity:
        yield Finding(f"{path}.ipsec_integrity",
                      f"GCMAES needs the same algorithm for encryption and integrity, found "
                      f"{pol.ipsec_encryption}/{pol.ipsec_integrity}",
                      f"set both to {pol.ipsec_encryption if gcm_enc else pol.ipsec_integrity}")
    if conn.ike_version == "IKEv1" and is_aead(custom_proposals(pol)[0][0]):
        yield Finding(f"{path}.ike_encryption", f"{pol.ike_encryption} needs IKEv2: strongSwan (the lab's "
                      "IKE daemon) cannot negotiate AEAD IKE ciphers over IKEv1",
                      "use AES256/AES192/AES128 with IKEv1, or ike_version: IKEv2")
