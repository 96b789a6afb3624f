"""`lab diagnose`: why a tunnel is down (or up but unlike Azure), in one line, with the evidence.

Two sources: static checks of each site's device config against its gateway end (lab.device.checks), and
both charons' IKE logs (what was actually refused). A class named by both is the most trustworthy; log-only
classes still explain a failure the config reading could not predict. No docker, vici or scapy here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from pydantic import BaseModel, ConfigDict

from lab.control.base import VpnControl
from lab.control.wait import DIAGNOSES, wait_established
from lab.device.byo import ByoConfig
from lab.device.checks import Finding, check_conn
from lab.device.parse import DeviceChild, DeviceConn
from lab.errors import ControlError
from lab.plan import site_node_names
from lab.render.tunnel_ifaces import container_of
from lab.render.tunnels import End, Tunnel, tunnels
from lab.topology.model import Topology

LogTail = Callable[[str, int], list[str]]
LOG_LINES = 400
EVIDENCE_LINES = 4
# Log signatures per class, most specific first (a failed AUTH is often followed by retransmits).
LOG_CLASSES = (
    ("ike-version-mismatch", r"IKEv1 .* not supported|unsupported IKE version|INVALID_MAJOR_VERSION"),
    ("peer-id-mismatch", r"no matching peer config found|no peer config found"),
    ("auth-failed", r"AUTHENTICATION_FAILED|AUTH_FAILED|MAC mismatched|no shared key found|"
                    r"verification of .* failed|tried \d+ shared key"),
    ("no-proposal-chosen", r"NO_PROPOSAL_CHOSEN|no acceptable proposal|no proposal chosen|"
                           r"received proposals|configured proposals"),
    ("ts-unacceptable", r"TS_UNACCEPTABLE|traffic selectors .* unacceptable|no matching CHILD_SA config"),
    ("peer-unreachable", r"retransmit \d+ of request|peer not responding|giving up after"),
)
LOG_PATTERNS = tuple((k, re.compile(p, re.IGNORECASE)) for k, p in LOG_CLASSES)


class Diagnosis(BaseModel):
    """One cause on one tunnel; `severity` error: it explains a tunnel that is down."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    severity: str
    connection: str
    gateway_node: str
    site_node: str
    summary: str
    evidence: list[str]

    def line(self) -> str:
        return f"{self.connection} ({self.gateway_node} <-> {self.site_node}): {self.kind}: {self.summary}"


class DiagnosisReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lab: str
    diagnoses: list[Diagnosis]

    @property
    def errors(self) -> list[Diagnosis]:
        return [d for d in self.diagnoses if d.severity == "error"]


def device_of(end: End, version: str) -> DeviceConn:
    """A rendered site end as the parser would have read it from its swanctl.conf."""
    kids = tuple(DeviceChild(c.name, tuple(map(str, c.local_ts)), tuple(map(str, c.remote_ts)), end.esp,
                             end.child_lifetime[0]) for c in end.children)
    return DeviceConn(end.conn, 1 if version == "IKEv1" else 2, (end.local_ip,), (end.remote_ip,), end.local_ip,
                      end.remote_ip, end.ike, end.ike_lifetime_s, end.dpd_delay_s, kids)


def _device_conns(t: Tunnel, byo: Mapping[str, ByoConfig]) -> list[DeviceConn]:
    if t.peer.node not in byo:
        return [device_of(t.peer, t.version)]
    conns = byo[t.peer.node].conns()
    mine = [c for c in conns if t.azure.local_ip in c.remote_addrs]
    return mine or conns


def static_findings(topo: Topology, t: Tunnel, byo: Mapping[str, ByoConfig], keys: Mapping[str, str]) -> list[Finding]:
    conn = topo.connections[t.connection]
    gw, site = topo.gateways[conn.gateway], topo.sites[conn.site or ""]
    found: list[Finding] = []
    devs = _device_conns(t, byo)
    if not devs:
        return [Finding("peer-unreachable", "the device config has no connection", ())]
    for dev in devs[:1]:
        found += check_conn(t.azure, t.version, dev, list(gw.vnet.address_space), list(site.address_space),
                            keys.get(t.connection), gw.vpn_type == "PolicyBased")
    return found


