"""Heal: a node whose container restarted, stopped, paused or vanished behind the lab's back comes back.

A container Docker restarted (a host reboot, a Docker upgrade, `docker restart`) keeps its name but gets a
fresh network namespace: the lab's veths, addresses, routes, nftables, shaping, charon and HA agent are gone.
Healing re-creates exactly those from the plan and the state directory, re-applies the faults recorded for
that node (link down, loss), and reconciles an active-standby instance with what the other instance does
now. Never harm: an instance comes back as the standby whenever the other one is active, so nothing (no
address, role or SA) is taken from the instance that carries traffic. `lab restore` and the supervisor
(lab/ops/supervisor.py) both call `heal`; the caller holds the lab's lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from lab import acquire, core, daemons, pipeline, tunnel_units
from lab.control.wait import wait_established
from lab.core import Connect, Lab
from lab.device.byo import ByoFeature, byo_from_state, load_byo
from lab.errors import LabError
from lab.ha import agents as ha
from lab.hooks import Stage
from lab.ops import faults
from lab.ops.faults import NODE_FAULTS, Fault, load_loss, read_faults
from lab.plan_types import NodePlan, Plan
from lab.render.swanctl import SwanctlConfig
from lab.render.tunnel_ifaces import by_unit
from lab.routing import run as routing_run
from lab.runtime.base import Runtime

Why = Literal["restarted", "stopped", "paused", "missing"]
HEALING = "restarted, healing"
TAKEOVER_WAIT_S = 3.0  # a healthy standby's agent takes over within ~0.6 s of the active's death
INITIATE_TIMEOUT_S = 10.0
POLL_S = 0.2


@dataclass(frozen=True)
class Broken:
    node: str
    why: Why


def wired(links: dict[str, list[str]], node: NodePlan) -> bool:
    """Every interface of the node's plan exists in its namespace (a restarted container has only lo)."""
    return all(i.name in links for i in node.ifaces)


def find_broken(lab: Lab, runtime: Runtime) -> list[Broken]:
    """Nodes that are not as `lab up` left them and carry no recorded node fault (those `lab restore` undoes)."""
    faulted = {f.node for f in read_faults(lab.dir.root) if f.kind in NODE_FAULTS}
    live = {n.node: n for n in runtime.list_nodes(lab.topo.name)}
    out = []
    for node in lab.plan.nodes:
        info = live.get(node.name)
        if node.name in faulted:
            continue
        if info is None:
            out.append(Broken(node.name, "missing"))
        elif info.status == "paused":
            out.append(Broken(node.name, "paused"))
        elif info.status != "running":
            out.append(Broken(node.name, "stopped"))
        elif not wired(runtime.live_links(lab.topo.name, node.name), node):
            out.append(Broken(node.name, "restarted"))
    return out


def restore(lab: Lab, target: str | None, runtime: Runtime, connect: Connect, dataplane: str,
            image: str | None, progress: Callable[[str], None], timeout: float = 60.0) -> tuple[list[Fault], list[str]]:
    """`lab restore`: undo the recorded faults (on `target`, or all), heal every node not as `lab up` left it,
    restart HA agents that died (roles untouched), then wait for every tunnel when no fault is left."""
    undone = faults.restore(lab, target, runtime)
    broken = find_broken(lab, runtime)
    done = heal(lab, broken, runtime, connect, dataplane, image, progress, timeout, wait=False)
    done += ensure_agents(lab, runtime)
    if not read_faults(lab.dir.root):
        progress("waiting for tunnels")
        wait_tunnels(lab, runtime, connect, timeout, [b.node for b in broken])
    return undone, done


def ensure_agents(lab: Lab, runtime: Runtime) -> list[str]:
    """Start the HA agent of every running instance or ECMP host that has none, with its current role."""
    running = {n.node for n in runtime.list_nodes(lab.topo.name) if n.status == "running"}
    nodes = [n for p in ha.standby_pairs(lab) for n in p.nodes] + [h for h, _ in ha.ecmp_hosts(lab)]
    out = []
    for node in nodes:
        if node in running and not ha.agent_alive(lab, runtime, node) and ha.start_agent(lab, runtime, node):
            out.append(f"{node}: HA agent restarted ({ha.role(lab, node) if ha.pair_with(lab, node) else 'host'})")
    return out


