"""`lab failover` and `lab probe`: a probe stream across a failover, with events and a capture alongside.

The stream runs in the nodes (lab/probes/stream.py: a VNet host sends, a site host records), never on the
host. Charon events come from `watch` (lab.control.vici.watch_events, injected), ESP frames from a capture
of the Internet bridge inside the lab namespace. Pipeline level: no docker, vici or scapy imported here.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab import tunnel_units
from lab.control.base import VpnEvent
from lab.core import Connect, Lab
from lab.errors import LabError, ProbeError
from lab.ha import agents as ha
from lab.ha.failover import FailoverResult, Kind, Mark, SaCounter, Series, azure_figure, carriers, stream_stats
from lab.ops import faults
from lab.plan import INTERNET
from lab.render.tunnel_ifaces import container_of
from lab.runtime.base import Runtime
from lab.timing import scaled

Watch = Callable[[Path, Sequence[str], Callable[[VpnEvent], None], threading.Event], threading.Thread]
STREAM_SOURCE = Path(__file__).parents[1] / "probes" / "stream.py"
EVENTS = ("ike-updown", "child-updown", "ike-rekey", "child-rekey")
DPORT = 47000
READY_S = 15.0  # scapy's import alone takes seconds on two busy cores


@dataclass(frozen=True)
class StreamOptions:
    duration_s: float = 12.0
    fault_after_s: float = 3.0
    pps: float = 200.0
    flows: int = 8
    icmp_every: int = 4  # an ICMP echo every 4th UDP probe: 50/s at 200 pps
    grace_s: float = 1.0


@dataclass(frozen=True)
class Ends:
    src: str  # VNet host node
    dst: str  # site host node
    dst_ip: str
    src_ip: str = ""


def default_duration(lab: Lab, gateway: str, kind: Kind | None, fault_after_s: float = 3.0) -> float:
    """A stream long enough to see the recovery: the standby's takeover window (active-standby) or the
    device's DPD (active-active, where a site sending into the dead instance's SA waits for DPD), plus room
    for IKE and some seconds of normal flow afterwards."""
    if kind is None:
        return 5.0
    if kind == "bgpd":
        return 12.0
    pair = ha.pair_of(lab, gateway)
    if pair is not None:
        takeover = pair.watch.agent_window_s(planned=kind == "planned")[1]
        return max(12.0, fault_after_s + takeover + 10.0)
    conns = [c for c in lab.topo.connections.values() if c.gateway == gateway]
    dpd = max((2 if c.dpd == "fast" else c.dpd_timeout_seconds for c in conns), default=2)
    return max(12.0, fault_after_s + dpd + 15.0)


def stream_ends(lab: Lab, gateway: str) -> Ends:
    """The gateway's first VNet host and the first host of a site it connects to."""
    srcs = sorted(lab.topo.gateways[gateway].vnet.hosts)
    sites = sorted(c.site for c in lab.topo.connections.values() if c.gateway == gateway and c.site)
    dsts = [(h, ip) for s in sites for h, ip in sorted(lab.topo.sites[s].hosts.items())]
    if not srcs or not dsts:
        raise LabError(f"gateway {gateway!r}: a probe stream needs a VNet host and a host of a connected site",
                       hint="add hosts: {vm1: ...} to the VNet and to a site")
    gw = lab.topo.gateways[gateway]
    return Ends(srcs[0], dsts[0][0], str(dsts[0][1]), str(gw.vnet.hosts[srcs[0]]))


def _counters(lab: Lab, nodes: list[str], connect: Connect) -> list[SaCounter]:
    """Every CHILD_SA counter of the nodes, from each of their charons (route-based tunnels have their own)."""
    out = []
    for unit in tunnel_units.units(lab, nodes=set(nodes)):
        node = container_of(unit)
        try:
            ctl = connect(lab.dir.vici_socket(unit))
        except LabError:
            continue  # the instance is dead: no counters
        try:
            out += [SaCounter(node=node, connection=sa.name, child=c.name, state=c.state, spi_out=c.spi_out,
                              packets_out=c.packets_out, packets_in=c.packets_in)
                    for sa in ctl.sas() for c in sa.children]
        except LabError:
            pass
        finally:
            ctl.close()
    return out


