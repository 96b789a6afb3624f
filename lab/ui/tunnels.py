"""The page's Tunnels panel as data (pure): per tunnel edge, both ends as `lab inspect` shows them, and each end's
configured lifetimes, DPD and proposals with Azure's value beside wherever they differ.

`lab inspect` (lab/render/sa_settings.py) knows the settings of every end the lab rendered. A bring-your-own
device runs the user's own config, which inspect leaves out; the page reads that config (the copy in the node's
directory, so `lab reload` edits count) with the parser `lab diagnose` uses and compares it with the Azure end
of the same tunnel, so a student sees the device's 3600 s beside Azure's 27000 s. An end is shown with its
settings even while it has no SA (a tunnel that never came up is where a mismatch matters most).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from lab.device.byo import ByoConfig
from lab.device.checks import STRONGSWAN_DEFAULT_IKE_S
from lab.device.parse import DeviceConn, parse_swanctl_tree
from lab.render.sa_settings import SaSettings
from lab.render.sa_settings import _settings as compare  # the same comparison `lab inspect` makes
from lab.render.tunnels import End, Tunnel, dpd_delay, tunnels
from lab.status import LabStatus
from lab.topology.model import Topology
from lab.ui.model import Graph

Settings = Mapping[tuple[str, str], SaSettings]  # (node, connection name on that node) -> its settings
UNKNOWN_KB = -1  # a device config whose volume lifetime the page does not read (ipsec.conf)
STRONGSWAN_CHILD_LIFE_S = 3_960  # swanctl's CHILD_SA life_time when unset: 110 % of its 1 h rekey_time


def azure_reference(topo: Topology, t: Tunnel) -> End:
    """The Azure end as Azure runs it (`dpd: fast` is the lab's departure: Azure's DPD is the timeout's)."""
    conn = topo.connections[t.connection]
    if conn.dpd == "fast" and t.azure.dpd_delay_s:
        return replace(t.azure, dpd_delay_s=dpd_delay(conn.dpd_timeout_seconds))
    return t.azure


def _life_kb(cfg: ByoConfig, conn: str, child: str) -> int:
    """A swanctl child's `life_bytes` in KB (0: no volume limit, strongSwan's default)."""
    if cfg.format != "swanctl":
        return UNKNOWN_KB
    tree = parse_swanctl_tree(cfg.main)
    node: object = tree
    for key in ("connections", conn, "children", child):
        node = node.get(key, {}) if isinstance(node, dict) else {}
    value = node.get("life_bytes") if isinstance(node, dict) else None
    try:
        return int(str(value)) // 1024 if value else 0
    except ValueError:
        return UNKNOWN_KB


def device_settings(t: Tunnel, reference: End, dev: DeviceConn, cfg: ByoConfig) -> SaSettings:
    """A device connection's own values (strongSwan's defaults where its config says nothing) against Azure's."""
    child = dev.children[0] if dev.children else None
    kb = _life_kb(cfg, dev.name, child.name) if child else 0
    mine = replace(t.peer, ike=dev.ike, esp=child.esp if child else (),
                   ike_lifetime_s=dev.ike_life_s or STRONGSWAN_DEFAULT_IKE_S,
                   child_lifetime=((child.life_s if child else None) or STRONGSWAN_CHILD_LIFE_S, kb),
                   dpd_delay_s=dev.dpd_delay_s or 0)
    out = compare(mine, reference)
    if kb == UNKNOWN_KB:
        out = out.model_copy(update={"azure": {k: v for k, v in out.azure.items() if k != "child_lifetime_kb"}})
    return out


def _device_conn(conns: Sequence[DeviceConn], azure_ip: str) -> DeviceConn | None:
    """The device's connection towards this Azure end: the one whose remote_addrs name it (else the only one)."""
    named = [c for c in conns if azure_ip in c.remote_addrs]
    return named[0] if named else (conns[0] if len(conns) == 1 else None)


def byo_settings(topo: Topology, byo: Mapping[str, ByoConfig]) -> dict[tuple[str, str], SaSettings]:
    """(device node, its own connection name) -> settings, for every bring-your-own device end."""
    out: dict[tuple[str, str], SaSettings] = {}
    for t in tunnels(topo) if byo else ():
        cfg = byo.get(t.peer.node)
        if cfg is None:
            continue
        dev = _device_conn(cfg.conns(), t.azure.local_ip)
        if dev is not None:  # under the config's own name (what charon reports) and the lab's
            mine = device_settings(t, azure_reference(topo, t), dev, cfg)
            out[(t.peer.node, dev.name)] = out[(t.peer.node, t.peer.conn)] = mine
    return out


def _end(node: str, conn: str, status: LabStatus, settings: Settings) -> dict:
    sas = [t for t in status.tunnels if t.node == node and t.connection == conn]
    known = next((t.settings for t in sas if t.settings), None) or settings.get((node, conn))
    # inspect names an active-standby's standby by its planned instance's settings: the same for both
    known = known or settings.get((f"{node.rsplit('-', 1)[0]}-0", conn))
    dumped = [t.model_dump() for t in sas]
    for sa in dumped:
        sa["settings"] = sa["settings"] or (known.model_dump() if known else None)
    return {"node": node, "connection": conn, "sas": dumped, "settings": known.model_dump() if known else None}


def tunnel_details(graph: Graph, status: LabStatus, settings: Settings) -> list[dict]:
    """Per tunnel edge: both ends (SAs with proposals, SPIs, counters; configured settings beside Azure's)."""
    return [{"edge": e.id, "label": e.label, "state": e.state, "bgp": e.bgp,
             "ends": [_end(node, conn, status, settings) for node, conn in e.ends]}
            for e in graph.edges if e.kind == "tunnel"]

