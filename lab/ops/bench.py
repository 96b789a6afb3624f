"""`lab bench`: iperf3 through each tunnel, through all of a gateway's tunnels at once (against the SKU's
aggregate cap), through one tunnel with the cap removed, and over a plain veth, so the cap, the raw libipsec
data plane and the wire show up side by side in one run.

iperf3 runs inside the lab's host containers through `runtime.exec` (never in the host namespace): a server
detached on each site host, clients on the VNet host, `-J` output parsed into models. The one host-wide
change, a bigger `net.core.rmem_default` for charon's UDP socket, happens only with `--tune-host` and is
undone afterwards. Nothing here imports docker, pyroute2, vici or rich.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, computed_field

from lab import core, pipeline
from lab.azure import facts
from lab.errors import ProbeError
from lab.plan import INTERNET, device_names, instance_names
from lab.plan_types import Plan
from lab.render.strongswan_conf import Dataplane
from lab.runtime.base import Runtime
from lab.topology.model import Connection, Topology

Kind = Literal["tunnel", "aggregate", "uncapped", "uncapped-tuned", "veth"]
INHERITED = "inherited"  # no -C: the congestion control the namespace inherits (BBR on these hosts)
BASE_PORT = 5201
PIDFILE = "/tmp/lab-iperf3-{port}.pid"
LISTEN_WAIT_S = 5.0
POLL_S = 0.05
EXEC_SLACK_S = 15  # iperf3 connects, runs -t seconds, then exchanges results
RMEM_DEFAULT = "net/core/rmem_default"
TUNED_RMEM_BYTES = 4 * 1024 * 1024  # measured: charon's UDP 4500 socket stops overflowing (platform notes)


class BenchError(ProbeError):
    """A measurement could not run (iperf3 failed or never listened); exit 2."""


class Flow(BaseModel):
    """One iperf3 client run: receiver goodput (what arrived), sender rate and TCP retransmits."""

    client: str
    server: str
    target: str
    mbps: float
    sender_mbps: float
    retransmits: int
    congestion: str


class Measurement(BaseModel):
    kind: Kind
    label: str  # connection, gateway (aggregate) or "vm1 -> azgw-0"
    congestion: str  # as asked: a name, or "inherited"
    cap_mbps: int | None = None
    flows: list[Flow]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def mbps(self) -> float:
        return round(sum(f.mbps for f in self.flows), 1)


class HostTuning(BaseModel):
    sysctl: str
    before: int
    during: int


class BenchResult(BaseModel):
    lab: str
    seconds: int
    reverse: bool
    loadavg: str  # the machine's load when the bench started: the cores are shared
    measurements: list[Measurement]
    host_tuning: HostTuning | None = None
    notes: list[str] = []

    def figure(self, kind: Kind, congestion: str) -> float | None:
        found = [m.mbps for m in self.measurements if m.kind == kind and m.congestion == congestion]
        return found[0] if found else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ratios(self) -> dict[str, float]:
        """Uncapped tunnel / plain veth, per congestion control: what IPsec in userspace costs here."""
        out = {}
        for cc in dict.fromkeys(m.congestion for m in self.measurements):
            tunnel, veth = self.figure("uncapped", cc), self.figure("veth", cc)
            if tunnel and veth:
                out[cc] = round(tunnel / veth, 4)
        return out


@dataclass(frozen=True)
class BenchPath:
    """Where one iperf3 flow runs: client node -> server node's address, on its own server port."""

    label: str
    gateway: str
    client: str
    server: str
    target: IPv4Address
    port: int
    charons: tuple[str, ...] = ()  # the lab-run charon nodes carrying it (restarted by --tune-host)
    own_device: bool = False  # the far end runs the user's own config: the lab does not restart it


@dataclass(frozen=True)
class BenchOptions:
    seconds: int = 5
    congestions: tuple[str, ...] = ("cubic", INHERITED)
    reverse: bool = False
    tune_host: bool = False
    timeout: float = 30.0


def _far_end(topo: Topology, conn: Connection) -> tuple[dict[str, IPv4Address], list[str], bool]:
    """Hosts behind the far end, its lab-run charon nodes, and whether it runs the user's own config."""
    if conn.site and conn.site in topo.sites:
        site = topo.sites[conn.site]
        own = site.device.config is not None
        return site.hosts, [] if own else device_names(conn.site, site), own
    if conn.peer_gateway and conn.peer_gateway in topo.gateways:
        peer = topo.gateways[conn.peer_gateway]
        return peer.vnet.hosts, instance_names(conn.peer_gateway, peer), False
    return {}, [], False


