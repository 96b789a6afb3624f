"""Active-standby and DPD presets, rendered: the warm standby's swanctl tree and the `dpd: fast` nodes.

A standby instance holds the same public IP (after failover), so it needs exactly the active instance's
connections and keys; only `start_action` differs: it must not initiate until it has taken over.
"""

from __future__ import annotations

from lab.plan import standby_name
from lab.render.swanctl import SwanctlConfig, Tree
from lab.render.tunnels import tunnels
from lab.topology.model import Topology

ROLE_FILE = "ha-role"  # an active-standby instance's role now (lab/ha/agents.py writes it; the agent reads it)


def standby_pairs(topo: Topology) -> dict[str, str]:
    """standby node -> the active instance whose config it mirrors (A/S gateways only)."""
    return {s: f"{g}-0" for g, gw in sorted(topo.gateways.items()) if (s := standby_name(g, gw))}


def _quiet(tree: Tree) -> Tree:
    """A connection tree with every child's start_action set to none (loaded, not started)."""
    out: Tree = dict(tree)
    kids = tree.get("children")
    if isinstance(kids, dict):
        out["children"] = {n: {**c, "start_action": "none"} if isinstance(c, dict) else c for n, c in kids.items()}
    return out


def standby_config(active: SwanctlConfig) -> SwanctlConfig:
    return SwanctlConfig({n: _quiet(t) for n, t in active.connections.items()}, active.secrets)


def standby_configs(topo: Topology, swan: dict[str, SwanctlConfig]) -> dict[str, SwanctlConfig]:
    """standby charon unit -> its warm config (the mirrored active's, quiet): the standby node's main charon,
    and each route-based tunnel charon of its active (`<active>/tunnels/<conn>` -> `<standby>/tunnels/<conn>`,
    lab/render/tunnel_ifaces.py), which the standby mirrors."""
    out = {}
    for s, a in standby_pairs(topo).items():
        out[s] = standby_config(swan.get(a, SwanctlConfig()))
        out.update({s + unit[len(a):]: standby_config(cfg) for unit, cfg in swan.items()
                    if unit.startswith(f"{a}/")})
    return out


def takeover_children(cfg: SwanctlConfig) -> list[tuple[str, str]]:
    """(child, connection) a new active must initiate: those its mirrored active starts by itself, and the custom
    selector lines it would start on first traffic (trap): a warm standby holds no trap policy, so the new
    active brings every line up at once."""
    out = []
    for conn, tree in cfg.connections.items():
        kids = tree.get("children")
        if isinstance(kids, dict):
            out += [(c, conn) for c, t in kids.items()
                    if isinstance(t, dict) and t.get("start_action") in ("start", "trap")]
    return out


def fast_dpd_nodes(topo: Topology) -> set[str]:
    """Nodes at either end of a `dpd: fast` connection, and the standbys of their gateways."""
    nodes: set[str] = set()
    for t in tunnels(topo):
        if topo.connections[t.connection].dpd == "fast":
            nodes |= {t.azure.node, t.peer.node}
    pairs = standby_pairs(topo)
    return nodes | {s for s, a in pairs.items() if a in nodes}