def _site_devices(lab: Lab, gateway: str) -> list[str]:
    sites = {c.site for c in lab.topo.connections.values() if c.gateway == gateway and c.site}
    return [n.name for n in lab.plan.nodes if n.role == "site" and n.group in sites]


def _start(lab: Lab, runtime: Runtime, node: str, mode: str, spec: dict[str, object]) -> Path:
    d = lab.dir.node(node)
    (d / "stream.py").write_text(STREAM_SOURCE.read_text())
    (d / f"stream-{mode}.json").write_text(json.dumps(spec))
    for name in (f"stream-{mode}.ready", f"stream-{mode}.out", "stream.stop"):
        (d / name).unlink(missing_ok=True)
    runtime.exec(lab.topo.name, node, ["python3", "/lab/stream.py", mode, f"/lab/stream-{mode}.json"], detach=True)
    _wait_file(d / f"stream-{mode}.ready", scaled(READY_S), node)
    return d / f"stream-{mode}.out"


def _wait_file(path: Path, timeout: float, node: str) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise ProbeError(f"node {node!r}: probe stream wrote no {path.name} within {timeout:g} s",
                             hint=f"run it by hand: lab exec {node} -- python3 /lab/stream.py")
        time.sleep(0.05)


def _watch_all(lab: Lab, runtime: Runtime, watch: Watch, offset: float,
               marks: list[Mark], stop: threading.Event) -> None:
    running = {n.node for n in runtime.list_nodes(lab.topo.name) if n.status == "running"}
    for unit in tunnel_units.units(lab, nodes=running):  # each charon, tunnels' too
        def note(ev: VpnEvent, node: str = container_of(unit)) -> None:
            state = {True: " up", False: " down", None: ""}[ev.up]
            marks.append(Mark(t=ev.time + offset, node=node, what=f"{ev.name}{state} {ev.ike}"))
        watch(lab.dir.vici_socket(unit), EVENTS, note, stop)


def inject(lab: Lab, gateway: str, kind: Kind, runtime: Runtime, connect: Connect, dataplane: str) -> str:
    """The failover itself; returns what was done. A/A: instance 0 is killed or stopped (charon's DELETE
    first); A/S: the active is killed, or moved with `ha.planned_move`. `lab restore` undoes either."""
    pair = ha.pair_of(lab, gateway)
    if pair is not None and kind == "planned":
        old, new = ha.planned_move(lab, pair, runtime, connect)
        return f"planned move {old} -> {new}"
    node = ha.active_of(lab, pair) if pair else f"{gateway}-0"
    what = {"unplanned": "kill", "bgpd": "bgpd-kill"}.get(kind, "stop")  # bgpd: only its BGP dies (lab/routing)
    fault = faults.Fault(kind=what, node=node)  # type: ignore[arg-type]
    faults.inject(lab, fault, runtime, connect, dataplane)
    return fault.describe()


def measure(lab: Lab, gateway: str, kind: Kind | None, runtime: Runtime, connect: Connect, watch: Watch,
            dataplane: str, opts: StreamOptions) -> FailoverResult:
    """Run the stream; `kind` None (lab probe) injects nothing."""
    ends = stream_ends(lab, gateway)
    offset = time.time() - time.monotonic()
    marks: list[Mark] = []
    stop = threading.Event()
    _watch_all(lab, runtime, watch, offset, marks, stop)
    gw_nodes = [n.name for n in lab.plan.nodes if n.group == gateway and n.role == "gateway"]
    site_nodes = _site_devices(lab, gateway)  # the other side's SAs: which one the site sent on
    before, site_before = _counters(lab, gw_nodes, connect), _counters(lab, site_nodes, connect)
    pcap = lab.dir.root / "failover.pcap"
    capture = runtime.capture(lab.topo.name, INTERNET, pcap)
    try:
        outs, t0, fault_at, what = _run_stream(lab, gateway, kind, ends, runtime, connect, dataplane, opts, marks)
    finally:
        capture.stop()
        stop.set()
    after, site_after = _counters(lab, gw_nodes, connect), _counters(lab, site_nodes, connect)
    res = _result(lab, gateway, kind, ends, opts, (outs[0], outs[1]), (t0, fault_at, what), marks,
                  (before, after), pcap)
    res = res.model_copy(update={"site_before": site_before, "site_after": site_after})
    return _with_reverse(lab, gateway, res, (outs[2], outs[3]), opts, pcap)