def heal(lab: Lab, broken: list[Broken], runtime: Runtime, connect: Connect, dataplane: str,
         image: str | None, progress: Callable[[str], None], timeout: float = 30.0, wait: bool = True) -> list[str]:
    """Bring every broken node back; then (`wait`) until every tunnel is up again. Returns what was done."""
    if not broken:
        return []
    done = []
    roles = decide_roles(lab, [b.node for b in broken if b.why != "paused"], runtime)
    swan = core.swanctl_configs(lab)
    for node, active in roles.items():  # a healthy standby must not take over while its peer comes back
        other = _other(lab, node)
        if active and other not in roles and wired(runtime.live_links(lab.topo.name, other), lab.plan.node(other)):
            ha.start_agent(lab, runtime, other)  # a fresh agent starts with a full watch window
    for b in sorted(broken, key=lambda b: not roles.get(b.node, True)):  # new actives first
        progress(f"healing {b.node} ({b.why})")
        done.append(heal_node(lab, b, roles.get(b.node), runtime, connect, dataplane, image, swan))
    healed = {b.node for b in broken if b.why != "paused"}
    faults.kick_peers(lab, healed, connect, swan, runtime, roles)
    if wait and not read_faults(lab.dir.root):
        progress("waiting for tunnels")
        wait_tunnels(lab, runtime, connect, timeout, sorted(healed))
    return done


def decide_roles(lab: Lab, healing: list[str], runtime: Runtime) -> dict[str, bool]:
    """Active (True) or standby for each active-standby instance being healed. The other instance keeps its
    role when it is up and active, or becomes active now (its agent sees the floating address gone)."""
    out: dict[str, bool] = {}
    for pair in ha.standby_pairs(lab):
        mine = [n for n in pair.nodes if n in healing]
        if not mine:
            continue
        if len(mine) == 2:
            first = next((n for n in pair.nodes if ha.role(lab, n) == "active"), pair.nodes[0])
            out |= {n: n == first for n in pair.nodes}
            continue
        node, other = mine[0], next(n for n in pair.nodes if n != mine[0])
        out[node] = not _becomes_active(lab, other, runtime)
    return out


def _other(lab: Lab, node: str) -> str:
    pair = ha.pair_with(lab, node)
    return next(n for n in pair.nodes if n != node) if pair else node


def _becomes_active(lab: Lab, node: str, runtime: Runtime) -> bool:
    """`node` is healthy and active, or its agent makes it active within TAKEOVER_WAIT_S."""
    plan = lab.plan.node(node)
    if not wired(runtime.live_links(lab.topo.name, node), plan):
        return False
    deadline = time.monotonic() + TAKEOVER_WAIT_S
    while ha.role(lab, node) != "active":
        if time.monotonic() >= deadline or not ha.agent_alive(lab, runtime, node):
            return False
        time.sleep(POLL_S)
    return True


def heal_node(lab: Lab, b: Broken, active: bool | None, runtime: Runtime, connect: Connect, dataplane: str,
              image: str | None, swan: dict[str, SwanctlConfig]) -> str:
    """One node: container, links (in its role), shaping, nftables and its daemons (charon with its config, FRR
    where it runs BGP), recorded link faults, HA agent. `active` is None for nodes outside an active-standby pair."""
    name, node = lab.topo.name, lab.plan.node(b.node)
    if b.why == "paused":
        runtime.node_action(name, b.node, "unpause")
        return f"{b.node}: unpaused"
    _bring_container(lab, b, runtime, image)
    pair = ha.pair_with(lab, b.node)
    shaped = ha.as_role(pair, node, bool(active)) if pair is not None else node
    runtime.rewire_node(_with_node(lab.plan, shaped), b.node)
    for n, iface, mbps in pipeline.gateway_caps(lab):
        if n == b.node:
            runtime.shape(name, n, iface, mbps)
    clear_stale_pids(lab, runtime, node)
    if node.runs("charon"):
        _start_daemons(lab, node, pair, active, runtime, connect, dataplane, swan)
    _reapply_link_faults(lab, b.node, runtime)
    role = ""
    if pair is not None:
        ha.set_role(lab, b.node, "active" if active else "standby")
        role = f" as the {'active' if active else 'standby'} instance"
    if ha.start_agent(lab, runtime, b.node) and pair is not None and active and b.node != pair.nodes[0]:
        ha.take_over_now(lab, runtime, b.node)  # a warm config initiates nothing by itself
    if pair is None or active:  # custom selector lines that wait for their first packet (lab/acquire.py)
        acquire.restart(lab, runtime, b.node, dataplane, swan)
    return f"{b.node}: {b.why} -> re-wired, daemons started{role}"


