"""All rendered files of a lab: {<node>/<file>: text}. Writing them is the caller's job."""

from __future__ import annotations

from pathlib import PurePosixPath

from lab.plan_types import Plan
from lab.render.connections import render_swanctl
from lab.render.nftables import render_nftables
from lab.render.strongswan_conf import Dataplane, render_strongswan_conf
from lab.render.swanctl import SwanctlConfig
from lab.topology.model import Topology


def render_files(
    topo: Topology, plan: Plan, keys: dict[str, str], dataplane: Dataplane
) -> tuple[dict[PurePosixPath, str], dict[str, SwanctlConfig]]:
    """Every file a node mounts at /lab, plus the swanctl trees that control loads over vici."""
    swan = render_swanctl(topo, keys)
    files: dict[PurePosixPath, str] = {}
    for node in plan.nodes:
        if not node.runs_charon:
            continue
        base = PurePosixPath(node.name)
        files[base / "strongswan.conf"] = render_strongswan_conf(dataplane)
        files[base / "swanctl.conf"] = swan.get(node.name, SwanctlConfig()).to_text()
        files[base / "nftables.conf"] = render_nftables()
    return dict(sorted(files.items())), swan
