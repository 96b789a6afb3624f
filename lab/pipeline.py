"""The lab pipeline, top to bottom: topology file -> model -> plan -> rendered configs -> runtime ->
control -> status. Each stage takes the previous stage's typed result; nothing here imports docker,
pyroute2, vici or scapy: those arrive as the injected `runtime` and `connect` arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab.control.base import IkeSaStatus, VpnControl
from lab.control.wait import wait_established
from lab.errors import LabError, RuntimeBackendError
from lab.findings import Finding
from lab.plan import build_plan
from lab.plan_types import NodePlan, Plan
from lab.render.lab_files import render_files
from lab.render.strongswan_conf import Dataplane
from lab.render.swanctl import SwanctlConfig
from lab.runtime.base import Runtime
from lab.secrets import resolve_keys
from lab.state import LabDir
from lab.status import ChildStatus, LabStatus, NodeStatus, TunnelStatus
from lab.topology.load import load_file, load_text
from lab.topology.model import Topology

Connect = Callable[[Path], VpnControl]
Progress = Callable[[str], None]
CHARON = ["/usr/lib/ipsec/charon"]
CHARON_ENV = {"STRONGSWAN_CONF": "/lab/strongswan.conf"}


@dataclass(frozen=True)
class Lab:
    """A loaded lab: its model, plan and state directory (what every command after `up` needs)."""

    topo: Topology
    plan: Plan
    dir: LabDir
    warnings: tuple[Finding, ...] = ()


def load(path: Path, home: Path) -> Lab:
    topo, found = load_file(path)
    return Lab(topo, build_plan(topo), LabDir.of(home, topo.name), tuple(found))


def load_running(name: str, home: Path) -> Lab:
    """A lab from its state directory copy of the topology (as it was brought up)."""
    d = LabDir.of(home, name)
    if not d.topology.exists():
        raise LabError(f"lab {name!r} has no state directory at {d.root}", hint="lab up FILE first; lab down NAME")
    topo, found = load_text(d.topology.read_text(), str(d.topology))
    return Lab(topo, build_plan(topo), d, tuple(found))


def up(path: Path, home: Path, runtime: Runtime, connect: Connect, image: str,
       dataplane: Dataplane, progress: Progress, timeout: float = 30.0) -> LabStatus:
    """Bring a lab up and wait for every tunnel; on any failure remove what was made, then re-raise."""
    lab = load(path, home)
    if runtime.list_nodes(lab.topo.name):
        raise LabError(f"lab {lab.topo.name!r} is already running", hint=f"lab down {lab.topo.name}")
    keys = resolve_keys(lab.topo, lab.dir.read_keys())
    files, swan = render_files(lab.topo, lab.plan, keys, dataplane)
    lab.dir.write(path.read_text(), keys, files, [n.name for n in lab.plan.nodes])
    with _rollback_on_error(lab, runtime, progress):
        progress(f"creating {len(lab.plan.nodes)} nodes")
        _parallel(lambda n: runtime.create_node(lab.topo.name, n, image, lab.dir.node(n.name)), lab.plan.nodes)
        progress("wiring links")
        runtime.wire(lab.plan)
        charon_nodes = [n for n in lab.plan.nodes if n.runs_charon]
        progress(f"starting charon on {', '.join(n.name for n in charon_nodes)}")
        _parallel(lambda n: _start_charon(runtime, lab.topo.name, n), charon_nodes)
        controls = {n.name: connect(lab.dir.vici_socket(n.name)) for n in charon_nodes}
        try:
            _load_configs(controls, swan, lab.plan)
            progress("waiting for tunnels")
            wait_established(controls, expected_sas(swan), timeout, lab.dir.log_tail)
        finally:
            for c in controls.values():
                c.close()
        if dataplane == "libipsec":
            _parallel(lambda n: _tune_dataplane(runtime, lab.topo.name, n), charon_nodes)
    return status(lab, runtime, connect, dataplane)


@contextmanager
def _rollback_on_error(lab: Lab, runtime: Runtime, progress: Progress) -> Iterator[None]:
    try:
        yield
    except BaseException:
        progress(f"lab up failed: removing what lab {lab.topo.name!r} made")
        runtime.remove_lab(lab.topo.name)
        raise


def _parallel(fn: Callable[[NodePlan], object], nodes: tuple[NodePlan, ...] | list[NodePlan]) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        for fut in [pool.submit(fn, n) for n in nodes]:
            fut.result()


def _start_charon(runtime: Runtime, lab: str, node: NodePlan) -> None:
    res = runtime.exec(lab, node.name, ["nft", "-f", "/lab/nftables.conf"], timeout=10)
    if not res.ok:
        raise RuntimeBackendError(f"node {node.name!r}: nftables ruleset refused: {res.output.strip()}")
    runtime.exec(lab, node.name, CHARON, detach=True, env=CHARON_ENV)


def _tune_dataplane(runtime: Runtime, lab: str, node: NodePlan) -> None:
    """libipsec's ipsec0 drops bursts at its default 500-packet TX queue (measured: 10000 removes it)."""
    runtime.exec(lab, node.name, ["ip", "link", "set", "ipsec0", "txqueuelen", "10000"], timeout=10)


