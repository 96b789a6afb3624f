"""High availability of gateway instances: the agents that make failover happen, and planned moves.

Active-standby: both instance containers run charon; the standby has the active's config loaded with
start_action = none. The active holds the public IP and the floating inside address (.4) that VNet hosts
route via. An agent in each instance (lab/probes/ha_agent.py) watches the floating address while its role
file says "standby" and takes over when it stops answering. Active-active: an agent on each VNet host
keeps only live instances in its ECMP default route. Pipeline level: no docker, vici or scapy here.
"""

from __future__ import annotations

import json
import time
from contextlib import suppress
from dataclasses import dataclass, replace
from ipaddress import IPv4Interface
from pathlib import Path

from lab import core, tunnel_units
from lab.azure import facts
from lab.core import Connect, Lab
from lab.errors import ControlError, LabError, RuntimeBackendError
from lab.ha.standby import ROLE_FILE, standby_config, standby_configs, takeover_children
from lab.hooks import Feature, Stage
from lab.node_agent import NodeAgent
from lab.plan import gateway_inside_ip, standby_name
from lab.plan_types import NodePlan
from lab.render.swanctl import SwanctlConfig
from lab.render.tunnel_ifaces import container_of
from lab.runtime.base import Runtime
from lab.timing import time_scale
from lab.topology.model import Gateway

PID_FILE = "ha-agent.pid"
NODE_AGENT = NodeAgent(Path(__file__).parents[1] / "probes" / "ha_agent.py", "ha-spec.json", PID_FILE)
AGENT, SPEC = NODE_AGENT.script, f"/lab/{NODE_AGENT.spec}"
EVENTS_FILE = "ha-events.jsonl"
WATCH_INTERVAL_S = 0.2  # ha_timing fast: the standby pings the active every 200 ms ...
WATCH_MISSES = 3  # ... and takes over after 3 misses (0.6 s); planned moves take over at once
PLANNED = "standby-planned"  # role of a standby whose active drains for planned maintenance (ha_timing azure)
HOP_INTERVAL_S = 0.1  # VNet host: ping each next hop every 100 ms ...
HOP_MISSES = 4  # ... and drop it after 0.4 s of silence


def scaled_misses(misses: int) -> int:
    """On a slow machine (LAB_TIME_SCALE, e.g. the emulated kernel-test guest) a node stalls for longer than
    these windows without being dead: the agents wait proportionally longer before they act."""
    return max(misses, round(misses * time_scale()))


@dataclass(frozen=True)
class Watch:
    """How a standby watches its active: probe interval, and misses before it takes over."""

    interval_s: float
    misses: int  # unplanned: the active stopped answering
    planned_misses: int  # planned: the active drained on purpose (0: the move takes over at once)

    def window_s(self, planned: bool) -> tuple[float, float]:
        """When the takeover happens after the active stops answering: M misses -> (M*I, (M+1)*I]."""
        m = self.planned_misses if planned else self.misses
        return m * self.interval_s, (m + 1) * self.interval_s

    def agent_window_s(self, planned: bool) -> tuple[float, float]:
        """window_s as the node's agent applies it: with its misses scaled for a slow machine (scaled_misses).
        What waits for a takeover waits this long (in the QEMU guest the planned 11 misses become 66)."""
        return replace(self, misses=scaled_misses(self.misses),
                       planned_misses=scaled_misses(self.planned_misses)).window_s(planned)


def watch_of(gw: Gateway) -> Watch:
    if gw.ha_timing == "fast":
        return Watch(WATCH_INTERVAL_S, WATCH_MISSES, 0)
    return Watch(facts.HEALTH_PROBE_INTERVAL_S, facts.HEALTH_MISSES_UNPLANNED, facts.HEALTH_MISSES_PLANNED)


@dataclass(frozen=True)
class StandbyPair:
    """An active-standby gateway: its two instances and what moves between them."""

    gateway: str
    nodes: tuple[str, str]  # (<gw>-0, <gw>-1)
    take: tuple[tuple[str, str], ...]  # (iface, address/prefix) the active holds
    peer: str  # the floating inside address the standby watches
    watch: Watch = Watch(WATCH_INTERVAL_S, WATCH_MISSES, 0)


