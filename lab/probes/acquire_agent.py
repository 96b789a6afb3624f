"""Acquire agent, copied into a node's /lab and run there detached by lab.acquire (python3 only; imports no `lab`).

Azure brings up the later lines of a connection's custom traffic selectors on their first packet. charon
installs those lines as trap policies (start_action = trap), but libipsec 5.9.8 drops a packet that matches a
trap policy without an SA ("could not find an outbound IPsec SA for reqid {N}") and never tells charon: it has no
acquire. This agent is that acquire. A packet socket on ipsec0 with a classic BPF filter wakes it only for a
packet of a line whose CHILD_SA is not installed (so established traffic never reaches Python); it then
initiates that line's CHILD_SA with swanctl. The packet that woke it is lost, as Azure documents for the first
packets. Every REFRESH_S it re-reads which lines are installed and rebinds if charon recreated ipsec0.

    acquire SPEC   SPEC: {"dev", "uri", "events", "lines": [{"child", "ike", "local": [cidr], "remote": [cidr]}]}
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import re
import select
import socket
import struct
import subprocess
import sys
import time
from contextlib import suppress

ETH_P_ALL = 0x0003  # a protocol-bound packet socket never sees outgoing packets (only ptype_all taps do)
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
REFRESH_S = 5.0
RETRY_S = 2.0  # one initiation per line at most this often (a failed one is retried on a later packet)
INITIATE_TIMEOUT_S = 10
# BPF opcodes (linux/filter.h): ld word abs, and k, jeq k, ret k
LD_W_ABS, AND_K, JEQ_K, RET_K = 0x20, 0x54, 0x15, 0x06
MAX_PAIRS = 40
CHILD_LINE = re.compile(r"^\s+(\S+): #\d+, reqid \d+, (\w+)")


def log_event(path: str, kind: str, **fields: object) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps({"t": time.time(), "event": kind, **fields}) + "\n")


def pairs(line: dict) -> list[tuple[ipaddress.IPv4Network, ipaddress.IPv4Network]]:
    return [(ipaddress.IPv4Network(a), ipaddress.IPv4Network(b)) for a in line["local"] for b in line["remote"]]


def bpf_program(lines: list[dict]) -> bytes:
    """Accept an IPv4 packet whose (source, destination) lies in one of the lines' (local, remote) range pairs.
    Each pair is 6 instructions: load src, mask, compare (else next pair), load dst, mask, compare (yes: accept)."""
    prs = [p for line in lines for p in pairs(line)]
    if len(prs) > MAX_PAIRS:  # 8-bit jump offsets: wake for every packet, `matching` decides
        return struct.pack("HBBI", RET_K, 0, 0, 0xFFFF)
    insns: list[tuple[int, int, int, int]] = []
    for i, (src, dst) in enumerate(prs):
        left = 6 * (len(prs) - i - 1)  # instructions of the pairs after this one: a miss jumps past to "next"
        insns += [(LD_W_ABS, 0, 0, 12), (AND_K, 0, 0, int(src.netmask)), (JEQ_K, 0, 3, int(src.network_address)),
                  (LD_W_ABS, 0, 0, 16), (AND_K, 0, 0, int(dst.netmask)),
                  (JEQ_K, left + 1, 0, int(dst.network_address))]  # hit: jump to "accept" after "reject"
    insns += [(RET_K, 0, 0, 0), (RET_K, 0, 0, 0xFFFF)]  # reject, accept
    return b"".join(struct.pack("HBBI", *i) for i in insns)


def matching(lines: list[dict], packet: bytes) -> dict | None:
    if len(packet) < 20:
        return None
    src, dst = ipaddress.IPv4Address(packet[12:16]), ipaddress.IPv4Address(packet[16:20])
    return next((ln for ln in lines if any(src in a and dst in b for a, b in pairs(ln))), None)


def swanctl(uri: str, *args: str, timeout: float = 10) -> str:
    res = subprocess.run(["swanctl", *args, "--uri", uri], capture_output=True, text=True, timeout=timeout,
                         check=False)
    return res.stdout


def installed(uri: str) -> set[str]:
    out = set()
    for text in swanctl(uri, "--list-sas", "--noblock").splitlines():
        m = CHILD_LINE.match(text)
        if m and m.group(2) == "INSTALLED":
            out.add(m.group(1))
    return out


class Watch:
    """The packet socket on the tunnel device, filtered to the lines still waiting for their CHILD_SA."""

    def __init__(self, dev: str) -> None:
        self.dev, self.ifindex = dev, 0
        self.sock: socket.socket | None = None
        self.filtered: list[str] | None = None

    def bind(self) -> None:
        try:
            index = socket.if_nametoindex(self.dev)
        except OSError:
            index = 0
        if index == self.ifindex and self.sock is not None:
            return
        if self.sock is not None:
            self.sock.close()
        self.sock, self.ifindex, self.filtered = None, index, None
        if index:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)  # receives nothing until bound
            self.sock = sock
            self.set_filter([])
            sock.bind((self.dev, ETH_P_ALL))

    def set_filter(self, waiting: list[dict]) -> None:
        names = [ln["child"] for ln in waiting]
        if self.sock is None or names == self.filtered:
            return
        code = bpf_program(waiting)
        prog = ctypes.create_string_buffer(code, len(code))
        fprog = struct.pack("HL", len(code) // 8, ctypes.addressof(prog))  # struct sock_fprog
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)  # the kernel copies the program
        self.filtered = names
        while select.select([self.sock], [], [], 0)[0]:  # drop what the old filter let in
            self.sock.recv(65535)


def run(spec: dict) -> None:
    lines, uri, events = spec["lines"], spec["uri"], spec["events"]
    watch, refreshed = Watch(spec["dev"]), 0.0
    tried: dict[str, float] = {}
    waiting: list[dict] = []
    log_event(events, "start", lines=[ln["child"] for ln in lines])
    while True:
        if time.monotonic() - refreshed >= REFRESH_S:
            watch.bind()
            up = installed(uri)
            waiting = [ln for ln in lines if ln["child"] not in up]
            watch.set_filter(waiting)
            refreshed = time.monotonic()
        if watch.sock is None:
            time.sleep(REFRESH_S)
            continue
        ready, _, _ = select.select([watch.sock], [], [], REFRESH_S)
        if not ready:
            continue
        with suppress(OSError):
            packet, addr = watch.sock.recvfrom(65535)
            line = matching(waiting, packet) if addr[2] == PACKET_OUTGOING else None
            if line is not None and time.monotonic() - tried.get(line["child"], -RETRY_S) >= RETRY_S:
                tried[line["child"]] = time.monotonic()
                if line["child"] not in installed(uri):  # the peer may have brought it up since the last refresh
                    acquire(line, uri, events, packet)
                refreshed = 0.0  # re-read at once: an installed line leaves the filter


def acquire(line: dict, uri: str, events: str, packet: bytes) -> None:
    src, dst = socket.inet_ntoa(packet[12:16]), socket.inet_ntoa(packet[16:20])
    log_event(events, "acquire", child=line["child"], src=src, dst=dst)
    with suppress(subprocess.TimeoutExpired):
        swanctl(uri, "--initiate", "--child", line["child"], "--ike", line["ike"],
                "--timeout", str(INITIATE_TIMEOUT_S), timeout=INITIATE_TIMEOUT_S + 5)
    log_event(events, "initiated", child=line["child"], installed=line["child"] in installed(uri))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "acquire":
        sys.exit(__doc__)
    with open(sys.argv[2]) as fh:
        run(json.load(fh))
