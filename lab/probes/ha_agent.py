"""HA agents, copied into a node's /lab and run there detached by lab.ha.agents (python3 only; imports no `lab`).

  standby SPEC  on each instance of an active-standby gateway: while its role file says "standby", ping
                the active's floating inside address; after N misses take the addresses, announce them
                with gratuitous ARP and initiate the tunnels with swanctl (charon found via /etc/strongswan.conf)
  vnet SPEC     on a VNet host of an active-active gateway: ping every ECMP next hop and keep only live
                ones in the default route (a dead instance leaves the route within ~0.5 s)
Events go to a JSON-lines file with time.time() stamps (all containers share the host's clock).
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

ETH_P_ARP = 0x0806
GARP_DELAYS_S = (0.0, 0.2, 0.5, 1.0)  # repeats: a neighbour entry refreshed < 1 s ago (locktime) ignores one
LATE_READS = 256  # a round reads at most this many ICMP packets (an ICMP flood to the node cannot hold it)


def log_event(path: str, kind: str, **fields: object) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps({"t": time.time(), "event": kind, **fields}) + "\n")


def _checksum(data: bytes) -> int:
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def missed(counts: dict[str, int], answered: set[str]) -> dict[str, int]:
    """Per target, the probe rounds in a row that went unanswered, after one more round."""
    return {t: 0 if t in answered else n + 1 for t, n in counts.items()}


class Pinger:
    """ICMP echo to several addresses over one raw socket, in rounds: each round sends every target a probe
    and gives it one interval to answer. Silence is counted in unanswered rounds, not in seconds since the last
    answer: an agent that the scheduler stalls for a second (a loaded 2-core machine) resumes with the answers
    queued on its socket and reads them, so its own stall never reads as its peer's silence (a standby that
    took over from a healthy active: two instances on one public IP)."""

    def __init__(self, targets: list[str], sock: socket.socket | None = None) -> None:
        self.sock = sock or socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.ident = os.getpid() & 0xFFFF
        self.seq = 0
        self.misses = dict.fromkeys(targets, 0)

    def send_all(self) -> None:
        self.seq = (self.seq + 1) & 0xFFFF
        for target in self.misses:
            head = struct.pack("!BBHHH", 8, 0, 0, self.ident, self.seq)
            pkt = struct.pack("!BBHHH", 8, 0, _checksum(head + b"ha"), self.ident, self.seq) + b"ha"
            with suppress(OSError):  # no route / no address yet: counts as a miss
                self.sock.sendto(pkt, (target, 0))

    def drain(self, until: float) -> set[str]:
        """The targets that answered by `until`, and every answer already queued when the agent gets to run
        only after it (stalled: the answers came in time, the agent did not)."""
        answered: set[str] = set()
        for _ in range(LATE_READS):
            ready, _, _ = select.select([self.sock], [], [], max(0.0, until - time.monotonic()))
            if not ready:
                break
            data, (src, _) = self.sock.recvfrom(2048)
            ihl = (data[0] & 0x0F) * 4
            kind, _, _, ident, _ = struct.unpack("!BBHHH", data[ihl:ihl + 8])
            if kind == 0 and ident == self.ident and src in self.misses:
                answered.add(src)
        return answered

    def round(self, interval: float) -> None:
        """One probe to every target, one interval for the answers; then count the silent ones."""
        self.send_all()
        self.misses = missed(self.misses, self.drain(time.monotonic() + interval))

    def reset(self) -> None:
        """Not watching: a later watch starts with no misses."""
        self.misses = dict.fromkeys(self.misses, 0)

    def dead(self, target: str, misses: int) -> bool:
        return self.misses[target] >= misses


def _mac(iface: str) -> bytes:
    return bytes.fromhex(Path(f"/sys/class/net/{iface}/address").read_text().strip().replace(":", ""))


def garp(iface: str, ip: str) -> None:
    """Gratuitous ARP (request and reply, sender = target = ip) so neighbours move ip to our MAC."""
    mac, addr = _mac(iface), socket.inet_aton(ip)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((iface, ETH_P_ARP))
        for op, dst in ((1, b"\0" * 6), (2, b"\xff" * 6)):
            arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, mac, addr, dst, addr)
            s.send(b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP) + arp)


def _garp_repeated(take: list[list[str]]) -> None:
    start = time.monotonic()
    for delay in GARP_DELAYS_S:
        time.sleep(max(0.0, start + delay - time.monotonic()))
        for iface, cidr in take:
            with suppress(OSError):
                garp(iface, cidr.split("/")[0])


def take_over(spec: dict) -> threading.Thread:
    """Addresses, gratuitous ARP, then initiate every tunnel the old active started (in parallel)."""
    for iface, cidr in spec["take"]:
        subprocess.run(["ip", "addr", "replace", cidr, "dev", iface], capture_output=True)
    for dst, dev in spec["routes"]:  # the kernel flushed them when the link's last address went
        subprocess.run(["ip", "route", "replace", dst, "dev", dev], capture_output=True)
    log_event(spec["events"], "addresses-taken", node=spec["node"])
    announcer = threading.Thread(target=_garp_repeated, args=(spec["take"],), daemon=True)
    announcer.start()
    for argv in spec.get("start", []):  # a cold standby: its tunnel charons start now, then load their configs
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    if spec.get("start"):
        log_event(spec["events"], "tunnels-started", node=spec["node"])
    # [child, ike] on the main charon, or [child, ike, vici uri] on a route-based tunnel's own charon
    runs = [subprocess.Popen(["swanctl", "--initiate", "--child", entry[0], "--ike", entry[1], "--timeout", "10",
                              *(["--uri", entry[2]] if len(entry) > 2 else [])],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for entry in spec["initiate"]]
    codes = [p.wait() for p in runs]
    log_event(spec["events"], "initiated", node=spec["node"], codes=codes)
    return announcer


def takeover_main(spec: dict) -> int:
    """A planned takeover, run once by `lab failover --planned`: same steps as the agent's own."""
    Path(spec["role_file"]).write_text("active\n")
    log_event(spec["events"], "planned-takeover", node=spec["node"])
    take_over(spec).join()
    return 0