def standby_pairs(lab: Lab) -> list[StandbyPair]:
    out = []
    for g, gw in sorted(lab.topo.gateways.items()):
        standby = standby_name(g, gw)
        if standby is None:
            continue
        inside = [("eth1", str(IPv4Interface(f"{gateway_inside_ip(gw, 0, k)}/{n.prefixlen}")))
                  for k, n in enumerate(gw.vnet.address_space)]
        take = (("eth0", f"{gw.public_ips[0]}/24"), *inside)
        out.append(StandbyPair(g, (f"{g}-0", standby), take, str(gateway_inside_ip(gw, 0)), watch_of(gw)))
    return out


def ecmp_hosts(lab: Lab) -> list[tuple[str, list[str]]]:
    """(host, its next hops) for every host with an ECMP default route: the VNet hosts of an active-active
    gateway and the LAN hosts of a site with a device pair (the same agent keeps only live hops)."""
    return [(n.name, [str(h) for h in n.routes[0].via]) for n in lab.plan.nodes
            if n.role == "host" and n.routes and len(n.routes[0].via or ()) > 1]


def role(lab: Lab, node: str) -> str:
    path = lab.dir.node(node) / ROLE_FILE
    return path.read_text().strip() if path.exists() else "active"


def set_role(lab: Lab, node: str, value: str) -> None:
    (lab.dir.node(node) / ROLE_FILE).write_text(value + "\n")


def active_of(lab: Lab, pair: StandbyPair) -> str:
    return next((n for n in pair.nodes if role(lab, n) == "active"), pair.nodes[0])


class HaFeature(Feature):
    """High availability in `lab up`'s stages: once the tunnels are up, the warm standby gets its config and
    every HA agent starts."""

    def running(self, st: Stage, swan: dict[str, SwanctlConfig]) -> None:
        start_agents(st.lab, st.runtime, st.connect, swan=swan)


def start_agents(lab: Lab, runtime: Runtime, connect: Connect, reset_roles: bool = True,
                 swan: dict[str, SwanctlConfig] | None = None) -> None:
    """Load standby configs and (re)start every HA agent; after `up`. `swan`: the lab's rendered trees when
    the caller has them (else they are rendered from the state directory)."""
    swan = core.swanctl_configs(lab) if swan is None else swan
    warm, ifaces = standby_configs(lab.topo, swan), tunnel_units.ifaces_of(lab)
    for pair in standby_pairs(lab):
        live = set(tunnel_units.units(lab, set(pair.nodes), ifaces))  # a cold standby's tunnels: not running
        for unit, cfg in _warm_units(pair, swan, warm).items():
            if unit not in live:
                continue
            ctl = connect(lab.dir.vici_socket(unit))
            try:
                ctl.load(cfg)
            finally:
                ctl.close()
        for i, node in enumerate(pair.nodes):
            if reset_roles:
                set_role(lab, node, "active" if i == 0 else "standby")
            run_agent(lab, runtime, node, "standby", _instance_spec(pair, node, swan, lab, ifaces))
    for host, hops in ecmp_hosts(lab):
        run_agent(lab, runtime, host, "vnet", _host_spec(host, hops))


def _instance_spec(pair: StandbyPair, node: str, swan: dict[str, SwanctlConfig], lab: Lab,
                   ifaces: tunnel_units.Ifaces) -> dict[str, object]:
    """What the node's agent needs to watch its peer and take over: addresses, routes, the commands that start
    a cold standby's tunnel charons (none when they run warm), and the children to initiate."""
    return {"node": node, "role_file": f"/lab/{ROLE_FILE}", "events": f"/lab/{EVENTS_FILE}",
            "start": tunnel_units.cold_start(lab, node, ifaces),
            "peer": pair.peer, "interval": pair.watch.interval_s, "misses": scaled_misses(pair.watch.misses),
            "planned_misses": scaled_misses(pair.watch.planned_misses),
            "take": [list(t) for t in pair.take], "routes": [["0.0.0.0/0", "eth0"]],
            "initiate": _takeover(pair.nodes[0], swan, None)}  # route-based tunnels: on their own charons


def _host_spec(host: str, hops: list[str]) -> dict[str, object]:
    return {"node": host, "hops": hops, "dev": "eth0", "interval": HOP_INTERVAL_S, "misses": scaled_misses(HOP_MISSES),
            "events": f"/lab/{EVENTS_FILE}"}


