"""Checks 3-5: ESP on the wire belongs to the SAs charon reports, the selectors hold, and the captured
ESP decrypts with the logged keys to the probes that were sent."""

from __future__ import annotations

from collections import Counter
from ipaddress import IPv4Address

from pydantic import JsonValue

from lab.probes.esp import Decryption, SaId, sa_id
from lab.probes.pcap import WireFrame
from lab.probes.results import ProbeResult
from lab.verify.evidence import Evidence, excerpt, find_child, grew, probe_payload_prefix
from lab.verify.model import CheckResult

MAX_SHOWN = 8


def _carried(ev: Evidence, src_group: str, dst_group: str) -> int:
    """Probe packets that must have crossed src_group -> dst_group: requests whose answer came back
    (from hosts behind src_group) plus the answers to requests from hosts behind dst_group."""
    total = 0
    for r in ev.reach:
        src, dst = ev.targets.group_of(r.spec.src_node), ev.targets.group_of(r.spec.dst_node or "")
        if (src, dst) in ((src_group, dst_group), (dst_group, src_group)):
            total += r.received
    return total


def _spi_line(ev: Evidence, sid: SaId, wire: int, grown: dict) -> tuple[bool, str, dict[str, JsonValue]]:
    spi, src, dst = sid
    s_node, d_node = ev.targets.public_ips.get(src), ev.targets.public_ips.get(dst)
    snaps = [ev.before, ev.mid, ev.closing, ev.after]
    out = find_child(snaps, s_node, spi_out=spi) if s_node else None
    inn = find_child(snaps, d_node, spi_in=spi) if d_node else None
    d_out = grown.get((out.node, out.spi_in, out.spi_out), (0, 0))[1] if out else 0
    d_in = grown.get((inn.node, inn.spi_in, inn.spi_out), (0, 0))[0] if inn else 0
    ok = bool(out and inn and d_out >= wire and d_in >= wire)
    where = f"SPI 0x{spi:08x} {src} ({s_node or '?'}) -> {dst} ({d_node or '?'}): {wire} on the wire"
    if not out:
        why = f"not an outbound SA of {s_node or 'any lab node'}"
    elif not inn:
        why = f"not an inbound SA of {d_node or 'any lab node'}"
    else:
        why = f"{s_node} spi_out == {d_node} spi_in; counters grew out +{d_out}, in +{d_in}"
        why += "" if d_out >= wire and d_in >= wire else " (less than seen on the wire)"
    data: dict[str, JsonValue] = {"spi": f"{spi:08x}", "src": src, "dst": dst, "src_node": s_node,
                                  "dst_node": d_node, "wire_packets": wire, "packets_out_grew": d_out,
                                  "packets_in_grew": d_in, "matched": ok}
    return ok, f"{'ok ' if ok else 'BAD'} {where}: {why}", data


def _direction_lines(ev: Evidence, grown: dict) -> tuple[bool, list[str]]:
    """Per direction between a gateway and a site: the SAs' out counters grew by >= the probes carried."""
    ok, lines = True, []
    groups = ev.targets.groups
    for a, b in sorted({(p.group_a, p.group_b) for p in ev.targets.pairs}):
        for src, dst in ((a, b), (b, a)):
            need = _carried(ev, src, dst)
            got = sum(out for (node, _i, _o), (_in, out) in grown.items() if groups.get(node) == src)
            good = got >= need
            ok = ok and good
            lines.append(f"{'ok ' if good else 'BAD'} {src} -> {dst}: SA out counters +{got} "
                         f"{'>=' if good else '<'} {need} probe packets carried")
    return ok, lines


def _shared_lines(ev: Evidence) -> list[str]:
    """A public address two nodes held during the run: both answer for it (a standby that took over from an
    active that still runs), so the wire's SPIs cannot be told to belong to the address's node."""
    return [f"BAD {ip} was held by {' and '.join(nodes)} during verify: one public address on two nodes "
            "(`lab inspect` lists each node's addresses; an active-standby gateway has one active instance)"
            for ip, nodes in sorted(ev.holders.items()) if len(nodes) > 1]


def check_spis(ev: Evidence) -> CheckResult:
    """Each SPI on the wire is an SA of the node that holds its source address (outbound) and of the one that
    holds its destination (inbound), and their counters grew by what was captured."""
    wire = Counter(sa_id(f) for f in ev.esp_frames)
    grown = grew(ev.before, ev.after)
    results = [_spi_line(ev, sid, n, grown) for sid, n in sorted(wire.items(), key=lambda kv: (kv[0][1], kv[0][0]))]
    dir_ok, dir_lines = _direction_lines(ev, grown)
    shared = _shared_lines(ev)
    lines = shared + [line for _, line, _ in results] + dir_lines
    data: dict[str, JsonValue] = {"sas": [d for _, _, d in results],
                                  "holders": {ip: list(nodes) for ip, nodes in ev.holders.items()}}
    if not wire:
        return CheckResult(name="spis", passed=False, summary="no ESP on the wire: no SPI to match",
                           evidence=lines, data=data)
    passed = all(ok for ok, _, _ in results) and dir_ok and not shared
    summary = (f"{len(wire)} SPI(s) on the wire, each a CHILD_SA charon reports, in the right direction"
               if passed else f"{sum(not ok for ok, _, _ in results)} of {len(wire)} SPI(s) do not match, "
               f"or counters grew less than the probes carried" + (", or a public address was on two nodes"
                                                                    if shared else ""))
    return CheckResult(name="spis", passed=passed, summary=summary, evidence=lines, data=data)


