"""Charon units of a running lab: each node's main charon, plus one charon per route-based tunnel.

A unit is named like a node (`azgw-0`) for the main charon, or `<node>/tunnels/<conn>` for a tunnel's
charon (lab/render/tunnel_ifaces.py); LabDir resolves both to a directory with the vici socket and logs.
Pipeline level: everything here goes through the injected Runtime (no docker, pyroute2 or vici imports).
"""

from __future__ import annotations

import re
import time

from lab.core import Lab
from lab.errors import RuntimeBackendError
from lab.render.swanctl import SwanctlConfig
from lab.render.tunnel_ifaces import TunnelIface, container_of, tunnel_ifaces
from lab.runtime.base import Runtime
from lab.status import TunnelIfaceStatus

STOP_WAIT_S = 5.0
POLL_S = 0.05


def ifaces_of(lab: Lab) -> dict[str, tuple[TunnelIface, ...]]:
    """Every node's tunnel interfaces (tens of ms for 100 tunnels: callers that loop compute it once); none on
    the kernel data plane (not yet: docs/route-based.md)."""
    return tunnel_ifaces(lab.topo, lab.plan) if (lab.dir.read_dataplane() or "libipsec") == "libipsec" else {}


Ifaces = dict[str, tuple[TunnelIface, ...]]


def needs_main(lab: Lab, node: str, swan: dict[str, SwanctlConfig], byo: set[str] | frozenset[str] = frozenset(),
               ifaces: Ifaces | None = None) -> bool:
    """A node runs its main charon unless it is a rendered site whose every tunnel has its own charon."""
    plan = lab.plan.node(node)
    if not plan.runs_charon:
        return False
    if plan.role != "site" or node in byo or node not in (ifaces if ifaces is not None else ifaces_of(lab)):
        return True
    cfg = swan.get(node)
    return cfg is not None and bool(cfg.connections)


def units(lab: Lab, swan: dict[str, SwanctlConfig], byo: set[str] | frozenset[str] = frozenset(),
          nodes: set[str] | None = None, ifaces: Ifaces | None = None) -> list[str]:
    """Every charon unit of the lab (or of `nodes`): main charons first, then tunnel charons."""
    found = ifaces if ifaces is not None else ifaces_of(lab)
    names = [n.name for n in lab.plan.nodes if nodes is None or n.name in nodes]
    mains = [n for n in names if needs_main(lab, n, swan, byo, found)]
    return mains + [i.unit for n in names for i in found.get(n, ())]


def setup(runtime: Runtime, lab: Lab, node: str, ifaces: Ifaces) -> None:
    """Create the node's tunnel namespaces, interfaces and steering rules (lab/render/tunnel_scripts.py)."""
    if node not in ifaces:
        return
    res = runtime.exec(lab.topo.name, node, ["sh", "/lab/tunnels/setup.sh"], timeout=60)
    if not res.ok:
        raise RuntimeBackendError(f"node {node!r}: tunnel interfaces: {res.output.strip()[-400:]}",
                                  hint=f"see {lab.dir.node(node) / 'tunnels' / 'setup.sh'}")


def start(runtime: Runtime, lab: Lab, node: str, ifaces: Ifaces) -> None:
    """Start each tunnel charon of the node in its namespace (detached; vici connects when it is up)."""
    found = ifaces.get(node, ())
    for i in found:
        lab.dir.vici_socket(i.unit).unlink(missing_ok=True)
    if found:
        runtime.exec(lab.topo.name, node, ["sh", "/lab/tunnels/start.sh"], detach=True)


def stop(runtime: Runtime, lab: Lab, node: str, ifaces: Ifaces) -> None:
    """SIGTERM every tunnel charon of the node (DELETE to its peer), SIGKILL after STOP_WAIT_S."""
    pids = []
    for i in ifaces.get(node, ()):
        pid_file = lab.dir.node(i.unit) / "charon.pid"
        pid = pid_file.read_text().strip() if pid_file.exists() else ""
        if pid.isdigit():
            pids.append(pid)
        pid_file.unlink(missing_ok=True)
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


def node_of(unit: str) -> str:
    return container_of(unit)


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
