"""`lab reload NODE`: re-load a node's config from its state directory (where a learner edits it) and
re-initiate its tunnels; a node whose charon died gets it started again first."""

from __future__ import annotations

from contextlib import suppress

from lab import core, daemons, pipeline, tunnel_units
from lab.daemons import CHARON
from lab.device.byo import ByoConfig, byo_from_state, charon_of, load_byo
from lab.errors import ControlError, LabError
from lab.hooks import Stage
from lab.ops import heal
from lab.render.tunnels import Tunnel, tunnels
from lab.routing import run as routing_run
from lab.runtime.base import Runtime


def _load(lab: core.Lab, node: str, runtime: Runtime, byo: dict[str, ByoConfig]) -> None:
    if node in byo:
        load_byo(runtime, lab.topo.name, byo[node])
        return
    res = daemons.reload(runtime, lab.topo.name, node, CHARON)
    if not res.ok:
        raise ControlError(f"node {node!r}: swanctl --load-all refused /lab/swanctl.conf: {res.output.strip()[-300:]}",
                           hint=f"fix {lab.dir.node(node) / 'swanctl.conf'}")


def _reinitiate(lab: core.Lab, t: Tunnel, connect: core.Connect, byo: dict[str, ByoConfig],
                timeout: float) -> str:
    """From the end that initiates (a BYO site's own start_action does it on its side)."""
    end = t.azure if t.azure.initiates or t.peer.node in byo else t.peer
    ctl = connect(lab.dir.vici_socket(tunnel_units.conn_unit(lab, end.node, end.conn)))  # route-based: its own
    try:
        if any(sa.name == end.conn for sa in ctl.sas()):
            with suppress(ControlError):  # force: the SA is destroyed even when a dead peer never answers
                ctl.terminate_ike(end.conn)
        for child in end.children:
            ctl.initiate(child.name, end.conn, timeout)
    finally:
        ctl.close()
    return f"{end.node}: {end.conn} up"


def _alive(lab: core.Lab, node: str, runtime: Runtime, byo: ByoConfig | None, main: bool,
           ifaces: tunnel_units.Ifaces) -> bool:
    """The node's main charon (where it runs one) and every tunnel charon of it run."""
    if main and not daemons.alive(runtime, lab.topo.name, node, charon_of(byo)):
        return False
    return tunnel_units.alive(runtime, lab, node, ifaces)


def _load_unit(lab: core.Lab, node: str, runtime: Runtime, conf: str, uri: str) -> None:
    res = runtime.exec(lab.topo.name, node, ["swanctl", "--load-all", "--file", conf, "--uri", uri], timeout=20)
    if not res.ok:
        raise ControlError(f"node {node!r}: swanctl --load-all refused {conf}: {res.output.strip()[-300:]}",
                           hint=f"fix {lab.dir.node(node)}{conf.removeprefix('/lab')}")


def reload_node(lab: core.Lab, node: str, runtime: Runtime, connect: core.Connect,
                timeout: float = 15.0) -> list[str]:
    """What was done, one line each. ControlError (with the diagnosis) if a tunnel stays down."""
    try:
        plan = lab.plan.node(node)
    except KeyError:
        raise LabError(f"lab {lab.topo.name!r}: no node {node!r}", hint="lab inspect lists the nodes") from None
    broken = next((b for b in heal.find_broken(lab, runtime) if b.node == node), None)
    if broken is not None:  # its links are gone too: a config reload cannot help, healing does
        raise LabError(f"node {node!r} is {broken.why} (not as `lab up` left it): nothing to reload into",
                       hint=f"lab restore --lab {lab.topo.name} heals it (the lab's supervisor does by itself)")
    byo = byo_from_state(lab.topo, lab.dir.root / "nodes")
    done = []
    ifaces = tunnel_units.ifaces_of(lab)
    main = tunnel_units.needs_main(lab, node, ifaces)
    if not _alive(lab, node, runtime, byo.get(node), main, ifaces):  # any of its charons dead: restart them all
        tunnel_units.stop(runtime, lab, node, ifaces)
        daemons.stop(runtime, lab.topo.name, node, charon_of(byo.get(node)))
        pipeline.start_node(Stage(lab, runtime, connect), plan, pipeline.features(lab, None), only={CHARON.name})
        with pipeline.open_controls(lab, pipeline.control_nodes(lab, {node}), connect):  # each answers on vici
            done.append(f"{node}: charon started")
    if main:
        _load(lab, node, runtime, byo)
    for i in ifaces.get(node, ()):  # each route-based tunnel's own charon, from its own swanctl.conf
        _load_unit(lab, node, runtime, f"{i.dir}/swanctl.conf", f"unix://{i.dir}/run/charon.vici")
    done.append(f"{node}: config re-loaded from {lab.dir.node(node)}")
    for t in tunnels(lab.topo):
        if node in (t.azure.node, t.peer.node):
            done.append(_reinitiate(lab, t, connect, byo, timeout))
    return done + routing_run.restart(lab, runtime, node)  # its FRR, if it runs BGP
