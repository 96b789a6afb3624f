"""Everything one `lab verify` run collected, as plain data, and the SA counter arithmetic over it.

The checks are pure functions of an Evidence, so each one is unit-tested with made-up evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lab.control.base import IkeSaStatus
from lab.probes.esp import Decryption
from lab.probes.keys_log import SaKeys
from lab.probes.pcap import WireFrame
from lab.probes.results import ProbeResult, payload
from lab.runtime.base import CaptureStats
from lab.verify.targets import Targets
from lab.verify.xfrm import XfrmSnapshot

Snapshot = dict[str, list[IkeSaStatus]]  # charon node -> its IKE_SAs at one moment


@dataclass(frozen=True)
class ChildView:
    """One installed CHILD_SA of one node, as one snapshot saw it (SPIs as ints)."""

    node: str
    connection: str
    child: str
    spi_in: int
    spi_out: int
    packets_in: int
    packets_out: int


@dataclass(frozen=True)
class Evidence:
    marker: str
    targets: Targets
    reach: list[ProbeResult]
    selector: list[ProbeResult]
    before: Snapshot  # before the reachability probes
    mid: Snapshot  # after them, before the selector probes
    closing: Snapshot  # after the selector probes, the capture still running: selectors' window ends here
    after: Snapshot  # after the capture stopped: counts every frame it saw (spis)
    frames: list[WireFrame]
    capture: CaptureStats
    keys: list[SaKeys] = field(default_factory=list)
    decrypted: list[Decryption] = field(default_factory=list)
    dataplane: str = "libipsec"
    xfrm_before: XfrmSnapshot = field(default_factory=dict)  # `ip -s xfrm state` per charon node
    xfrm_after: XfrmSnapshot = field(default_factory=dict)
    # public address -> the nodes that held it before or after the capture (targets.public_ips: the one holder)
    holders: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def esp_frames(self) -> list[WireFrame]:
        return [f for f in self.frames if f.kind == "esp"]


def _spi(text: str) -> int:
    try:
        return int(text, 16)
    except ValueError:
        return 0


def children(snap: Snapshot) -> list[ChildView]:
    return [ChildView(node, sa.name, c.name, _spi(c.spi_in), _spi(c.spi_out), c.packets_in, c.packets_out)
            for node, sas in sorted(snap.items()) for sa in sas for c in sa.children if c.spi_in or c.spi_out]


def find_child(snaps: list[Snapshot], node: str, *, spi_in: int = 0, spi_out: int = 0) -> ChildView | None:
    """The CHILD_SA of `node` with that inbound or outbound SPI, from the latest snapshot that has it."""
    for snap in reversed(snaps):
        for c in children({node: snap.get(node, [])}):
            if (spi_in and c.spi_in == spi_in) or (spi_out and c.spi_out == spi_out):
                return c
    return None


def grew(old: Snapshot, new: Snapshot) -> dict[tuple[str, int, int], tuple[int, int]]:
    """Packets (in, out) each CHILD_SA counted between two snapshots; an SA new in `new` starts at 0."""
    start = {(c.node, c.spi_in, c.spi_out): c for c in children(old)}
    out = {}
    for c in children(new):
        s = start.get((c.node, c.spi_in, c.spi_out))
        out[(c.node, c.spi_in, c.spi_out)] = (c.packets_in - (s.packets_in if s else 0),
                                              c.packets_out - (s.packets_out if s else 0))
    return out


def probe_payload_prefix(marker: str, probe_id: str) -> bytes:
    """The bytes every packet of one probe starts its payload with."""
    return payload(marker, probe_id, 0).rsplit(b"|", 1)[0] + b"|"


def excerpt(data: bytes, needle: bytes, width: int = 48) -> str:
    """The printable text around `needle` in `data` (what a leak looks like on the wire)."""
    at = data.find(needle)
    if at < 0:
        return ""
    chunk = data[at:at + max(width, len(needle))]
    return chunk.decode("ascii", "replace").split("\x00")[0]
