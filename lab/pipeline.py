"""The lab pipeline, top to bottom: topology file -> model -> plan -> rendered configs -> runtime ->
control -> status. Each stage takes the previous stage's typed result; nothing here imports docker,
pyroute2, vici or scapy: those arrive as the injected `runtime` and `connect` arguments.

`up` is its list of stages. Features (bring-your-own devices, point-to-site, HA) are not called from
inside a stage: each plugs into the stages' named hooks (lab/hooks.py), listed once in `features`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from lab import daemons, tunnel_units
from lab.acquire import AcquireFeature
from lab.azure import facts
from lab.control.base import IkeSaStatus, VpnControl
from lab.control.wait import diagnose_log, missing, wait_established
from lab.core import Connect, Lab, Progress, load
from lab.device.byo import ByoFeature, byo_from_state, byo_settings
from lab.device.diagnose import wait_diagnosed
from lab.errors import BusyError, LabError, RuntimeBackendError
from lab.ha import agents as ha
from lab.ha.agents import HaFeature
from lab.hooks import Expected, Feature, Rendered, Stage
from lab.lock import lab_lock
from lab.p2s.run import P2sFeature
from lab.plan import INTERNET
from lab.plan_types import NodePlan, Plan
from lab.render.connections import expected_children
from lab.render.lab_files import render_files
from lab.render.sa_settings import SaSettings, sa_settings
from lab.render.strongswan_conf import Dataplane
from lab.render.swanctl import SwanctlConfig
from lab.render.tunnel_ifaces import TunnelIface, container_of
from lab.render.tunnels import expected as child_expected
from lab.routing.run import RoutingFeature
from lab.runtime.base import NodeInfo, Runtime
from lab.secrets import resolve_keys
from lab.state import LabDir
from lab.status import ChildStatus, LabStatus, NodeStatus, TunnelStatus
from lab.timing import scaled
from lab.tunnel_units import TunnelsFeature

IMAGE_FILE = "image"
STATUS_LOG_LINES = 300  # charon log lines `inspect` reads to say why a tunnel is down
FIREWALL = ["nft", "-f", "/lab/nftables.conf"]  # rendered for every node that runs charon


def up(path: Path, home: Path, runtime: Runtime, connect: Connect, image: str,
       dataplane: Dataplane, progress: Progress, timeout: float = 30.0, wait: bool = True,
       lab: Lab | None = None) -> LabStatus:
    """Bring a lab up and wait for every tunnel; on any failure remove what was made, then re-raise.
    `wait=False` (training scenarios): leave tunnels to come up, or not, on their own. `lab`: the Lab
    already loaded from `path` (the file is then not parsed again)."""
    lab = lab or load(path, home)
    with lab_lock(lab.topo.name):  # a second `lab up` of this name exits 2 here (lab/lock.py)
        if runtime.list_nodes(lab.topo.name):
            raise BusyError(f"lab {lab.topo.name!r} is already running", hint=f"lab down {lab.topo.name}")
        st = Stage(lab, runtime, connect, progress, timeout if wait else None)
        feats = features(lab, path.parent)  # a BYO site's files are read here, before anything is rendered
        built = render(st, feats, dataplane)
        found = tunnel_units.ifaces_for(lab, dataplane)  # route-based: each tunnel's charon its own directory
        units = [i.unit for ifaces in found.values() for i in ifaces]  # a cold standby's too
        lab.dir.write(path.read_text(), built.keys, built.files, [n.name for n in lab.plan.nodes] + units, dataplane)
        (lab.dir.root / IMAGE_FILE).write_text(image + "\n")  # healing re-creates a vanished container from it
        with _rollback_on_error(lab, runtime, progress):
            create(lab, runtime, image, progress)
            progress("wiring links")
            runtime.wire(lab.plan)
            shape_gateways(lab, runtime)
            start_daemons(st, feats)
            with open_controls(lab, control_nodes(lab), connect) as controls:
                load_configs(st, controls, built.swan, feats)
                if wait:
                    progress("waiting for tunnels")
                    wait_tunnels(st, controls, built, feats)
            tune_dataplane(lab, runtime, dataplane, control_nodes(lab))
            for f in feats:  # agents stage: what runs on top of the tunnels (BGP, HA agents)
                f.running(st, built.swan)
        return status(lab, runtime, connect, dataplane, feats)


def features(lab: Lab, source: Path | None) -> list[Feature]:
    """The features plugged into the stages, in the order their hooks run. `source`: the topology file's
    directory at `up` (user files sit beside it); None for a running lab (read back from its state)."""
    return [ByoFeature.of(lab, source), TunnelsFeature(), P2sFeature(source), RoutingFeature(source), HaFeature(),
            AcquireFeature()]


def render(st: Stage, feats: Sequence[Feature], dataplane: Dataplane) -> Rendered:
    """Render stage: keys, every node's files and the trees loaded over vici, then each feature's part."""
    keys = resolve_keys(st.lab.topo, st.lab.dir.read_keys())
    files, swan = render_files(st.lab.topo, st.lab.plan, keys, dataplane)
    out = Rendered(keys, files, swan, dataplane)
    for f in feats:
        out = f.render(st, out)
    return out


def running_configs(st: Stage, feats: Sequence[Feature]) -> dict[str, SwanctlConfig]:
    """The trees a running lab loads over vici, rendered again from its state directory (restarts need
    them). They do not depend on the data plane (only strongswan.conf does)."""
    return render(st, feats, "libipsec").swan


def create(lab: Lab, runtime: Runtime, image: str, progress: Progress) -> None:
    """Create stage: every node's container, with its state directory mounted at /lab."""
    progress(f"creating {len(lab.plan.nodes)} nodes")
    _parallel(lambda n: runtime.create_node(lab.topo.name, n, image, lab.dir.node(n.name)), lab.plan.nodes)