def pair_with(lab: Lab, node: str) -> StandbyPair | None:
    """The active-standby pair `node` is an instance of (None: not an A/S instance)."""
    return next((p for p in standby_pairs(lab) if node in p.nodes), None)


def as_role(pair: StandbyPair, node: NodePlan, active: bool) -> NodePlan:
    """`node`'s plan in a role: an active instance holds the moving addresses (public IP, floating inside
    address), a standby none of them, whichever instance it is."""
    take = [(iface, IPv4Interface(cidr)) for iface, cidr in pair.take]
    ifaces = []
    for i in node.ifaces:
        own = tuple(a for a in i.addresses if (i.name, a) not in take)
        moving = tuple(a for iface, a in take if iface == i.name) if active else ()
        ifaces.append(replace(i, addresses=own + moving))
    return replace(node, ifaces=tuple(ifaces))


def start_agent(lab: Lab, runtime: Runtime, node: str) -> bool:
    """(Re)start one node's agent as its role file says (roles untouched); False: the node has none."""
    pair = pair_with(lab, node)
    if pair is not None:
        spec = _instance_spec(pair, node, core.swanctl_configs(lab), lab, tunnel_units.ifaces_of(lab))
        run_agent(lab, runtime, node, "standby", spec)
        return True
    hops = dict(ecmp_hosts(lab)).get(node)
    if hops is not None:
        run_agent(lab, runtime, node, "vnet", _host_spec(node, hops))
        return True
    return False


def take_over_now(lab: Lab, runtime: Runtime, node: str) -> None:
    """The agent's own takeover (addresses, gratuitous ARP, initiate) run once on `node`."""
    res = runtime.exec(lab.topo.name, node, ["python3", AGENT, "takeover", SPEC], timeout=30)
    if not res.ok:
        raise RuntimeBackendError(f"node {node!r}: takeover failed: {res.output.strip()[-300:]}",
                                  hint=f"lab logs {node}")


def agent_alive(lab: Lab, runtime: Runtime, node: str) -> bool:
    res = runtime.exec(lab.topo.name, node, ["sh", "-c", f"kill -0 $(cat /lab/{PID_FILE})"], timeout=5)
    return res.ok


def _warm_units(pair: StandbyPair, swan: dict[str, SwanctlConfig], warm: dict[str, SwanctlConfig]) \
        -> dict[str, SwanctlConfig]:
    """The standby's charon units and their quiet configs: its main charon, and each route-based tunnel's
    charon mirroring the active's (lab/render/tunnel_ifaces.py)."""
    return warm_units(pair, swan, warm[pair.nodes[1]], pair.nodes[1])


def warm_units(pair: StandbyPair, swan: dict[str, SwanctlConfig], warm_main: SwanctlConfig, node: str) \
        -> dict[str, SwanctlConfig]:
    """Quiet configs for `node` as a standby of `pair` (either instance): its main charon's `warm_main` and
    each route-based tunnel's, mirrored from the rendered active (<gw>-0)."""
    active = pair.nodes[0]
    out = {node: warm_main}
    for unit, cfg in swan.items():
        if container_of(unit) == active and unit != active:
            out[node + unit[len(active):]] = standby_config(cfg)
    return out


def _takeover(active: str, swan: dict[str, SwanctlConfig], warm: SwanctlConfig | None) -> list[list[str]]:
    """[child, ike] to initiate on the main charon, [child, ike, vici uri] on a tunnel's own charon."""
    out = [list(c) for c in takeover_children(swan.get(active) or warm or SwanctlConfig())]
    for unit, cfg in sorted(swan.items()):
        if container_of(unit) == active and unit != active:
            uri = f"unix:///lab/{unit.split('/', 1)[1]}/run/charon.vici"
            out += [[child, ike, uri] for child, ike in takeover_children(cfg)]
    return out


def run_agent(lab: Lab, runtime: Runtime, node: str, mode: str, spec: dict[str, object]) -> None:
    NODE_AGENT.start(lab, runtime, node, mode, spec)


def stop_agent(lab: Lab, runtime: Runtime, node: str) -> None:
    NODE_AGENT.stop(lab, runtime, node)


