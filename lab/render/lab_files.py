"""All rendered files of a lab: {<node>/<file>: text}. Writing them is the caller's job."""

from __future__ import annotations

from pathlib import PurePosixPath

from lab.azure.address_views import sharing_connections
from lab.azure.nat import node_rules
from lab.errors import TopologyError
from lab.ha.standby import fast_dpd_nodes, standby_config, standby_configs, standby_pairs
from lab.p2s.render import client_nodes, eap_nodes, merge, render_p2s
from lab.plan import instance_names
from lab.plan_types import Plan
from lab.render.connections import refused_peers, render_swanctl
from lab.render.nftables import render_nftables
from lab.render.strongswan_conf import Dataplane, render_strongswan_conf
from lab.render.swanctl import SwanctlConfig
from lab.render.tunnel_ifaces import TunnelIface, tunnel_ifaces, tunneled_connections
from lab.render.tunnel_scripts import node_files, split_units
from lab.render.tunnels import tunnels
from lab.render.xfrm_ifaces import UPDOWN_PATH, UPDOWN_SCRIPT, if_ids, uses_ifaces
from lab.routing.nodes import render_frr_files
from lab.topology.model import NatRule, Topology

STANDBY_NOTE = "# Warm standby: loaded by lab.ha with start_action = none; it initiates only after a failover.\n"


def render_files(
    topo: Topology, plan: Plan, keys: dict[str, str], dataplane: Dataplane
) -> tuple[dict[PurePosixPath, str], dict[str, SwanctlConfig]]:
    """Every file a node mounts at /lab, plus the swanctl trees that control loads over vici."""
    ifaces = tunnel_ifaces(topo, plan)  # route-based tunnels: one interface, namespace and charon each
    # kernel: other tunnels of a node that share selectors get an XFRM interface each (lab/render/xfrm_ifaces.py)
    routed = {(i.node, i.conn) for found in ifaces.values() for i in found}
    ids = {k: v for k, v in if_ids(tunnels(topo)).items() if k not in routed} if dataplane == "kernel" else {}
    swan = split_units(merge(render_swanctl(topo, keys, ids), render_p2s(topo)), ifaces,
                       kernel=dataplane == "kernel")  # P2S: lab/p2s/render.py
    refuse = refused_peers(topo)
    standby, mirrors, fast = standby_configs(topo, swan), standby_pairs(topo), fast_dpd_nodes(topo)
    eap, fast = eap_nodes(topo), fast | client_nodes(topo)  # P2S clients retransmit fast
    files: dict[PurePosixPath, str] = {}
    frr = render_frr_files(topo, tunnel_ifaces=bool(ifaces))  # BGP nodes: lab/routing
    tunneled = tunneled_connections(ifaces, topo)  # their NAT is in the tunnel's namespace (tunnel_scripts)
    _refuse_shared_without_tunnels(topo, tunneled)
    for node in plan.nodes:
        if not node.runs("charon"):
            continue
        base = PurePosixPath(node.name)
        cfg = standby.get(node.name) or swan.get(node.name, SwanctlConfig())
        xfrm = uses_ifaces(cfg)  # its routes are xfrm-updown.sh's, not charon's table 220
        files[base / "strongswan.conf"] = render_strongswan_conf(dataplane, node.name in fast,
                                                                   eap=node.name in eap, install_routes=not xfrm)
        if xfrm:
            files[base / PurePosixPath(UPDOWN_PATH).name] = UPDOWN_SCRIPT
        files[base / "swanctl.conf"] = (STANDBY_NOTE if node.name in standby else "") + cfg.to_text()
        own = mirrors.get(node.name, node.name)
        files[base / "nftables.conf"] = render_nftables(refuse.get(own), _nat_of(topo, node.group, own, tunneled),
                                                        guard_tunnels=dataplane == "kernel" and node.name in ifaces)
        if node.name in frr:
            files[base / "frr.conf"] = frr[node.name]
        for i in ifaces.get(node.name, ()):
            files.update(_tunnel_files(i, swan, mirrors.get(node.name), dataplane, node.name in fast))
        if node.name in ifaces:
            files.update(node_files(node.name, ifaces[node.name], dataplane))
    return dict(sorted(files.items())), swan


def _nat_of(topo: Topology, group: str, node: str, tunneled: set[str]) -> list[tuple[str, NatRule]] | None:
    """The NAT rules a gateway instance applies in its main namespace: those of connections without a tunnel
    interface ([] still resets the table); None on sites and clients, which never translate."""
    gw = topo.gateways.get(group)
    names = instance_names(group, gw) if gw else []
    return node_rules(topo, group, names.index(node), skip=tunneled) if node in names else None


def _refuse_shared_without_tunnels(topo: Topology, tunneled: set[str]) -> None:
    """Sites that share a prefix are told apart only by their own tunnel interface (its namespace translates):
    without one (the kernel data plane has none yet) their traffic would mix, so nothing is built."""
    mixed = [c for c in sharing_connections(topo) if c not in tunneled]
    if mixed:
        raise TopologyError(f"connections.{mixed[0]}: its site shares a prefix with another network, which NAT "
                            "separates only on a tunnel interface of the connection's own; this data plane has "
                            f"none for {', '.join(mixed)}", hint="use the libipsec data plane (the default), or "
                            "give the sites address spaces that do not overlap")


def _tunnel_files(i: TunnelIface, swan: dict[str, SwanctlConfig], active: str | None, dataplane: Dataplane,
                  fast: bool) -> dict[PurePosixPath, str]:
    """A tunnel charon's strongswan.conf and swanctl.conf; a standby's is its active's, quiet."""
    base = PurePosixPath(i.unit)
    if active is None:
        cfg, note = swan.get(i.unit, SwanctlConfig()), ""
    else:
        cfg, note = standby_config(swan.get(i.unit.replace(i.node, active, 1), SwanctlConfig())), STANDBY_NOTE
    return {base / "strongswan.conf": render_strongswan_conf(dataplane, fast, base=i.dir,
                                                             install_routes=dataplane == "libipsec"),
            base / "swanctl.conf": note + cfg.to_text()}
