"""Charon units of a running lab: each node's main charon, plus one charon per route-based tunnel
(docs/route-based.md), and the feature that starts them on the start-daemons stage.

A unit is named like a node (`azgw-0`) for the main charon, or `<node>/tunnels/<conn>` for a tunnel's
charon (lab/render/tunnel_ifaces.py); LabDir resolves both to a directory with the vici socket and logs.
Hooks floor: everything here goes through the injected Runtime (no docker, pyroute2 or vici imports).
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

from lab import daemons
from lab.control.base import IkeSaStatus
from lab.core import Connect, Lab
from lab.daemons import Daemon
from lab.errors import RuntimeBackendError
from lab.ha.standby import ROLE_FILE
from lab.hooks import Feature, Rendered, Stage
from lab.plan import standby_name
from lab.plan_types import NodePlan
from lab.render.tunnel_ifaces import MIRROR_MAX, TunnelIface, container_of, tunnel_ifaces, unit_of
from lab.render.tunnel_scripts import START_BATCH, START_WAIT_S
from lab.render.tunnels import tunnels
from lab.runtime.base import Runtime
from lab.status import LabStatus, TunnelIfaceStatus

STOP_WAIT_S = 5.0
# nodes `lab inspect` reads at once (pipeline.status, and each node's tunnel interfaces here): each read mostly
# waits on the docker API, a namespace or a charon's vici socket; one node after the other, 25 route-based
# tunnels took 12 s at load 13 (100 tunnels: over 2 minutes)
STATUS_WORKERS = 8
POLL_S = 0.05

Ifaces = dict[str, tuple[TunnelIface, ...]]


def ifaces_of(lab: Lab) -> Ifaces:
    """Every node's tunnel interfaces on a running lab (tens of ms for 100 tunnels: callers that loop compute
    it once)."""
    return ifaces_for(lab, lab.dir.read_dataplane() or "libipsec")


def ifaces_for(lab: Lab, dataplane: str) -> Ifaces:
    """The same on both data planes (`dataplane` kept for callers that hold one)."""
    del dataplane
    return tunnel_ifaces(lab.topo, lab.plan)


def mains(lab: Lab, ifaces: Ifaces) -> set[str]:
    """The nodes that run their main charon: every node that runs charon, except a rendered site whose every
    connection is on a tunnel's own charon (a bring-your-own site has no tunnel interfaces: it keeps its own)."""
    own: dict[str, set[str]] = {}
    for t in tunnels(lab.topo):
        for end in (t.azure, t.peer):
            own.setdefault(end.node, set()).add(end.conn)
    out = set()
    for n in lab.plan.nodes:
        if not n.runs(daemons.CHARON.name):
            continue
        moved = {i.conn for i in ifaces.get(n.name, ())}
        if n.role != "site" or not moved or own.get(n.name, set()) - moved:
            out.add(n.name)
    return out


def needs_main(lab: Lab, node: str, ifaces: Ifaces) -> bool:
    return node in mains(lab, ifaces)


def cold(lab: Lab, ifaces: Ifaces) -> set[str]:
    """The active-standby instances whose tunnel charons are not running: standby now (its role file; before
    the HA agents start, the second instance) on a gateway with more than MIRROR_MAX tunnels. Their charons
    start when the instance takes over (lab/ha/agents.py: `start` in its spec)."""
    out = set()
    for g, gw in lab.topo.gateways.items():
        standby, first = standby_name(g, gw), f"{g}-0"
        if standby is None or len(ifaces.get(first, ())) <= MIRROR_MAX:
            continue
        for node, default in ((first, "active"), (standby, "standby")):
            path = lab.dir.node(node) / ROLE_FILE
            if (path.read_text().strip() if path.exists() else default) != "active":
                out.add(node)
    return out


