"""The event timeline: charon's log lines, the supervisor's heals and the differences between two snapshots
(a node stopped, a fault applied or restored, a tunnel went down, another instance became active) as one
kind of `Event`. Parsing and diffing are pure; `LogTail` reads what a log file gained since last time.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

KINDS = ("ike", "child", "rekey", "dpd", "error", "daemon", "node", "tunnel", "fault", "restore", "heal",
         "failover", "action")
REKEY_CLOSE_S = 3.0  # a CHILD_SA closed this soon after a rekey of its name is the old SA going away


@dataclass(frozen=True)
class Event:
    t: float  # seconds since the epoch
    kind: str  # one of KINDS
    node: str
    text: str

    def as_dict(self) -> dict:
        return asdict(self)


_CHARON_RULES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"IKE_SA (\S+)\[\d+\] established between (\S+)\.\.\.(\S+)"), "ike", "IKE_SA {0} up ({1} ... {2})"),
    (re.compile(r"IKE_SA (\S+)\[\d+\] rekeyed between"), "rekey", "IKE_SA {0} rekeyed"),
    (re.compile(r"IKE_SA (\S+)\[\d+\] state change: ESTABLISHED => (?:DELETING|DESTROYING)"), "ike",
     "IKE_SA {0} down"),
    (re.compile(r"IKE_SA (\S+)\[\d+\] state change: CONNECTING => DESTROYING"), "error",
     "IKE_SA {0}: connection attempt failed"),
    (re.compile(r"initiating IKE_SA (\S+)\[\d+\] to (\S+)"), "ike", "IKE_SA {0} connecting to {1}"),
    (re.compile(r"^CHILD_SA (\S+)\{\d+\} established with SPIs (\w+)_i (\w+)_o and TS (.+)$"), "child",
     "CHILD_SA {0} up, SPIs in {1} out {2}, {3}"),
    (re.compile(r"^inbound CHILD_SA (\S+)\{\d+\} established with SPIs (\w+)_i (\w+)_o"), "rekey",
     "CHILD_SA {0} rekeyed, new SPIs in {1} out {2}"),
    (re.compile(r"^closing CHILD_SA (\S+)\{\d+\} with SPIs (\w+)_i \((\d+) bytes\) (\w+)_o \((\d+) bytes\)"),
     "child", "CHILD_SA {0} closed (SPIs in {1}, {2} B; out {3}, {4} B)"),
    (re.compile(r"^sending DPD request"), "dpd", "DPD request sent"),
    (re.compile(r"^retransmit (\d+) of request with message ID (\d+)"), "dpd", "retransmit {0} of request {1}"),
    (re.compile(r"^giving up after (\d+) retransmits"), "dpd", "peer not responding: gave up after {0} retransmits"),
    (re.compile(r"^restarting CHILD_SA (\S+)"), "dpd", "DPD action: restarting CHILD_SA {0}"),
    (re.compile(r"received (AUTHENTICATION_FAILED|NO_PROPOSAL_CHOSEN|TS_UNACCEPTABLE|INVALID_KE_PAYLOAD)"),
     "error", "peer sent {0}"),
    (re.compile(r"^no proposal found|^no acceptable proposal found"), "error", "no acceptable proposal"),
    (re.compile(r"^authentication of '([^']*)' with (\S+ ?\S*) failed"), "error", "authentication of {0} failed"),
    (re.compile(r"^(?:MAC mismatched|tried \d+ shared key)"), "error", "pre-shared key mismatch"),
    (re.compile(r"^Starting IKE charon daemon"), "daemon", "charon started"),
]
_CHARON_LINE = re.compile(r"^(\w{3} [ \d]\d \d\d:\d\d:\d\d) \d+\[\w+\] (.*)$")


@dataclass
class CharonParser:
    """Parses one node's charon.log line by line; remembers recent rekeys so the old CHILD_SA that a rekey
    closes is a rekey step, not a tunnel going down."""

    node: str
    year: int
    rekeyed: dict[str, float] = field(default_factory=dict)

    def parse(self, line: str) -> Event | None:
        m = _CHARON_LINE.match(line.rstrip("\n"))
        if not m:
            return None
        try:
            t = dt.datetime.strptime(f"{self.year} {m.group(1)}", "%Y %b %d %H:%M:%S").replace(
                tzinfo=dt.UTC).timestamp()
        except ValueError:
            return None
        msg = m.group(2).strip()
        for pattern, kind, text in _CHARON_RULES:
            hit = pattern.search(msg)
            if hit:
                return self._event(t, kind, text.format(*hit.groups()), hit.group(1) if hit.groups() else "")
        return None

    def _event(self, t: float, kind: str, text: str, name: str) -> Event:
        if kind == "rekey" and text.startswith("CHILD_SA"):
            self.rekeyed[name] = t
        elif kind == "child" and "closed" in text and t - self.rekeyed.get(name, -1e9) <= REKEY_CLOSE_S:
            kind = "rekey"
        return Event(t, kind, self.node, text)


_SUPERVISOR_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d) (.*)$")


def parse_supervisor(line: str) -> Event | None:
    """The supervisor's log (lab/ops/supervisor.py): heals and failed heals; its own start line is noise."""
    m = _SUPERVISOR_LINE.match(line.strip())
    if not m or m.group(2).startswith("supervising"):
        return None
    text = m.group(2)
    node = text.split()[1] if text.startswith("healed ") else ""
    return Event(dt.datetime.fromisoformat(m.group(1)).timestamp(), "heal", node.rstrip(","), text)


