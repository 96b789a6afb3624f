"""`lab fault` and `lab restore`: break a running lab on purpose, remember what was broken, undo it.

Active faults live in <state>/faults.json so a later `lab restore` (another process) knows what to
undo; `lab down` needs none of it (it removes everything by label). Docker, netlink and nft work goes
through the injected Runtime, charon through `connect`; this module imports neither.
"""

from __future__ import annotations

import json
from contextlib import suppress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lab import core, daemons, pipeline, tunnel_units
from lab.errors import ControlError, LabError, RuntimeBackendError
from lab.ha import agents as ha
from lab.ha.standby import standby_config, takeover_children
from lab.lock import lab_lock
from lab.plan_types import NodePlan
from lab.render.swanctl import SwanctlConfig
from lab.render.tunnel_ifaces import container_of
from lab.routing import run as routing_run
from lab.runtime.base import Runtime
from lab.runtime.faults import LOSS_FILE, delete_argv, loss_ruleset

FaultKind = Literal["kill", "stop", "pause", "charon-restart", "bgpd-kill", "link-down", "loss"]
NODE_FAULTS = ("kill", "stop", "pause", "charon-restart", "bgpd-kill")
LINK_FAULTS = ("link-down", "loss")
FAULTS_FILE = "faults.json"
CHARON_EXIT_WAIT_S = 5.0
POLL_S = 0.1
INITIATE_TIMEOUT_S = 10.0


class Fault(BaseModel):
    """One active fault: a node fault (iface None) or a link fault on node:iface."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FaultKind
    node: str
    iface: str | None = None
    percent: float | None = Field(default=None, ge=0, le=100)

    @property
    def target(self) -> str:
        return f"{self.node}:{self.iface}" if self.iface else self.node

    def describe(self) -> str:
        return f"{self.kind} {self.target}" + (f" {self.percent:g} %" if self.percent is not None else "")


class FaultSet(BaseModel):
    """The content of faults.json."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    faults: list[Fault] = Field(default_factory=list)


def faults_path(state_root: Path) -> Path:
    return state_root / FAULTS_FILE


def read_faults(state_root: Path) -> list[Fault]:
    """Active faults of a lab; none when the file is absent."""
    path = faults_path(state_root)
    if not path.exists():
        return []
    try:
        return list(FaultSet.model_validate_json(path.read_text()).faults)
    except ValidationError as exc:
        raise LabError(f"{path}: not a faults file: {exc.errors()[0]['msg']}",
                       hint="lab down NAME removes the lab with its state") from exc


def write_faults(state_root: Path, faults: list[Fault]) -> None:
    """Write atomically (rename), so a crash never leaves half a file; remove it when nothing is active."""
    path = faults_path(state_root)
    if not faults:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(FaultSet(faults=faults).model_dump(mode="json"), indent=2) + "\n")
    tmp.replace(path)


def parse_fault(lab: core.Lab, kind: str, target: str, percent: float | None) -> Fault:
    """Check a fault against the lab's plan: the node (and interface) exist, loss has a percentage."""
    node_name, _, iface = target.partition(":")
    where = f"lab fault {kind} {target}"
    if kind not in NODE_FAULTS + LINK_FAULTS:
        raise LabError(f"{where}: unknown fault kind", hint=f"one of {', '.join(NODE_FAULTS + LINK_FAULTS)}")
    node = _plan_node(lab, node_name, where)
    if kind in LINK_FAULTS:
        if iface not in {i.name for i in node.ifaces}:
            names = ", ".join(f"{node.name}:{i.name}" for i in node.ifaces)
            raise LabError(f"{where}: a link fault needs NODE:IFACE", hint=f"interfaces: {names}")
        if kind == "loss" and (percent is None or not 0 <= percent <= 100):
            raise LabError(f"{where}: loss needs a percentage 0..100", hint=f"lab fault loss {target} 30")
    elif iface:
        raise LabError(f"{where}: a node fault takes a node name only", hint=f"lab fault {kind} {node_name}")
    if kind == "charon-restart" and not node.runs("charon"):
        raise LabError(f"{where}: node {node_name!r} runs no charon", hint="gateways and sites run charon")
    if kind == "bgpd-kill" and not routing_run.frr_nodes(lab.plan, [node_name]):
        raise LabError(f"{where}: node {node_name!r} runs no BGP", hint="nodes of a connection with enable_bgp")
    return Fault(kind=kind, node=node_name, iface=iface or None,  # type: ignore[arg-type]
                 percent=percent if kind == "loss" else None)