def units(lab: Lab, nodes: set[str] | None = None, ifaces: Ifaces | None = None) -> list[str]:
    """Every running charon unit of the lab (or of `nodes`): main charons first, then tunnel charons (not a
    cold standby's)."""
    found = ifaces if ifaces is not None else ifaces_of(lab)
    names = [n.name for n in lab.plan.nodes if nodes is None or n.name in nodes]
    main, idle = mains(lab, found), cold(lab, found)
    return [n for n in names if n in main] + [i.unit for n in names if n not in idle for i in found.get(n, ())]


def node_sas(lab: Lab, node: str, connect: Connect, ifaces: Ifaces | None = None) -> dict[str, list[IkeSaStatus]]:
    """The IKE_SAs of every running charon of a node, by unit (its main charon's, then each route-based
    tunnel's own): what reads a node's SAs reads them all through this, never only the node's own socket
    (a rendered site may run no main charon at all)."""
    out: dict[str, list[IkeSaStatus]] = {}
    for unit in units(lab, {node}, ifaces):
        ctl = connect(lab.dir.vici_socket(unit))
        try:
            out[unit] = ctl.sas()
        finally:
            ctl.close()
    return out


def conn_unit(lab: Lab, node: str, conn: str, ifaces: Ifaces | None = None) -> str:
    """The charon unit that holds connection `conn` on `node`: a route-based tunnel's own, else the node's."""
    return unit_of(ifaces if ifaces is not None else ifaces_of(lab), node, conn)


def cold_start(lab: Lab, node: str, ifaces: Ifaces) -> list[list[str]]:
    """What a cold standby runs when it takes over, in order: start its tunnel charons (start.sh waits for each
    batch), then load each one's quiet config (it initiates afterwards, as a warm standby does)."""
    found = ifaces.get(node, ())
    if not found or len(found) <= MIRROR_MAX:
        return []
    return [["sh", "/lab/tunnels/start.sh"]] + [
        ["swanctl", "--load-all", "--file", f"{i.dir}/swanctl.conf", "--uri", f"unix://{i.dir}/run/charon.vici"]
        for i in found]


def setup(runtime: Runtime, lab: Lab, node: str, ifaces: Ifaces) -> None:
    """Create the node's tunnel namespaces, interfaces and steering rules (lab/render/tunnel_scripts.py)."""
    if node not in ifaces:
        return
    res = runtime.exec(lab.topo.name, node, ["sh", "/lab/tunnels/setup.sh"], timeout=60)
    if not res.ok:
        raise RuntimeBackendError(f"node {node!r}: tunnel interfaces: {res.output.strip()[-400:]}",
                                  hint=f"see {lab.dir.node(node) / 'tunnels' / 'setup.sh'}")


