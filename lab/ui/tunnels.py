"""The page's Tunnels panel as data (pure): per tunnel edge, both ends as `lab inspect` shows them, and each end's
configured lifetimes, DPD and proposals with Azure's value beside wherever they differ.

`lab inspect` knows the settings of every end the lab rendered (lab/render/sa_settings.py) and what a
bring-your-own device's own config declares (lab/device/byo.py, read from the copy in the node's directory, so
`lab reload` edits count); the page shows the same, and a device end also under the lab's connection name, so
a student sees the device's 3600 s beside Azure's 27000 s. An end is shown with its settings even while it has
no SA (a tunnel that never came up is where a mismatch matters most).
"""

from __future__ import annotations

from collections.abc import Mapping

from lab.device.byo import ByoConfig, byo_views
from lab.render.sa_settings import SaSettings
from lab.status import LabStatus
from lab.topology.model import Topology
from lab.ui.model import Graph

Settings = Mapping[tuple[str, str], SaSettings]  # (node, connection name on that node) -> its settings


def byo_settings(topo: Topology, byo: Mapping[str, ByoConfig]) -> dict[tuple[str, str], SaSettings]:
    """(device node, its own connection name, and the lab's) -> settings, for every bring-your-own device end:
    each made once, shown under both names."""
    if not byo:
        return {}
    by_device, by_lab = byo_views(topo, byo)
    return by_device | by_lab


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

