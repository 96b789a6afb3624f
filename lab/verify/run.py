"""`lab verify`, top to bottom: probes from inside the host nodes while the Internet link is captured,
SA snapshots around each phase, then the checks over what was collected.

Pipeline level: no docker, vici or scapy here. The runtime (exec, capture) and `connect` (vici) are
injected; packet work is done by lab.probes. Anything that stops the lab from being checked at all
becomes a ProbeError (exit 2), distinct from a check that ran and failed (exit 1).
"""

from __future__ import annotations

import random
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from lab import tunnel_units
from lab.control.base import IkeSaStatus, VpnControl
from lab.core import Lab, load_running
from lab.errors import BusyError, LabError, ProbeError
from lab.lock import lab_lock
from lab.plan import INTERNET
from lab.probes.esp import decrypt_all, verified_keys, wireshark_esp_sa
from lab.probes.keys_log import SaKeys, parse_keys_log
from lab.probes.pcap import read_frames
from lab.probes.results import AGENT_SOURCE, ProbeResult, ProbeSpec, agent_argv, echo_argv, parse_agent_output
from lab.render.tunnel_ifaces import container_of
from lab.runtime.base import Runtime
from lab.state import LabDir
from lab.timing import scaled
from lab.verify.checks_dataplane import check_dataplane
from lab.verify.checks_sa import check_decryption, check_selectors, check_spis
from lab.verify.checks_wire import check_encrypted, check_reachability
from lab.verify.evidence import Evidence, Snapshot
from lab.verify.model import CheckResult, VerifyReport
from lab.verify.p2s import has_p2s, verify_p2s
from lab.verify.routes import check_routes
from lab.verify.targets import (
    ProbeOptions,
    Targets,
    build_targets,
    by_node,
    held_now,
    holders,
    reach_specs,
    selector_specs,
)
from lab.verify.xfrm import XFRM_ARGV, XfrmSa, XfrmSnapshot, parse_xfrm_states

Connect = Callable[[Path], VpnControl]
KeySource = Callable[[LabDir, list[str]], list[SaKeys]]
Progress = Callable[[str], None]
ECHO_READY_S = 10.0
HEAL_WAIT_S = 20.0  # the supervisor heals a restarted node within ~5 s (15 s promised)
HEAL_POLL_S = 1.0
ECHO_LIFETIME_S = 120.0
EXEC_SLACK_S = 20.0  # an agent call's fixed cost: docker exec, python and scapy start, the sniffer
# Per probe packet, what an agent call may spend beyond its pacing: build it, send it, match its answer, on a
# share of a loaded 2-core machine. A fixed budget was not enough: 30 sites at load 24 (the VNet host's 600
# packets) overran 33 s (docs/distributed.md).
PACKET_BUDGET_S = 0.1
WORKERS = 8


@dataclass(frozen=True)
class VerifyOptions:
    probes: ProbeOptions = field(default_factory=ProbeOptions)
    max_loss_pct: float = 10.0
    pcap_dir: Path | None = None  # keep the capture there (else a temporary directory)
    wireshark_keys: Path | None = None  # write the verified ESP keys there (Wireshark esp_sa format)


def read_lab_keys(d: LabDir, nodes: list[str]) -> list[SaKeys]:
    """ESP keys from every charon node's keys.log (both ends log each CHILD_SA), its tunnels' charons too."""
    found: list[SaKeys] = []
    for node in nodes:
        for path in d.keys_logs(node):
            found += parse_keys_log(path.read_text(errors="replace"), node)
    return found


