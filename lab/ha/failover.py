"""Failover measurements as data: what the probe stream, charon's events and the capture showed (pure).

Every time is in seconds relative to the stream's first packet (`t0`, epoch seconds), so the stream (sent
and received in containers), vici events (host monotonic clock, shifted by the epoch offset) and the ESP
frames on the Internet bridge share one axis.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lab.azure import facts

Kind = Literal["planned", "unplanned", "bgpd"]  # bgpd: instance 0 keeps its tunnels, its bgpd is killed


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SaCounter(_Model):
    """One CHILD_SA of a gateway instance at one moment: which SPI it sends on, and how much."""

    node: str
    connection: str
    child: str
    state: str
    spi_out: str
    packets_out: int
    packets_in: int


class Mark(_Model):
    """Something that happened: a vici event, an HA agent step, the fault itself."""

    t: float
    node: str
    what: str


class Series(_Model):
    """ESP frames one tunnel (SPI) carried from the Azure side to the site, by time."""

    label: str
    times: list[float]


class StreamStats(_Model):
    sent: int
    delivered: int
    lost: int
    reordered: int
    duplicates: int
    outage_ms: float  # largest gap between two delivered probes (any flow)
    outage_from: float
    outage_to: float
    # A/A keeps delivering on the surviving instance's flows: the outage a flow sees is the largest gap
    # within one flow (5-tuple), minus that flow's normal spacing.
    flow_outage_ms: float = 0.0
    flow_outage_from: float = 0.0
    flow_outage_to: float = 0.0


class FailoverResult(_Model):
    lab: str
    gateway: str
    mode: Literal["active-active", "active-standby"]
    kind: Literal["planned", "unplanned", "bgpd", "none"]  # none: `lab probe`, no fault
    dpd: list[str]
    src: str
    dst: str
    pps: float
    flows: int
    t0: float
    fault_at: float
    fault: str
    udp: StreamStats
    icmp: StreamStats
    before: list[SaCounter]
    after: list[SaCounter]
    carriers_before: list[str]  # tunnels that carried ESP to the site before the fault
    carriers_after: list[str]  # ... and after recovery
    marks: list[Mark]
    delivered: list[float] = Field(default_factory=list)
    tunnels: list[Series] = Field(default_factory=list)
    # The other direction: a site host sends to the VNet host (a site's DPD-bound outage shows here), and
    # which of the site device's SAs carried ESP towards Azure before and after.
    udp_reverse: StreamStats | None = None
    site_before: list[SaCounter] = Field(default_factory=list)
    site_after: list[SaCounter] = Field(default_factory=list)
    site_carriers_before: list[str] = Field(default_factory=list)
    site_carriers_after: list[str] = Field(default_factory=list)
    ha_timing: str = ""
    azure_figure: str = ""  # what Azure documents for this kind of failover


def worst_outage_ms(res: FailoverResult) -> float:
    """The outage a flow saw, worst of both directions."""
    return max(res.udp.flow_outage_ms, res.udp_reverse.flow_outage_ms if res.udp_reverse else 0.0)


def azure_figure(mode: str, kind: str) -> str:
    """Azure's documented recovery for this failover (lab.azure.facts; docs/azure-model.md cites the page)."""
    if kind not in ("planned", "unplanned"):
        return ""  # no fault (lab probe), or bgpd: Azure documents no figure for a BGP speaker's loss
    if mode == "active-active":
        return "no figure: each instance keeps its own tunnel, the device's DPD decides"
    low, high = facts.PLANNED_FAILOVER_S if kind == "planned" else facts.UNPLANNED_FAILOVER_S
    return f"{low}-{high} s ({kind})"


def largest_gap(times: list[float]) -> tuple[float, float, float]:
    """(gap, from, to) of the largest gap between consecutive sorted times; zeros for < 2 times."""
    gap, frm, to = 0.0, 0.0, 0.0
    for a, b in zip(times, times[1:], strict=False):
        if b - a > gap:
            gap, frm, to = b - a, a, b
    return gap, frm, to


def stream_stats(sent: list[int], arrivals: list[tuple[int, float, int]], t0: float,
                 spacing_s: float = 0.0) -> StreamStats:
    """Loss, reordering, duplicates and gaps; `arrivals` (seq, time, flow) in arrival order; `spacing_s`
    is one flow's normal interval between probes (subtracted from the per-flow gap)."""
    seen: Counter[int] = Counter(seq for seq, _, _ in arrivals)
    reordered, top = 0, -1
    for seq, _, _ in arrivals:
        if seq < top:
            reordered += 1
        top = max(top, seq)
    gap, frm, to = largest_gap(sorted(t for _, t, _ in arrivals))
    flows = {f for _, _, f in arrivals}
    worst = max((largest_gap(sorted(t for _, t, g in arrivals if g == f)) for f in flows), default=(0.0, t0, t0))
    delivered = len(set(sent) & set(seen))
    return StreamStats(sent=len(sent), delivered=delivered, lost=len(sent) - delivered, reordered=reordered,
                       duplicates=sum(n - 1 for n in seen.values()), outage_ms=round(gap * 1000, 1),
                       outage_from=round(frm - t0, 3), outage_to=round(to - t0, 3),
                       flow_outage_ms=round(max(0.0, worst[0] - spacing_s) * 1000, 1),
                       flow_outage_from=round(worst[1] - t0, 3), flow_outage_to=round(worst[2] - t0, 3))


def carriers(series: list[Series], start: float, end: float, min_frames: int = 5) -> list[str]:
    """Tunnels with at least `min_frames` ESP frames in [start, end)."""
    return [s.label for s in series if sum(start <= t < end for t in s.times) >= min_frames]