def _plan_node(lab: core.Lab, name: str, where: str) -> NodePlan:
    try:
        return lab.plan.node(name)
    except KeyError:
        names = ", ".join(n.name for n in lab.plan.nodes)
        raise LabError(f"{where}: node {name!r} is not in lab {lab.topo.name!r}", hint=f"nodes: {names}") from None


def merge(active: list[Fault], new: Fault) -> list[Fault]:
    """Add a fault; a second loss on the same interface replaces the first. A node already down or
    paused takes no other node fault (restore it first): two would leave restore no single answer."""
    if new.kind == "loss":
        return [f for f in active if not (f.kind == "loss" and f.target == new.target)] + [new]
    if new.kind in NODE_FAULTS:
        for f in active:
            if f.kind in NODE_FAULTS and f.node == new.node:
                raise LabError(f"node {new.node!r} already has fault {f.describe()!r}",
                               hint=f"lab restore {new.node} first")
    if new in active:
        raise LabError(f"fault {new.describe()!r} is already active", hint=f"lab restore {new.target}")
    return [*active, new]


# ---- applying and undoing -----------------------------------------------------------------------

Connect = core.Connect


def inject(lab: core.Lab, fault: Fault, runtime: Runtime, connect: Connect, dataplane: str) -> None:
    """Apply one fault and record it (charon-restart is over once charon is back: nothing to record). Under
    the lab's lock: the supervisor sees the node only once the fault is recorded, and leaves it broken."""
    with lab_lock(lab.topo.name, wait_s=60):
        _inject(lab, fault, runtime, connect, dataplane)


def _inject(lab: core.Lab, fault: Fault, runtime: Runtime, connect: Connect, dataplane: str) -> None:
    active = merge(read_faults(lab.dir.root), fault)
    node = lab.plan.node(fault.node)
    name = lab.topo.name
    if fault.kind == "kill":
        runtime.node_action(name, node.name, "kill")
        cut_links(lab, runtime, node)
    elif fault.kind == "stop":
        if node.runs("charon"):
            stop_charon(runtime, lab, node.name)  # docker's SIGTERM reaches tini, not an exec'd charon
        runtime.node_action(name, node.name, "stop")
        cut_links(lab, runtime, node)
    elif fault.kind == "pause":
        runtime.node_action(name, node.name, "pause")
    elif fault.kind == "bgpd-kill":  # SIGKILL: the kernel closes its TCP sessions, zebra drops its routes
        daemons.stop(runtime, name, node.name, daemons.BGPD, kill=True)
    elif fault.kind == "charon-restart":
        stop_charon(runtime, lab, node.name)
        swan = core.swanctl_configs(lab)
        pipeline.start_node_daemons(lab, node, runtime, connect, configs_for(lab, node.name, swan), dataplane,
                                    only={daemons.CHARON.name})
        initiate_as_active(lab, node.name, connect, swan)
        kick_peers(lab, {node.name}, connect, swan, runtime)
        return
    elif fault.kind == "link-down":
        runtime.set_link(lab.plan, node.name, fault.iface or "", False)
    else:
        load_loss(lab, runtime, node.name, active)
    write_faults(lab.dir.root, active)