def verify(lab: Lab, runtime: Runtime, connect: Connect, options: VerifyOptions | None = None,
           read_keys: KeySource = read_lab_keys, progress: Progress = lambda _msg: None) -> VerifyReport:
    """Run every check against a running lab; raises ProbeError if the lab cannot be checked.
    A point-to-site-only lab has no site-to-site phase (it has no connections, so nothing to probe)."""
    opt = options or VerifyOptions()
    started = time.monotonic()
    name = lab.topo.name
    marker = f"labverify-{secrets.token_hex(8)}"
    pcap: Path | None = None
    checks: list[CheckResult] = []
    try:
        _require_running(lab, runtime)
        skip = wait_healed(lab, runtime, progress)
        if _has_s2s(lab):
            checks, pcap = _verify_s2s(lab, runtime, connect, opt, marker, read_keys, progress, skip)
        if has_p2s(lab):  # point-to-site (lab/verify/p2s.py)
            checks += verify_p2s(lab, runtime, connect, progress)
        routed = check_routes(lab, runtime)  # BGP labs: learned routes reachable, carrying tunnels (routes.py)
        checks += [routed] if routed else []
    except ProbeError:
        raise
    except LabError as exc:
        raise ProbeError(f"lab {name!r} could not be checked: {exc.message}", hint=exc.hint) from exc
    return VerifyReport(lab=name, marker=marker, passed=all(c.passed for c in checks),
                        duration_s=round(time.monotonic() - started, 2),
                        pcap=str(opt.pcap_dir / pcap.name) if opt.pcap_dir and pcap else None,
                        wireshark_keys=str(opt.wireshark_keys) if opt.wireshark_keys and pcap else None,
                        checks=checks)


def _has_s2s(lab: Lab) -> bool:
    """Site-to-site checks apply to every lab except a point-to-site one without connections."""
    return bool(lab.topo.connections) or not has_p2s(lab)


def wait_healed(lab: Lab, runtime: Runtime, progress: Progress, wait_s: float = HEAL_WAIT_S) -> frozenset[str]:
    """Nodes restarted behind the lab's back: wait while the lab's supervisor heals them; what is still
    broken after that is checked as it is (its probes fail, its charon is not asked)."""
    from lab.ops import heal, supervisor

    deadline, healing = time.monotonic() + scaled(wait_s), False
    while broken := heal.find_broken(lab, runtime):
        names = ", ".join(b.node for b in broken)
        if supervisor.running_pid(lab.dir.root, lab.topo.name) is None or time.monotonic() >= deadline:
            progress(f"node {names} restarted, not healed: `lab restore` heals it; checking the lab as it is")
            return frozenset(b.node for b in broken)
        progress(f"node {names} restarted, healing: waiting for the lab's supervisor")
        healing = True
        time.sleep(HEAL_POLL_S)
    if healing:
        _heal_finished(lab, deadline, progress)
    return frozenset()


def _heal_finished(lab: Lab, deadline: float, progress: Progress) -> None:
    """A healed node is wired (find_broken no longer names it) before its heal is done: the supervisor then
    starts its charons and tunnel namespaces and waits for its tunnels, under the lab's lock. Seen under
    load: verify probing in that gap exited 2 (`ip xfrm state` in the tunnel namespace not made yet: "Peer
    netns reference is invalid"). So wait for the lock, the heal's end, then check."""
    try:
        with lab_lock(lab.topo.name, wait_s=max(0.0, deadline - time.monotonic())):
            pass
    except BusyError:
        progress("the lab's supervisor is still healing: checking the lab as it is")


def _verify_s2s(lab: Lab, runtime: Runtime, connect: Connect, opt: VerifyOptions, marker: str,
                read_keys: KeySource, progress: Progress, skip: frozenset[str] = frozenset(),
                ) -> tuple[list[CheckResult], Path]:
    """Probe under capture, decrypt with the nodes' keys, run the site-to-site checks; also the capture's path."""
    targets = build_targets(lab.topo, lab.plan)
    with _pcap_dir(opt.pcap_dir) as pdir:
        pcap = pdir / f"{lab.topo.name}-{INTERNET}.pcap"
        ev = _collect(lab, runtime, connect, targets, marker, pcap, opt.probes, progress, skip)
        progress(f"decrypting {len(ev.esp_frames)} ESP frames")
        keys = read_keys(lab.dir, _charon_nodes(lab, skip))
        ev = replace(ev, keys=keys, decrypted=decrypt_all(ev.frames, keys))
    if opt.wireshark_keys:
        _write_secret(opt.wireshark_keys, wireshark_esp_sa(verified_keys(ev.decrypted, ev.keys)))
    return run_checks(ev, opt.max_loss_pct), pcap


def verify_running(name: str, home: Path, runtime: Runtime, connect: Connect, options: VerifyOptions,
                   progress: Progress) -> VerifyReport:
    """`lab verify NAME`: a lab that is not there cannot be checked (exit 2, not a failed check)."""
    try:
        lab = load_running(name, home)
    except LabError as exc:
        raise ProbeError(exc.message, hint=exc.hint) from exc
    return verify(lab, runtime, connect, options, progress=progress)


