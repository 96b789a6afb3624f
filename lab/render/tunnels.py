"""Topology -> tunnels: every IKE_SA the lab sets up, with what each of its two ends renders.

One connection becomes one tunnel per gateway instance (site-to-site), or per pair of instances
(VNet-to-VNet). The Azure end follows Azure's rules (any-to-any selectors on RouteBased, prefix pairs on
PolicyBased or with policy-based traffic selectors, Azure's proposals and lifetimes); the peer end is
the on-prem device (narrowing to its prefixes unless told to keep any-to-any, with its overrides) or,
for VNet-to-VNet, the other gateway.

VNet-to-VNet: any-to-any on both ends (prefix pairs with policy-based traffic selectors). Every any-to-any
end gets its own charon and tunnel interface (lab/render/tunnel_ifaces.py): libipsec cannot tell two
any-to-any CHILD_SAs of one charon apart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv4Network
from itertools import product

from lab.azure import facts
from lab.azure.nat import instance_rules, translate
from lab.azure.proposals import child_lifetime, gateway_proposals
from lab.plan import device_names, instance_names
from lab.topology.model import Connection, Gateway, Site, Topology

ANY = IPv4Network("0.0.0.0/0")
# Total time charon spends retransmitting one request (strongswan.conf: 2.0 s, 3 tries, base 1.4).
RETRANSMIT_WINDOW_S = 14


ANY_SUFFIX = "-any"  # the Azure end's responder-only child of a connection with custom traffic selectors


@dataclass(frozen=True)
class Child:
    name: str
    local_ts: tuple[IPv4Network, ...]
    remote_ts: tuple[IPv4Network, ...]
    start: bool = True  # False: only ever a responder's choice (never initiated, not expected up)
    on_demand: bool = False  # a later custom selector line: a trap policy, created on first traffic (not awaited)


def expected(child_name: str, tree: object = None) -> bool:
    """Whether a CHILD_SA of that name (and rendered tree) must be up once the lab is up: not a responder-only
    catch-all, not a selector line that waits for its first packet (start_action = trap)."""
    return not child_name.endswith(ANY_SUFFIX) and not (isinstance(tree, dict) and tree.get("start_action") == "trap")


def selector_children(name: str, conn: Connection) -> tuple[Child, ...]:
    """Custom traffic selectors: one CHILD_SA per line, proposed when the gateway initiates, and a catch-all
    child (0/0, never initiated) through which the gateway accepts any selectors the peer proposes. As Azure
    (facts.CUSTOM_TS_LATER_LINES_ON_TRAFFIC): only the first line comes up with the tunnel, the others on their
    first packet (trap policies; lab.probes.acquire_agent does the acquire libipsec 5.9.8 does not). A
    ResponderOnly gateway initiates nothing: the device brings every line up."""
    lazy = facts.CUSTOM_TS_LATER_LINES_ON_TRAFFIC and conn.connection_mode != "ResponderOnly"
    lines = tuple(Child(f"{name}-ts{i}", tuple(p.local_address_ranges), tuple(p.remote_address_ranges),
                        on_demand=lazy and i > 0)
                  for i, p in enumerate(conn.traffic_selector_policies))
    return (Child(name + ANY_SUFFIX, (ANY,), (ANY,), start=False),) + lines  # first: it wins charon's ties


@dataclass(frozen=True)
class End:
    """One end of a tunnel as its charon renders it."""

    node: str
    conn: str  # swanctl connection name on that node
    local_ip: str
    remote_ip: str
    children: tuple[Child, ...]
    initiates: bool
    ike: tuple[str, ...]
    esp: tuple[str, ...]
    ike_lifetime_s: int
    child_lifetime: tuple[int, int]  # seconds, kilobytes
    dpd_delay_s: int  # 0: no DPD
    dpd_timeout_s: int
    reauth: bool = True  # IKEv1 renews its IKE_SA by re-authenticating, i.e. initiating a new one


@dataclass(frozen=True)
class Tunnel:
    connection: str  # topology connection: its PSK
    secret: str  # secrets section name, the same on both ends
    version: facts.IkeVersion
    azure: End  # an instance of the connection's gateway
    peer: End  # the site's device, or an instance of the peer gateway
    refuse_peer_initiation: bool  # InitiatorOnly: the Azure end drops IKE_SAs the peer starts


# `dpd: fast`: DPD every second; with FAST_RETRANSMIT (strongswan.conf) a dead peer is declared after ~1 s more.
FAST_DPD_DELAY_S = 1
FAST_DPD_TIMEOUT_S = 2  # IKEv1 only (IKEv2 uses the retransmit settings)


def dpd_delay(timeout_s: int) -> int:
    """charon declares a peer dead one retransmit window after the last unanswered DPD."""
    return max(2, timeout_s - RETRANSMIT_WINDOW_S)


def children(name: str, azure_ts: list[IPv4Network], peer_ts: list[IPv4Network], pairs: bool) -> tuple[Child, ...]:
    """The Azure end's CHILD_SAs: one per (Azure prefix i, peer prefix j) pair, named <conn>-i-j, or one."""
    if not pairs:
        return (Child(name, tuple(azure_ts), tuple(peer_ts)),)
    return tuple(Child(f"{name}-{i}-{j}", (a,), (b,))
                 for (i, a), (j, b) in product(enumerate(azure_ts), enumerate(peer_ts)))