def bench_paths(topo: Topology) -> tuple[list[BenchPath], list[str]]:
    """One path per connection, first VNet host -> first host behind the far end (a site, or the peer
    gateway's VNet); notes say what was skipped."""
    paths: list[BenchPath] = []
    notes = []
    for cname, conn in sorted(topo.connections.items()):
        gw = topo.gateways[conn.gateway]
        far_hosts, far, own = _far_end(topo, conn)
        if not gw.vnet.hosts or not far_hosts:
            notes.append(f"connection {cname!r}: needs a host on both ends, not measured")
            continue
        server = min(far_hosts)
        paths.append(BenchPath(cname, conn.gateway, min(gw.vnet.hosts), server, far_hosts[server],
                               BASE_PORT + len(paths), (*instance_names(conn.gateway, gw), *far), own))
    return paths, notes


def veth_path(plan: Plan, first: BenchPath, port: int) -> BenchPath:
    """The same VNet host to its gateway's first instance, over their segment: one veth hop, no IPsec.
    The instance's own inside address (its first), which stays with it whatever HA moves."""
    inst = plan.node(first.charons[0])
    inside = next(i for i in inst.ifaces if i.segment != INTERNET)
    return BenchPath(f"{first.client} -> {inst.name}", first.gateway, first.client, inst.name,
                     inside.addresses[0].ip, port)


def parse_iperf(output: str, path: BenchPath) -> Flow:
    """iperf3 -J's summary; its own error (refused, timeout) becomes a BenchError naming the path."""
    where = f"iperf3 {path.client} -> {path.server} ({path.target}:{path.port})"
    try:
        data = json.loads(output)
    except json.JSONDecodeError as exc:
        raise BenchError(f"{where}: no JSON result: {output.strip()[-300:]!r}", hint="lab inspect") from exc
    if data.get("error"):
        raise BenchError(f"{where}: {data['error']}", hint="is the tunnel up? `lab inspect`")
    end = data.get("end", {})
    sent, received = end.get("sum_sent", {}), end.get("sum_received", {})
    return Flow(client=path.client, server=path.server, target=str(path.target),
                mbps=round(received.get("bits_per_second", 0.0) / 1e6, 1),
                sender_mbps=round(sent.get("bits_per_second", 0.0) / 1e6, 1),
                retransmits=int(sent.get("retransmits", 0)), congestion=str(end.get("sender_tcp_congestion", "")))


def iperf_argv(path: BenchPath, seconds: int, congestion: str, reverse: bool) -> list[str]:
    argv = ["iperf3", "-c", str(path.target), "-p", str(path.port), "-t", str(seconds), "-J"]
    if congestion != INHERITED:
        argv += ["-C", congestion]
    return argv + (["-R"] if reverse else [])


@contextmanager
def host_sysctl(key: str, value: int, root: Path = Path("/proc/sys")) -> Iterator[int]:
    """Set a host-wide sysctl for the block and put the old value back, whatever happens; yields the old one."""
    path = root / key
    old = int(path.read_text().split()[0])
    path.write_text(f"{value}\n")
    try:
        yield old
    finally:
        path.write_text(f"{old}\n")


class Bench:
    """One bench run on a running lab: its servers, its flows, its measurements."""

    def __init__(self, lab: core.Lab, runtime: Runtime, opts: BenchOptions,
                 progress: Callable[[str], None]) -> None:
        self.lab, self.runtime, self.opts, self.progress = lab, runtime, opts, progress
        self.name = lab.topo.name

    def cap(self, gateway: str) -> int:
        return facts.SKUS[self.lab.topo.gateways[gateway].sku].aggregate_mbps

    def flow(self, path: BenchPath, congestion: str) -> Flow:
        argv = iperf_argv(path, self.opts.seconds, congestion, self.opts.reverse)
        res = self.runtime.exec(self.name, path.client, argv, timeout=self.opts.seconds + EXEC_SLACK_S)
        return parse_iperf(res.output, path)

    def measure(self, kind: Kind, label: str, paths: Sequence[BenchPath], congestion: str,
                cap: int | None) -> Measurement:
        """All `paths` at once (parallel clients), each to its own server port."""
        self.progress(f"{kind} {label} ({congestion}, {self.opts.seconds} s)")
        with ThreadPoolExecutor(max_workers=max(1, len(paths))) as pool:
            flows = list(pool.map(lambda p: self.flow(p, congestion), paths))
        return Measurement(kind=kind, label=label, congestion=congestion, cap_mbps=cap, flows=flows)

    @contextmanager
    def servers(self, paths: Sequence[BenchPath]) -> Iterator[None]:
        """iperf3 -s on each path's server node and port, stopped by its pid file afterwards."""
        for p in paths:
            argv = ["iperf3", "-s", "-p", str(p.port), "--pidfile", PIDFILE.format(port=p.port)]
            self.runtime.exec(self.name, p.server, argv, detach=True)
        try:
            for p in paths:
                self._wait_listening(p)
            yield
        finally:
            for p in paths:
                self._stop_server(p)

    def _wait_listening(self, p: BenchPath) -> None:
        deadline = time.monotonic() + LISTEN_WAIT_S
        while not self.runtime.exec(self.name, p.server, ["ss", "-Hltn", f"sport = :{p.port}"], timeout=5).output:
            if time.monotonic() > deadline:
                raise BenchError(f"node {p.server!r}: iperf3 server on port {p.port} not listening after "
                                 f"{LISTEN_WAIT_S:g} s", hint=f"lab exec {p.server} -- iperf3 -s -p {p.port}")
            time.sleep(POLL_S)

    def _stop_server(self, p: BenchPath) -> None:
        res = self.runtime.exec(self.name, p.server, ["cat", PIDFILE.format(port=p.port)], timeout=5)
        if res.ok and res.output.strip().isdigit():
            self.runtime.exec(self.name, p.server, ["kill", res.output.strip()], timeout=5)


