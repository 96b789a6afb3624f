"""The nftables side of link faults: the kernel here has no netem, so loss is a random drop rule.

Rendered as a file the node loads with `nft -f` (a table of its own, `inet lab_fault`, so the node's
`inet lab` ruleset is never touched and restoring is one `delete table`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

LOSS_TABLE = "lab_fault"
LOSS_FILE = "faults.nft"  # in the node's state directory, mounted at /lab
NUMGEN_MOD = 10000  # basis points: per-direction rates are not whole percents


def direction_threshold(percent: float) -> int:
    """Drop threshold per direction (of NUMGEN_MOD) so that a round trip through the interface
    (request in, reply out, or the reverse) is lost with probability `percent` %: 1 - (1 - q)² = p."""
    if not 0 <= percent <= 100:
        raise ValueError(f"loss {percent} % is outside 0..100")
    q = 1 - math.sqrt(1 - percent / 100)
    return round(q * NUMGEN_MOD)


def loss_ruleset(losses: Mapping[str, float]) -> str:
    """`inet lab_fault` dropping packets at random in and out of each interface in `losses` (iface -> %).

    prerouting/postrouting see received, sent and forwarded packets alike (ESP/UDP, IKE, clear LAN
    traffic); ARP is not in the inet family, so neighbours stay resolved.
    """
    rules_in, rules_out = [], []
    for iface in sorted(losses):
        n = direction_threshold(losses[iface])
        note = f'comment "lab fault: loss {losses[iface]:g} % on {iface}"'
        rules_in.append(f'    iifname "{iface}" numgen random mod {NUMGEN_MOD} < {n} counter drop {note}')
        rules_out.append(f'    oifname "{iface}" numgen random mod {NUMGEN_MOD} < {n} counter drop {note}')
    return "\n".join([
        "# Rendered by lab fault: packet loss (lab restore removes this table).",
        f"table inet {LOSS_TABLE}",
        f"delete table inet {LOSS_TABLE}",
        f"table inet {LOSS_TABLE} {{",
        "  chain loss_in {",
        "    type filter hook prerouting priority -300; policy accept;",
        *rules_in,
        "  }",
        "  chain loss_out {",
        "    type filter hook postrouting priority 300; policy accept;",
        *rules_out,
        "  }",
        "}",
        "",
    ])


def delete_argv() -> list[str]:
    """nft argv removing the loss table (fails harmlessly when it is absent)."""
    return ["nft", "delete", "table", "inet", LOSS_TABLE]