def start(runtime: Runtime, lab: Lab, node: str, ifaces: Ifaces) -> None:
    """Start each tunnel charon of the node in its namespace, in batches (start.sh waits for each batch's vici
    sockets, so a node with 100 tunnels does not start 100 charons at once); returns once all answer or the
    batches' waits ran out (vici's connect then names the charon that did not come up)."""
    found = ifaces.get(node, ())
    if not found:
        return
    batches = -(-len(found) // START_BATCH)
    res = runtime.exec(lab.topo.name, node, ["sh", "/lab/tunnels/start.sh"], timeout=10 + batches * START_WAIT_S)
    if not res.ok:
        raise RuntimeBackendError(f"node {node!r}: starting its tunnel charons: {res.output.strip()[-400:]}",
                                  hint=f"lab logs {node}")


def _pids(lab: Lab, node: str, ifaces: Ifaces) -> list[str]:
    out = []
    for i in ifaces.get(node, ()):
        pid_file = lab.dir.node(i.unit) / "charon.pid"
        pid = pid_file.read_text().strip() if pid_file.exists() else ""
        if pid.isdigit():
            out.append(pid)
    return out


def alive(runtime: Runtime, lab: Lab, node: str, ifaces: Ifaces) -> bool:
    """Every tunnel charon of the node runs (its pid file names a live process)."""
    found = ifaces.get(node, ())
    pids = _pids(lab, node, ifaces)
    if len(pids) < len(found):
        return False
    return not pids or runtime.exec(lab.topo.name, node, ["sh", "-c", " && ".join(f"kill -0 {p}" for p in pids)],
                                    timeout=5).ok


def stop(runtime: Runtime, lab: Lab, node: str, ifaces: Ifaces) -> None:
    """SIGTERM every tunnel charon of the node (DELETE to its peer), SIGKILL after STOP_WAIT_S."""
    pids = _pids(lab, node, ifaces)
    for i in ifaces.get(node, ()):
        (lab.dir.node(i.unit) / "charon.pid").unlink(missing_ok=True)
    if not pids:
        return
    name = lab.topo.name
    runtime.exec(name, node, ["kill", "-TERM", *pids], timeout=5)
    deadline = time.monotonic() + STOP_WAIT_S
    while runtime.exec(name, node, ["sh", "-c", " || ".join(f"kill -0 {p} 2>/dev/null" for p in pids)],
                       timeout=5).ok:
        if time.monotonic() > deadline:
            runtime.exec(name, node, ["kill", "-KILL", *pids], timeout=5)
            break
        time.sleep(POLL_S)


def iface_status(runtime: Runtime, lab: Lab, node: str, ifaces: Ifaces) -> list[TunnelIfaceStatus]:
    """Each tunnel interface of a running node: link state and the routes through it now (one exec)."""
    found = ifaces.get(node, ())
    if not found:
        return []
    res = runtime.exec(lab.topo.name, node, ["sh", "-c", "ip -o link show; echo ---; ip -o route show proto static"],
                       timeout=10)
    links, _, routes = res.output.partition("---")
    state = {m.group(1): m.group(2) for m in re.finditer(r"^\d+: ([^:@]+)[@:].*? state (\S+)", links, re.M)}
    via: dict[str, list[str]] = {}
    for line in routes.splitlines():
        for dev in re.findall(r"dev (\S+)", line):
            via.setdefault(dev, []).append(line.split()[0])
    return [TunnelIfaceStatus(node=node, interface=i.ifname, connection=i.conn, peer=str(i.peer_ip),
                              state=state.get(i.ifname, "missing"), routes=via.get(i.ifname, []))
            for i in found]


class TunnelsFeature(Feature):
    """Route-based tunnel interfaces on the start-daemons stage: where a node's charon starts, its tunnel
    namespaces and interfaces are made first and each tunnel's own charon starts in its namespace; the main
    charon is left to start as usual, except on a rendered site whose every tunnel has its own."""

    def __init__(self) -> None:
        self._found: tuple[Ifaces, set[str]] | None = None

    def render(self, st: Stage, out: Rendered) -> Rendered:
        """At `up` the data plane comes from the command line (a running lab reads it from its state)."""
        found = ifaces_for(st.lab, out.dataplane)
        self._found = found, mains(st.lab, found)
        return out

    def start_daemon(self, st: Stage, node: NodePlan, daemon: Daemon) -> bool:
        if self._found is None:
            found = ifaces_of(st.lab)
            self._found = found, mains(st.lab, found)
        ifaces, main = self._found
        if daemon.name != daemons.CHARON.name or node.name not in ifaces:
            return False
        setup(st.runtime, st.lab, node.name, ifaces)
        if node.name not in cold(st.lab, ifaces):  # a cold standby's start at takeover
            start(st.runtime, st.lab, node.name, ifaces)
        return node.name not in main

    def inspect(self, st: Stage, running: set[str], status: LabStatus) -> LabStatus:
        """Each running node's tunnel interfaces: link state and the routes through them now."""
        found = ifaces_of(st.lab)
        with ThreadPoolExecutor(max_workers=STATUS_WORKERS) as pool:  # one exec per node, in node order
            per_node = pool.map(lambda n: iface_status(st.runtime, st.lab, n, found), sorted(set(found) & running))
            rows = [r for node_rows in per_node for r in node_rows]
        return status.model_copy(update={"interfaces": status.interfaces + rows})


def node_of(unit: str) -> str:
    return container_of(unit)
