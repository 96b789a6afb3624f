"""Topology -> one swanctl configuration per charon node (gateway instances and sites).

Both ends of every connection are rendered from the same model, so a rendered site always matches its
gateway; a user's own device config replaces the site side (issue: bring your own config).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network
from itertools import product

from lab.azure import facts
from lab.azure.proposals import child_lifetime, gateway_proposals
from lab.plan import instance_names
from lab.render.swanctl import SharedKey, SwanctlConfig, Tree
from lab.topology.model import Connection, Gateway, Site, Topology

ANY = IPv4Network("0.0.0.0/0")
# Total time charon spends retransmitting one request (strongswan.conf: 2.0 s, 3 tries, base 1.4).
RETRANSMIT_WINDOW_S = 14


@dataclass(frozen=True)
class Side:
    """One end of a connection as rendered: addresses, selectors and who initiates."""

    local_ip: str
    remote_ip: str
    local_ts: list[IPv4Network]
    remote_ts: list[IPv4Network]
    initiates: bool


def dpd_delay(timeout_s: int) -> int:
    """charon declares a peer dead one retransmit window after the last unanswered DPD."""
    return max(2, timeout_s - RETRANSMIT_WINDOW_S)


def selector_pairs(side: Side, policy_based: bool) -> list[tuple[list[IPv4Network], list[IPv4Network]]]:
    """Policy-based: one CHILD_SA per (local prefix, remote prefix) pair (IKEv1 negotiates one pair)."""
    if not policy_based:
        return [(side.local_ts, side.remote_ts)]
    return [([a], [b]) for a, b in product(side.local_ts, side.remote_ts)]


def conn_tree(conn: Connection, gw: Gateway, side: Side, ike: list[str], esp: list[str],
              child_names: list[str]) -> Tree:
    policy_based = gw.vpn_type == "PolicyBased" or conn.use_policy_based_traffic_selectors
    life_s, life_kb = child_lifetime(conn, gw)
    start = "start" if side.initiates else "none"
    children: Tree = {}
    for name, (lts, rts) in zip(child_names, selector_pairs(side, policy_based), strict=True):
        child: Tree = {
            "local_ts": [str(n) for n in lts],
            "remote_ts": [str(n) for n in rts],
            "esp_proposals": esp,
            "rekey_time": f"{life_s * 9 // 10}s",
            "life_time": f"{life_s}s",
            "start_action": start,
            "dpd_action": "restart" if side.initiates else "clear",
            "close_action": start,
        }
        if life_kb is not None:
            child["rekey_bytes"] = str(life_kb * 1024 * 9 // 10)
            child["life_bytes"] = str(life_kb * 1024)
        children[name] = child
    v1 = conn.ike_version == "IKEv1"
    tree: Tree = {
        "version": "1" if v1 else "2",
        "local_addrs": [side.local_ip],
        "remote_addrs": [side.remote_ip],
        "proposals": ike,
        "keyingtries": "0",
        "dpd_delay": f"{dpd_delay(conn.dpd_timeout_seconds)}s",
        "local": {"auth": "psk", "id": side.local_ip},
        "remote": {"auth": "psk", "id": side.remote_ip},
        "children": children,
    }
    lifetime = f"{facts.IKE_SA_LIFETIME_S}s"
    tree.update({"reauth_time": lifetime} if v1 else {"rekey_time": lifetime})
    if v1:
        tree["dpd_timeout"] = f"{conn.dpd_timeout_seconds}s"
    return tree


def child_names(conn_name: str, gw: Gateway, conn: Connection, site: Site) -> list[str]:
    if gw.vpn_type == "PolicyBased" or conn.use_policy_based_traffic_selectors:
        pairs = product(range(len(gw.vnet.address_space)), range(len(site.address_space)))
        return [f"{conn_name}-{i}-{j}" for i, j in pairs]
    return [conn_name]


def gateway_side(gw: Gateway, site: Site, conn: Connection, instance: int) -> Side:
    any_to_any = gw.vpn_type == "RouteBased" and not conn.use_policy_based_traffic_selectors
    return Side(
        local_ip=str(gw.public_ips[instance]),
        remote_ip=str(site.public_ip),
        local_ts=[ANY] if any_to_any else list(gw.vnet.address_space),
        remote_ts=[ANY] if any_to_any else list(site.address_space),
        initiates=conn.connection_mode != "ResponderOnly",
    )


def site_side(gw: Gateway, site: Site, conn: Connection, instance: int) -> Side:
    """The rendered on-prem device uses its real prefixes (it narrows Azure's any-to-any offer)."""
    return Side(
        local_ip=str(site.public_ip),
        remote_ip=str(gw.public_ips[instance]),
        local_ts=list(site.address_space),
        remote_ts=list(gw.vnet.address_space),
        initiates=conn.connection_mode == "ResponderOnly",
    )


def render_swanctl(topo: Topology, keys: dict[str, str]) -> dict[str, SwanctlConfig]:
    """Swanctl config per charon node name; `keys` holds each connection's PSK."""
    conns: dict[str, dict[str, Tree]] = {}
    secrets: dict[str, list[SharedKey]] = {}
    for cname, conn in sorted(topo.connections.items()):
        gw, site = topo.gateways[conn.gateway], topo.sites[conn.site]
        ike, esp = gateway_proposals(conn, gw)
        names = child_names(cname, gw, conn, site)
        for i, inst in enumerate(instance_names(conn.gateway, gw)):
            suffix = f"-{i}" if gw.active_active else ""
            gside, sside = gateway_side(gw, site, conn, i), site_side(gw, site, conn, i)
            site_names = [f"{n}{suffix}" for n in names]
            conns.setdefault(inst, {})[cname] = conn_tree(conn, gw, gside, ike, esp, names)
            conns.setdefault(conn.site, {})[f"{cname}{suffix}"] = conn_tree(
                conn, gw, sside, ike[:1], esp[:1], site_names)
            key = SharedKey(f"ike-{cname}{suffix}", (gside.local_ip, gside.remote_ip), keys[cname])
            secrets.setdefault(inst, []).append(key)
            secrets.setdefault(conn.site, []).append(key)
    return {n: SwanctlConfig(conns.get(n, {}), tuple(secrets.get(n, []))) for n in sorted(conns)}
