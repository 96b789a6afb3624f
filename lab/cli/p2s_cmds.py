"""Point-to-site commands: client profiles and reconnect measurement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lab import core
from lab.cli.common import (
    JsonOpt,
    LabOpt,
    app,
    connect,
    err,
    home,
    make_runtime,
    only_lab,
    out,
)

p2s_app = typer.Typer(no_args_is_help=True, help="Point-to-site: client profiles (docs/p2s.md).")
app.add_typer(p2s_app, name="p2s")


@p2s_app.command(name="client-config")
def p2s_client_config(gateway: str, client: str, lab: LabOpt = None,
                      out: Annotated[Path | None, typer.Option("--out", help="directory (default: ./<client>)")] = None
                      ) -> None:
    """Write a client's ready profile: swanctl.conf, strongswan.conf, certificate, key, gateway CA."""
    from lab.p2s.profile import write_profile

    loaded = core.load_running(only_lab(lab, make_runtime(lab)), home())
    files = write_profile(loaded, gateway, client, out or Path(client))
    err.print(f"wrote {len(files)} files under {(out or Path(client))}: " + ", ".join(
        str(f.relative_to(out or Path(client))) for f in files))

@p2s_app.command(name="reconnect")
def p2s_reconnect(gateway: str, lab: LabOpt = None,
                  event: Annotated[str, typer.Option(help="planned (A/S failover) or charon-restart")] = "planned",
                  timeout: Annotated[float, typer.Option(help="seconds to wait for every client")] = 90.0,
                  json_out: JsonOpt = False) -> None:
    """Fail a P2S gateway over (or restart its charon) and time until every client reaches the VNet again."""
    from lab.p2s.measure import gateway_event, measure_reconnect

    runtime = make_runtime(lab)
    loaded = core.load_running(only_lab(lab, runtime), home())
    trigger = gateway_event(loaded, gateway, event, runtime, connect, loaded.dataplane)
    res = measure_reconnect(loaded, runtime, trigger, gateway, timeout)
    if json_out:
        print(json.dumps({**res.model_dump(), "all_back_s": res.all_back_s}, indent=2))
        return
    for name, t in sorted(res.clients.items()):
        out.print(f"{name}: {'not back' if t is None else f'{t:.2f} s'}")
    out.print(f"{res.event}: trigger took {res.trigger_s:.2f} s; every client back after "
              f"{'-' if res.all_back_s is None else f'{res.all_back_s:.2f} s'}")