WATCHING = {"standby": "misses", "standby-planned": "planned_misses"}


def standby_main(spec: dict) -> int:
    """Probe the active every `interval`; take over after `misses` unanswered probes in a row (the role
    "standby-planned": the active drains for planned maintenance, `planned_misses` confirm it)."""
    role = Path(spec["role_file"])
    pinger = Pinger([spec["peer"]])
    interval = float(spec["interval"])
    log_event(spec["events"], "agent-started", node=spec["node"], role=role.read_text().strip(),
              interval=interval, misses=spec["misses"], planned_misses=spec.get("planned_misses", 0))
    while True:
        mode = role.read_text().strip()
        if mode not in WATCHING:
            pinger.reset()
            time.sleep(interval)
            continue
        pinger.round(interval)
        if pinger.dead(spec["peer"], int(spec.get(WATCHING[mode], spec["misses"]))):
            log_event(spec["events"], "peer-dead", node=spec["node"], peer=spec["peer"],
                      planned=mode == "standby-planned")
            role.write_text("active\n")
            take_over(spec)


def _set_route(hops: list[str], dev: str) -> None:
    argv = ["ip", "route", "replace", "default"]
    if len(hops) == 1:
        argv += ["via", hops[0], "dev", dev]
    else:
        for hop in hops:
            argv += ["nexthop", "via", hop, "dev", dev]
    subprocess.run(argv, capture_output=True)


def vnet_main(spec: dict) -> int:
    """Keep the default route on the live next hops; with none alive keep them all (nothing to prefer)."""
    hops, dev = list(spec["hops"]), spec["dev"]
    pinger = Pinger(hops)
    interval, misses = float(spec["interval"]), int(spec["misses"])
    using = list(hops)
    log_event(spec["events"], "agent-started", node=spec["node"], hops=hops)
    while True:
        pinger.round(interval)
        alive = [h for h in hops if not pinger.dead(h, misses)] or list(hops)
        if alive != using:
            _set_route(alive, dev)
            log_event(spec["events"], "route", node=spec["node"], hops=alive, dropped=sorted(set(hops) - set(alive)))
            using = alive


def main(argv: list[str]) -> int:
    mode, spec = argv[0], json.loads(Path(argv[1]).read_text())
    modes = {"standby": standby_main, "vnet": vnet_main, "takeover": takeover_main}
    return modes[mode](spec)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