def cut_links(lab: core.Lab, runtime: Runtime, node: NodePlan) -> None:
    """A dead node's links go down with it. The kernel keeps a killed container's network namespace alive
    while it holds orphaned TCP sockets (bgpd's sessions, whose FIN can no longer leave through the dead
    tunnel: measured, minutes), and that namespace would go on answering ARP and ping for the dead
    instance's addresses. `lab restore` re-creates the links (rewire_node)."""
    for iface in node.ifaces:
        with suppress(RuntimeBackendError):  # the usual case: the namespace went, and its veths with it
            runtime.set_link(lab.plan, node.name, iface.name, False)


def stop_charon(runtime: Runtime, lab: core.Lab, node: str) -> None:
    """SIGTERM every charon of the node by its pid file (each sends DELETE for every IKE_SA), SIGKILL if it
    hangs (lab/daemons.py): its route-based tunnels' own charons (lab/tunnel_units.py), then its main one."""
    tunnel_units.stop(runtime, lab, node, tunnel_units.ifaces_of(lab))
    daemons.stop(runtime, lab.topo.name, node, daemons.CHARON)


def load_loss(lab: core.Lab, runtime: Runtime, node: str, active: list[Fault]) -> None:
    """(Re)load the node's `inet lab_fault` table from every active loss fault on it; none: delete it."""
    losses = {f.iface or "": f.percent or 0.0 for f in active if f.kind == "loss" and f.node == node}
    path = lab.dir.node(node) / LOSS_FILE
    if not losses:
        runtime.exec(lab.topo.name, node, delete_argv(), timeout=10)  # absent table: harmless failure
        path.unlink(missing_ok=True)
        return
    path.write_text(loss_ruleset(losses))
    res = runtime.exec(lab.topo.name, node, ["nft", "-f", f"/lab/{LOSS_FILE}"], timeout=10)
    if not res.ok:
        raise RuntimeBackendError(f"node {node!r}: loss rules refused by nft: {res.output.strip()}",
                                  hint=f"see {path}")


def restore(lab: core.Lab, target: str | None, runtime: Runtime) -> list[Fault]:
    """Undo the faults on `target` (a node, node:iface, or None for all). Each undo is recorded at once, so a
    failure leaves an accurate file. A killed or stopped node's container is only started here: its links,
    daemons and role come back through lab.ops.heal, like any restarted node's (`lab restore` runs both)."""
    active = read_faults(lab.dir.root)
    chosen = [f for f in active if target is None or target in (f.node, f.target)]
    if target is not None and not chosen:
        raise LabError(f"lab restore {target}: no active fault there",
                       hint=f"active: {', '.join(f.describe() for f in active) or 'none'}")
    for fault in sorted(chosen, key=lambda f: f.kind not in NODE_FAULTS):  # nodes first, then links
        active = [f for f in active if f != fault]
        _undo(lab, fault, active, runtime)
        write_faults(lab.dir.root, active)
    return chosen


def _undo(lab: core.Lab, fault: Fault, active: list[Fault], runtime: Runtime) -> None:
    node, name = fault.node, lab.topo.name
    if fault.kind in ("kill", "stop"):
        runtime.node_action(name, node, "start")  # links, charon, FRR: lab.ops.heal, as for any restart
    elif fault.kind == "bgpd-kill":
        routing_run.restart(lab, runtime, node)
    elif fault.kind == "pause":
        runtime.node_action(name, node, "unpause")
    elif fault.kind == "link-down":
        runtime.set_link(lab.plan, node, fault.iface or "", True)
    elif fault.kind == "loss":
        load_loss(lab, runtime, node, active)


def config_for(lab: core.Lab, node: str, swan: dict[str, SwanctlConfig],
               active: bool | None = None) -> SwanctlConfig | None:
    """The swanctl tree `node`'s main charon runs in its role (configs_for: every charon of the node)."""
    return configs_for(lab, node, swan, active).get(node)


