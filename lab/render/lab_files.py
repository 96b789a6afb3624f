"""All rendered files of a lab: {<node>/<file>: text}. Writing them is the caller's job."""

from __future__ import annotations

from pathlib import PurePosixPath

from lab.azure.nat import node_rules
from lab.ha.standby import fast_dpd_nodes, standby_configs, standby_pairs
from lab.p2s.render import client_nodes, eap_nodes, merge, render_p2s
from lab.plan import instance_names
from lab.plan_types import Plan
from lab.render.connections import refused_peers, render_swanctl
from lab.render.nftables import render_nftables
from lab.render.strongswan_conf import Dataplane, render_strongswan_conf
from lab.render.swanctl import SwanctlConfig
from lab.routing.nodes import render_frr_files
from lab.topology.model import NatRule, Topology

STANDBY_NOTE = "# Warm standby: loaded by lab.ha with start_action = none; it initiates only after a failover.\n"


def render_files(
    topo: Topology, plan: Plan, keys: dict[str, str], dataplane: Dataplane
) -> tuple[dict[PurePosixPath, str], dict[str, SwanctlConfig]]:
    """Every file a node mounts at /lab, plus the swanctl trees that control loads over vici."""
    swan = merge(render_swanctl(topo, keys), render_p2s(topo))  # point-to-site: lab/p2s/render.py
    refuse = refused_peers(topo)
    standby, mirrors, fast = standby_configs(topo, swan), standby_pairs(topo), fast_dpd_nodes(topo)
    eap, fast = eap_nodes(topo), fast | client_nodes(topo)  # P2S clients retransmit fast
    files: dict[PurePosixPath, str] = {}
    frr = render_frr_files(topo)  # BGP nodes: lab/routing
    for node in plan.nodes:
        if not node.runs("charon"):
            continue
        base = PurePosixPath(node.name)
        files[base / "strongswan.conf"] = render_strongswan_conf(dataplane, node.name in fast,
                                                                   eap=node.name in eap)
        cfg = standby.get(node.name) or swan.get(node.name, SwanctlConfig())
        files[base / "swanctl.conf"] = (STANDBY_NOTE if node.name in standby else "") + cfg.to_text()
        own = mirrors.get(node.name, node.name)
        files[base / "nftables.conf"] = render_nftables(refuse.get(own), _nat_of(topo, node.group, own))
        if node.name in frr:
            files[base / "frr.conf"] = frr[node.name]
    return dict(sorted(files.items())), swan


def _nat_of(topo: Topology, group: str, node: str) -> list[tuple[str, NatRule]]:
    """The NAT rules a gateway instance applies (none on sites and clients)."""
    gw = topo.gateways.get(group)
    names = instance_names(group, gw) if gw else []
    return node_rules(topo, group, names.index(node)) if node in names else []