def run_bench(lab: core.Lab, runtime: Runtime, connect: core.Connect, dataplane: Dataplane,
              opts: BenchOptions, progress: Callable[[str], None]) -> BenchResult:
    """Every measurement of `lab bench`; the SKU caps are back in place when this returns or fails."""
    paths, notes = bench_paths(lab.topo)
    if not paths:
        raise BenchError(f"lab {lab.topo.name!r}: no connection with a host on both ends to measure",
                         hint="add `hosts:` to a VNet and a site")
    if not runtime.list_nodes(lab.topo.name):
        raise BenchError(f"lab {lab.topo.name!r} is not running", hint="lab up FILE")
    bench = Bench(lab, runtime, opts, progress)
    veth = veth_path(lab.plan, paths[0], BASE_PORT + len(paths))
    load = runtime.exec(lab.topo.name, paths[0].client, ["cat", "/proc/loadavg"], timeout=5).output.strip()
    result = BenchResult(lab=lab.topo.name, seconds=opts.seconds, reverse=opts.reverse, loadavg=load,
                         measurements=[], notes=notes)
    with bench.servers([*paths, veth]):
        result.measurements += _capped(bench, paths)
        result.measurements += _uncapped(bench, paths[0], connect, dataplane, result)
        result.measurements += [bench.measure("veth", veth.label, [veth], cc, None) for cc in opts.congestions]
    return result


def _capped(bench: Bench, paths: list[BenchPath]) -> list[Measurement]:
    """Each tunnel alone, then every tunnel of a gateway at once, all under the SKU cap."""
    out = []
    for cc in bench.opts.congestions:
        out += [bench.measure("tunnel", p.label, [p], cc, bench.cap(p.gateway)) for p in paths]
    for gw in dict.fromkeys(p.gateway for p in paths):
        mine = [p for p in paths if p.gateway == gw]
        out += [bench.measure("aggregate", gw, mine, cc, bench.cap(gw)) for cc in bench.opts.congestions]
    return out


def _uncapped(bench: Bench, path: BenchPath, connect: core.Connect, dataplane: Dataplane,
              result: BenchResult) -> list[Measurement]:
    """One tunnel with the shaping removed (and, with --tune-host, with a bigger UDP receive buffer)."""
    opts, lab = bench.opts, bench.lab
    out = []
    pipeline.shape_gateways(lab, bench.runtime, capped=False)
    try:
        out += [bench.measure("uncapped", path.label, [path], cc, None) for cc in opts.congestions]
        if opts.tune_host and path.own_device:
            result.notes.append(f"--tune-host: {path.label!r} ends at a device with its own config; not restarted")
        elif opts.tune_host:
            with host_sysctl(RMEM_DEFAULT, TUNED_RMEM_BYTES) as before:
                result.host_tuning = HostTuning(sysctl=RMEM_DEFAULT.replace("/", "."), before=before,
                                                during=TUNED_RMEM_BYTES)
                bench.progress(f"restarting charon with net.core.rmem_default = {TUNED_RMEM_BYTES}")
                pipeline.restart_daemons(lab, bench.runtime, connect, dataplane, list(path.charons), opts.timeout)
                out += [bench.measure("uncapped-tuned", path.label, [path], cc, None) for cc in opts.congestions]
            bench.progress(f"restarting charon with net.core.rmem_default = {before} again")
            pipeline.restart_daemons(lab, bench.runtime, connect, dataplane, list(path.charons), opts.timeout)
    finally:
        pipeline.shape_gateways(lab, bench.runtime)
    return out