def _load_configs(controls: dict[str, VpnControl], swan: dict[str, SwanctlConfig], plan: Plan) -> None:
    """Responders (sites) first, so the gateways' start_action=start finds a listening peer at once."""
    order = sorted(controls, key=lambda n: (plan.node(n).role == "gateway", n))
    for name in order:
        if name in swan:
            controls[name].load(swan[name])


def expected_sas(swan: dict[str, SwanctlConfig]) -> dict[str, list[tuple[str, list[str]]]]:
    return {
        node: [(conn, list(tree["children"])) for conn, tree in cfg.connections.items()  # type: ignore[arg-type]
               if isinstance(tree.get("children"), dict)]
        for node, cfg in swan.items()
    }


def down(name: str, home: Path, runtime: Runtime) -> list[str]:
    """Remove everything a lab made (found by label and namespace name) and its state directory."""
    removed = runtime.remove_lab(name)
    d = LabDir.of(home, name)
    if d.root.exists():
        d.remove()
        removed.append(f"state directory {d.root}")
    return removed


def running_labs(runtime: Runtime) -> list[str]:
    names = {n.lab for n in runtime.list_nodes(None)}
    names |= {ns.removeprefix("lab-") for ns in runtime.lab_namespaces()}
    return sorted(names)


def status(lab: Lab, runtime: Runtime, connect: Connect, dataplane: str) -> LabStatus:
    """Nodes from the runtime (labels), tunnels from each charon over vici. Never shows a PSK."""
    live = {n.node: n for n in runtime.list_nodes(lab.topo.name)}
    nodes, tunnels, problems = [], [], []
    for n in lab.plan.nodes:
        info = live.get(n.name)
        addrs = [str(a) for i in n.ifaces for a in i.addresses] + [str(a) for a in n.loopbacks]
        nodes.append(NodeStatus(name=n.name, role=n.role, group=n.group,
                                container=info.container_name if info else "-",
                                state=info.status if info else "missing", addresses=addrs))
        if n.runs_charon and info and info.status == "running":
            try:
                ctl = connect(lab.dir.vici_socket(n.name))
                try:
                    tunnels += [_tunnel(n.name, sa) for sa in ctl.sas()]
                finally:
                    ctl.close()
            except LabError as exc:
                problems.append(f"node {n.name!r}: {exc.message}")
    return LabStatus(name=lab.topo.name, state_dir=str(lab.dir.root), dataplane=dataplane,
                     nodes=nodes, tunnels=tunnels, problems=problems)


def _tunnel(node: str, sa: IkeSaStatus) -> TunnelStatus:
    encr = f"{sa.encr_alg}-{sa.encr_keysize}" if sa.encr_keysize else sa.encr_alg
    prop = "/".join(p for p in (encr, sa.integ_alg, sa.prf_alg, sa.dh_group) if p)
    return TunnelStatus(
        node=node, connection=sa.name, state=sa.state, local=sa.local_host, remote=sa.remote_host,
        version=sa.version, ike_proposal=prop,
        children=[
            ChildStatus(name=c.name, state=c.state, spi_in=c.spi_in, spi_out=c.spi_out,
                        encryption=f"{c.encr_alg}-{c.encr_keysize}" if c.encr_keysize else c.encr_alg,
                        local_ts=c.local_ts, remote_ts=c.remote_ts, bytes_in=c.bytes_in,
                        bytes_out=c.bytes_out, packets_in=c.packets_in, packets_out=c.packets_out)
            for c in sa.children
        ],
    )