def _with_reverse(lab: Lab, gateway: str, res: FailoverResult, outs: tuple[dict, dict], opts: StreamOptions,
                  pcap: Path) -> FailoverResult:
    """Add the site -> VNet stream's stats and the site's carriers (its ESP towards Azure, by its SPI)."""
    tx, rx = outs
    udp = stream_stats([s for s, _, _ in tx["sent"]], [(s, t, f) for s, f, t in rx["received"]], res.t0,
                       opts.flows / opts.pps)
    sites = set(_site_devices(lab, gateway))
    spis = {int(c.spi_out, 16): f"{c.node} SPI {c.spi_out}" for c in res.site_before + res.site_after if c.spi_out}
    publics = {str(i.addresses[0].ip) for n in lab.plan.nodes if n.name in sites for i in n.ifaces
               if i.segment == INTERNET and i.addresses}
    series = _tunnel_series(pcap, spis, publics, res.t0)
    end = opts.duration_s
    kind = res.kind
    gw = lab.topo.gateways[gateway]
    return res.model_copy(update={
        "udp_reverse": udp, "ha_timing": gw.ha_timing, "azure_figure": azure_figure(res.mode, kind),
        "site_carriers_before": carriers(series, 0.0, res.fault_at if kind != "none" else end),
        "site_carriers_after": carriers(series, max(udp.flow_outage_to, res.fault_at) + 0.5, end)
        if kind != "none" else []})


def _direction(lab: Lab, runtime: Runtime, sender: str, receiver: str, dst_ip: str,
               opts: StreamOptions) -> tuple[Path, Path]:
    """One direction's receiver, then its sender (which starts sending 0.2 s after it is ready)."""
    rx_spec = {"dport": DPORT, "lifetime": opts.duration_s + opts.grace_s + 60, "ready": "/lab/stream-recv.ready",
               "stop": "/lab/stream.stop", "out": "/lab/stream-recv.out"}
    rx_path = _start(lab, runtime, receiver, "recv", rx_spec)
    tx_spec = {"dst": dst_ip, "dport": DPORT, "sport": 47100, "flows": opts.flows, "rate": opts.pps,
               "duration": opts.duration_s, "icmp_every": opts.icmp_every, "grace": opts.grace_s,
               "ident": uuid.uuid4().int & 0xFFFF, "ready": "/lab/stream-send.ready", "out": "/lab/stream-send.out"}
    return _start(lab, runtime, sender, "send", tx_spec), rx_path


