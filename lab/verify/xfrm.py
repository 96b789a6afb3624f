"""The kernel's own view of the SAs: `ip -s xfrm state` in a node, parsed into (src, dst, SPI, packets).

On the kernel data plane this is independent evidence beside vici (the kernel, not charon, encrypts and
counts); on libipsec the kernel holds no SA at all. Only addresses, SPIs and counters are kept: that
command also prints keys, which never leave this parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The node's own namespace and each route-based tunnel's (`ip netns list` inside the container: tun-<conn>).
XFRM_ARGV = ["sh", "-c",
             "ip -s xfrm state; for ns in $(ip netns list | cut -d' ' -f1); do ip -n $ns -s xfrm state; done"]
_HEAD = re.compile(r"^src (\S+) dst (\S+)$")
_SPI = re.compile(r"^\s*proto esp spi 0x([0-9a-f]+)")
_COUNT = re.compile(r"^\s*(\d+)\(bytes\), (\d+)\(packets\)")


@dataclass(frozen=True)
class XfrmSa:
    src: str
    dst: str
    spi: int
    packets: int = 0
    bytes: int = 0


def parse_xfrm_states(text: str) -> list[XfrmSa]:
    """Every ESP state: its outer addresses, SPI and the `lifetime current` counters."""
    out: list[XfrmSa] = []
    head: tuple[str, str] | None = None
    spi: int | None = None
    current = False
    for line in text.splitlines():
        if m := _HEAD.match(line):
            head, spi, current = (m.group(1), m.group(2)), None, False
        elif (m := _SPI.match(line)) and head:
            spi = int(m.group(1), 16)
            out.append(XfrmSa(head[0], head[1], spi))
        elif line.strip() == "lifetime current:":
            current = True
        elif current and spi is not None and (m := _COUNT.match(line)) and out and out[-1].spi == spi:
            out[-1] = XfrmSa(head[0], head[1], spi, int(m.group(2)), int(m.group(1)))  # type: ignore[index]
            current = False
    return out


XfrmSnapshot = dict[str, list[XfrmSa]]  # charon node -> its kernel ESP states


def grew(old: XfrmSnapshot, new: XfrmSnapshot) -> dict[tuple[str, int, str, str], int]:
    """Packets each (node, spi, src, dst) state counted between two snapshots (a new state starts at 0)."""
    start = {(n, s.spi, s.src, s.dst): s.packets for n, sas in old.items() for s in sas}
    return {(n, s.spi, s.src, s.dst): s.packets - start.get((n, s.spi, s.src, s.dst), 0)
            for n, sas in new.items() for s in sas}
