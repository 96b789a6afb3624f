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
"""

from __future__ import annotations

HEADER = """\
# Rendered by lab: a LAN packet that no tunnel carries is dropped, never sent in clear to the Internet.
table inet lab
delete table inet lab
table inet lab {
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname "eth1" oifname "eth0" rt ipsec missing counter drop comment "LAN to Internet: not via a tunnel"
  }
"""
# UDP 500: UDP header (8 bytes) + IKE header: responder SPI at bytes 8-15, flags at byte 19 (IKEv2 R = 0x20).
# UDP 4500 (NAT-T): a 4-byte zero non-ESP marker first, so the same fields sit 4 bytes later; ESP-in-UDP starts
# with a non-zero SPI there and never matches. A peer may send IKE_SA_INIT to either port: both are refused.
REFUSE_RULES = (
    '    ip saddr {peer} udp dport 500 @th,128,64 0 @th,216,8 & 0x20 == 0 counter drop '
    'comment "{conn}: InitiatorOnly, refuse IKE_SAs the peer initiates (UDP 500)"',
    '    ip saddr {peer} udp dport 4500 @th,64,32 0 @th,160,64 0 @th,248,8 & 0x20 == 0 counter drop '
    'comment "{conn}: InitiatorOnly, refuse IKE_SAs the peer initiates (UDP 4500)"',
)


def render_nftables(refuse: list[tuple[str, str]] | None = None) -> str:
    """The node's ruleset; `refuse` lists (peer public IP, connection) of InitiatorOnly connections."""
    text = HEADER
    if refuse:
        rules = [rule.format(peer=peer, conn=conn) for peer, conn in sorted(refuse) for rule in REFUSE_RULES]
        text += "  chain prerouting {\n    type filter hook prerouting priority 0; policy accept;\n"
        text += "\n".join(rules) + "\n  }\n"
    return text + "}\n"
