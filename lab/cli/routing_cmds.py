"""BGP: lab routes GW (Azure's learned and advertised routes views, per instance)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from lab import core
from lab.cli.common import JsonOpt, LabOpt, app, home, make_runtime, only_lab, out
from lab.errors import LabError


@app.command()
def routes(gateway: str, lab: LabOpt = None,
           learned: Annotated[bool, typer.Option("--learned", help="only the learned routes")] = False,
           advertised: Annotated[bool, typer.Option("--advertised", help="only the advertised routes")] = False,
           json_out: JsonOpt = False) -> None:
    """Each gateway instance's BGP routes as Azure shows them: learned (own networks and routes from peers) and
    advertised (per peer): network, next hop, source peer, origin, AS path."""
    from lab.report.routes_view import show_routes
    from lab.routing.collect import gateway_sessions
    from lab.routing.collect import routes as collect_routes

    runtime = make_runtime(lab)
    running = core.load_running(only_lab(lab, runtime), home())
    if gateway not in running.topo.gateways:
        raise LabError(f"no gateway {gateway!r} in lab {running.topo.name}",
                       hint=f"gateways: {', '.join(sorted(running.topo.gateways))}")
    per_node = gateway_sessions(running.topo, gateway)
    if not per_node:
        raise LabError(f"gateway {gateway!r} has no BGP connection", hint="set enable_bgp: true on a connection")
    both = not learned and not advertised
    views = [("learned routes", True, False)] if learned or both else []
    views += [("advertised routes", False, True)] if advertised or both else []
    result = {title.split()[0]: collect_routes(runtime, running.topo.name, per_node, lrn, adv)
              for title, lrn, adv in views}
    if json_out:
        print(json.dumps({k: [r.model_dump() for r in v] for k, v in result.items()}, indent=2))
        return
    for (title, _, _), rows in zip(views, result.values(), strict=True):
        show_routes(title, rows, out)