def standby_problems(lab: Lab, runtime: Runtime) -> list[str]:
    """Why an active-standby gateway could not fail over now: an instance not running, or its agent gone."""
    running = _running(lab, runtime)
    out = []
    for node in (n for pair in standby_pairs(lab) for n in pair.nodes):
        if node not in running:
            out.append(f"{node} is not running")
        elif not runtime.exec(lab.topo.name, node, ["sh", "-c", f"kill -0 $(cat /lab/{PID_FILE})"], timeout=5).ok:
            out.append(f"{node}: no HA agent runs")
    return out


def pair_of(lab: Lab, gateway: str) -> StandbyPair | None:
    if gateway not in lab.topo.gateways:
        raise LabError(f"lab failover {gateway}: no gateway {gateway!r} in lab {lab.topo.name!r}",
                       hint=f"gateways: {', '.join(sorted(lab.topo.gateways))}")
    return next((p for p in standby_pairs(lab) if p.gateway == gateway), None)


def planned_move(lab: Lab, pair: StandbyPair, runtime: Runtime, connect: Connect) -> tuple[str, str]:
    """Planned failover: the old active says DELETE and gives up the addresses; the standby takes them,
    announces them and initiates (swanctl over vici). ha_timing fast: the takeover runs at once; azure: the
    standby's agent confirms the drained active over its planned misses first, as Azure's platform does.
    Returns (old, new) active."""
    old = active_of(lab, pair)
    new = pair.nodes[1] if old == pair.nodes[0] else pair.nodes[0]
    if pair.watch.planned_misses:
        set_role(lab, new, PLANNED)
        release(lab, pair, old, runtime, connect)
        _wait_active(lab, new, pair.watch.agent_window_s(planned=True)[1] + 30)
    else:
        set_role(lab, new, "active")
        release(lab, pair, old, runtime, connect)
        res = runtime.exec(lab.topo.name, new, ["python3", AGENT, "takeover", SPEC], timeout=30)
        if not res.ok:
            raise RuntimeBackendError(f"node {new!r}: takeover failed: {res.output.strip()[-300:]}",
                                      hint=f"lab logs {new}")
    set_role(lab, old, "standby")  # only now: watching earlier, it would see .4 gone and take it back
    return old, new


def _wait_active(lab: Lab, node: str, timeout_s: float) -> None:
    """The agent writes "active" to the role file when it has taken over (and initiated)."""
    deadline = time.monotonic() + timeout_s
    while role(lab, node) != "active":
        if time.monotonic() > deadline:
            raise RuntimeBackendError(f"node {node!r}: its HA agent did not take over within {timeout_s:g} s",
                                      hint=f"lab logs {node}; cat the node's ha-events.jsonl")
        time.sleep(0.2)


def release(lab: Lab, pair: StandbyPair, node: str, runtime: Runtime, connect: Connect) -> None:
    """Stop `node` being active: terminate its IKE_SAs (DELETE to the peer), drop the moving addresses.
    Its role is "releasing" (its agent watches nothing) until the caller makes it a standby. A dead
    instance (container not running) has no SAs to terminate and holds no address: nothing more to do."""
    set_role(lab, node, "releasing")
    if node not in _running(lab, runtime):
        return
    for unit in [node] + [i.unit for i in tunnel_units.ifaces_of(lab).get(node, ())]:
        ctl = connect(lab.dir.vici_socket(unit))
        try:
            for sa in {s.name for s in ctl.sas()}:
                with suppress(ControlError):
                    ctl.terminate_ike(sa)
        finally:
            ctl.close()
    for iface, cidr in pair.take:
        runtime.exec(lab.topo.name, node, ["ip", "addr", "del", cidr, "dev", iface], timeout=5)


def _running(lab: Lab, runtime: Runtime) -> set[str]:
    return {n.node for n in runtime.list_nodes(lab.topo.name) if n.status == "running"}


def agent_events(lab: Lab) -> list[dict[str, object]]:
    """Every HA agent event of the lab (JSON lines from each node's state directory)."""
    out: list[dict[str, object]] = []
    for node in lab.plan.nodes:
        path = lab.dir.node(node.name) / EVENTS_FILE
        if path.exists():
            out += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted(out, key=lambda e: float(e["t"]))  # type: ignore[arg-type]

