"""A failover timeline as a PNG (matplotlib, Agg: no display needed): probes delivered per 100 ms, ESP
frames per tunnel, the fault and the recovery marked, charon's up/down events as ticks."""

from __future__ import annotations

from pathlib import Path

from lab.ha.failover import FailoverResult

BIN_S = 0.1


def _rate(times: list[float], end: float) -> tuple[list[float], list[float]]:
    """Counts per BIN_S bin, as packets per second."""
    bins = [0] * (int(end / BIN_S) + 1)
    for t in times:
        if 0 <= t < end:
            bins[int(t / BIN_S)] += 1
    return [i * BIN_S for i in range(len(bins))], [n / BIN_S for n in bins]


def plot_timeline(res: FailoverResult, path: Path) -> Path:
    import matplotlib  # noqa: PLC0415 - heavy; only when a plot is asked for

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    end = max(res.delivered + [m.t for m in res.marks] + [1.0]) + 0.5
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True, height_ratios=[3, 1])
    x, y = _rate(res.delivered, end)
    top.step(x, y, where="post", color="black", linewidth=1.6, label="UDP probes delivered (all tunnels)")
    for s in res.tunnels:
        tx, ty = _rate(s.times, end)
        top.step(tx, ty, where="post", linewidth=1.1, alpha=0.8, label=f"ESP to site: {s.label}")
    if res.kind != "none":
        top.axvline(res.fault_at, color="red", linestyle="--", label=f"fault: {res.fault}")
        top.axvspan(res.udp.flow_outage_from, res.udp.flow_outage_to, color="red", alpha=0.12,
                    label=f"worst UDP flow outage {res.udp.flow_outage_ms:.0f} ms")
        top.axvline(res.udp.flow_outage_to, color="green", linestyle=":", label="that flow resumes")
    top.set_ylabel("packets / s (100 ms bins)")
    top.set_title(f"{res.lab}: {res.mode} gateway {res.gateway}, {res.kind} failover, dpd {'/'.join(res.dpd)}")
    top.legend(loc="lower left", fontsize=8)
    top.grid(alpha=0.3)
    _events(bottom, res)
    bottom.set_xlabel("time since first probe (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _events(ax, res: FailoverResult) -> None:  # noqa: ANN001 - a matplotlib Axes
    """One row per node: up events green, down red, agent steps blue."""
    nodes = sorted({m.node for m in res.marks})
    for m in res.marks:
        color = "red" if " down" in m.what or "fault" in m.what else "green" if " up" in m.what else "tab:blue"
        ax.plot([m.t], [nodes.index(m.node)], marker="|", markersize=14, color=color)
    ax.set_yticks(range(len(nodes)), nodes)
    ax.set_ylim(-0.7, len(nodes) - 0.3)
    ax.set_ylabel("events")
    ax.grid(alpha=0.3)
