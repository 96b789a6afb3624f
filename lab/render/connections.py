"""Tunnels -> one swanctl configuration per charon node (gateway instances and sites).

Both ends of every tunnel are rendered from the same model (`lab.render.tunnels`), so a rendered site
matches its gateway unless the topology overrides the device on purpose.
"""

from __future__ import annotations

from collections import defaultdict

from lab.render.swanctl import SharedKey, SwanctlConfig, Tree
from lab.render.tunnels import Child, End, tunnels
from lab.render.xfrm_ifaces import child_settings
from lab.topology.model import Topology

IfIds = dict[tuple[str, str], int]  # (node, swanctl connection) -> its XFRM interface's if_id


def child_tree(end: End, child: Child, if_id: int = 0) -> Tree:
    """`if_id`: the tunnel's XFRM interface, where another tunnel of the node shares its selectors."""
    life_s, life_kb = end.child_lifetime
    start = "trap" if child.on_demand else "start" if end.initiates and child.start else "none"
    tree: Tree = {
        "local_ts": [str(n) for n in child.local_ts],
        "remote_ts": [str(n) for n in child.remote_ts],
        "esp_proposals": list(end.esp),
        "rekey_time": f"{life_s * 9 // 10}s",
        "life_time": f"{life_s}s",
        "start_action": start,
        "dpd_action": "trap" if child.on_demand else "restart" if end.initiates and child.start else "clear",
        "close_action": start,
        "rekey_bytes": str(life_kb * 1024 * 9 // 10),
        "life_bytes": str(life_kb * 1024),
    }
    return {**tree, **child_settings(if_id)} if if_id else tree


def conn_tree(end: End, version: str, if_id: int = 0) -> Tree:
    v1 = version == "IKEv1"
    tree: Tree = {
        "version": "1" if v1 else "2",
        "local_addrs": [end.local_ip],
        "remote_addrs": [end.remote_ip],
        "proposals": list(end.ike),
        "keyingtries": "0",
    }
    if end.dpd_delay_s:
        tree["dpd_delay"] = f"{end.dpd_delay_s}s"
        if v1:
            tree["dpd_timeout"] = f"{end.dpd_timeout_s}s"
    tree.update({
        "local": {"auth": "psk", "id": end.local_ip},
        "remote": {"auth": "psk", "id": end.remote_ip},
        "children": {c.name: child_tree(end, c, if_id) for c in end.children},
    })
    # IKEv2 rekeys the IKE_SA in place; IKEv1 re-authenticates, which means initiating a new IKE_SA.
    if not v1:
        tree["rekey_time"] = f"{end.ike_lifetime_s}s"
    elif end.reauth:
        tree["reauth_time"] = f"{end.ike_lifetime_s}s"
    return tree


def render_swanctl(topo: Topology, keys: dict[str, str], if_ids: IfIds | None = None) -> dict[str, SwanctlConfig]:
    """Swanctl config per charon node name; `keys` holds each connection's PSK; `if_ids`: the tunnels with an
    XFRM interface of their own (kernel data plane, lab/render/xfrm_ifaces.py)."""
    ids = if_ids or {}
    conns: dict[str, dict[str, Tree]] = defaultdict(dict)
    secrets: dict[str, list[SharedKey]] = defaultdict(list)
    for t in tunnels(topo):
        key = SharedKey(t.secret, (t.azure.local_ip, t.azure.remote_ip), keys[t.connection])
        for end in (t.azure, t.peer):
            conns[end.node][end.conn] = conn_tree(end, t.version, ids.get((end.node, end.conn), 0))
            secrets[end.node].append(key)
    return {n: SwanctlConfig(conns[n], tuple(secrets[n])) for n in sorted(conns)}


def expected_children(topo: Topology) -> dict[str, list[tuple[str, list[str]]]]:
    """node -> [(connection, [CHILD_SA names])] that must be up once the lab is up."""
    out: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)
    for t in tunnels(topo):
        for end in (t.azure, t.peer):
            out[end.node].append((end.conn, [c.name for c in end.children if c.start and not c.on_demand]))
    return dict(sorted(out.items()))


def refused_peers(topo: Topology) -> dict[str, list[tuple[str, str]]]:
    """node -> [(peer public IP, connection)] whose IKE_SA initiations that node must drop (InitiatorOnly)."""
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for t in tunnels(topo):
        if t.refuse_peer_initiation:
            out[t.azure.node].append((t.azure.remote_ip, t.azure.conn))
    return dict(out)