def control_nodes(lab: Lab, nodes: set[str] | None = None) -> list[str]:
    """The charons the lab controls over vici (of `nodes`, or all): each node's main charon, then each
    route-based tunnel's own (`<node>/tunnels/<conn>`, lab/tunnel_units.py)."""
    return tunnel_units.units(lab, nodes)


def start_daemons(st: Stage, feats: Sequence[Feature]) -> None:
    """Start-daemons stage: on every node that runs any, its firewall, then its daemons in plan order."""
    nodes = [n for n in st.lab.plan.nodes if n.daemons]
    st.progress(f"starting {', '.join(sorted({d for n in nodes for d in n.daemons}))} on "
                f"{', '.join(n.name for n in nodes)}")
    _parallel(lambda n: start_node(st, n, feats), nodes)


def start_node(st: Stage, node: NodePlan, feats: Sequence[Feature], only: Collection[str] | None = None) -> None:
    """One node's firewall and daemons (`only`: just those, the others still run); a feature may start a daemon
    its own way (a legacy BYO site)."""
    if node.runs(daemons.CHARON.name) and (only is None or daemons.CHARON.name in only):
        _load_nftables(st.runtime, st.lab.topo.name, node)
    for daemon in daemons.of(node):
        if only is not None and daemon.name not in only:
            continue
        if not any(f.start_daemon(st, node, daemon) for f in feats):
            daemons.start(st.runtime, st.lab.topo.name, node.name, daemon)


def load_configs(st: Stage, controls: dict[str, VpnControl], swan: dict[str, SwanctlConfig],
                 feats: Sequence[Feature]) -> None:
    """Load stage: the features' part first (credentials, a device's own config), then the lab's trees, the
    nodes that features load last (P2S clients) after all others."""
    for f in feats:
        f.before_load(st, controls)
    last = set().union(*(f.load_last(st) for f in feats))
    _load_in_order(controls, {n: c for n, c in swan.items() if n not in last}, st.lab.plan)
    _load_in_order(controls, {n: c for n, c in swan.items() if n in last}, st.lab.plan)


def expected(st: Stage, swan: dict[str, SwanctlConfig], feats: Sequence[Feature]) -> Expected:
    """The SAs to wait for: every loaded connection's, as the features narrow them."""
    wants = expected_sas(swan)
    for f in feats:
        wants = f.expect(st, wants)
    return wants


