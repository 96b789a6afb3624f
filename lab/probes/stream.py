"""Probe stream, copied into nodes' /lab and run there by lab.ha.failover (python3 + scapy; imports no `lab`).

  send SPEC   in a VNet host: sequence-numbered UDP over several flows (source ports, so ECMP with an L4
              hash spreads them over both instances) at a fixed rate, and Scapy ICMP echoes whose replies
              a raw socket notes; writes what it sent (and the echo round trips) as JSON
  recv SPEC   in a site host: note every datagram's arrival (seq, flow, time) until the deadline; JSON out
Times are time.time(): every container shares the host's clock, so sender, receiver and vici events align.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import sys
import threading
import time
from pathlib import Path

MAGIC = b"LABSTRM"
HEADER = struct.Struct("!7sIHd")  # magic, seq, flow, send time


def _write(path: str, data: dict) -> None:
    tmp = Path(path + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def _icmp_replies(ident: int, got: dict[int, float], stop: threading.Event) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    while not stop.is_set():
        ready, _, _ = select.select([sock], [], [], 0.1)
        if ready:
            data = sock.recv(2048)
            ihl = (data[0] & 0x0F) * 4
            kind, _, _, rid, seq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
            if kind == 0 and rid == ident and seq not in got:
                got[seq] = time.time()


def send_main(spec: dict) -> int:
    """UDP at `rate` pps round-robin over `flows` source ports; an ICMP echo every `icmp_every` packets."""
    from scapy.layers.inet import ICMP, IP
    from scapy.supersocket import L3RawSocket

    socks = []
    for i in range(int(spec["flows"])):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", int(spec["sport"]) + i))
        socks.append(s)
    raw, ident = L3RawSocket(), int(spec["ident"]) & 0xFFFF
    replies: dict[int, float] = {}
    stop = threading.Event()
    threading.Thread(target=_icmp_replies, args=(ident, replies, stop), daemon=True).start()
    sent: list[list[float]] = []
    pings: list[tuple[int, float]] = []  # (ICMP sequence number, when it was sent)
    rate, every = float(spec["rate"]), int(spec["icmp_every"])
    count = int(float(spec["duration"]) * rate)
    dst, dport, start = spec["dst"], int(spec["dport"]), time.time() + 0.2
    Path(spec["ready"]).write_text("sending\n")
    for seq in range(count):
        time.sleep(max(0.0, start + seq / rate - time.time()))
        now, flow = time.time(), seq % len(socks)
        socks[flow].sendto(HEADER.pack(MAGIC, seq, flow, now), (dst, dport))
        sent.append([seq, flow, now])
        if seq % every == 0:
            iseq = (seq // every) & 0xFFFF
            raw.send(IP(dst=dst) / ICMP(id=ident, seq=iseq) / b"labstream")
            pings.append((iseq, time.time()))
    time.sleep(float(spec["grace"]))
    stop.set()
    _write(spec["out"], {"sent": sent, "icmp": [[s, t, replies.get(s)] for s, t in pings]})
    return 0


def recv_main(spec: dict) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.bind(("0.0.0.0", int(spec["dport"])))
    sock.settimeout(0.2)
    Path(spec["ready"]).write_text("listening\n")
    got, deadline = [], time.time() + float(spec["lifetime"])
    while time.time() < deadline and not Path(spec["stop"]).exists():
        try:
            data = sock.recv(2048)
        except TimeoutError:
            continue
        now = time.time()
        if len(data) >= HEADER.size and data.startswith(MAGIC):
            _, seq, flow, _ = HEADER.unpack(data[:HEADER.size])
            got.append([seq, flow, now])
    _write(spec["out"], {"received": got})
    return 0


def main(argv: list[str]) -> int:
    mode, spec = argv[0], json.loads(Path(argv[1]).read_text())
    return send_main(spec) if mode == "send" else recv_main(spec)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
