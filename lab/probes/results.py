"""Probe specs and results as data, and the agent's command line and JSON answer (pure, no scapy).

A spec names the run's marker only through the agent call, so a result can be matched to the
packets a capture saw: every probe payload is `<marker>|<probe id>|<seq>`.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from lab.errors import ProbeError

AGENT_PATH = "/lab/agent.py"  # inside the node: its /lab is <state>/nodes/<node>/ on the host
AGENT_SOURCE = Path(__file__).with_name("agent.py")
Kind = Literal["icmp", "udp"]
Purpose = Literal["reach", "selector"]


class ProbeSpec(BaseModel):
    """One probe: `count` packets from node `src_node` to `dst` (optionally from a spoofed `src`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    purpose: Purpose
    kind: Kind
    src_node: str
    dst: str
    dst_node: str | None = None  # None: an address no node has (selector probes)
    src: str | None = None  # spoofed source address; None: the node's own
    count: int = 10
    interval_s: float = 0.02
    timeout_s: float = 1.0
    port: int = 0  # UDP destination port (the far host's echo responder)

    def describe(self) -> str:
        src = f"{self.src_node}" + (f" (as {self.src})" if self.src else "")
        dst = f"{self.dst_node} ({self.dst})" if self.dst_node else self.dst
        return f"{self.kind.upper()} {src} -> {dst}"


class ProbeResult(BaseModel):
    """What the agent measured for one spec: counts, round-trip times, and when it sent (epoch s)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spec: ProbeSpec
    sent: int
    received: int
    rtts_ms: list[float]
    start: float
    end: float

    @property
    def loss_pct(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 100.0

    def rtt_text(self) -> str:
        if not self.rtts_ms:
            return "rtt -"
        r = self.rtts_ms
        return f"rtt min/avg/max {min(r):.2f}/{statistics.fmean(r):.2f}/{max(r):.2f} ms"


def payload(marker: str, probe_id: str, seq: int) -> bytes:
    """The payload the agent puts in every packet (kept in step with agent._packets)."""
    return f"{marker}|{probe_id}|{seq}".encode()


def agent_argv(marker: str, specs: list[ProbeSpec]) -> list[str]:
    """The command that runs `specs` in a node (all from the same node)."""
    probes = [
        {"id": s.id, "kind": s.kind, "dst": s.dst, "src": s.src, "count": s.count,
         "interval": s.interval_s, "timeout": s.timeout_s, "port": s.port}
        for s in specs
    ]
    return ["python3", AGENT_PATH, "probe", json.dumps({"marker": marker, "probes": probes})]


def echo_argv(port: int, lifetime_s: float, ready: str, stop: str) -> list[str]:
    return ["python3", AGENT_PATH, "echo", "--port", str(port), "--lifetime", f"{lifetime_s:g}",
            "--ready", ready, "--stop", stop]


def parse_agent_output(node: str, output: str, specs: list[ProbeSpec]) -> list[ProbeResult]:
    """The agent's JSON line -> results in spec order; anything else is a ProbeError naming the node."""
    line = next((ln for ln in reversed(output.splitlines()) if ln.startswith("{")), "")
    try:
        answer = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ProbeError(f"node {node!r}: probe agent printed no result: {output.strip()[-300:]!r}",
                         hint="is python3-scapy in the node image? `lab exec NODE -- python3 -c 'import scapy'`"
                         ) from exc
    if "error" in answer:
        raise ProbeError(f"node {node!r}: probe agent failed: {answer['error']}")
    by_id = {r.get("id"): r for r in answer.get("results", [])}
    out = []
    for spec in specs:
        raw = by_id.get(spec.id)
        if raw is None:
            raise ProbeError(f"node {node!r}: probe agent returned no result for probe {spec.id!r}")
        try:
            out.append(ProbeResult(spec=spec, **{k: v for k, v in raw.items() if k != "id"}))
        except ValidationError as exc:
            raise ProbeError(f"node {node!r}: probe {spec.id!r}: malformed result: {exc}") from exc
    return out
