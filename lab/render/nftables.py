"""nftables ruleset for gateway and site nodes: their LAN never reaches the Internet link in clear.

A VPN gateway is not an Internet router for its LAN: what no tunnel carries is dropped, not leaked.
"""

from __future__ import annotations

NFTABLES_CONF = """\
# Rendered by lab: a LAN packet that no tunnel carries is dropped, never sent in clear to the Internet.
table inet lab
delete table inet lab
table inet lab {
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname "eth1" oifname "eth0" counter drop comment "LAN to Internet: not via a tunnel"
  }
}
"""


def render_nftables() -> str:
    return NFTABLES_CONF
