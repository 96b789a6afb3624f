"""Probe agent, copied into a host node's /lab and run there by `lab verify` (python3 + scapy only).

It runs inside the container so every probe packet is born in a lab namespace, never on the host.
Two modes:
  probe JSON  send the probes JSON describes (ICMP echo or UDP) with Scapy, print results as JSON
  echo ...    a UDP echo responder (plain socket) so UDP probes get real answers from the far host
Standalone on purpose: it imports nothing from `lab`, which is not installed in the node image.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sys
import time
from pathlib import Path
from typing import TypeVar

ECHO_TICK_S = 0.2
MIN_GAP_S = 0.002  # the fastest a node sends probe packets (500 per second)
MAX_UDP_PAYLOAD = 65535
T = TypeVar("T")


def _packets(probe: dict, marker: str, sport_base: int) -> list:
    """One packet per sequence number; the payload names the run (marker), the probe and the seq."""
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.packet import Packet, Raw

    ident = random.randint(1, 0xFFFF)
    out = []
    for seq in range(int(probe["count"])):
        ip = IP(dst=probe["dst"], src=probe["src"]) if probe.get("src") else IP(dst=probe["dst"])
        l4: Packet
        if probe["kind"] == "icmp":
            l4 = ICMP(type=8, id=ident, seq=seq)
        else:
            l4 = UDP(sport=sport_base + seq, dport=int(probe["port"]))
        out.append(ip / l4 / Raw(f"{marker}|{probe['id']}|{seq}".encode()))
    return out


def _bind_ports(count: int) -> tuple[int, list[socket.socket]]:
    """Hold the UDP source ports: echoes then land on a socket instead of drawing port unreachables."""
    for _ in range(20):
        base = random.randint(40000, 60000 - count)
        held: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(s)
                s.bind(("0.0.0.0", port))
            return base, held
        except OSError:
            for s in held:
                s.close()
    raise OSError("no free block of UDP source ports")


def _build_all(probes: list[dict], marker: str) -> tuple[dict[str, list], list]:
    """Build every probe's packets, holding UDP source ports; returns packets per probe and the sockets."""
    by_probe: dict[str, list] = {}
    held: list[socket.socket] = []
    for probe in probes:
        base = 0
        if probe["kind"] == "udp":
            base, socks = _bind_ports(int(probe["count"]))
            held += socks
        by_probe[probe["id"]] = _packets(probe, marker, base)
    return by_probe, held


def answer_filter(dsts: set[str]) -> str:
    """The kernel-side (BPF) filter of the answer sniffer: only IPv4 packets from a probed address reach
    Python. Without it the sniffer parsed every frame on the interface (an HA agent's next-hop pings, BGP,
    other probes); in a QEMU guest (TCG) it fell seconds behind, and the answers still queued when it was
    stopped counted as lost although they had arrived (issue #15, docs/kernel-dataplane.md)."""
    return "ip and (" + " or ".join(f"src host {d}" for d in sorted(dsts)) + ")"


def _sniffer(dsts: set[str], sent: dict[bytes, float], got: dict[bytes, float]):  # noqa: ANN202
    """Record when the answer to each sent payload arrives: an ICMP echo reply or a UDP datagram from
    the probed address carrying the same payload (an ICMP error quoting it does not count)."""
    import threading

    from scapy.config import conf
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.packet import Raw
    from scapy.sendrecv import AsyncSniffer

    def on_packet(pkt) -> None:  # noqa: ANN001
        if IP not in pkt or Raw not in pkt or pkt[IP].src not in dsts:
            return
        if (ICMP in pkt and pkt[ICMP].type != 0) or (ICMP not in pkt and UDP not in pkt):
            return
        load = bytes(pkt[Raw].load)
        if load in sent and load not in got:
            got[load] = float(pkt.time)

    started = threading.Event()
    ifaces = sorted({conf.route.route(d)[0] for d in dsts})
    sniffer = AsyncSniffer(iface=ifaces, prn=on_packet, store=False, started_callback=started.set,
                           filter=answer_filter(dsts))
    sniffer.start()
    started.wait(5.0)
    return sniffer


