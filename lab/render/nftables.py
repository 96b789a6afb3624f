"""nftables ruleset for gateway and site nodes: their LAN never reaches the Internet link in clear.

A VPN gateway is not an Internet router for its LAN: what no tunnel carries is dropped, not leaked.
On libipsec tunnelled packets leave by `ipsec0`, never eth0; on the kernel data plane they leave by eth0 and
are encrypted after this hook, so the rule spares packets whose route is an XFRM bundle (`rt ipsec`).
A connection in InitiatorOnly mode also gets a prerouting rule: strongSwan has no option to refuse IKE_SAs a
peer initiates, so the peer's first IKE packet is dropped before charon sees it (prerouting, not input: a
route-based tunnel's charon sits in its own namespace, so its IKE is forwarded), on UDP 500 and on 4500
(NAT-T, after the non-ESP marker). That packet is a request (IKEv2 flag R clear) with a zero responder
SPI / cookie: IKEv2 IKE_SA_INIT or IKEv1 main-mode message 1. Responses to the gateway's own initiations
carry the peer's SPI and pass.
On the kernel data plane a node with route-based tunnels also keeps its tunnel namespaces' own traffic off
the Internet link unless it is their charon's IKE or ESP: a packet that no policy of a tunnel matches (a
spoofed source outside the negotiated selectors) makes `xfrm0` answer with an ICMP error towards that source,
which the node would otherwise route out of eth0 in clear (seen in the guest: ARP for the spoofed address on
the Internet link). libipsec's `ipsec0` drops such a packet silently.
"""

from __future__ import annotations

from lab.topology.model import NatRule

COMMENT = "# Rendered by lab: a LAN packet that no tunnel carries is dropped, never sent in clear to the Internet.\n"
LAN_LEAK = 'iifname "eth1" oifname "eth0" rt ipsec missing counter drop comment "LAN to Internet: not via a tunnel"'
TUNNEL_GUARD = (
    'iifname "vti-*" oifname "eth0" meta l4proto esp accept',
    'iifname "vti-*" oifname "eth0" udp sport { 500, 4500 } accept',
    'iifname "vti-*" oifname "eth0" counter drop comment "tunnel namespace to Internet: its IKE and ESP only"',
)
# UDP 500: UDP header (8 bytes) + IKE header: responder SPI at bytes 8-15, flags at byte 19 (IKEv2 R = 0x20).
# UDP 4500 (NAT-T): a 4-byte zero non-ESP marker first, so the same fields sit 4 bytes later; ESP-in-UDP starts
# with a non-zero SPI there and never matches. A peer may send IKE_SA_INIT to either port: both are refused.
REFUSE_RULES = (
    'ip saddr {peer} udp dport 500 @th,128,64 0 @th,216,8 & 0x20 == 0 counter drop '
    'comment "{conn}: InitiatorOnly, refuse IKE_SAs the peer initiates (UDP 500)"',
    'ip saddr {peer} udp dport 4500 @th,64,32 0 @th,160,64 0 @th,248,8 & 0x20 == 0 counter drop '
    'comment "{conn}: InitiatorOnly, refuse IKE_SAs the peer initiates (UDP 4500)"',
)


def chain(hook: str, kind: str, priority: str, rules: list[str]) -> str:
    """One base chain, named after its hook (policy accept: only the rules drop), then one rule a line."""
    return (f"  chain {hook} {{\n    type {kind} hook {hook} priority {priority}; policy accept;\n"
            + "".join(f"    {r}\n" for r in rules) + "  }\n")


def reset(name: str) -> str:
    """A table's removal, valid also when it does not exist yet (declaring it first makes the delete safe)."""
    return f"table {name}\ndelete table {name}\n"


def table(name: str, chains: list[str]) -> str:
    """A table loaded whole: declared, deleted (so no rule of an earlier load survives), then defined anew."""
    return reset(name) + f"table {name} {{\n" + "".join(chains) + "}\n"


def nat_rules(rules: list[tuple[str, NatRule]], lan: str = "eth1") -> list[tuple[str, str]]:
    """(chain, rule) lines of NAT rules. `lan` faces the VNet (eth1 in a gateway instance, `ext` in a
    route-based tunnel's namespace): a packet from anywhere else came out of a tunnel. One SNAT rule covers
    both directions, as Azure's does: the source is translated on the way out and the destination on the way
    in (a Static rule only: Dynamic lets the internal side initiate, and conntrack reverses its replies).
    Static rules are netmaps (`prefix to`): host bits kept."""
    out = []
    for name, r in rules:
        into_vnet = r.mode == "IngressSnat"  # the internal side is on-prem: translated into the VNet
        src_if = f'iifname != "{lan}" oifname "{lan}"' if into_vnet else f'iifname "{lan}" oifname != "{lan}"'
        dst_if = f'iifname "{lan}"' if into_vnet else f'iifname != "{lan}"'
        note = f'comment "{name}: {r.mode} {r.type} {r.internal} <-> {r.external}"'
        if r.type == "Static":
            out.append(("postrouting", f"{src_if} ip saddr {r.internal} snat ip prefix to {r.external} {note}"))
            out.append(("prerouting", f"{dst_if} ip daddr {r.external} dnat ip prefix to {r.internal} {note}"))
        else:
            first, last = r.external.network_address, r.external.broadcast_address
            out.append(("postrouting", f"{src_if} ip saddr {r.internal} snat ip to {first}-{last} {note}"))
    return out


NAT_HOOKS = {"prerouting": "dstnat", "postrouting": "srcnat"}


def render_nat(rules: list[tuple[str, NatRule]], lan: str = "eth1") -> str:
    """The `ip labnat` table for these rules. Loading a ruleset replaces the table whole: with no rules left
    only its removal (`lab apply` taking NAT rules away must not leave the old translations behind)."""
    if not rules:
        return reset("ip labnat")
    lines = nat_rules(rules, lan)
    return table("ip labnat", [chain(hook, "nat", prio, [rule for c, rule in lines if c == hook])
                               for hook, prio in NAT_HOOKS.items()])


def render_nftables(refuse: list[tuple[str, str]] | None = None,
                    nat: list[tuple[str, NatRule]] | None = None, guard_tunnels: bool = False) -> str:
    """The node's ruleset; `refuse` lists (peer public IP, connection) of InitiatorOnly connections, `nat`
    the gateway instance's NAT rules (lab.azure.nat.node_rules; None: a node that never translates);
    `guard_tunnels`: a kernel data-plane node with tunnel namespaces (TUNNEL_GUARD, after the LAN rule)."""
    chains = [chain("forward", "filter", "0", [LAN_LEAK, *(TUNNEL_GUARD if guard_tunnels else ())])]
    if refuse:
        chains.append(chain("prerouting", "filter", "0", [rule.format(peer=peer, conn=conn)
                                                          for peer, conn in sorted(refuse) for rule in REFUSE_RULES]))
    return COMMENT + table("inet lab", chains) + (render_nat(nat) if nat is not None else "")
