"""Checks 1 and 2: probes reach the far side, and nothing crosses the Internet link in clear."""

from __future__ import annotations

import statistics
from ipaddress import IPv4Address

from pydantic import JsonValue

from lab.probes.pcap import WireFrame
from lab.probes.results import ProbeResult
from lab.verify.evidence import Evidence, excerpt
from lab.verify.model import CheckResult

MAX_SHOWN = 8


def _probe_data(r: ProbeResult) -> dict[str, JsonValue]:
    rtt: dict[str, JsonValue] | None = None
    if r.rtts_ms:
        rtt = {"min": min(r.rtts_ms), "avg": round(statistics.fmean(r.rtts_ms), 3), "max": max(r.rtts_ms)}
    return {"probe": r.spec.id, "kind": r.spec.kind, "src_node": r.spec.src_node, "dst_node": r.spec.dst_node,
            "dst": r.spec.dst, "sent": r.sent, "received": r.received, "loss_pct": round(r.loss_pct, 1),
            "rtt_ms": rtt}


def check_reachability(ev: Evidence, max_loss_pct: float) -> CheckResult:
    """Every pair both ways, ICMP and UDP: at most `max_loss_pct` lost, and at least one answer."""
    lines, bad = [], 0
    for r in ev.reach:
        ok = r.received > 0 and r.loss_pct <= max_loss_pct
        bad += not ok
        lines.append(f"{'ok  ' if ok else 'LOSS'} {r.spec.describe()}: {r.received}/{r.sent} received, "
                     f"{r.loss_pct:.0f}% loss, {r.rtt_text()}")
    data: dict[str, JsonValue] = {"max_loss_pct": max_loss_pct, "probes": [_probe_data(r) for r in ev.reach]}
    if not ev.reach:
        return CheckResult(name="reachability", passed=False, data=data,
                           summary="nothing to probe: no VNet host and site host are joined by a connection",
                           evidence=["add hosts to a gateway's vnet and to a site (`hosts:`)"])
    summary = (f"{len(ev.reach) - bad}/{len(ev.reach)} probes answered "
               f"(ICMP and UDP, {len(ev.targets.pairs)} host pair(s) both ways, loss <= {max_loss_pct:g}%)")
    return CheckResult(name="reachability", passed=bad == 0, summary=summary, evidence=lines, data=data)


def _inner_in(frame: WireFrame, inner: dict[str, str]) -> str | None:
    """An inner (LAN) address this frame shows: in its IP/ARP header, or anywhere in a frame that is not
    IKE/ESP (whose payloads are ciphertext, where 4 random bytes could match by chance)."""
    clear = frame.kind in ("ip", "igmp", "other")
    for addr, what in inner.items():
        if addr in (frame.src, frame.dst) or (clear and IPv4Address(addr).packed in frame.raw):
            return f"{addr} ({what})"
    return None


def frame_problem(frame: WireFrame, ev: Evidence) -> str | None:
    """Why this underlay frame breaks confidentiality, or None when it is IKE/ESP/ARP between public IPs."""
    marker = ev.marker.encode()
    if marker in frame.raw:
        return f"carries the marker in clear: {excerpt(frame.raw, marker)!r}"
    inner = _inner_in(frame, ev.targets.inner)
    if inner:
        return f"shows inner address {inner} in clear"
    if frame.kind == "ip":
        return "is neither IKE (UDP 500/4500) nor ESP"
    public = ev.targets.public_ips
    if frame.kind in ("esp", "ike", "keepalive") and not (frame.src in public and frame.dst in public):
        return "is IKE/ESP between addresses that are not the lab's public IPs"
    return None


def check_encrypted(ev: Evidence) -> CheckResult:
    """No frame on the Internet link carries the marker or an inner address; IP there is IKE or ESP only."""
    kinds: dict[str, int] = {}
    problems = []
    for f in ev.frames:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
        why = frame_problem(f, ev)
        if why:
            problems.append(f"frame {f.index} {f.summary}: {why}")
    answered = sum(r.received for r in ev.reach)
    extra = []
    if ev.capture.dropped:
        extra.append(f"tcpdump dropped {ev.capture.dropped} packet(s): the capture is incomplete")
    if answered and not kinds.get("esp"):
        extra.append(f"{answered} probe answers crossed the Internet link, yet no ESP was captured")
    if not ev.frames:
        extra.append("the capture is empty: it proves nothing")
    data: dict[str, JsonValue] = {"frames": len(ev.frames), "by_kind": dict(sorted(kinds.items())),
                                  "leaks": len(problems), "dropped": ev.capture.dropped}
    passed = not problems and not extra
    if passed:
        summary = (f"{len(ev.frames)} frames on the Internet link: {kinds.get('esp', 0)} ESP, "
                   f"{kinds.get('ike', 0)} IKE, {kinds.get('arp', 0)} ARP; marker and inner addresses never in clear")
    else:
        summary = f"{len(problems)} frame(s) leak in clear" if problems else extra[0]
    shown = problems[:MAX_SHOWN] + ([f"... and {len(problems) - MAX_SHOWN} more"] if len(problems) > MAX_SHOWN else [])
    return CheckResult(name="encrypted", passed=passed, summary=summary, evidence=extra + shown, data=data)