def run_checks(ev: Evidence, max_loss_pct: float) -> list[CheckResult]:
    return [check_reachability(ev, max_loss_pct), check_encrypted(ev), check_spis(ev), check_selectors(ev),
            check_decryption(ev), check_dataplane(ev)]


def _collect(lab: Lab, runtime: Runtime, connect: Connect, targets: Targets, marker: str, pcap: Path,
             opt: ProbeOptions, progress: Progress, skip: frozenset[str] = frozenset()) -> Evidence:
    """Echo responders up; SA snapshot; capture; reachability probes; snapshot; selector probes; snapshot;
    stop the capture; snapshot. The selectors' window (mid -> closing) lies inside the capture, so every packet
    an SA counted in it (a BGP keepalive) was captured; the last snapshot follows the capture, so it counts
    every frame seen (spis)."""
    port = random.randint(20000, 29999)
    reach_work, selector_work = reach_specs(targets, port, opt), selector_specs(targets, opt)
    for node in targets.echo_nodes:
        shutil.copyfile(AGENT_SOURCE, lab.dir.node(node) / AGENT_SOURCE.name)
    lifetime = ECHO_LIFETIME_S + phase_budget(reach_work) + phase_budget(selector_work)  # ended early by `stop`
    with _echo_responders(lab, runtime, targets.echo_nodes, port, lifetime):
        live_before = _live_links(lab, runtime)
        xfrm_before = _xfrm_snapshot(lab, runtime)
        before = _snapshot(lab, connect, skip)
        progress(f"capturing on {INTERNET!r} in namespace lab-{lab.topo.name}")
        handle = runtime.capture(lab.topo.name, INTERNET, pcap)
        try:
            _wait_echo_ready(lab, targets.echo_nodes, port)
            progress("probing: reachability (ICMP, UDP)")
            reach = _run_phase(lab, runtime, marker, reach_work)
            mid = _snapshot(lab, connect, skip)
            progress(f"probing: selectors ({targets.outside}, spoofed {targets.spoofed})")
            selector = _run_phase(lab, runtime, marker, selector_work)
            closing = _snapshot(lab, connect, skip)
        finally:
            stats = handle.stop()
        after = _snapshot(lab, connect, skip)
        xfrm_after = _xfrm_snapshot(lab, runtime)
        held = holders(targets.public_ips, live_before, _live_links(lab, runtime))
    return Evidence(marker, held_now(targets, held), reach, selector, before, mid, closing, after, read_frames(pcap),
                    stats, dataplane=lab.dataplane, xfrm_before=xfrm_before, xfrm_after=xfrm_after, holders=held)


def agent_budget(specs: list[ProbeSpec]) -> float:
    """Seconds one agent call may take (before LAB_TIME_SCALE): it follows the work, each packet's pacing plus
    PACKET_BUDGET_S, then the longest wait for answers and the call's fixed cost."""
    packets = sum(s.count * (s.interval_s + PACKET_BUDGET_S) for s in specs)
    return round(packets + max((s.timeout_s for s in specs), default=0.0) + EXEC_SLACK_S, 1)


def phase_budget(specs: list[ProbeSpec]) -> float:
    """A phase's nodes run in parallel: its longest agent call."""
    return max((agent_budget(mine) for mine in by_node(specs).values()), default=0.0)


def _run_phase(lab: Lab, runtime: Runtime, marker: str, specs: list[ProbeSpec]) -> list[ProbeResult]:
    """Each source node runs its probes in one agent call; the nodes run in parallel."""
    def run(node: str, mine: list[ProbeSpec]) -> list[ProbeResult]:
        budget = agent_budget(mine)
        res = runtime.exec(lab.topo.name, node, agent_argv(marker, mine), timeout=budget)
        if res.code == 124:
            packets = sum(s.count for s in mine)
            raise ProbeError(f"node {node!r}: probe agent ({len(mine)} probes, {packets} packets) did not finish "
                             f"within {scaled(budget):g} s", hint="a loaded machine: LAB_TIME_SCALE=2 doubles it")
        return parse_agent_output(node, res.output, mine)

    groups = by_node(specs)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = [pool.submit(run, node, mine) for node, mine in groups.items()]
        done = {r.spec.id: r for f in futures for r in f.result()}
    return [done[s.id] for s in specs]


