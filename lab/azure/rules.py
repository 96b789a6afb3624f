"""Azure's rules for gateways and connections, as pure checks over the model.

Each rule cites the fact it enforces from `facts`, so a test and the docs can read the same value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from lab.azure import facts
from lab.findings import Finding
from lab.topology.model import Connection, Gateway, Topology


def check_azure_rules(topo: Topology) -> list[Finding]:
    found: list[Finding] = []
    for g, gw in topo.gateways.items():
        found += _gateway_rules(f"gateways.{g}", gw)
    found += _tunnel_limits(topo)
    for c, conn in topo.connections.items():
        gw = topo.gateways.get(conn.gateway)
        if gw is not None:
            found += _connection_rules(f"connections.{c}", conn, gw)
    return found


def _gateway_rules(path: str, gw: Gateway) -> Iterator[Finding]:
    sku = facts.SKUS[gw.sku]
    if gw.vpn_type == "PolicyBased" and gw.sku != "Basic":
        yield Finding(f"{path}.sku", f"a PolicyBased gateway must use the Basic SKU, not {gw.sku}",
                      "use vpn_type: RouteBased for VpnGw1-5")
    if gw.active_active and gw.vpn_type == "PolicyBased":
        yield Finding(f"{path}.active_active", "active-active needs a RouteBased gateway",
                      "set active_active: false or vpn_type: RouteBased")
    elif gw.active_active and not sku.active_active:
        yield Finding(f"{path}.active_active", f"the {gw.sku} SKU does not support active-active",
                      "use VpnGw1 or larger")
    want = 2 if gw.active_active else 1
    if len(gw.public_ips) != want:
        mode = "an active-active" if gw.active_active else "an active-standby"
        yield Finding(f"{path}.public_ips", f"{mode} gateway has {want} public IP(s), found {len(gw.public_ips)}",
                      f"list exactly {want} address(es)")


def _tunnel_limits(topo: Topology) -> Iterator[Finding]:
    per_gateway = Counter(conn.gateway for conn in topo.connections.values())
    for g, count in per_gateway.items():
        gw = topo.gateways.get(g)
        if gw is None:
            continue
        limit = 1 if gw.vpn_type == "PolicyBased" else facts.SKUS[gw.sku].s2s_tunnels
        if count > limit:
            why = "a PolicyBased gateway supports one S2S connection" if gw.vpn_type == "PolicyBased" \
                else f"the {gw.sku} SKU allows {limit} S2S tunnels"
            yield Finding(f"gateways.{g}", f"{count} connections use this gateway: {why}",
                          "remove connections or choose a larger SKU")


def _connection_rules(path: str, conn: Connection, gw: Gateway) -> Iterator[Finding]:
    if gw.vpn_type == "PolicyBased" and conn.ike_version != "IKEv1":
        yield Finding(f"{path}.ike_version", "a PolicyBased gateway supports IKEv1 only", "set ike_version: IKEv1")
    if gw.vpn_type == "RouteBased" and gw.sku == "Basic" and conn.ike_version == "IKEv1":
        yield Finding(f"{path}.ike_version", "IKEv1 on a RouteBased gateway needs VpnGw1 or larger",
                      "set ike_version: IKEv2 or choose a larger SKU")
    if conn.use_policy_based_traffic_selectors and gw.vpn_type == "PolicyBased":
        yield Finding(f"{path}.use_policy_based_traffic_selectors",
                      "applies to RouteBased gateways only (a PolicyBased gateway always uses prefix pairs)")
    if conn.use_policy_based_traffic_selectors and conn.ipsec_policy is None:
        yield Finding(f"{path}.use_policy_based_traffic_selectors",
                      "policy-based traffic selectors need a custom ipsec_policy",
                      "add an ipsec_policy to this connection")
    if conn.ipsec_policy is not None:
        yield from _policy_rules(f"{path}.ipsec_policy", conn, gw)


def _policy_rules(path: str, conn: Connection, gw: Gateway) -> Iterator[Finding]:
    pol = conn.ipsec_policy
    assert pol is not None
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
    if pol.ipsec_encryption == "None" and pol.ipsec_integrity.startswith("GCMAES"):
        yield Finding(f"{path}.ipsec_encryption", "None encryption cannot be combined with GCMAES integrity")
