"""The lab pipeline, top to bottom: topology file -> model -> plan -> rendered configs -> runtime ->
control -> status. Each stage takes the previous stage's typed result; nothing here imports docker,
pyroute2, vici or scapy: those arrive as the injected `runtime` and `connect` arguments.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from lab import tunnel_units
from lab.azure import facts
from lab.control.base import IkeSaStatus, VpnControl
from lab.control.wait import diagnose_log, missing, wait_established
from lab.core import Connect, Lab, Progress, load, swanctl_configs
from lab.device.byo import (
    ByoConfig,
    byo_from_state,
    byo_sites,
    load_byo,
    override_files,
    start_legacy,
    wait_legacy_loaded,
    without_byo,
)
from lab.device.diagnose import wait_diagnosed
from lab.errors import BusyError, LabError, RuntimeBackendError
from lab.ha import agents as ha
from lab.ha.standby import fast_dpd_nodes
from lab.lock import lab_lock
from lab.p2s import run as p2s_run
from lab.plan import INTERNET
from lab.plan_types import NodePlan, Plan
from lab.render.connections import expected_children
from lab.render.lab_files import render_files
from lab.render.sa_settings import SaSettings, sa_settings
from lab.render.strongswan_conf import Dataplane
from lab.render.swanctl import SwanctlConfig
from lab.render.tunnel_ifaces import TunnelIface, container_of
from lab.render.tunnels import expected
from lab.routing import run as routing_run
from lab.routing.collect import peer_statuses
from lab.runtime.base import Runtime
from lab.secrets import resolve_keys
from lab.state import LabDir
from lab.status import ChildStatus, LabStatus, NodeStatus, TunnelIfaceStatus, TunnelStatus
from lab.timing import scaled

# A killed container keeps /var/run/charon.pid; after a restart its pid may belong to another process (a tunnel's
# charon), and charon would refuse to start ("already running"): nothing runs the main charon at this point.
CHARON = ["sh", "-c", "rm -f /var/run/charon.pid; exec /usr/lib/ipsec/charon"]
IMAGE_FILE = "image"
CHARON_ENV = {"STRONGSWAN_CONF": "/lab/strongswan.conf"}
STATUS_LOG_LINES = 300  # charon log lines `inspect` reads to say why a tunnel is down
CHARON_PID = "/var/run/charon.pid"


def up(path: Path, home: Path, runtime: Runtime, connect: Connect, image: str,
       dataplane: Dataplane, progress: Progress, timeout: float = 30.0, wait: bool = True) -> LabStatus:
    """Bring a lab up and wait for every tunnel; on any failure remove what was made, then re-raise.
    `wait=False` (training scenarios): leave tunnels to come up, or not, on their own."""
    lab = load(path, home)
    with lab_lock(lab.topo.name):  # a second `lab up` of this name exits 2 here (lab/lock.py)
        return _up_locked(lab, path, runtime, connect, image, dataplane, progress, timeout, wait)


def _up_locked(lab: Lab, path: Path, runtime: Runtime, connect: Connect, image: str,
               dataplane: Dataplane, progress: Progress, timeout: float, wait: bool) -> LabStatus:
    if runtime.list_nodes(lab.topo.name):
        raise BusyError(f"lab {lab.topo.name!r} is already running", hint=f"lab down {lab.topo.name}")
    byo = byo_sites(lab.topo, path.parent)  # sites with their own device config replace the rendered one
    keys = resolve_keys(lab.topo, lab.dir.read_keys())
    p2s_run.prepare(lab, path.parent)  # point-to-site certificates (lab/p2s/creds.py)
    files, swan = render_files(lab.topo, lab.plan, keys, dataplane)
    files, swan = override_files(files, byo, dataplane, fast_dpd_nodes(lab.topo)), without_byo(swan, byo)
    files.update(routing_run.byo_frr_files(lab.topo, path.parent))  # a BYO BGP device's own frr.conf
    ifaces = tunnel_units.ifaces_of(lab)
    units = tunnel_units.units(lab, swan, set(byo), ifaces=ifaces)
    lab.dir.write(path.read_text(), keys, files, [n.name for n in lab.plan.nodes] + units, dataplane)
    (lab.dir.root / IMAGE_FILE).write_text(image + "\n")  # healing re-creates a vanished container from it
    with _rollback_on_error(lab, runtime, progress):
        progress(f"creating {len(lab.plan.nodes)} nodes")
        _parallel(lambda n: runtime.create_node(lab.topo.name, n, image, lab.dir.node(n.name)), lab.plan.nodes)
        progress("wiring links")
        runtime.wire(lab.plan)
        shape_gateways(lab, runtime)
        charon_nodes = [n for n in lab.plan.nodes if n.runs_charon]
        progress(f"starting {len(units)} charons on {len(charon_nodes)} nodes")
        _parallel(lambda n: start_byo_aware(runtime, lab, n, byo, swan, ifaces), charon_nodes)
        with open_controls(lab, units, connect) as controls:
            for cfg in byo.values():  # BYO sites first: the gateways initiate as soon as they are loaded
                load_byo(runtime, lab.topo.name, cfg)
            p2s_run.load_credentials(lab)  # P2S: certificates, CRL, pools; clients load after gateways
            _load_configs(controls, p2s_run.servers(swan, lab), lab.plan)
            _load_configs(controls, p2s_run.client_configs(swan, lab), lab.plan)
            if wait:
                progress("waiting for tunnels")
                wait_diagnosed(lab.topo, controls, p2s_run.expected(expected_sas(swan), lab), scaled(timeout),
                               lab.dir.log_tail, byo, keys)
        if dataplane == "libipsec":
            _parallel(lambda n: _tune_dataplane(runtime, lab.topo.name, n),
                      [n for n in charon_nodes if n.name in units])
        routing_run.start(lab.topo, lab.dir, runtime, [n.name for n in charon_nodes], progress,
                          timeout if wait else None)  # BGP (lab/routing)
        ha.start_agents(lab, runtime, connect)
    return status(lab, runtime, connect, dataplane)


def gateway_caps(lab: Lab) -> list[tuple[str, str, int]]:
    """(gateway instance, its Internet-facing interface, its SKU's aggregate Mbps) for each instance."""
    caps = []
    for n in lab.plan.nodes:
        if n.role == "gateway" and n.group in lab.topo.gateways:
            iface = next(i.name for i in n.ifaces if i.segment == INTERNET)
            caps.append((n.name, iface, facts.SKUS[lab.topo.gateways[n.group].sku].aggregate_mbps))
    return caps


def shape_gateways(lab: Lab, runtime: Runtime, capped: bool = True) -> None:
    """Every tunnel of an instance crosses its Internet link: HTB there is the SKU's shared aggregate cap.
    `capped=False` removes it (`lab bench` measures the raw tunnel that way)."""
    for node, iface, mbps in gateway_caps(lab):
        runtime.shape(lab.topo.name, node, iface, mbps if capped else None)


@contextmanager
def open_controls(lab: Lab, names: Iterable[str], connect: Connect) -> Iterator[dict[str, VpnControl]]:
    """One vici session per named node for one stage; every session opened is closed, also on failure."""
    controls: dict[str, VpnControl] = {}
    try:
        for name in names:
            controls[name] = connect(lab.dir.vici_socket(name))
        yield controls
    finally:
        for c in controls.values():
            c.close()


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


def _load_nftables(runtime: Runtime, lab: str, node: NodePlan) -> None:
    """The node's ruleset (LAN never leaks to the Internet link) goes in before any tunnel can exist."""
    res = runtime.exec(lab, node.name, ["nft", "-f", "/lab/nftables.conf"], timeout=10)
    if not res.ok:
        raise RuntimeBackendError(f"node {node.name!r}: nftables ruleset refused: {res.output.strip()}")


def start_byo_aware(runtime: Runtime, lab: Lab, node: NodePlan, byo: dict[str, ByoConfig],
                    swan: dict[str, SwanctlConfig], ifaces: tunnel_units.Ifaces) -> None:
    """The node's tunnel interfaces and charons, then its main charon (not on a rendered site whose every
    tunnel has its own), except a legacy ipsec.conf site, where strongswan-starter starts it."""
    cfg = byo.get(node.name)
    if cfg is None or cfg.format == "swanctl":
        start_charons(runtime, lab, node, ifaces, tunnel_units.needs_main(lab, node.name, swan, set(byo), ifaces))
        return
    _load_nftables(runtime, lab.topo.name, node)
    said = start_legacy(runtime, lab.topo.name, node.name, cfg.sources)
    wait_legacy_loaded(runtime, lab.topo.name, node.name, sum(len(c.children) for c in cfg.conns()), said)


def start_charons(runtime: Runtime, lab: Lab, node: NodePlan, ifaces: tunnel_units.Ifaces, main: bool = True) -> None:
    """nftables, the tunnel interfaces with their charons, and (if `main`) the node's main charon."""
    _load_nftables(runtime, lab.topo.name, node)
    tunnel_units.setup(runtime, lab, node.name, ifaces)
    tunnel_units.start(runtime, lab, node.name, ifaces)
    if main:
        runtime.exec(lab.topo.name, node.name, CHARON, detach=True, env=CHARON_ENV)


def start_node_charon(lab: Lab, node: NodePlan, runtime: Runtime, connect: Connect,
                      swan: dict[str, SwanctlConfig], dataplane: str = "libipsec") -> None:
    """Start a node's charons and load their configs as `up` does (for `lab fault charon-restart`/restore)."""
    ifaces = tunnel_units.ifaces_of(lab)
    main = tunnel_units.needs_main(lab, node.name, swan, ifaces=ifaces)
    start_charons(runtime, lab, node, ifaces, main)
    with open_controls(lab, tunnel_units.units(lab, swan, nodes={node.name}), connect) as controls:
        if main:
            p2s_run.load_credentials(lab, {node.name})
        for unit, ctl in controls.items():
            if unit in swan:
                ctl.load(swan[unit])
    if dataplane == "libipsec" and main:
        _tune_dataplane(runtime, lab.topo.name, node)


def _tune_dataplane(runtime: Runtime, lab: str, node: NodePlan) -> None:
    """libipsec's ipsec0 drops bursts at its default 500-packet TX queue (measured: 10000 removes it)."""
    runtime.exec(lab, node.name, ["ip", "link", "set", "ipsec0", "txqueuelen", "10000"], timeout=10)


def restart_charons(lab: Lab, runtime: Runtime, connect: Connect, dataplane: Dataplane, names: list[str],
                    timeout: float = 30.0) -> None:
    """Stop charon on `names` (lab-rendered nodes: not a BYO site or a warm standby), start it again with the
    same config and wait for its tunnels. New sockets pick up host-wide defaults changed since `up`
    (net.core.rmem_default: `lab bench --tune-host`)."""
    swan = {n: cfg for n, cfg in swanctl_configs(lab).items() if container_of(n) in names}
    nodes = [lab.plan.node(n) for n in names]
    # Initiators first: stopped together, a responder's DELETE makes a stopping initiator re-initiate
    # (close_action = start), and charon 5.9.8 then hung in its shutdown (seen: main thread spinning).
    ifaces = tunnel_units.ifaces_of(lab)
    for initiators in (True, False):
        _parallel(lambda n: stop_charons(runtime, lab, n, ifaces),
                  [n for n in nodes if _initiates(swan, n.name) == initiators])
    _parallel(lambda n: start_charons(runtime, lab, n, ifaces,
                                      tunnel_units.needs_main(lab, n.name, swan, ifaces=ifaces)), nodes)
    with open_controls(lab, tunnel_units.units(lab, swan, nodes=set(names), ifaces=ifaces), connect) as controls:
        p2s_run.load_credentials(lab, set(names))
        _load_configs(controls, swan, lab.plan)
        wait_established(controls, p2s_run.expected(expected_sas(swan), lab), scaled(timeout), lab.dir.log_tail)
    if dataplane == "libipsec":
        _parallel(lambda n: _tune_dataplane(runtime, lab.topo.name, n), nodes)


def _initiates(swan: dict[str, SwanctlConfig], node: str) -> bool:
    return any(cfg.initiates() for unit, cfg in swan.items() if container_of(unit) == node)


def stop_charons(runtime: Runtime, lab: Lab, node: NodePlan, ifaces: tunnel_units.Ifaces, wait_s: float = 5.0) -> None:
    """Stop the node's tunnel charons, then its main one (whatever of them runs)."""
    tunnel_units.stop(runtime, lab, node.name, ifaces)
    _stop_main_charon(runtime, lab.topo.name, node, wait_s)


def _stop_main_charon(runtime: Runtime, lab: str, node: NodePlan, wait_s: float = 5.0) -> None:
    """SIGTERM charon by its pid file (it sends DELETE for each IKE_SA); SIGKILL if still there after wait_s."""
    res = runtime.exec(lab, node.name, ["cat", CHARON_PID], timeout=5)
    pid = res.output.strip()
    if not res.ok or not pid.isdigit():
        return
    runtime.exec(lab, node.name, ["kill", "-TERM", pid], timeout=5)
    deadline = time.monotonic() + wait_s
    signal: str | None = "-KILL"  # then None: nothing left to send
    while runtime.exec(lab, node.name, ["kill", "-0", pid], timeout=5).ok:
        if time.monotonic() > deadline:
            if signal is None:
                raise RuntimeBackendError(f"node {node.name!r}: charon (pid {pid}) survived SIGKILL",
                                          hint=f"lab logs {node.name}")
            runtime.exec(lab, node.name, ["kill", signal, pid], timeout=5)
            deadline, signal = time.monotonic() + wait_s, None
        time.sleep(0.05)
    runtime.exec(lab, node.name, ["rm", "-f", CHARON_PID], timeout=5)  # a killed charon leaves it behind


def _load_configs(controls: dict[str, VpnControl], swan: dict[str, SwanctlConfig], plan: Plan) -> None:
    """Responders first (nodes that initiate nothing, then sites), so every start_action=start finds a
    peer with its config loaded (ResponderOnly sites and VNet-to-VNet initiate too)."""
    def rank(n: str) -> tuple[bool, bool, str]:
        return n in swan and swan[n].initiates(), plan.node(container_of(n)).role == "gateway", n

    order = sorted(controls, key=rank)
    for name in order:
        if name in swan:
            controls[name].load(swan[name])


def expected_sas(swan: dict[str, SwanctlConfig]) -> dict[str, list[tuple[str, list[str]]]]:
    return {
        node: [(conn, [c for c in tree["children"] if expected(c)])  # type: ignore[union-attr]
               for conn, tree in cfg.connections.items() if isinstance(tree.get("children"), dict)]
        for node, cfg in swan.items() if cfg.connections
    }


def down_locked(name: str, home: Path, runtime: Runtime, wait_s: float = 60.0) -> list[str]:
    """`lab down`: waits (up to wait_s) for a `lab up` or heal of this name in progress, then removes."""
    with lab_lock(name, wait_s):
        return down(name, home, runtime)


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
    expected = expected_now(lab)
    swan, found = swanctl_configs(lab), tunnel_units.ifaces_of(lab)
    nodes: list[NodeStatus] = []
    tunnels: list[TunnelStatus] = []
    problems: list[str] = []
    ifaces: list[TunnelIfaceStatus] = []
    settings = sa_settings(lab.topo)
    for n in lab.plan.nodes:
        info = live.get(n.name)
        state, addrs = _live_node(lab, n, info.status if info else "missing", runtime)
        nodes.append(NodeStatus(name=n.name, role=n.role, group=n.group,
                                container=info.container_name if info else "-", state=state, addresses=addrs))
        if state == RESTARTED:
            problems.append(f"node {n.name!r} restarted (its links and daemons are gone): healing; the lab's "
                            f"supervisor heals it within 15 s, `lab restore` heals it now")
        elif n.runs_charon and state == "running":
            for unit in tunnel_units.units(lab, swan, nodes={n.name}, ifaces=found):
                t, p = _unit_status(lab, unit, connect, expected, settings, found.get(n.name, ()))
                tunnels, problems = tunnels + t, problems + p
            ifaces += tunnel_units.iface_status(runtime, lab, n.name, found)
    running = {n for n, i in live.items() if i.status == "running"}
    p2s_clients, p2s_problems = p2s_run.client_status(lab, running)  # point-to-site clients (lab/p2s/run.py)
    bgp = peer_statuses(runtime, lab.topo.name, routing_run.frr_nodes(lab.dir, sorted(running)))
    return LabStatus(name=lab.topo.name, state_dir=str(lab.dir.root), dataplane=dataplane,
                     nodes=nodes, tunnels=tunnels, problems=problems + p2s_problems, p2s_clients=p2s_clients,
                     bgp_peers=bgp, interfaces=ifaces)


RESTARTED = "restarted, healing"


def _live_node(lab: Lab, n: NodePlan, status: str, runtime: Runtime) -> tuple[str, list[str]]:
    """The node's state and the addresses it really holds now (an A/S instance's moving addresses follow the
    role); a running container without the lab's interfaces restarted behind the lab's back."""
    planned = [str(a) for i in n.ifaces for a in i.addresses] + [str(a) for a in n.loopbacks]
    if status != "running":
        return status, planned
    links = runtime.live_links(lab.topo.name, n.name)
    if not all(i.name in links for i in n.ifaces):
        return RESTARTED, []
    ifaces = [i.name for i in n.ifaces] + ["lo"]
    held = [a for name in ifaces for a in links.get(name, []) if not a.startswith("127.")]
    return status, held


def expected_now(lab: Lab) -> dict[str, list[tuple[str, list[str]]]]:
    """What must be up on each node now: the rendered (or BYO) connections, an active-standby gateway's on
    whichever instance is active (after a failover: <gw>-1)."""
    expected = expected_with_byo(lab)
    for pair in ha.standby_pairs(lab):
        wants = expected.pop(pair.nodes[0], [])
        expected.pop(pair.nodes[1], None)
        expected[ha.active_of(lab, pair)] = wants
    return expected


def expected_with_byo(lab: Lab) -> dict[str, list[tuple[str, list[str]]]]:
    """What should be up on each node; a BYO site's connections under the names of the user's own config."""
    expected = expected_children(lab.topo)
    for node, cfg in byo_from_state(lab.topo, lab.dir.root / "nodes").items():
        expected[node] = [(c.name, [ch.name for ch in c.children]) for c in cfg.conns()]
    return expected


def _unit_status(lab: Lab, unit: str, connect: Connect, expected: dict[str, list[tuple[str, list[str]]]],
                 settings: dict[tuple[str, str], SaSettings], node_ifaces: tuple[TunnelIface, ...]) \
        -> tuple[list[TunnelStatus], list[str]]:
    """One charon's tunnels and, for each expected connection not up, why (from its log)."""
    node = container_of(unit)
    mine = {i.unit: i for i in node_ifaces}
    iface = mine[unit].ifname if unit in mine else ""
    try:
        ctl = connect(lab.dir.vici_socket(unit))
        try:
            sas = ctl.sas()
        finally:
            ctl.close()
    except LabError as exc:
        return [], [f"node {node!r}: {exc.message}"]
    moved = {i.conn for i in mine.values()}
    wants = [w for w in expected.get(node, []) if (w[0] == mine[unit].conn if unit in mine else w[0] not in moved)]
    group = lab.plan.node(node).group
    return [_tunnel(node, sa, settings.get((node, sa.name)) or settings.get((f"{group}-0", sa.name)), iface)
            for sa in sas], _why_down(lab, unit, sas, wants)  # A/S standby: its active's settings


def _why_down(lab: Lab, node: str, sas: list[IkeSaStatus], wants: list[tuple[str, list[str]]]) -> list[str]:
    """A line per expected connection that is not up, with the likely cause read from charon's log
    (`node`: a charon unit, the node's own or a tunnel's)."""
    stuck = missing(sas, wants)
    if not stuck:
        return []
    reason = diagnose_log(lab.dir.log_tail(node, STATUS_LOG_LINES))
    cause = f": {reason}" if reason else f" (`lab logs {node}` shows charon's log)"
    return [f"node {container_of(node)!r}: {problem}{cause}" for problem in stuck]


def _tunnel(node: str, sa: IkeSaStatus, settings: SaSettings | None = None, interface: str = "") -> TunnelStatus:
    encr = f"{sa.encr_alg}-{sa.encr_keysize}" if sa.encr_keysize else sa.encr_alg
    prop = "/".join(p for p in (encr, sa.integ_alg, sa.prf_alg, sa.dh_group) if p)
    return TunnelStatus(
        node=node, connection=sa.name, state=sa.state, local=sa.local_host, remote=sa.remote_host,
        version=sa.version, ike_proposal=prop, settings=settings, interface=interface,
        children=[
            ChildStatus(name=c.name, state=c.state, spi_in=c.spi_in, spi_out=c.spi_out,
                        encryption=f"{c.encr_alg}-{c.encr_keysize}" if c.encr_keysize else c.encr_alg or "",
                        local_ts=c.local_ts, remote_ts=c.remote_ts, bytes_in=c.bytes_in,
                        bytes_out=c.bytes_out, packets_in=c.packets_in, packets_out=c.packets_out)
            for c in sa.children
        ],
    )