@contextmanager
def _echo_responders(lab: Lab, runtime: Runtime, nodes: list[str], port: int,
                     lifetime: float) -> Iterator[None]:
    """A UDP echo responder per host, ended by a stop file (and by its own lifetime, whatever happens);
    the responder removes both files when it exits."""
    ready, stop = f"echo-{port}.ready", f"echo-{port}.stop"

    def start(node: str) -> None:
        lab.dir.node(node).joinpath(stop).unlink(missing_ok=True)
        runtime.exec(lab.topo.name, node, echo_argv(port, scaled(lifetime), f"/lab/{ready}", f"/lab/{stop}"),
                     detach=True)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:  # 101 hosts one after the other: ~20 s at load
        list(pool.map(start, nodes))
    try:
        yield
    finally:
        for node in nodes:  # also where it has not started yet: it will stop at once when it does
            lab.dir.node(node).joinpath(stop).touch()


def _wait_echo_ready(lab: Lab, nodes: list[str], port: int) -> None:
    deadline = time.monotonic() + scaled(ECHO_READY_S)
    waiting = list(nodes)
    while waiting:
        waiting = [n for n in waiting if not lab.dir.node(n).joinpath(f"echo-{port}.ready").exists()]
        if waiting and time.monotonic() > deadline:
            raise ProbeError(f"node {waiting[0]!r}: UDP echo responder did not start within {scaled(ECHO_READY_S):g} s",
                             hint=f"try it by hand: lab exec {waiting[0]} -- python3 /lab/agent.py echo --help")
        time.sleep(0.05)


def _charon_nodes(lab: Lab, skip: frozenset[str] = frozenset()) -> list[str]:
    return [n.name for n in lab.plan.nodes if n.runs("charon") and n.name not in skip]


def _snapshot(lab: Lab, connect: Connect, skip: frozenset[str] = frozenset()) -> Snapshot:
    """Every node's SAs, from its main charon and its route-based tunnels' own charons (lab/tunnel_units.py)."""
    def one(unit: str) -> tuple[str, list[IkeSaStatus]]:
        ctl = connect(lab.dir.vici_socket(unit))
        try:
            return unit, ctl.sas()
        finally:
            ctl.close()

    nodes = set(_charon_nodes(lab, skip))
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        found = list(pool.map(one, tunnel_units.units(lab, nodes=nodes)))
    out: Snapshot = {}
    for unit, sas in found:
        out.setdefault(container_of(unit), []).extend(sas)
    return out


def _live_links(lab: Lab, runtime: Runtime) -> dict[str, dict[str, list[str]]]:
    """Every charon node's interfaces and addresses now: who holds each public address (an active-standby
    gateway's is on whichever instance is active, not always on the plan's `<gw>-0`)."""
    def one(node: str) -> tuple[str, dict[str, list[str]]]:
        return node, runtime.live_links(lab.topo.name, node)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return dict(pool.map(one, _charon_nodes(lab)))


def _xfrm_snapshot(lab: Lab, runtime: Runtime) -> XfrmSnapshot:
    """`ip -s xfrm state` in every charon node: the kernel's SAs (none on libipsec), without keys."""
    def one(node: str) -> tuple[str, list[XfrmSa]]:
        res = runtime.exec(lab.topo.name, node, XFRM_ARGV, timeout=10)
        if not res.ok:
            raise ProbeError(f"node {node!r}: `ip xfrm state` failed: {res.output.strip()[:200]}")
        return node, parse_xfrm_states(res.output)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return dict(pool.map(one, _charon_nodes(lab)))


def _require_running(lab: Lab, runtime: Runtime) -> None:
    live = {n.node: n.status for n in runtime.list_nodes(lab.topo.name)}
    for node in lab.plan.nodes:
        if live.get(node.name) != "running":
            raise ProbeError(f"node {node.name!r} of lab {lab.topo.name!r} is {live.get(node.name, 'missing')}",
                             hint=f"lab inspect {lab.topo.name}; lab down {lab.topo.name} and lab up again")


@contextmanager
def _pcap_dir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="lab-verify-") as tmp:
        yield Path(tmp)


def _write_secret(path: Path, text: str) -> None:
    """Keys are secrets: the file is created readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)
