"""`lab bench` as a table: Mbps per tunnel and per gateway aggregate beside the SKU cap, then the raw
tunnel and the plain veth, and their ratio (the cost of userspace IPsec on this machine)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from lab.ops.bench import BenchResult, Measurement

KIND_TEXT = {
    "tunnel": "one tunnel",
    "aggregate": "all tunnels at once",
    "uncapped": "one tunnel, no cap",
    "uncapped-tuned": "one tunnel, no cap, rmem tuned",
    "veth": "plain veth, no IPsec",
}


def _cap_cell(m: Measurement) -> str:
    if m.cap_mbps is None:
        return "-"
    style = "green" if m.mbps <= m.cap_mbps * 1.1 else "red"
    return f"[{style}]{m.cap_mbps}[/{style}]"


def _congestion(m: Measurement) -> str:
    used = sorted({f.congestion for f in m.flows if f.congestion})
    return m.congestion if m.congestion != "inherited" else f"{'/'.join(used) or '?'} (inherited)"


def _path(m: Measurement) -> str:
    """The label, then each flow (several for an aggregate, with its own share)."""
    if m.kind == "veth":
        return m.label
    if len(m.flows) == 1:
        return f"{m.label} ({m.flows[0].client} -> {m.flows[0].server})"
    return "\n".join([m.label] + [f"  {f.client} -> {f.server}: {f.mbps:,.1f}" for f in m.flows])


def show_bench(res: BenchResult, console: Console) -> None:
    direction = "site -> VNet (-R)" if res.reverse else "VNet -> site"
    table = Table(title=f"lab {res.lab}: iperf3 TCP {res.seconds} s, {direction}, load {res.loadavg}")
    for col in ("measurement", "path", "congestion", "Mbps", "SKU cap", "retransmits"):
        table.add_column(col, justify="right" if col in ("Mbps", "SKU cap", "retransmits") else "left")
    for m in res.measurements:
        table.add_row(KIND_TEXT[m.kind], _path(m), _congestion(m), f"{m.mbps:,.1f}", _cap_cell(m),
                      str(sum(f.retransmits for f in m.flows)))
    console.print(table)
    for cc, ratio in res.ratios.items():
        console.print(f"uncapped tunnel / plain veth ({cc}): {ratio:.1%}")
    if res.host_tuning:
        t = res.host_tuning
        console.print(f"host {t.sysctl}: {t.before} -> {t.during} during the tuned run, then back to {t.before}")
    for note in res.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
