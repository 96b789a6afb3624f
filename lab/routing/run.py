"""BGP in a lab's lifecycle: the BYO frr.conf files, FRR started on every BGP node, sessions awaited."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from lab.errors import LabError
from lab.hooks import Feature, Rendered, Stage
from lab.render.swanctl import SwanctlConfig
from lab.routing.collect import peer_statuses
from lab.routing.daemons import start_frr, stop_frr, wait_established
from lab.routing.peers import by_node, sessions
from lab.runtime.base import Runtime
from lab.state import LabDir
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


def frr_nodes(d: LabDir, names: list[str]) -> list[str]:
    """The nodes with an frr.conf in the state directory (rendered or brought by the user)."""
    return [n for n in names if (d.node(n) / FRR_CONF).is_file()]


def expected_peers(topo: Topology, nodes: list[str]) -> dict[str, list[str]]:
    """node -> the peer addresses its sessions must reach (a BYO device's side is the gateway's to check)."""
    mine = by_node(sessions(topo))
    return {n: [str(s.remote_ip) for s in mine[n]] for n in nodes if n in mine}


def start(topo: Topology, d: LabDir, runtime: Runtime, names: list[str], progress: Callable[[str], None],
          timeout: float | None) -> None:
    """Start FRR on every BGP node; with a timeout, wait until every session is Established or fail naming them."""
    nodes = frr_nodes(d, names)
    if not nodes:
        return
    progress(f"starting FRR (zebra, staticd, bgpd) on {', '.join(nodes)}")
    with ThreadPoolExecutor(max_workers=8) as pool:
        for fut in [pool.submit(start_frr, runtime, topo.name, n) for n in nodes]:
            fut.result()
    if timeout is None:
        return
    progress("waiting for BGP sessions")
    stuck = wait_established(runtime, topo.name, expected_peers(topo, nodes), timeout)
    _raise_stuck(stuck, timeout)


def wait_gateway_sessions(topo: Topology, d: LabDir, runtime: Runtime, timeout: float) -> dict[str, str]:
    """Wait for the gateways' own sessions only (a BYO device's neighbors are the user's); the stuck ones."""
    gateways = {n for n, s in by_node(sessions(topo)).items() if s[0].azure}
    nodes = [n for n in frr_nodes(d, sorted(gateways))]
    return wait_established(runtime, topo.name, expected_peers(topo, nodes), timeout) if nodes else {}


def _raise_stuck(stuck: dict[str, str], timeout: float) -> None:
    if stuck:
        lines = ", ".join(f"{k} ({v})" for k, v in sorted(stuck.items()))
        raise LabError(f"BGP sessions not established after {timeout:.0f} s: {lines}",
                       hint="lab diagnose names the cause; lab exec NODE -- vtysh -c 'show bgp summary'")


def restart(topo: Topology, d: LabDir, runtime: Runtime, node: str) -> list[str]:
    """FRR re-reads /lab/frr.conf the only reliable way (vtysh -f only adds): stop what runs, start again.
    `lab reload NODE`, `lab restore` of a killed node or of `bgpd-kill`."""
    if not frr_nodes(d, [node]):
        return []
    stop_frr(runtime, topo.name, node)
    start_frr(runtime, topo.name, node)
    stuck = wait_established(runtime, topo.name, expected_peers(topo, [node]), RESTART_WAIT_S)
    said = "; ".join(f"{k} {v}" for k, v in sorted(stuck.items())) or "its BGP sessions are established"
    return [f"{node}: FRR restarted with {d.node(node) / FRR_CONF}: {said}"]


class RoutingFeature(Feature):
    """BGP in `lab up`'s stages: a BYO device's own frr.conf among the rendered files, FRR started (and its
    sessions awaited) once the tunnels are up, BGP peers in `inspect`."""

    def __init__(self, source: Path | None) -> None:
        self.source = source  # the topology file's directory at `up`; None on a running lab

    def render(self, st: Stage, out: Rendered) -> Rendered:
        if self.source is None:
            return out
        files = {**out.files, **byo_frr_files(st.lab.topo, self.source)}
        return Rendered(out.keys, dict(sorted(files.items())), out.swan, out.dataplane)

    def running(self, st: Stage, swan: dict[str, SwanctlConfig]) -> None:
        names = [n.name for n in st.lab.plan.nodes if n.runs("charon")]
        start(st.lab.topo, st.lab.dir, st.runtime, names, st.progress, st.timeout)

    def inspect(self, st: Stage, running: set[str], status: LabStatus) -> LabStatus:
        nodes = frr_nodes(st.lab.dir, sorted(running))
        return status.model_copy(update={"bgp_peers": peer_statuses(st.runtime, st.lab.topo.name, nodes)})