def _senders(ev: Evidence, host: str) -> set[str]:
    """Public IPs of the charon nodes that route for `host` (where its traffic enters the Internet link)."""
    group = ev.targets.group_of(host)
    return {ip for ip, node in ev.targets.public_ips.items() if ev.targets.groups.get(node) == group}


def _in_clear(ev: Evidence, r: ProbeResult, prefix: bytes) -> WireFrame | None:
    """A non-ESP frame with the probe's payload, or (for a probe to no node) one its side sent towards
    the probe's destination, such as an ARP request for it: the packet was on its way out in clear."""
    senders = _senders(ev, r.spec.src_node)
    for f in ev.frames:
        if f.kind == "esp":
            continue
        if prefix in f.raw or (r.spec.dst_node is None and f.dst == r.spec.dst and f.src in senders):
            return f
    return None


def _selector_hits(ev: Evidence, probes: list[ProbeResult]) -> list[str]:
    """Where a selector probe showed up: answered, decrypted out of ESP, or in clear on the wire."""
    hits = []
    for r in probes:
        prefix = probe_payload_prefix(ev.marker, r.spec.id)
        if r.received:
            hits.append(f"{r.spec.describe()}: {r.received}/{r.sent} answered")
        for d in ev.decrypted:
            if d.ok and prefix in d.inner:
                hits.append(f"{r.spec.describe()}: carried by the tunnel (frame {d.frame.index}, "
                            f"SPI 0x{d.frame.spi:08x}: {d.inner_summary})")
                break
        f = _in_clear(ev, r, prefix)
        if f is not None:
            hits.append(f"{r.spec.describe()}: in clear on the Internet link (frame {f.index} {f.summary}"
                        f"{': ' + repr(excerpt(f.raw, prefix)) if prefix in f.raw else ''})")
    return hits


BGP_PORT = 179


def is_bgp(inner: bytes) -> bool:
    """An IPv4 TCP segment from or to port 179."""
    if len(inner) < 20 or inner[0] >> 4 != 4 or inner[9] != 6:
        return False
    at = (inner[0] & 0x0F) * 4
    ports = inner[at:at + 4]
    return len(ports) == 4 and BGP_PORT in (int.from_bytes(ports[:2], "big"), int.from_bytes(ports[2:], "big"))


def bgp_frames(decrypted: list[Decryption]) -> Counter[int]:
    """SPI -> captured ESP frames that decrypt to BGP. A BGP session over the tunnel keeps sending keepalives
    while the out-of-selector probes run; they are inside the selectors, so the SA counting them is no leak.
    (Counted over the whole capture: a tolerance no larger than the BGP traffic actually seen.)"""
    return Counter(d.frame.spi for d in decrypted if d.ok and is_bgp(d.inner))


def bgp_only(decrypted: list[Decryption]) -> bool:
    """Frames that all decrypted to BGP (TCP port 179): a tunnel that carried only its own session."""
    return bool(decrypted) and all(d.ok and is_bgp(d.inner) for d in decrypted)


def check_selectors(ev: Evidence) -> CheckResult:
    """Probes outside the traffic selectors: no SA counter grows, no tunnel carries them, none leaks.
    Counted from `mid` to `closing`, both inside the capture: a keepalive sent after the capture stopped is
    not in the BGP tolerance, so it must not be in the counters either."""
    bgp = bgp_frames(ev.decrypted)
    grown = {k: v for k, v in grew(ev.mid, ev.closing).items() if sum(v) > bgp[k[1]] + bgp[k[2]]}
    hits = _selector_hits(ev, ev.selector)
    lines = [f"SA of {node} (in 0x{i:08x} / out 0x{o:08x}) counted +{a} in, +{b} out while only "
             f"out-of-selector probes ran" for (node, i, o), (a, b) in sorted(grown.items())] + hits
    sent = sum(r.sent for r in ev.selector)
    data: dict[str, JsonValue] = {"probes_sent": sent, "outside": ev.targets.outside, "spoofed": ev.targets.spoofed,
                                  "counters_grew": sum(a + b for a, b in grown.values()), "hits": len(hits)}
    if not sent:
        return CheckResult(name="selectors", passed=False, summary="no selector probe was sent", data=data)
    if not ev.frames:
        return CheckResult(name="selectors", passed=False, data=data,
                           summary="the capture is empty: it cannot show the probes did not leak")
    passed = not grown and not hits
    routed = sorted({f"{p.group_a}<->{p.group_b}" for p in ev.targets.pairs if p.route_based})
    data["route_based"] = routed  # type: ignore[assignment]
    spoofed = any(r.spec.id.startswith("spoofed:") for r in ev.selector)
    summary = (f"{sent} packets to {ev.targets.outside}{f' and from spoofed {ev.targets.spoofed}' if spoofed else ''}: "
               f"no SA counted them, none answered or leaked" if passed
               else f"out-of-selector traffic was carried or leaked ({len(lines)} finding(s))")
    if passed:
        lines = [f"{r.spec.describe()}: {r.sent} sent, 0 answered" for r in ev.selector]
        lines += [f"{r}: route-based (0.0.0.0/0 <-> 0.0.0.0/0, tunnel interfaces): routes decide, no "
                  "spoofed-source probe" for r in routed]
    return CheckResult(name="selectors", passed=passed, summary=summary, evidence=lines, data=data)


