"""The HA agents' watch (lab/probes/ha_agent.py): silence is counted in unanswered probe rounds, so an agent the
scheduler stalls (a loaded 2-core machine) does not take its own stall for the active's death. A full CI run
failed `lab verify` on nat-overlap that way: the standby took over from a healthy active, two instances held
the public IP and the ESP on the wire belonged to the standby's SAs. The peer here is a loopback UDP socket
that answers each probe with an ICMP echo reply (IPv4 header + ICMP, as a raw socket reads it)."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import pytest

from lab.probes.ha_agent import Pinger, missed

PEER = "127.0.0.1"
IP_HEADER = bytes([0x45]) + bytes(19)  # what a raw ICMP socket returns in front of the ICMP message


class Peer:
    """Stands in for the raw socket: what the pinger sends is answered at once (while `alive`), the answer
    queued on the socket as an echo reply from PEER with the probe's ident and sequence."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((PEER, 0))
        self.alive = True

    def sendto(self, pkt: bytes, _addr: tuple[str, int]) -> None:
        if self.alive:
            _, _, _, ident, seq = struct.unpack("!BBHHH", pkt[:8])
            reply = struct.pack("!BBHHH", 0, 0, 0, ident, seq) + pkt[8:]
            self.sock.sendto(IP_HEADER + reply, self.sock.getsockname())

    def recvfrom(self, size: int) -> tuple[bytes, tuple[str, int]]:
        return self.sock.recvfrom(size)

    def fileno(self) -> int:
        return self.sock.fileno()


@pytest.fixture
def peer() -> Iterator[Peer]:
    p = Peer()
    yield p
    p.sock.close()


def test_missed_counts_unanswered_rounds_in_a_row() -> None:
    counts = {"a": 0, "b": 2}
    assert missed(counts, {"a"}) == {"a": 0, "b": 3}
    assert missed({"a": 5, "b": 3}, {"a", "b"}) == {"a": 0, "b": 0}
    assert missed({}, {"a"}) == {}


def test_a_stalled_agent_reads_the_answers_that_came_in_time(peer: Peer) -> None:
    """The agent sent its probe, then did not run until well after the round's end: the answer it finds
    queued counts (before: it returned at once past the deadline and counted a miss)."""
    pinger = Pinger([PEER], sock=peer)  # type: ignore[arg-type]
    pinger.send_all()
    time.sleep(0.05)  # the stall: the round ended while the agent was not running
    assert pinger.drain(until=time.monotonic() - 1.0) == {PEER}


def test_a_stall_longer_than_the_window_is_no_miss_and_only_silent_rounds_are(peer: Peer) -> None:
    pinger = Pinger([PEER], sock=peer)  # type: ignore[arg-type]
    for _ in range(3):
        pinger.round(0.01)
    assert pinger.misses == {PEER: 0}
    pinger.send_all()
    time.sleep(0.2)  # 20 intervals without running: the time-since-last-answer rule called the peer dead here
    pinger.misses = missed(pinger.misses, pinger.drain(time.monotonic()))
    assert not pinger.dead(PEER, 3)
    peer.alive = False
    pinger.round(0.01)
    pinger.round(0.01)
    assert pinger.misses == {PEER: 2} and not pinger.dead(PEER, 3)
    pinger.round(0.01)
    assert pinger.dead(PEER, 3)
    peer.alive = True
    pinger.round(0.01)
    assert pinger.misses == {PEER: 0}


def test_answers_from_elsewhere_or_to_another_agent_do_not_count(peer: Peer) -> None:
    pinger = Pinger(["192.0.2.1"], sock=peer)  # type: ignore[arg-type]
    pinger.round(0.01)  # PEER answers, but PEER is not the target
    assert pinger.misses == {"192.0.2.1": 1}
    other = Pinger([PEER], sock=peer)  # type: ignore[arg-type]
    other.ident ^= 0xFFFF
    peer.sendto(struct.pack("!BBHHH", 8, 0, 0, pinger.ident, 1), (PEER, 0))  # a reply to pinger's ident
    assert other.drain(time.monotonic() + 0.01) == set()


def test_reset_forgets_the_misses(peer: Peer) -> None:
    peer.alive = False
    pinger = Pinger([PEER], sock=peer)  # type: ignore[arg-type]
    pinger.round(0.01)
    pinger.reset()
    assert pinger.misses == {PEER: 0}
