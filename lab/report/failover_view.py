"""Rich view of a FailoverResult: the stream's numbers, which tunnels carried it, and the event timeline."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from lab.ha.failover import FailoverResult, StreamStats

MAX_MARKS = 40


def _stats_row(name: str, s: StreamStats) -> list[str]:
    return [name, str(s.sent), str(s.delivered), str(s.lost), str(s.reordered), f"{s.outage_ms:.0f}",
            f"{s.flow_outage_ms:.0f}", f"{s.flow_outage_from:.2f} → {s.flow_outage_to:.2f}"]


def show_failover(res: FailoverResult, console: Console) -> None:
    console.print(f"lab {res.lab}: gateway {res.gateway} ({res.mode}, dpd {'/'.join(res.dpd)}), "
                  f"{res.src} → {res.dst}, {res.pps:g} pps over {res.flows} UDP flows"
                  + (f"; fault at {res.fault_at:.2f} s: {res.fault}" if res.kind != "none" else ""), highlight=False)
    t = Table(title="probe stream (times in s from the first probe)")
    for col in ("probes", "sent", "delivered", "lost", "reordered", "gap ms (any)", "outage ms (worst flow)", "when"):
        t.add_column(col)
    t.add_row(*_stats_row("UDP VNet → site", res.udp))
    if res.udp_reverse is not None:
        t.add_row(*_stats_row("UDP site → VNet", res.udp_reverse))
    t.add_row(*_stats_row("ICMP round trip", res.icmp))
    console.print(t)
    if res.kind != "none":
        rev = f", site → VNet {res.udp_reverse.flow_outage_ms / 1000:.2f} s" if res.udp_reverse else ""
        console.print(f"[bold]outage (worst flow): VNet → site {res.udp.flow_outage_ms / 1000:.2f} s{rev}; "
                      f"Azure documents {res.azure_figure}[/bold] (ha_timing {res.ha_timing})", highlight=False)
    c = Table(title="tunnels (gateway instances' CHILD_SAs: packets out before → after)")
    for col in ("instance", "child", "SPI out", "packets out", "state"):
        c.add_column(col)
    after = {(a.node, a.spi_out): a for a in res.after}
    for b in res.before:
        a = after.pop((b.node, b.spi_out), None)
        c.add_row(b.node, b.child, b.spi_out, f"{b.packets_out} → {a.packets_out if a else 'gone'}", b.state)
    for a in after.values():
        c.add_row(a.node, a.child, a.spi_out, f"new → {a.packets_out}", a.state)
    console.print(c)
    console.print(f"ESP to the site before: {', '.join(res.carriers_before) or 'none'}; "
                  f"after: {', '.join(res.carriers_after) or '-'}", highlight=False)
    console.print(f"ESP from the site before: {', '.join(res.site_carriers_before) or 'none'}; "
                  f"after: {', '.join(res.site_carriers_after) or '-'}", highlight=False)
    e = Table(title="events")
    for col in ("t s", "node", "event"):
        e.add_column(col)
    for m in res.marks[:MAX_MARKS]:
        e.add_row(f"{m.t:.3f}", m.node, m.what)
    console.print(e)
