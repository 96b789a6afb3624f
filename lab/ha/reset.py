"""`lab reset GW [--instance N]`: Azure's gateway reset. It reboots one instance and re-applies its
configuration; the gateway's public IP addresses are kept.

Azure: an active-active gateway resets its primary instance (instance 0), the same one when repeated, the other
on request; an active-standby gateway resets its active instance, so the gateway fails over to the standby
first. Pipeline level: the runtime and vici sessions are passed in.
"""

from __future__ import annotations

import json
from dataclasses import replace

from lab import core, pipeline
from lab.core import Connect, Lab
from lab.errors import LabError, TopologyError
from lab.ha import agents as ha
from lab.ha.standby import standby_configs
from lab.ops import faults, heal
from lab.plan_types import Iface, Plan
from lab.runtime.base import Runtime

PRIMARY = 0


def reset(lab: Lab, gateway: str, instance: int | None, runtime: Runtime, connect: Connect, dataplane: str,
          timeout: float = 60.0) -> str:
    """Reset one instance as Azure does; returns what was done."""
    pair = ha.pair_of(lab, gateway)  # raises for an unknown gateway
    if pair is None:
        node = _instance(lab, gateway, PRIMARY if instance is None else instance)
        _no_fault(lab, node)
        _reboot(lab, node, runtime, connect, dataplane)
        faults.kick_peers(lab, {node}, connect, core.swanctl_configs(lab), runtime)
        heal.wait_tunnels(lab, runtime, connect, timeout)
        return f"reset {node} (active-active: its tunnels re-established, public IP kept)"
    if instance is not None:
        raise TopologyError(f"lab reset {gateway} --instance {instance}: an active-standby gateway resets its "
                            "active instance", hint=f"lab reset {gateway} (it fails over to the standby first)")
    _no_fault(lab, ha.active_of(lab, pair))
    old, new = ha.planned_move(lab, pair, runtime, connect)
    _reboot_as_standby(lab, pair, old, runtime, connect, dataplane)
    return f"reset {old}: failed over to {new} (public IP kept), {old} rebooted as the standby"


def _instance(lab: Lab, gateway: str, index: int) -> str:
    names = [n.name for n in lab.plan.nodes if n.group == gateway and n.role == "gateway"]
    node = f"{gateway}-{index}"
    if node not in names:
        raise TopologyError(f"lab reset {gateway} --instance {index}: no such instance",
                            hint=f"instances: {', '.join(str(i) for i in range(len(names)))}")
    return node


def _reboot(lab: Lab, node: str, runtime: Runtime, connect: Connect, dataplane: str) -> None:
    """Stop the container (charon's SIGTERM first: DELETE to the peers), start it, wire it as planned (same
    addresses), start charon with its configuration."""
    _restart_container(lab, node, runtime)
    pipeline.start_node_daemons(lab, lab.plan.node(node), runtime, connect, core.swanctl_configs(lab), dataplane)


def _no_fault(lab: Lab, node: str) -> None:
    if any(f.node == node for f in faults.read_faults(lab.dir.root)):
        raise LabError(f"lab reset: node {node!r} has an active fault", hint=f"lab restore {node} first")


def _restart_container(lab: Lab, node: str, runtime: Runtime, plan: Plan | None = None) -> None:
    pipeline.stop_node(runtime, lab, lab.plan.node(node))  # charon's SIGTERM first: DELETE to the peers
    runtime.node_action(lab.topo.name, node, "stop")
    runtime.node_action(lab.topo.name, node, "start")
    runtime.rewire_node(plan or lab.plan, node)


def without_addresses(plan: Plan, node: str, drop: set[tuple[str, str]]) -> Plan:
    """The plan with `node` wired without the (iface, address/prefix) pairs in `drop` (pure)."""
    def iface(i: Iface) -> Iface:
        return replace(i, addresses=tuple(a for a in i.addresses if (i.name, str(a)) not in drop))

    nodes = tuple(replace(n, ifaces=tuple(iface(i) for i in n.ifaces)) if n.name == node else n for n in plan.nodes)
    return replace(plan, nodes=nodes)


def _reboot_as_standby(lab: Lab, pair: ha.StandbyPair, node: str, runtime: Runtime, connect: Connect,
                       dataplane: str) -> None:
    """The old active comes back as the warm standby: without the moving addresses, with the quiet config,
    its agent watching the new active."""
    # The plan gives <gw>-0 the addresses the new active now holds: wire it without them, so no neighbour
    # ever learns the rebooted instance's MAC for them.
    _restart_container(lab, node, runtime, without_addresses(lab.plan, node, set(pair.take)))
    swan = core.swanctl_configs(lab)
    warm = standby_configs(lab.topo, swan)[pair.nodes[1]]
    pipeline.start_node_daemons(lab, lab.plan.node(node), runtime, connect, ha.warm_units(pair, swan, warm, node),
                                dataplane)  # its main charon's and its tunnels' own quiet configs
    ha.set_role(lab, node, "standby")
    (lab.dir.node(node) / ha.PID_FILE).unlink(missing_ok=True)  # the old agent died with the container
    spec = json.loads((lab.dir.node(node) / ha.NODE_AGENT.spec).read_text())
    ha.run_agent(lab, runtime, node, "standby", spec)