def wait_tunnels(st: Stage, controls: dict[str, VpnControl], built: Rendered, feats: Sequence[Feature]) -> None:
    """Wait stage: every expected SA up, or an error that names the likely cause of each stuck tunnel."""
    lab = st.lab
    byo = byo_from_state(lab.topo, lab.dir.root / "nodes")
    wait_diagnosed(lab.topo, controls, expected(st, built.swan, feats), scaled(st.timeout or 0.0), lab.dir.log_tail,
                   byo, built.keys)


def tune_dataplane(lab: Lab, runtime: Runtime, dataplane: str, names: Iterable[str]) -> None:
    """The main charons' ipsec0 (a tunnel's own is tuned by its updown script when its CHILD_SA comes up)."""
    if dataplane == "libipsec":
        mains = [lab.plan.node(n) for n in names if "/" not in n]
        _parallel(lambda n: _tune_dataplane(runtime, lab.topo.name, n), mains)


def start_node_daemons(lab: Lab, node: NodePlan, runtime: Runtime, connect: Connect,
                       swan: dict[str, SwanctlConfig], dataplane: str = "libipsec",
                       feats: Sequence[Feature] | None = None, only: Collection[str] | None = None) -> None:
    """Start one node's daemons (`only`: just those) and load its config as `up` does (`lab fault
    charon-restart`, heal)."""
    feats = features(lab, None) if feats is None else feats
    st = Stage(lab, runtime, connect)
    start_node(st, node, feats, only)
    units = control_nodes(lab, {node.name})  # its main charon and each route-based tunnel's own
    with open_controls(lab, units, connect) as controls:
        load_configs(st, controls, {n: c for n, c in swan.items() if container_of(n) == node.name}, feats)
    tune_dataplane(lab, runtime, dataplane, units)


def restart_daemons(lab: Lab, runtime: Runtime, connect: Connect, dataplane: Dataplane, names: list[str],
                    timeout: float = 30.0) -> None:
    """Stop the daemons on `names` (lab-rendered nodes: not a BYO site or a warm standby), start them again
    with the same config and wait for their tunnels. New sockets pick up host-wide defaults changed since
    `up` (net.core.rmem_default: `lab bench --tune-host`)."""
    feats, st = features(lab, None), Stage(lab, runtime, connect)
    swan = {n: cfg for n, cfg in running_configs(st, feats).items() if container_of(n) in names}
    nodes = [lab.plan.node(n) for n in names]
    # Initiators first: stopped together, a responder's DELETE makes a stopping initiator re-initiate
    # (close_action = start), and charon 5.9.8 then hung in its shutdown (seen: main thread spinning).
    for initiators in (True, False):
        _parallel(lambda n: stop_node(runtime, lab, n),
                  [n for n in nodes if _initiates(swan, n.name) == initiators])
    _parallel(lambda n: start_node(st, n, feats), nodes)
    units = control_nodes(lab, set(names))
    with open_controls(lab, units, connect) as controls:
        load_configs(st, controls, swan, feats)
        wait_established(controls, expected(st, swan, feats), scaled(timeout), lab.dir.log_tail)
    tune_dataplane(lab, runtime, dataplane, units)


def _initiates(swan: dict[str, SwanctlConfig], node: str) -> bool:
    return any(cfg.initiates() for unit, cfg in swan.items() if container_of(unit) == node)


def stop_node(runtime: Runtime, lab: Lab, node: NodePlan) -> None:
    """Stop a node's daemons, last started first (charon: its route-based tunnels' own charons first)."""
    for daemon in reversed(daemons.of(node)):
        if daemon.name == daemons.CHARON.name:
            tunnel_units.stop(runtime, lab, node.name, tunnel_units.ifaces_of(lab))
        daemons.stop(runtime, lab.topo.name, node.name, daemon)


def _load_in_order(controls: dict[str, VpnControl], swan: dict[str, SwanctlConfig], plan: Plan) -> None:
    """Responders first (nodes that initiate nothing, then sites), so every start_action=start finds a
    peer with its config loaded (ResponderOnly sites and VNet-to-VNet initiate too)."""
    def rank(n: str) -> tuple[bool, bool, str]:
        return n in swan and swan[n].initiates(), plan.node(container_of(n)).role == "gateway", n

    order = sorted(controls, key=rank)
    for name in order:
        if name in swan:
            controls[name].load(swan[name])


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


