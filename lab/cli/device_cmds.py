"""Your own device against the gateway: test-device, diagnose, device-config, graph, reload."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lab import core
from lab.cli.common import (
    DataplaneOpt,
    JsonOpt,
    LabOpt,
    app,
    connect,
    err,
    home,
    make_runtime,
    new_runtime,
    node_image,
    only_lab,
    out,
    progress,
)
from lab.errors import LabError


@app.command(name="test-device")
def test_device(file: Path, report: Annotated[Path | None, typer.Option(help="write the report (.json: JSON, "
                                                                        "else markdown)")] = None,
                keep: Annotated[bool, typer.Option("--keep", help="leave the lab running")] = False,
                timeout: Annotated[float, typer.Option(help="seconds to wait for tunnels")] = 20.0,
                json_out: JsonOpt = False, dataplane: DataplaneOpt = None) -> None:
    """Test your own device config (a site's device.config) against the emulated gateway: up, verify, down
    (`--dataplane` as for `lab up`)."""
    from lab.device.testing import run_device_test
    from lab.runtime.base import require_preflight

    core.load(file, home())
    runtime = new_runtime()
    plane = require_preflight(runtime, err.print, dataplane.value if dataplane else None)
    res = run_device_test(file, home(), runtime, connect, node_image(runtime), plane, progress, timeout, keep)
    if report:
        report.write_text(res.model_dump_json(indent=2) if report.suffix == ".json" else res.markdown())
    print(res.model_dump_json(indent=2) if json_out else res.markdown())
    if not res.passed:
        first = res.diagnosis.errors[0].line() if res.diagnosis.errors else (res.error or "a check failed")
        raise LabError(f"device test of {file} failed: {first}", hint="the report lists the evidence")


@app.command()
def diagnose(name: Annotated[str | None, typer.Argument()] = None, json_out: JsonOpt = False) -> None:
    """Say why a tunnel is down (or differs from Azure), with evidence from both sides' IKE logs."""
    from lab.device.testing import diagnose_running
    from lab.routing.collect import bgp_diagnoses

    runtime = make_runtime(name)
    lab = core.load_running(only_lab(name, runtime), home())
    rep = diagnose_running(lab, connect)
    bgp = bgp_diagnoses(runtime, lab.topo.name, lab.topo, lab.dir.root / "nodes")  # BGP sessions (lab/routing)
    rep = rep.model_copy(update={"diagnoses": [*rep.diagnoses, *bgp]})
    if json_out:
        print(rep.model_dump_json(indent=2))
    else:
        for d in rep.diagnoses:
            out.print(f"{d.severity}: {d.line()}", highlight=False, markup=False)
            for e in d.evidence:
                out.print(f"  {e}", highlight=False, markup=False)
        if not rep.diagnoses:
            out.print(f"lab {rep.lab}: nothing to report")
    if rep.errors:  # a reported error is a failure a script must see: exit 1 (warnings only: 0)
        raise typer.Exit(1)


@app.command(name="device-config")
def device_config(gateway: str, site: Annotated[str, typer.Option("--site")],
                  fmt: Annotated[str, typer.Option("--format", help="swanctl or ipsec.conf")] = "swanctl",
                  lab: LabOpt = None, topology: Annotated[Path | None, typer.Option("--topology")] = None,
                  output: Annotated[Path | None, typer.Option("--output", "-o", help="file (ipsec.conf: "
                                                              "ipsec.secrets is written beside it)")] = None) -> None:
    """Write a working on-prem device config for a gateway (Azure's "download VPN device configuration");
    with BGP on the connection, also the device's frr.conf (printed after it, or written beside --output)."""
    from lab.render.device_config import render_ipsec_conf_device, render_swanctl_device
    from lab.routing.nodes import render_frr_device
    from lab.secrets import resolve_keys

    if fmt not in ("swanctl", "ipsec.conf"):
        raise LabError(f"--format {fmt!r}: unknown", hint="swanctl or ipsec.conf")
    loaded = core.load(topology, home()) if topology else core.load_running(
        only_lab(lab, make_runtime(lab)), home())
    keys = resolve_keys(loaded.topo, loaded.dir.read_keys(), generate=str)  # str() == "": no key yet
    if fmt == "swanctl":
        files = [render_swanctl_device(loaded.topo, gateway, site, keys)]
    else:
        files = list(render_ipsec_conf_device(loaded.topo, gateway, site, keys))
    frr = render_frr_device(loaded.topo, gateway, site)
    if output is None:
        print("\n".join([*files, *([frr] if frr else [])]), end="")
        return
    from lab.state import write_private

    write_private(output, files[0])  # both formats hold the shared key: owner-only
    written = [output]
    if len(files) > 1:
        written.append(output.with_name("ipsec.secrets"))
        write_private(written[-1], files[1])
    if frr:  # BGP on the connection: the device's FRR config beside it (no secret in it)
        written.append(output.with_name("frr.conf"))
        written[-1].write_text(frr)
    err.print("wrote " + ", ".join(map(str, written)))


@app.command()
def graph(name: Annotated[str | None, typer.Argument(help="running lab")] = None,
          topology: Annotated[Path | None, typer.Option("--topology")] = None,
          fmt: Annotated[str, typer.Option("--format", help="mermaid or dot")] = "mermaid") -> None:
    """Draw the topology (gateways, instances, public IPs, sites, tunnels; state colored when running)."""
    from lab.device.testing import tunnel_states
    from lab.render.graph import render_graph

    if fmt not in ("mermaid", "dot"):
        raise LabError(f"--format {fmt!r}: unknown", hint="mermaid or dot")
    if topology:
        print(render_graph(core.load(topology, home()).topo, fmt), end="")  # type: ignore[arg-type]
        return
    loaded = core.load_running(only_lab(name, make_runtime(name)), home())
    print(render_graph(loaded.topo, fmt, tunnel_states(loaded, connect)), end="")  # type: ignore[arg-type]


@app.command()
def reload(node: str, lab: LabOpt = None) -> None:
    """Re-load NODE's config from the lab state directory (after editing it) and re-initiate its tunnels."""
    from lab.device.reload import reload_node

    runtime = make_runtime(lab)
    loaded = core.load_running(only_lab(lab, runtime), home())
    for line in reload_node(loaded, node, runtime, connect):
        err.print(line, highlight=False)
