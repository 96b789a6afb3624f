"""Tunnels of one node that carry the same prefixes get an XFRM interface each (if_id) on the kernel data plane.

An active-active gateway and a device with one tunnel to each instance: both CHILD_SAs on the device negotiate the
same selectors (10.2.0.0/16 === 10.1.0.0/16). The kernel holds one policy per selector and direction, and a
tunnel-mode policy's template names the peer's address, so the packets that arrive through the other instance
fail the template check (XfrmInTmplMismatch): measured in the kernel-test guest, a quarter to half of the flows
Azure sends through both instances were dropped, and after a failover everything until the device's DPD.
libipsec matches SAs by SPI alone and never showed it. A real device solves this with a route-based tunnel
interface per tunnel; so does the lab: every such tunnel gets `if_id_in`/`if_id_out` N, the interface xfrmN
(policies and SAs with if_id N only see traffic routed through it) and a route to the peer's prefixes through it
with metric N, added when the CHILD_SA comes up and removed when it goes (charon's updown runs xfrm-updown.sh).

Kernel data plane only, and only for tunnels on a node's own charon: route-based tunnels have a namespace and
charon each on both data planes (lab/render/tunnel_ifaces.py; on this one with xfrm0 inside, tunnel_scripts.py),
so what is left here is a device that narrows (`traffic_selectors: prefixes`) towards both instances. On libipsec
the trees stay as they are (libipsec ignores if_id).

Only tunnels whose negotiated selectors (both ends' selectors narrowed, as charon narrows them) collide with
another tunnel's on the same node, and never any-to-any (0.0.0.0/0) remote selectors: a default route through an
XFRM interface would capture the node's own IKE traffic, and those tunnels need routing (BGP) anyway.
"""

from __future__ import annotations

from collections import defaultdict
from ipaddress import IPv4Network

from lab.render.swanctl import SwanctlConfig
from lab.render.tunnels import ANY, End, Tunnel

UPDOWN_PATH = "/lab/xfrm-updown.sh"
UPDOWN = f"/bin/sh {UPDOWN_PATH}"
Selectors = tuple[tuple[IPv4Network, ...], tuple[IPv4Network, ...]]


def narrow(ours: tuple[IPv4Network, ...], theirs: tuple[IPv4Network, ...]) -> tuple[IPv4Network, ...]:
    """What charon installs for one side of a CHILD_SA: each overlap of the two proposals (the smaller net)."""
    out = {a if a.subnet_of(b) else b for a in ours for b in theirs if a.overlaps(b)}
    return tuple(sorted(out))


def negotiated(t: Tunnel) -> list[tuple[End, Selectors]]:
    """Each end of the tunnel with each of its CHILD_SAs' negotiated (local, remote) selectors. The peer's
    children mirror the Azure end's initiated ones in order (lab.render.tunnels.mirrored)."""
    azure_kids = [c for c in t.azure.children if c.start] if len(t.peer.children) != len(t.azure.children) \
        else list(t.azure.children)
    out: list[tuple[End, Selectors]] = []
    for a, p in zip(azure_kids, t.peer.children, strict=False):
        local, remote = narrow(a.local_ts, p.remote_ts), narrow(a.remote_ts, p.local_ts)
        out += [(t.azure, (local, remote)), (t.peer, (remote, local))]
    return out


def if_ids(tuns: list[Tunnel]) -> dict[tuple[str, str], int]:
    """(node, swanctl connection) -> its if_id (1, 2, ... per node, in connection name order), for every
    connection that shares negotiated selectors with another connection of the same node."""
    by_sel: dict[tuple[str, Selectors], set[str]] = defaultdict(set)
    for t in tuns:
        for end, sel in negotiated(t):
            if sel[0] and sel[1] and ANY not in sel[1]:
                by_sel[(end.node, sel)].add(end.conn)
    shared: dict[str, set[str]] = defaultdict(set)
    for (node, _), conns in by_sel.items():
        if len(conns) > 1:
            shared[node] |= conns
    return {(node, conn): i for node, conns in shared.items() for i, conn in enumerate(sorted(conns), start=1)}


def uses_ifaces(cfg: SwanctlConfig) -> bool:
    """Whether a node's tree gives some tunnel an XFRM interface (it then needs xfrm-updown.sh)."""
    return any(isinstance(kid, dict) and kid.get("updown") == UPDOWN
               for conn in cfg.connections.values() if isinstance(conn.get("children"), dict)
               for kid in conn["children"].values())  # type: ignore[union-attr]


def child_settings(if_id: int) -> dict[str, str]:
    """The swanctl child options of a tunnel with its own XFRM interface."""
    return {"if_id_in": str(if_id), "if_id_out": str(if_id), "updown": UPDOWN}


UPDOWN_SCRIPT = """\
#!/bin/sh
# Rendered by lab (kernel data plane), run by charon's updown plugin per CHILD_SA and selector pair. This
# tunnel shares its selectors with another tunnel of this node, so it has XFRM interface xfrm<if_id>: its
# policies only match traffic routed through that interface. The route to the peer's prefix follows the
# CHILD_SA (metric = if_id: with both tunnels up the lower one carries the traffic).
id=$(printf %d "${PLUTO_IF_ID_OUT:-0}" 2>/dev/null) || exit 0
[ "$id" -gt 0 ] || exit 0
dev="xfrm$id"
case "$PLUTO_VERB" in
  up-client)
    ip link show "$dev" >/dev/null 2>&1 || ip link add "$dev" type xfrm dev eth0 if_id "$id"
    ip link set "$dev" up
    ip route replace "$PLUTO_PEER_CLIENT" dev "$dev" metric "$id"
    ;;
  down-client)
    # A CHILD_SA replaced make-before-break (IKE reauthentication) goes down after its successor came up:
    # keep the route while another SA pair with this if_id is still installed.
    pairs=$(ip xfrm state | grep -cw "if_id $(printf %#x "$id")")
    [ "$pairs" -gt 2 ] || ip route del "$PLUTO_PEER_CLIENT" dev "$dev" metric "$id" 2>/dev/null
    ;;
esac
exit 0
"""

