"""Breaking a lab on purpose and measuring it: fault, restore, failover, probe."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lab import core
from lab.cli.common import (
    DurationOpt,
    JsonOpt,
    LabOpt,
    PlotOpt,
    app,
    connect,
    err,
    home,
    make_runtime,
    only_lab,
    out,
    progress,
)
from lab.errors import LabError


@app.command()
def fault(kind: Annotated[str, typer.Argument(help="kill, stop, pause, charon-restart, bgpd-kill, link-down or loss")],
          target: Annotated[str, typer.Argument(help="NODE, or NODE:IFACE for link-down and loss")],
          percent: Annotated[float | None, typer.Argument(help="loss: % of round trips lost")] = None,
          lab: LabOpt = None) -> None:
    """Break a running lab on purpose: kill/stop/pause a node, restart its charon, cut or degrade a link."""
    from lab.ops import faults

    runtime = make_runtime(lab)
    loaded = core.load_running(only_lab(lab, runtime), home())
    applied = faults.parse_fault(loaded, kind, target, percent)
    faults.inject(loaded, applied, runtime, connect, loaded.dataplane)
    undo = "charon is back with its config" if applied.kind == "charon-restart" else "`lab restore` undoes it"
    err.print(f"lab {loaded.topo.name}: fault {applied.describe()} applied; {undo}")


@app.command()
def restore(target: Annotated[str | None, typer.Argument(help="NODE or NODE:IFACE (default: all)")] = None,
            all_faults: Annotated[bool, typer.Option("--all", help="every active fault")] = False,
            lab: LabOpt = None,
            timeout: Annotated[float, typer.Option(help="seconds to wait for tunnels")] = 60.0) -> None:
    """Undo faults (all, or those on one node or link) and wait until every tunnel is up again."""
    from lab.ops import faults

    if target and all_faults:
        raise LabError("give a target or --all, not both", hint="lab restore --all")
    from lab.lock import lab_lock
    from lab.ops import heal

    runtime = make_runtime(lab)
    loaded = core.load_running(only_lab(lab, runtime), home())
    with lab_lock(loaded.topo.name, wait_s=60):  # the supervisor may be healing this lab right now
        undone, done = heal.restore(loaded, target, runtime, connect, loaded.dataplane, None, progress,
                                    timeout)
    for line in done:
        err.print(f"  {line}", markup=False, highlight=False)
    left = faults.read_faults(loaded.dir.root)
    state = f"{len(left)} fault(s) still active" if left else "every tunnel is up"
    err.print(f"lab {loaded.topo.name}: restored {', '.join(f.describe() for f in undone) or 'nothing'}; {state}",
              markup=False, highlight=False)




LONG_STREAM_S = 30.0


def _stream(gateway: str | None, kind: str | None, lab: str | None, duration: float | None, plot: Path | None,
            json_out: bool) -> None:
    """Shared body of `failover` and `probe`: stream (with the fault), then the view, JSON and plot."""
    from lab.control.vici import watch_events
    from lab.ha.failover_run import StreamOptions, default_duration, measure
    from lab.report.failover_view import show_failover

    runtime = make_runtime(lab)
    loaded = core.load_running(only_lab(lab, runtime), home())
    gw = gateway or sorted(loaded.topo.gateways)[0]
    duration = duration or default_duration(loaded, gw, kind)  # type: ignore[arg-type]
    # Long streams (Azure-timed failovers, DPD-bound outages) at 50 pps: a flow's spacing is then 0.16 s,
    # fine for outages of seconds to minutes, and the capture stays small enough to read back quickly.
    opts = StreamOptions(duration_s=duration, fault_after_s=min(3.0, duration / 3),
                         pps=200.0 if duration <= LONG_STREAM_S else 50.0)
    plane = loaded.dataplane
    res = measure(loaded, gw, kind, runtime, connect, watch_events, plane, opts)  # type: ignore[arg-type]
    if plot:
        from lab.report.timeline_plot import plot_timeline

        err.print(f"timeline: {plot_timeline(res, plot)}")
    if json_out:
        print(res.model_dump_json(indent=2))
    else:
        show_failover(res, out)


@app.command()
def failover(gateway: Annotated[str, typer.Argument(help="gateway name")],
             planned: Annotated[bool, typer.Option("--planned/--unplanned", help="planned move or a killed "
                                                   "instance")] = False,
             measure: Annotated[bool, typer.Option("--measure", help="(always on) a probe stream across it")] = True,
             bgpd: Annotated[bool, typer.Option("--bgpd", help="kill instance 0's bgpd only (BGP labs): its "
                                                "routes are withdrawn, its tunnels stay")] = False,
             lab: LabOpt = None, duration: Annotated[float | None, typer.Option(
                 "--duration", min=2, help="seconds of probe stream (default: long enough for the gateway's "
                 "ha_timing and DPD)")] = None, plot: PlotOpt = None, json_out: JsonOpt = False) -> None:
    """Fail a gateway over (active-standby: move to the standby; active-active: instance 0 goes) while probe
    streams in both directions measure the outage, printed beside Azure's documented figure. `lab restore`
    brings back the starting state."""
    _stream(gateway, "bgpd" if bgpd else "planned" if planned else "unplanned", lab, duration, plot, json_out)


@app.command()
def probe(gateway: Annotated[str | None, typer.Argument(help="gateway name (default: the first)")] = None,
          lab: LabOpt = None, duration: DurationOpt = 5.0, plot: PlotOpt = None, json_out: JsonOpt = False) -> None:
    """A probe stream VNet host → site host (UDP, ICMP) without a fault: loss, gaps, which tunnels carry it."""
    _stream(gateway, None, lab, duration, plot, json_out)


@app.command()
def reset(gateway: Annotated[str, typer.Argument(help="gateway name")],
          instance: Annotated[int | None, typer.Option("--instance", help="active-active: which instance (default: "
                                                      "the primary, 0)")] = None,
          lab: LabOpt = None,
          timeout: Annotated[float, typer.Option(help="seconds to wait for tunnels")] = 60.0) -> None:
    """Azure's gateway reset: reboot one instance and re-apply its configuration, public IPs kept.
    Active-active: the primary instance (again on repeat), or --instance N; active-standby: the active
    instance, after the gateway failed over to the standby (with its ha_timing)."""
    from lab.ha.reset import reset as reset_gateway
    from lab.lock import lab_lock

    runtime = make_runtime(lab)
    loaded = core.load_running(only_lab(lab, runtime), home())
    with lab_lock(loaded.topo.name, wait_s=60):  # the supervisor must not heal the instance being rebooted
        done = reset_gateway(loaded, gateway, instance, runtime, connect, loaded.dataplane, timeout)
    err.print(f"lab {loaded.topo.name}: {done}")