def parse_ha(line: str) -> Event | None:
    """An HA agent's event (ha-events.jsonl, lab/ha/agents.py): the standby noticing a dead peer, taking the
    addresses, initiating the tunnels: the steps of an active-standby failover."""
    try:
        data = json.loads(line)
        t, name, node = float(data["t"]), str(data["event"]), str(data.get("node", ""))
    except (ValueError, KeyError, TypeError):
        return None
    extra = ", ".join(f"{k} {v}" for k, v in sorted(data.items()) if k not in ("t", "event", "node"))
    return Event(t, "daemon" if name == "agent-started" else "failover", node,
                 f"HA agent: {name}" + (f" ({extra})" if extra else ""))


def parse_failover(result: dict) -> list[Event]:
    """A `lab failover --json` run (lab/ha/failover.py: FailoverResult): its marks (every charon's vici
    events, the HA agents' steps, the fault), the data its --plot draws, on the timeline's clock, and the
    outage it measured beside Azure's figure."""
    try:
        t0, gw = float(result["t0"]), str(result["gateway"])
        marks = [(t0 + float(m["t"]), str(m["node"]), str(m["what"])) for m in result["marks"]]
        udp = result["udp"]
        outage = f"worst UDP flow outage {float(udp['flow_outage_ms']):.0f} ms"
    except (KeyError, TypeError, ValueError):
        return []
    azure = f" (Azure: {result['azure_figure']})" if result.get("azure_figure") else ""
    end = t0 + float(udp.get("flow_outage_to") or 0.0)
    return [Event(t, "failover", node, f"failover run: {what}") for t, node, what in marks] + [
        Event(end, "failover", gw, f"failover run {result.get('kind', '')} of {gw}: {outage}{azure}")]


# ---- snapshot differences -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """What the timeline compares between two snapshots."""

    nodes: Mapping[str, str] = field(default_factory=dict)  # node -> state
    tunnels: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # edge id -> (connection label, state)
    faults: Mapping[str, str] = field(default_factory=dict)  # target -> description
    active: Mapping[str, str] = field(default_factory=dict)  # gateway -> active instance


def diff(prev: Summary, cur: Summary, t: float) -> list[Event]:
    out: list[Event] = []
    for node, state in sorted(cur.nodes.items()):
        if prev.nodes.get(node, state) != state:
            out.append(Event(t, "node", node, f"node {node}: {prev.nodes[node]} -> {state}"))
    for target, what in sorted(cur.faults.items()):
        if target not in prev.faults:
            out.append(Event(t, "fault", target.split(":")[0], f"fault {what}"))
    for target, what in sorted(prev.faults.items()):
        if target not in cur.faults:
            out.append(Event(t, "restore", target.split(":")[0], f"restored {what}"))
    for gw, node in sorted(cur.active.items()):
        if prev.active.get(gw, node) != node:
            out.append(Event(t, "failover", node, f"gateway {gw}: active instance {prev.active[gw]} -> {node}"))
    for edge, (label, state) in sorted(cur.tunnels.items()):
        before = prev.tunnels.get(edge)
        if before is not None and before[1] != state:
            out.append(Event(t, "tunnel", edge.split("~")[0], f"tunnel {label}: {before[1]} -> {state}"))
    return out


# ---- reading logs as they grow ------------------------------------------------------------------------


@dataclass
class LogTail:
    """New complete lines of a file since the last call; starts over when the file is replaced or shrinks
    (a restarted node's charon.log is written afresh)."""

    path: Path
    offset: int = 0
    inode: int = -1
    rest: str = ""

    def read(self, limit: int = 1 << 20) -> list[str]:
        try:
            st = self.path.stat()
            if st.st_ino != self.inode or st.st_size < self.offset:
                self.inode, self.offset, self.rest = st.st_ino, 0, ""
            if st.st_size == self.offset:
                return []
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read(limit)
        except OSError:
            return []
        self.offset += len(data)
        text = self.rest + data.decode(errors="replace")
        lines = text.split("\n")
        self.rest = lines.pop()
        return lines