def mirrored(kids: tuple[Child, ...], suffix: str, local: list[IPv4Network] | None = None,
             remote: list[IPv4Network] | None = None) -> tuple[Child, ...]:
    """The peer end's CHILD_SAs: the same pairs seen from the other side (or given selectors); the Azure
    end's responder-only catch-all has no counterpart."""
    return tuple(Child(c.name + suffix, tuple(local) if local else c.remote_ts, tuple(remote) if remote else c.local_ts,
                       on_demand=c.on_demand) for c in kids if c.start)


def tunnels(topo: Topology) -> list[Tunnel]:
    out: list[Tunnel] = []
    for cname, conn in sorted(topo.connections.items()):
        gw = topo.gateways[conn.gateway]
        if conn.peer_gateway is not None:
            out += vnet_to_vnet(cname, conn, gw, conn.peer_gateway, topo.gateways[conn.peer_gateway])
        elif conn.site is not None:
            out += site_to_site(cname, conn, gw, topo.sites[conn.site])
    return out


def azure_end(cname: str, conn: Connection, gw: Gateway, node: str, remote_ip: str,
              kids: tuple[Child, ...], instance: int) -> End:
    ike, esp = gateway_proposals(conn, gw)
    policy_based = gw.vpn_type == "PolicyBased"
    return End(
        node=node, conn=cname, local_ip=str(gw.public_ips[instance]), remote_ip=remote_ip, children=kids,
        initiates=conn.connection_mode != "ResponderOnly", ike=tuple(ike), esp=tuple(esp),
        ike_lifetime_s=facts.IKE_SA_LIFETIME_S, child_lifetime=child_lifetime(conn, gw),
        dpd_delay_s=0 if policy_based and not facts.POLICY_BASED_DPD else _dpd_delay_s(conn),
        dpd_timeout_s=FAST_DPD_TIMEOUT_S if conn.dpd == "fast" else conn.dpd_timeout_seconds,
        reauth=conn.connection_mode != "ResponderOnly",
    )


def _dpd_delay_s(conn: Connection) -> int:
    return FAST_DPD_DELAY_S if conn.dpd == "fast" else dpd_delay(conn.dpd_timeout_seconds)


def pairs_mode(conn: Connection, gw: Gateway) -> bool:
    return gw.vpn_type == "PolicyBased" or conn.use_policy_based_traffic_selectors