def clear_stale_pids(lab: Lab, runtime: Runtime, node: NodePlan) -> None:
    """A container restarted, started again or re-created runs none of its daemons, but their pid files
    survive (in /var/run of the container's own filesystem; the HA agent's and each tunnel charon's in the
    state directory), and a stale pid can name a live process again: the new container starts its tunnel
    charons before its main charon, so pids are reused. Seen: restoring a restarted gateway instance, replacing
    its HA agent killed the old agent's pid, which was now the new main charon (SIGTERM right after its start,
    `lab inspect`: "no charon answered"); start.sh likewise keeps a tunnel charon whose pid file names a running
    charon. So every pid file goes before any daemon or agent of the node starts."""
    files = [d.pid_file for d in daemons.of(node)]
    if files:
        runtime.exec(lab.topo.name, node.name, ["rm", "-f", *files], timeout=10)
    stale = [lab.dir.node(node.name) / ha.PID_FILE]
    stale += [lab.dir.node(i.unit) / "charon.pid" for i in tunnel_units.ifaces_of(lab).get(node.name, ())]
    for path in stale:
        path.unlink(missing_ok=True)


def lab_image(lab: Lab) -> str | None:
    """The node image `lab up` used (recorded in the state directory)."""
    path = lab.dir.root / pipeline.IMAGE_FILE
    return path.read_text().strip() if path.exists() else None


def _bring_container(lab: Lab, b: Broken, runtime: Runtime, image: str | None) -> None:
    if b.why == "stopped":
        runtime.node_action(lab.topo.name, b.node, "start")
    elif b.why == "missing":
        if image is None and lab_image(lab) is None:
            raise LabError(f"node {b.node!r}: its container is gone and the lab's image is unknown",
                           hint=f"lab down {lab.topo.name}; lab up FILE")
        runtime.create_node(lab.topo.name, lab.plan.node(b.node), image or lab_image(lab) or "", lab.dir.node(b.node))


def _with_node(plan: Plan, node: NodePlan) -> Plan:
    return replace(plan, nodes=tuple(node if n.name == node.name else n for n in plan.nodes))


def _start_daemons(lab: Lab, node: NodePlan, pair: ha.StandbyPair | None, active: bool | None, runtime: Runtime,
                   connect: Connect, dataplane: str, swan: dict[str, SwanctlConfig]) -> None:
    """The plan's daemons (charon, or starter for a legacy BYO site, with the config of the node's role; FRR)."""
    byo = byo_from_state(lab.topo, lab.dir.root / "nodes")
    if node.name in byo:
        pipeline.start_node(Stage(lab, runtime, connect), node, [ByoFeature(byo)])
        if byo[node.name].format == "swanctl":
            load_byo(runtime, lab.topo.name, byo[node.name])
        return
    pipeline.start_node_daemons(lab, node, runtime, connect, faults.configs_for(lab, node.name, swan, active),
                                dataplane)  # its main charon and each route-based tunnel's own


def _reapply_link_faults(lab: Lab, node: str, runtime: Runtime) -> None:
    active = read_faults(lab.dir.root)
    for f in active:
        if f.node == node and f.kind == "link-down":
            runtime.set_link(lab.plan, node, f.iface or "", False)
    if any(f.node == node and f.kind == "loss" for f in active):
        load_loss(lab, runtime, node, active)


def expected_now(lab: Lab, runtime: Runtime) -> dict[str, list[tuple[str, list[str]]]]:
    """pipeline.expected_now, on running nodes only."""
    running = {n.node for n in runtime.list_nodes(lab.topo.name) if n.status == "running"}
    return {n: w for n, w in pipeline.expected_now(lab).items() if n in running and w}


def wait_tunnels(lab: Lab, runtime: Runtime, connect: Connect, timeout: float, healed: Sequence[str] = ()) -> None:
    """Every expected tunnel up (or ControlError), then the healed nodes' BGP sessions for a while (lab/routing:
    a session that stays down is `lab inspect`'s to show, not a failed heal)."""
    expected = by_unit(expected_now(lab, runtime), tunnel_units.ifaces_of(lab))  # route-based: own charons
    with pipeline.open_controls(lab, list(expected), connect) as controls:
        wait_established(controls, expected, timeout, lambda node: lab.dir.log_tail(node, 200))
    routing_run.settle(lab, runtime, list(healed))