def configs_for(lab: core.Lab, node: str, swan: dict[str, SwanctlConfig],
                active: bool | None = None) -> dict[str, SwanctlConfig]:
    """The swanctl tree of each charon of `node` in its role (its main one, and each route-based tunnel's own,
    lab/tunnel_units.py): an active-standby instance gets <gw>-0's, started only as <gw>-0 while active (a
    warm, quiet copy otherwise: a standby must never initiate)."""
    pair = ha.pair_with(lab, node)
    if pair is None:
        return {u: c for u, c in swan.items() if container_of(u) == node}
    first = pair.nodes[0]
    started = (ha.role(lab, node) == "active" if active is None else active) and node == first
    return {node + u[len(first):]: (c if started else standby_config(c))
            for u, c in swan.items() if container_of(u) == first}


def initiate_as_active(lab: core.Lab, node: str, connect: Connect, swan: dict[str, SwanctlConfig]) -> None:
    """An active <gw>-1 runs the quiet copy: it initiates what <gw>-0 would have started by itself."""
    pair = ha.pair_with(lab, node)
    if pair is None or node == pair.nodes[0] or ha.role(lab, node) != "active":
        return
    first = pair.nodes[0]
    for unit, cfg in swan.items():
        if container_of(unit) != first:
            continue
        wanted: dict[str, list[str]] = {}
        for child, conn in takeover_children(cfg):
            wanted.setdefault(conn, []).append(child)
        for conn, children in wanted.items():
            _reinitiate(lab, node + unit[len(first):], conn, children, connect)


def node_addresses(lab: core.Lab, node: str, active: bool | None = None) -> set[str]:
    """The addresses `node` holds in its role (an active-standby instance's moving ones only while active)."""
    plan, pair = lab.plan.node(node), ha.pair_with(lab, node)
    if pair is not None:
        plan = ha.as_role(pair, plan, ha.role(lab, node) == "active" if active is None else active)
    return {str(a.ip) for i in plan.ifaces for a in i.addresses}


def kick_peers(lab: core.Lab, restarted: set[str], connect: Connect, swan: dict[str, SwanctlConfig],
               runtime: Runtime, roles: dict[str, bool] | None = None) -> None:
    """A peer that initiates still holds IKE_SAs the restarted charon forgot, until DPD (tens of seconds):
    the current active of each such peer deletes them and initiates again, so a restart costs seconds.
    Only towards addresses the restarted nodes hold now: an SA with the instance that carries traffic is
    never touched, and a standby never initiates. Each charon of a peer (route-based tunnels: its own)."""
    gone = {a for n in restarted for a in node_addresses(lab, n, (roles or {}).get(n))}
    running = {n.node for n in runtime.list_nodes(lab.topo.name) if n.status == "running"}
    for node in lab.plan.nodes:
        if node.name in restarted or node.name not in running or not node.runs("charon"):
            continue
        source, pair = node.name, ha.pair_with(lab, node.name)
        if pair is not None:
            if ha.role(lab, node.name) != "active":
                continue
            source = pair.nodes[0]
        for unit, cfg in swan.items():
            if container_of(unit) == source:
                _kick(lab, node.name + unit[len(source):], cfg, gone, connect)


def _kick(lab: core.Lab, unit: str, cfg: SwanctlConfig, gone: set[str], connect: Connect) -> None:
    for conn, tree in cfg.connections.items():
        remote, kids = tree.get("remote_addrs"), tree.get("children")
        if not isinstance(remote, list) or not isinstance(kids, dict) or not gone & set(remote):
            continue
        starts = [c for c, t in kids.items() if isinstance(t, dict) and t.get("start_action") == "start"]
        if starts:
            _reinitiate(lab, unit, conn, starts, connect)


def _reinitiate(lab: core.Lab, node: str, conn: str, children: list[str], connect: Connect) -> None:
    """Terminate (no SA to terminate is fine) and initiate; failures are left to wait_tunnels to explain."""
    ctl = connect(lab.dir.vici_socket(node))
    try:
        with suppress(ControlError):
            ctl.terminate_ike(conn)
        for child in children:
            with suppress(ControlError):
                ctl.initiate(child, conn, INITIATE_TIMEOUT_S)
    finally:
        ctl.close()