def _decrypt_lines(ev: Evidence, by_sa: dict[SaId, list[Decryption]]) -> list[str]:
    marker = ev.marker.encode()
    lines = []
    for (spi, src, dst), ds in sorted(by_sa.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        ok = [d for d in ds if d.ok]
        hits = [d for d in ok if marker in d.inner]
        head = f"SPI 0x{spi:08x} {src} -> {dst}: {len(ok)}/{len(ds)} decrypted"
        if ok:
            head += f" with the {ok[0].role} key from {ok[0].node}'s keys.log"
        if hits:
            head += f"; marker in {len(hits)}, e.g. {hits[0].inner_summary} {excerpt(hits[0].inner, marker)!r}"
        elif bgp_only(ok):
            head += "; only its BGP session (ECMP sent no probe flow this way)"
        errors = sorted({d.error for d in ds if d.error})
        lines.append(("ok  " if len(ok) == len(ds) and (hits or bgp_only(ok)) else "FAIL") + " " + head
                     + (f"; {errors[0]}" if errors else ""))
    return lines


def inner_pairs(decrypted: list[Decryption]) -> list[str]:
    """"src -> dst" of every decrypted inner IPv4 packet, once each: the addresses inside ESP (with NAT rules,
    the translated ones)."""
    pairs = {f"{IPv4Address(d.inner[12:16])} -> {IPv4Address(d.inner[16:20])}"
             for d in decrypted if d.ok and len(d.inner) >= 20 and d.inner[0] >> 4 == 4}
    return sorted(pairs)


def check_decryption(ev: Evidence) -> CheckResult:
    """Every ESP frame decrypts with a key from keys.log, and each direction's plaintext holds the marker (or,
    where ECMP sent no probe this way, only the tunnel's own BGP session)."""
    by_sa: dict[SaId, list[Decryption]] = {}
    for d in ev.decrypted:
        by_sa.setdefault(sa_id(d.frame), []).append(d)
    marker = ev.marker.encode()
    ok = sum(d.ok for d in ev.decrypted)
    with_marker = sum(d.ok and marker in d.inner for d in ev.decrypted)
    directions = {(src, dst) for _, src, dst in by_sa}
    # A direction proves itself by the marker, or by decrypting to the tunnel's own BGP session only: with
    # four tunnels (a device pair, active-active) ECMP may hash no probe flow onto one of them.
    marked = {(src, dst) for (_, src, dst), ds in by_sa.items()
              if any(d.ok and marker in d.inner for d in ds) or bgp_only([d for d in ds if d.ok])}
    lines = _decrypt_lines(ev, by_sa)
    if data_inner := inner_pairs(ev.decrypted):
        lines.insert(0, "inside ESP: " + ", ".join(data_inner[:MAX_SHOWN]))
    if not ev.keys:
        lines.insert(0, "no ESP keys in any keys.log (strongswan.conf needs filelog keys with chd = 4)")
    data: dict[str, JsonValue] = {"esp_frames": len(ev.decrypted), "decrypted": ok, "with_marker": with_marker,
                                  "keys_logged": len(ev.keys), "inner": list[JsonValue](inner_pairs(ev.decrypted))}
    passed = bool(ev.decrypted) and ok == len(ev.decrypted) and directions == marked
    if passed:
        summary = f"{ok}/{len(ev.decrypted)} ESP frames decrypted with logged keys; marker found in {with_marker}"
    elif not ev.decrypted:
        summary = "no ESP frame captured: nothing to decrypt"
    else:
        summary = (f"{len(ev.decrypted) - ok}/{len(ev.decrypted)} ESP frames did not decrypt"
                   if ok < len(ev.decrypted) else "the marker was not found in every direction's plaintext")
    return CheckResult(name="decryption", passed=passed, summary=summary, evidence=lines[:MAX_SHOWN * 2], data=data)
