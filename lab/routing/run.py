"""BGP in a lab's lifecycle: the BYO frr.conf files among the rendered, sessions awaited, FRR restarted.

FRR's daemons are in the plan of every BGP node (lab/routing/nodes.py: with_frr), so the start-daemons stage
starts them with charon, and faults, heal and `lab reload` stop and start them through the daemon seam
(lab/daemons.py). What is left here is BGP's own: waiting for the sessions, and a reload that is a restart.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from lab import daemons
from lab.core import Lab, Progress
from lab.errors import LabError
from lab.hooks import Feature, Rendered, Stage
from lab.plan_types import Plan
from lab.render.swanctl import SwanctlConfig
from lab.routing.collect import peer_statuses
from lab.routing.nodes import FRR
from lab.routing.peers import by_node, sessions
from lab.routing.vtysh import wait_established
from lab.runtime.base import Runtime
from lab.status import LabStatus
from lab.topology.load import read_site_file
from lab.topology.model import Topology

FRR_CONF = "frr.conf"
RESTART_WAIT_S = 15.0  # `lab reload`/`restore` wait this long for the node's sessions, then say which are not up


def byo_frr_files(topo: Topology, base: Path) -> dict[PurePosixPath, str]:
    """A site device's own frr.conf (`device.frr_config`, relative to the topology file) replaces the rendered."""
    out = {}
    for name, site in sorted(topo.sites.items()):
        if site.device.frr_config is None:
            continue
        _, text = read_site_file(base, f"sites.{name}.device.frr_config", site.device.frr_config, "an FRR config")
        out[PurePosixPath(name) / FRR_CONF] = text
    return out


def frr_nodes(plan: Plan, names: list[str]) -> list[str]:
    """Those of `names` whose plan runs FRR (a node runs all of FRR's daemons or none)."""
    bgp = {n.name for n in plan.nodes if n.runs(FRR[-1])}
    return [n for n in names if n in bgp]


def expected_peers(topo: Topology, nodes: list[str]) -> dict[str, list[str]]:
    """node -> the peer addresses its sessions must reach (a BYO device's side is the gateway's to check)."""
    mine = by_node(sessions(topo))
    return {n: [str(s.remote_ip) for s in mine[n]] for n in nodes if n in mine}


def wait_sessions(lab: Lab, runtime: Runtime, names: list[str], progress: Progress, timeout: float) -> None:
    """Wait until every session of the BGP nodes among `names` is Established, or fail naming those that are not."""
    nodes = frr_nodes(lab.plan, names)
    if not nodes:
        return
    progress("waiting for BGP sessions")
    _raise_stuck(wait_established(runtime, lab.topo.name, expected_peers(lab.topo, nodes), timeout), timeout)


def settle(lab: Lab, runtime: Runtime, names: list[str], timeout: float = RESTART_WAIT_S) -> str:
    """Wait (up to timeout) for the sessions of the BGP nodes among `names`; say how they are (never raises:
    `lab inspect` and `lab diagnose` name a session that stays down)."""
    nodes = frr_nodes(lab.plan, names)
    stuck = wait_established(runtime, lab.topo.name, expected_peers(lab.topo, nodes), timeout) if nodes else {}
    return "; ".join(f"{k} {v}" for k, v in sorted(stuck.items())) or "BGP sessions established"


def wait_gateway_sessions(lab: Lab, runtime: Runtime, timeout: float) -> dict[str, str]:
    """Wait for the gateways' own sessions only (a BYO device's neighbors are the user's); the stuck ones."""
    gateways = {n for n, s in by_node(sessions(lab.topo)).items() if s[0].azure}
    nodes = frr_nodes(lab.plan, sorted(gateways))
    return wait_established(runtime, lab.topo.name, expected_peers(lab.topo, nodes), timeout) if nodes else {}


def _raise_stuck(stuck: dict[str, str], timeout: float) -> None:
    if stuck:
        lines = ", ".join(f"{k} ({v})" for k, v in sorted(stuck.items()))
        raise LabError(f"BGP sessions not established after {timeout:.0f} s: {lines}",
                       hint="lab diagnose names the cause; lab exec NODE -- vtysh -c 'show bgp summary'")


def restart(lab: Lab, runtime: Runtime, node: str) -> list[str]:
    """FRR re-reads /lab/frr.conf the only reliable way (`vtysh -f` only adds): its daemons stopped and started
    again through the daemon seam, then its sessions awaited. `lab reload NODE`, `lab restore` of `bgpd-kill`."""
    if not frr_nodes(lab.plan, [node]):
        return []
    daemons.restart(runtime, lab.topo.name, node, [daemons.DAEMONS[d] for d in FRR])
    return [f"{node}: FRR restarted with {lab.dir.node(node) / FRR_CONF}: {settle(lab, runtime, [node])}"]


class RoutingFeature(Feature):
    """BGP in `lab up`'s stages: a BYO device's own frr.conf among the rendered files, its sessions awaited once
    the tunnels are up (FRR itself starts in the start-daemons stage, from the plan), BGP peers in `inspect`."""

    def __init__(self, source: Path | None) -> None:
        self.source = source  # the topology file's directory at `up`; None on a running lab

    def render(self, st: Stage, out: Rendered) -> Rendered:
        if self.source is None:
            return out
        files = {**out.files, **byo_frr_files(st.lab.topo, self.source)}
        return Rendered(out.keys, dict(sorted(files.items())), out.swan, out.dataplane)

    def running(self, st: Stage, swan: dict[str, SwanctlConfig]) -> None:
        if st.timeout is not None:
            wait_sessions(st.lab, st.runtime, [n.name for n in st.lab.plan.nodes], st.progress, st.timeout)

    def inspect(self, st: Stage, running: set[str], status: LabStatus) -> LabStatus:
        nodes = frr_nodes(st.lab.plan, sorted(running))
        return status.model_copy(update={"bgp_peers": peer_statuses(st.runtime, st.lab.topo.name, nodes)})