def expected_sas(swan: dict[str, SwanctlConfig]) -> Expected:
    return {
        node: [(conn, [c for c, kid in tree["children"].items()  # type: ignore[union-attr]
                       if child_expected(c, kid)])
               for conn, tree in cfg.connections.items() if isinstance(tree.get("children"), dict)]
        for node, cfg in swan.items() if cfg.connections
    }


def _load_nftables(runtime: Runtime, lab: str, node: NodePlan) -> None:
    """The node's ruleset (LAN never leaks to the Internet link) goes in before any tunnel can exist."""
    res = runtime.exec(lab, node.name, ["nft", "-f", "/lab/nftables.conf"], timeout=10)
    if not res.ok:
        raise RuntimeBackendError(f"node {node.name!r}: nftables ruleset refused: {res.output.strip()}")


def _tune_dataplane(runtime: Runtime, lab: str, node: NodePlan) -> None:
    """libipsec's ipsec0 drops bursts at its default 500-packet TX queue (measured: 10000 removes it)."""
    runtime.exec(lab, node.name, ["ip", "link", "set", "ipsec0", "txqueuelen", "10000"], timeout=10)


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


def status(lab: Lab, runtime: Runtime, connect: Connect, dataplane: str,
           feats: Sequence[Feature] | None = None) -> LabStatus:
    """Nodes from the runtime (labels), tunnels from each charon over vici, then each feature's part (P2S
    clients, BGP peers). Never shows a PSK."""
    live = {n.node: n for n in runtime.list_nodes(lab.topo.name)}
    expected, found = expected_now(lab), tunnel_units.ifaces_of(lab)
    nodes: list[NodeStatus] = []
    tunnels: list[TunnelStatus] = []
    problems: list[str] = []
    settings = sa_settings(lab.topo) | byo_settings(lab.topo, byo_from_state(lab.topo, lab.dir.root / "nodes"))

    def one(n: NodePlan) -> tuple[NodeStatus, list[TunnelStatus], list[str]]:
        return _node_status(lab, n, live.get(n.name), runtime, connect, (expected, settings, found))

    with ThreadPoolExecutor(max_workers=tunnel_units.STATUS_WORKERS) as pool:  # rows in plan order all the same
        for node, t, p in pool.map(one, lab.plan.nodes):
            nodes.append(node)
            tunnels += t
            problems += p
    running = {n for n, i in live.items() if i.status == "running"}
    out = LabStatus(name=lab.topo.name, state_dir=str(lab.dir.root), dataplane=dataplane,
                    nodes=nodes, tunnels=tunnels, problems=problems)
    st = Stage(lab, runtime, connect)
    for f in features(lab, None) if feats is None else feats:
        out = f.inspect(st, running, out)
    return out


RESTARTED = "restarted, healing"
Wanted = tuple[dict[str, list[tuple[str, list[str]]]], dict[tuple[str, str], SaSettings], tunnel_units.Ifaces]


def _node_status(lab: Lab, n: NodePlan, info: NodeInfo | None, runtime: Runtime, connect: Connect,
                 wanted: Wanted) -> tuple[NodeStatus, list[TunnelStatus], list[str]]:
    """One node's row, its charons' tunnels and what is wrong with it (`wanted`: the connections expected up
    now, every end's settings, the lab's tunnel interfaces)."""
    expected, settings, found = wanted
    state, addrs = _live_node(lab, n, info.status if info else "missing", runtime)
    row = NodeStatus(name=n.name, role=n.role, group=n.group, host=info.host if info else "",
                     container=info.container_name if info else "-", state=state, addresses=addrs)
    if state == RESTARTED:
        return row, [], [f"node {n.name!r} restarted (its links and daemons are gone): healing; the lab's "
                         f"supervisor heals it within 15 s, `lab restore` heals it now"]
    tunnels: list[TunnelStatus] = []
    problems: list[str] = []
    if n.runs(daemons.CHARON.name) and state == "running":
        for unit in tunnel_units.units(lab, nodes={n.name}, ifaces=found):
            t, p = _unit_status(lab, unit, connect, expected, settings, found.get(n.name, ()))
            tunnels, problems = tunnels + t, problems + p
    return row, tunnels, problems


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