def site_to_site(cname: str, conn: Connection, gw: Gateway, site: Site) -> list[Tunnel]:
    """Every gateway instance with every device instance: 1, 2 or 4 tunnels (full mesh active-active).
    Names follow VNet-to-VNet: each end's connection (and children) carry the other end's instance suffix."""
    pairs = pairs_mode(conn, gw)
    spaces, lan = list(gw.vnet.address_space), list(site.address_space)
    kids = children(cname, spaces, lan, pairs) if pairs else children(cname, [ANY], [ANY], False)
    if conn.traffic_selector_policies and pairs:
        kids = selector_children(cname, conn)
    devices = device_names(conn.site or "", site)
    out = []
    for (i, inst), (j, dev) in product(enumerate(instance_names(conn.gateway, gw)), enumerate(devices)):
        g_sfx, d_sfx = (f"-{i}" if gw.is_active_active else ""), (f"-{j}" if len(devices) > 1 else "")
        own = tuple(replace(c, name=c.name + d_sfx) for c in kids)
        azure = replace(azure_end(cname, conn, gw, inst, str(site.device_ips[j]), own, i), conn=cname + d_sfx)
        seen = translate(spaces, instance_rules(conn, gw, "EgressSnat", i))  # the VNet as the site sees it
        peer = site_end(replace(azure, conn=cname, children=kids), conn, site, g_sfx, pairs, seen)
        out.append(Tunnel(cname, f"ike-{cname}{g_sfx}{d_sfx}", conn.ike_version, azure, replace(peer, node=dev),
                          conn.connection_mode == "InitiatorOnly"))
    return out


def site_end(azure: End, conn: Connection, site: Site, suffix: str, pairs: bool,
             vnet: list[IPv4Network]) -> End:
    """The rendered device: narrows to its prefixes (or keeps 0/0), with its overrides."""
    dev, lan = site.device, list(site.address_space)
    if pairs:
        kids = mirrored(azure.children, suffix)
    elif dev.traffic_selectors == "any":
        kids = mirrored(azure.children, suffix, [ANY], [ANY])
    else:
        kids = mirrored(azure.children, suffix, lan, vnet)
    life_s, life_kb = azure.child_lifetime
    return replace(
        azure, node=conn.site or "", conn=azure.conn + suffix, local_ip=azure.remote_ip, remote_ip=azure.local_ip,
        children=kids, initiates=not azure.initiates, reauth=True,
        ike=tuple(dev.ike_proposals or azure.ike[:1]), esp=tuple(dev.esp_proposals or azure.esp[:1]),
        ike_lifetime_s=dev.ike_lifetime_seconds or azure.ike_lifetime_s,
        child_lifetime=(dev.child_lifetime_seconds or life_s, life_kb),
        dpd_delay_s=azure.dpd_delay_s if dev.dpd_delay_seconds is None else dev.dpd_delay_seconds,
    )


def vnet_to_vnet(cname: str, conn: Connection, gw: Gateway, peer_name: str, peer: Gateway) -> list[Tunnel]:
    """Every instance of one gateway with every instance of the other; any-to-any unless policy-based TS."""
    a_spaces, b_spaces = list(gw.vnet.address_space), list(peer.vnet.address_space)
    out = []
    for (i, a), (j, b) in product(enumerate(instance_names(conn.gateway, gw)),
                                  enumerate(instance_names(peer_name, peer))):
        a_sfx, b_sfx = (f"-{i}" if gw.is_active_active else ""), (f"-{j}" if peer.is_active_active else "")
        pairs = conn.use_policy_based_traffic_selectors
        kids = tuple(replace(c, name=c.name + b_sfx) for c in (children(cname, a_spaces, b_spaces, True) if pairs
                                                                else children(cname, [ANY], [ANY], False)))
        azure = replace(azure_end(cname, conn, gw, a, str(peer.public_ips[j]), kids, i), conn=cname + b_sfx)
        other = replace(azure, node=b, conn=cname + a_sfx, local_ip=azure.remote_ip, remote_ip=azure.local_ip,
                        children=tuple(replace(c, name=c.name.removesuffix(b_sfx) + a_sfx, local_ts=c.remote_ts,
                                               remote_ts=c.local_ts) for c in kids),
                        initiates=not azure.initiates, reauth=True)
        out.append(Tunnel(cname, f"ike-{cname}{a_sfx}{b_sfx}", conn.ike_version, azure, other,
                          conn.connection_mode == "InitiatorOnly"))
    return out