def log_evidence(lines: list[str], pattern: re.Pattern[str]) -> list[str]:
    hits = [ln.strip() for ln in lines if pattern.search(ln)]
    return hits[-EVIDENCE_LINES:]


def log_findings(t: Tunnel, log_tail: LogTail) -> list[Finding]:
    """Classes whose signature appears in either side's log, with the matching lines of both sides."""
    logs = {node: log_tail(node, LOG_LINES) for node in (t.azure.node, t.peer.node)}
    out = []
    for kind, pattern in LOG_PATTERNS:
        ev = [f"{node}: {ln}" for node, lines in logs.items() for ln in log_evidence(lines, pattern)]
        if ev:
            out.append(Finding(kind, "seen in the IKE logs", tuple(ev)))
    return out


def diagnose_tunnel(topo: Topology, t: Tunnel, down: bool, log_tail: LogTail, byo: Mapping[str, ByoConfig],
                    keys: Mapping[str, str]) -> list[Diagnosis]:
    """Static errors first (confirmed by log lines of the same class), then log-only classes if down,
    then warnings. A tunnel that is up reports warnings only."""
    static = static_findings(topo, t, byo, keys)
    logs = {f.kind: f for f in log_findings(t, log_tail)} if down else {}
    chosen = [f for f in static if f.severity == "error"] if down else []
    if down and not chosen:
        chosen = list(logs.values())[:1]
    chosen += [f for f in static if f.severity == "warning"]
    return [Diagnosis(kind=f.kind, severity=f.severity, connection=t.azure.conn, gateway_node=t.azure.node,
                      site_node=t.peer.node, summary=f.summary,
                      evidence=[*f.evidence, *(logs[f.kind].evidence if f.kind in logs and f.summary !=
                                               logs[f.kind].summary else ())])
            for f in chosen]


def diagnose(topo: Topology, down: set[str], log_tail: LogTail, byo: Mapping[str, ByoConfig],
             keys: Mapping[str, str]) -> DiagnosisReport:
    """`down`: gateway nodes (or site nodes) with a connection that is not up."""
    out: list[Diagnosis] = []
    for t in tunnels(topo):
        if t.peer.node not in site_node_names(topo):
            continue
        out += diagnose_tunnel(topo, t, t.azure.node in down or t.peer.node in down, log_tail, byo, keys)
    return DiagnosisReport(lab=topo.name, diagnoses=out)


class TunnelsDownError(ControlError):
    """`lab up` gave up waiting: the stuck connections, then the diagnosis of each."""

    def __init__(self, message: str, hint: str | None, report: DiagnosisReport) -> None:
        super().__init__(message, hint)
        self.report = report


Expected = Mapping[str, list[tuple[str, list[str]]]]


def wait_diagnosed(topo: Topology, controls: Mapping[str, VpnControl], expected: Expected,
                   timeout: float, log_tail: LogTail, byo: Mapping[str, ByoConfig], keys: Mapping[str, str]) -> None:
    """wait_established, whose timeout error also names the cause of each stuck tunnel."""
    try:
        wait_established(controls, expected, timeout, lambda node: log_tail(node, LOG_LINES))
    except ControlError as exc:
        stuck = {container_of(line.split("'")[1]) for line in exc.message.splitlines() if line.startswith("node '")}
        report = diagnose(topo, stuck, log_tail, byo, keys)
        why = [f"diagnosis: {d.line()}" for d in report.errors] + [
            f"  evidence: {e}" for d in report.errors[:1] for e in d.evidence]
        waited = without_log_guesses(exc.message) if report.errors else exc.message  # one cause, not two
        raise TunnelsDownError("\n".join([*why, waited]), exc.hint, report) from exc


def without_log_guesses(message: str) -> str:
    """The wait's own one-line log guesses (lab.control.wait.DIAGNOSES) dropped, so they cannot contradict
    the diagnosis printed above them."""
    for _, reason in DIAGNOSES:
        message = message.replace(f": {reason}", "")
    return message