def run_probes(probes: list[dict], marker: str) -> list[dict]:
    """Send every probe's packets (interleaved, each probe's `interval` apart) while a sniffer notes the
    answers; then wait until all are answered or the longest `timeout` has passed since the last packet.
    Payloads name the probe and sequence number, so each answer is matched to exactly one packet."""
    from scapy.config import conf

    by_probe, held = _build_all(probes, marker)
    sent: dict[bytes, float] = {}
    got: dict[bytes, float] = {}
    interval = min((float(p["interval"]) for p in probes), default=0.0)
    timeout = max((float(p["timeout"]) for p in probes), default=1.0)
    order = send_order(list(by_probe.values()), interval)
    sniffer = _sniffer({p["dst"] for p in probes}, sent, got)
    sock = conf.L3socket()
    try:
        for pkt, gap in order:
            sent[bytes(pkt.lastlayer())] = time.time()
            sock.send(pkt)
            time.sleep(gap)
        deadline = time.time() + timeout
        while len(got) < len(sent) and time.time() < deadline:
            time.sleep(0.01)
    finally:
        sock.close()
        sniffer.stop()
        for s in held:
            s.close()
    return [_result(pid, [bytes(p.lastlayer()) for p in ps], sent, got) for pid, ps in by_probe.items()]


def send_order(per_probe: list[list[T]], interval: float, min_gap: float = MIN_GAP_S) -> list[tuple[T, float]]:
    """The probes' packets interleaved (one of each probe in turn), each with the pause after it: each probe's
    packets stay at least `interval` apart, and the node sends no faster than one per `min_gap`. A VNet host
    probing 100 sites sent its 2,000 packets one after the other, 40 s at 20 ms; interleaved, about 4 s."""
    out = []
    for k in range(max((len(ps) for ps in per_probe), default=0)):
        row = [ps[k] for ps in per_probe if k < len(ps)]
        gap = max(min_gap, interval / len(row))
        out += [(pkt, gap) for pkt in row]
    return out


def _result(pid: str, loads: list[bytes], sent: dict[bytes, float], got: dict[bytes, float]) -> dict:
    times = [sent[x] for x in loads if x in sent]
    rtts = sorted(round((got[x] - sent[x]) * 1000.0, 3) for x in loads if x in got)
    return {"id": pid, "sent": len(times), "received": len(rtts), "rtts_ms": rtts,
            "start": min(times, default=0.0), "end": max(times, default=0.0)}


def probe_main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    try:
        results: dict = {"results": run_probes(spec["probes"], spec["marker"])}
    except Exception as exc:  # noqa: BLE001 - the caller turns it into a ProbeError naming the node
        results = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(results))
    return 0 if "results" in results else 1


def echo_main(port: int, lifetime: float, ready: Path, stop: Path) -> int:
    """Echo every datagram back until `stop` exists or `lifetime` s pass; `ready` says it is bound."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    sock.settimeout(ECHO_TICK_S)
    ready.write_text(str(os.getpid()))
    deadline = time.monotonic() + lifetime
    try:
        while time.monotonic() < deadline and not stop.exists():
            try:
                data, peer = sock.recvfrom(MAX_UDP_PAYLOAD)
            except TimeoutError:
                continue
            sock.sendto(data, peer)
    finally:
        sock.close()
        ready.unlink(missing_ok=True)
        stop.unlink(missing_ok=True)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="agent.py")
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("probe")
    p.add_argument("spec")
    e = sub.add_parser("echo")
    e.add_argument("--port", type=int, required=True)
    e.add_argument("--lifetime", type=float, default=60.0)
    e.add_argument("--ready", type=Path, required=True)
    e.add_argument("--stop", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.mode == "probe":
        return probe_main(args.spec)
    return echo_main(args.port, args.lifetime, args.ready, args.stop)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