def _run_stream(lab: Lab, gateway: str, kind: Kind | None, ends: Ends, runtime: Runtime, connect: Connect,
                dataplane: str, opts: StreamOptions, marks: list[Mark]) -> tuple[list[dict], float, float, str]:
    """Both directions (site -> VNet first, so VNet -> site starts last and sets t0); the fault
    `fault_after_s` into the stream; the four JSON results read back (tx, rx, reverse tx, reverse rx)."""
    rev_tx, rev_rx = _direction(lab, runtime, ends.dst, ends.src, ends.src_ip, opts)
    tx_path, rx_path = _direction(lab, runtime, ends.src, ends.dst, ends.dst_ip, opts)
    t0 = time.time() + 0.2  # the sender's first packet (stream.py waits 0.2 s after `ready`)
    fault_at, what = 0.0, "none"
    if kind is not None:
        time.sleep(max(0.0, t0 + opts.fault_after_s - time.time()))
        fault_at = time.time()
        what = inject(lab, gateway, kind, runtime, connect, dataplane)
        marks.append(Mark(t=fault_at, node=gateway, what=f"fault: {what}"))
    for path, node in ((tx_path, ends.src), (rev_tx, ends.dst)):
        _wait_file(path, opts.duration_s + opts.grace_s + 30, node)
    for node in (ends.dst, ends.src):
        (lab.dir.node(node) / "stream.stop").write_text("stop\n")
    for path, node in ((rx_path, ends.dst), (rev_rx, ends.src)):
        _wait_file(path, 10, node)
    outs = [json.loads(p.read_text()) for p in (tx_path, rx_path, rev_tx, rev_rx)]
    return outs, t0, fault_at, what


def _tunnel_series(pcap: Path, spis: dict[int, str], publics: set[str], t0: float) -> list[Series]:
    from lab.probes.pcap import read_frames  # noqa: PLC0415 - scapy only when a capture is read

    by: dict[str, list[float]] = {}
    for f in read_frames(pcap):
        if f.kind == "esp" and f.src in publics:
            label = spis.get(f.spi, f"{f.src} SPI {f.spi:08x}")
            by.setdefault(label, []).append(round(f.time - t0, 4))
    return [Series(label=k, times=v) for k, v in sorted(by.items())]


def _result(lab: Lab, gateway: str, kind: Kind | None, ends: Ends, opts: StreamOptions,
            outs: tuple[dict, dict], fault: tuple[float, float, str], marks: list[Mark],
            counters: tuple[list[SaCounter], list[SaCounter]], pcap: Path) -> FailoverResult:
    (tx, rx), (t0, fault_at, what), (before, after) = outs, fault, counters
    t0 = min([t for _, _, t in tx["sent"]], default=t0)
    udp = stream_stats([s for s, _, _ in tx["sent"]], [(s, t, f) for s, f, t in rx["received"]], t0,
                       opts.flows / opts.pps)
    icmp = stream_stats([s for s, _, _ in tx["icmp"]], [(s, r, 0) for s, _, r in tx["icmp"] if r], t0,
                        opts.icmp_every / opts.pps)
    gw = lab.topo.gateways[gateway]
    spis = {int(c.spi_out, 16): f"{c.node} SPI {c.spi_out}" for c in before + after if c.spi_out}
    series = _tunnel_series(pcap, spis, {str(ip) for ip in gw.public_ips}, t0)
    agent = [Mark(t=float(e["t"]), node=str(e.get("node", "")), what=f"agent: {e['event']}")  # type: ignore[arg-type]
             for e in ha.agent_events(lab) if float(e["t"]) >= t0 - 1]  # type: ignore[arg-type]
    rel = sorted((Mark(t=round(m.t - t0, 3), node=m.node, what=m.what) for m in marks + agent), key=lambda m: m.t)
    fault_rel = round(fault_at - t0, 3) if kind else 0.0
    end = opts.duration_s
    return FailoverResult(
        lab=lab.topo.name, gateway=gateway, mode="active-active" if gw.is_active_active else "active-standby",
        kind=kind or "none", dpd=sorted({c.dpd for c in lab.topo.connections.values() if c.gateway == gateway}),
        src=ends.src, dst=f"{ends.dst} ({ends.dst_ip})", pps=opts.pps, flows=opts.flows, t0=t0,
        fault_at=fault_rel, fault=what, udp=udp, icmp=icmp, before=before, after=after,
        carriers_before=carriers(series, 0.0, fault_rel if kind else end),
        carriers_after=carriers(series, max(udp.flow_outage_to, fault_rel) + 0.5, end) if kind else [],
        marks=rel, delivered=sorted(round(t - t0, 4) for _, _, t in rx["received"]), tunnels=series)
