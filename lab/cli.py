"""The `lab` command: thin typer commands over lab.pipeline. The only place that exits the process.

Clients (docker, vici) are created here, once, and injected; errors become exit codes here:
2 bad input, 3 runtime backend, 4 control, 1 failed checks, 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from lab import pipeline
from lab.errors import LabError, TopologyError
from lab.state import lab_home

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Emulate Azure VPN Gateway with real IPsec.")
out = Console(width=None if sys.stdout.isatty() else 160)  # pipes and CI logs get full tables
err = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON on stdout")]


def _home() -> Path:
    return lab_home(dict(os.environ))


def _progress(msg: str) -> None:
    err.print(f"[dim]·[/dim] {msg}")


def _runtime():  # noqa: ANN202 - returns lab.runtime.docker.DockerRuntime
    from lab.runtime.docker import connect_runtime

    return connect_runtime()


def _connect(socket: Path):  # noqa: ANN202 - returns lab.control.vici.ViciControl
    from lab.control.vici import ViciControl

    return ViciControl(socket)


def _lab_name(name_or_file: str) -> str:
    """`lab down` takes a lab name or its topology file (only the file's `name:` is read)."""
    path = Path(name_or_file)
    if path.suffix in (".yml", ".yaml") or path.is_file():
        from lab.topology.load import parse_yaml

        data = parse_yaml(path.read_text(), str(path)) if path.is_file() else None
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise TopologyError(f"{path}: cannot read a lab name from it", hint="pass the lab name instead")
        return data["name"]
    return name_or_file


def _only_lab(name: str | None, runtime) -> str:  # noqa: ANN001
    if name:
        return name
    labs = pipeline.running_labs(runtime)
    if len(labs) != 1:
        raise LabError(f"{len(labs)} labs are running ({', '.join(labs) or 'none'})", hint="name the lab")
    return labs[0]


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False) -> None:
    """Emulate Azure VPN Gateway with real IPsec (strongSwan in containers)."""


@app.command()
def up(file: Path, timeout: Annotated[float, typer.Option(help="seconds to wait for tunnels")] = 30.0,
       json_out: JsonOpt = False) -> None:
    """Bring a lab up from a topology file and wait until every tunnel is established."""
    from lab.report.status_view import show_status
    from lab.runtime.image import default_containers_dir, ensure_image
    from lab.runtime.preflight import require_preflight

    pipeline.load(file, _home())  # bad input fails here, before anything is created
    runtime = _runtime()
    dataplane = require_preflight(runtime, err.print)
    image = ensure_image(runtime.client, default_containers_dir(), _progress)
    st = pipeline.up(file, _home(), runtime, _connect, image, dataplane, _progress, timeout)
    if json_out:
        print(st.model_dump_json(indent=2))
    else:
        show_status(st, out)


@app.command()
def down(name: Annotated[str | None, typer.Argument(help="lab name or topology file")] = None,
         all_labs: Annotated[bool, typer.Option("--all", help="every lab on this machine")] = False) -> None:
    """Remove every container, link, namespace and state a lab made (works after a crash too)."""
    runtime = _runtime()
    if not name and not all_labs:
        raise LabError("name a lab (or a topology file), or pass --all", hint="lab down NAME")
    names = pipeline.running_labs(runtime) if all_labs else [_lab_name(name or "")]
    for lab in names:
        removed = pipeline.down(lab, _home(), runtime)
        err.print(f"lab {lab}: removed {len(removed)} object(s)" + "".join(f"\n  {r}" for r in removed))


@app.command()
def inspect(name: Annotated[str | None, typer.Argument()] = None, json_out: JsonOpt = False) -> None:
    """Nodes, addresses and tunnels (state, SPIs, bytes) of a running lab."""
    from lab.report.status_view import show_status
    from lab.runtime.preflight import detect_dataplane

    runtime = _runtime()
    lab = pipeline.load_running(_only_lab(name, runtime), _home())
    st = pipeline.status(lab, runtime, _connect, detect_dataplane())
    if json_out:
        print(st.model_dump_json(indent=2))
    else:
        show_status(st, out)


@app.command()
def verify(name: Annotated[str | None, typer.Argument()] = None, json_out: JsonOpt = False,
           pcap: Annotated[Path | None, typer.Option("--pcap", help="keep the Internet-link capture in DIR")] = None,
           wireshark_keys: Annotated[Path | None, typer.Option(
               "--wireshark-keys", help="write the ESP keys to FILE in Wireshark's esp_sa format")] = None) -> None:
    """Prove the tunnels: probes answered, only IKE/ESP on the wire, SPIs match, selectors hold, ESP decrypts.

    Exit 0: every check passed; 1: a check failed; 2: the lab could not be checked.
    """
    from lab.report.verify_view import show_verify
    from lab.verify.run import VerifyOptions, verify_running

    runtime = _runtime()
    options = VerifyOptions(pcap_dir=pcap, wireshark_keys=wireshark_keys)
    report = verify_running(_only_lab(name, runtime), _home(), runtime, _connect, options, _progress)
    if json_out:
        print(report.model_dump_json(indent=2))
    else:
        show_verify(report, out)
    if not report.passed:
        failed = [c.name for c in report.checks if not c.passed]
        raise LabError(f"lab {report.lab}: {len(failed)} check(s) failed: {', '.join(failed)}",
                       hint="the evidence of each failed check says why")


@app.command(name="exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exec_(ctx: typer.Context, node: str,
          lab: Annotated[str | None, typer.Option(help="lab name (needed if several run)")] = None) -> None:
    """Run a command in a node: lab exec NODE -- CMD ARGS..."""
    runtime = _runtime()
    if not ctx.args:
        raise LabError("no command given", hint="lab exec NODE -- ip addr")
    res = runtime.exec(_only_lab(lab, runtime), node, list(ctx.args))
    sys.stdout.write(res.output)
    raise typer.Exit(res.code)


@app.command()
def logs(node: str, lab: Annotated[str | None, typer.Option()] = None,
         lines: Annotated[int, typer.Option("-n", help="last N lines")] = 50) -> None:
    """Show a node's charon (IKE) log from the lab state directory."""
    runtime = _runtime()
    d = pipeline.load_running(_only_lab(lab, runtime), _home()).dir
    if not d.charon_log(node).exists():
        raise LabError(f"node {node!r} has no charon log at {d.charon_log(node)}", hint="lab inspect lists nodes")
    print("\n".join(d.log_tail(node, lines)))


LabOpt = Annotated[str | None, typer.Option(help="lab name (needed if several run)")]


@app.command()
def fault(kind: Annotated[str, typer.Argument(help="kill, stop, pause, charon-restart, link-down or loss")],
          target: Annotated[str, typer.Argument(help="NODE, or NODE:IFACE for link-down and loss")],
          percent: Annotated[float | None, typer.Argument(help="loss: % of round trips lost")] = None,
          lab: LabOpt = None) -> None:
    """Break a running lab on purpose: kill/stop/pause a node, restart its charon, cut or degrade a link."""
    from lab import faults
    from lab.runtime.preflight import detect_dataplane

    runtime = _runtime()
    loaded = pipeline.load_running(_only_lab(lab, runtime), _home())
    applied = faults.parse_fault(loaded, kind, target, percent)
    faults.inject(loaded, applied, runtime, _connect, detect_dataplane())
    undo = "charon is back with its config" if applied.kind == "charon-restart" else "`lab restore` undoes it"
    err.print(f"lab {loaded.topo.name}: fault {applied.describe()} applied; {undo}")


@app.command()
def restore(target: Annotated[str | None, typer.Argument(help="NODE or NODE:IFACE (default: all)")] = None,
            all_faults: Annotated[bool, typer.Option("--all", help="every active fault")] = False,
            lab: LabOpt = None,
            timeout: Annotated[float, typer.Option(help="seconds to wait for tunnels")] = 60.0) -> None:
    """Undo faults (all, or those on one node or link) and wait until every tunnel is up again."""
    from lab import faults
    from lab.runtime.preflight import detect_dataplane

    if target and all_faults:
        raise LabError("give a target or --all, not both", hint="lab restore --all")
    from lab import ha

    runtime = _runtime()
    loaded = pipeline.load_running(_only_lab(lab, runtime), _home())
    ha.before_restore(loaded, runtime, _connect)  # a standby that took over hands back to <gw>-0
    undone = faults.restore(loaded, target, runtime, _connect, detect_dataplane(), timeout)
    ha.start_agents(loaded, runtime, _connect)
    left = faults.read_faults(loaded.dir.root)
    state = f"{len(left)} fault(s) still active" if left else "every tunnel is up"
    err.print(f"lab {loaded.topo.name}: restored {', '.join(f.describe() for f in undone) or 'nothing'}; {state}")


PlotOpt = Annotated[Path | None, typer.Option("--plot", help="draw the timeline into FILE.png")]
DurationOpt = Annotated[float, typer.Option("--duration", min=2, help="seconds of probe stream")]


def _stream(gateway: str | None, kind: str | None, lab: str | None, duration: float, plot: Path | None,
            json_out: bool) -> None:
    """Shared body of `failover` and `probe`: stream (with the fault), then the view, JSON and plot."""
    from lab.control.vici import watch_events
    from lab.failover_run import StreamOptions, measure
    from lab.report.failover_view import show_failover
    from lab.runtime.preflight import detect_dataplane

    runtime = _runtime()
    loaded = pipeline.load_running(_only_lab(lab, runtime), _home())
    gw = gateway or sorted(loaded.topo.gateways)[0]
    opts = StreamOptions(duration_s=duration, fault_after_s=min(3.0, duration / 3))
    res = measure(loaded, gw, kind, runtime, _connect, watch_events, detect_dataplane(), opts)  # type: ignore[arg-type]
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
             lab: LabOpt = None, duration: DurationOpt = 12.0, plot: PlotOpt = None, json_out: JsonOpt = False) -> None:
    """Fail a gateway over (active-standby: move to the standby; active-active: instance 0 goes) while a
    probe stream measures the outage. `lab restore` brings back the starting state."""
    _stream(gateway, "planned" if planned else "unplanned", lab, duration, plot, json_out)


@app.command()
def probe(gateway: Annotated[str | None, typer.Argument(help="gateway name (default: the first)")] = None,
          lab: LabOpt = None, duration: DurationOpt = 5.0, plot: PlotOpt = None, json_out: JsonOpt = False) -> None:
    """A probe stream VNet host → site host (UDP, ICMP) without a fault: loss, gaps, which tunnels carry it."""
    _stream(gateway, None, lab, duration, plot, json_out)


@app.command()
def bench(name: Annotated[str | None, typer.Argument(help="lab name")] = None,
          seconds: Annotated[int, typer.Option("--time", "-t", min=1, max=10, help="iperf3 -t per run")] = 5,
          cc: Annotated[list[str] | None, typer.Option("--cc", help="TCP congestion control; repeat (default: "
                                                       "cubic and the inherited one)")] = None,
          reverse: Annotated[bool, typer.Option("--reverse", help="site -> VNet (iperf3 -R)")] = False,
          tune_host: Annotated[bool, typer.Option("--tune-host", help="also measure with a 4 MiB host "
                                                  "net.core.rmem_default (restored afterwards)")] = False,
          json_out: JsonOpt = False) -> None:
    """iperf3 through each tunnel and all at once (beside the SKU cap), uncapped, and over a plain veth."""
    from lab.bench import BenchOptions, run_bench
    from lab.report.bench_view import show_bench
    from lab.runtime.preflight import detect_dataplane

    runtime = _runtime()
    loaded = pipeline.load_running(_only_lab(name, runtime), _home())
    opts = BenchOptions(seconds=seconds, reverse=reverse, tune_host=tune_host,
                        **({"congestions": tuple(cc)} if cc else {}))
    res = run_bench(loaded, runtime, _connect, detect_dataplane(), opts, _progress)
    if json_out:
        print(res.model_dump_json(indent=2))
    else:
        show_bench(res, out)


@app.command(name="apply")
def apply_(file: Path, timeout: Annotated[float, typer.Option(help="seconds to wait for tunnels")] = 30.0,
           dry_run: Annotated[bool, typer.Option("--dry-run", help="show the changes, touch nothing")] = False,
           json_out: JsonOpt = False) -> None:
    """Change a running lab in place as Azure allows: connections, keys, policies, resize within a SKU family."""
    from lab.apply import apply_file
    from lab.runtime.preflight import detect_dataplane

    res = apply_file(file, _home(), _runtime(), _connect, detect_dataplane(), _progress, timeout, dry_run)
    if json_out:
        print(res.model_dump_json(indent=2))
    else:
        for c in res.changes or []:
            out.print(f"{c.kind:18} {c.path}: {c.detail}", highlight=False)
        if not res.changes:
            out.print(f"lab {res.lab}: nothing to change")
        for node in sorted(res.removed.keys() | res.loaded.keys()):
            verbs = ("would remove", "would load") if res.dry_run else ("removed", "loaded")
            done = [f"{v} {', '.join(c)}" for v, c in zip(verbs, (res.removed.get(node), res.loaded.get(node)),
                                                         strict=True) if c]
            out.print(f"node {node}: {'; '.join(done)}; untouched: {', '.join(res.kept.get(node, [])) or 'none'}",
                      highlight=False)
    for p in res.problems:
        err.print(f"[red]problem:[/red] {p}", highlight=False)
    if res.problems:
        raise typer.Exit(1)


@app.command()
def schema() -> None:
    """Print the topology file's JSON Schema (for editor completion and validation)."""
    from lab.topology.model import Topology

    print(json.dumps(Topology.model_json_schema(), indent=2, sort_keys=True))


@app.command()
def validate(file: Path) -> None:
    """Check a topology offline against the schema and Azure's rules; no Docker needed.

    One line per finding; exit 2 if any is an error, 0 with warnings only."""
    from lab.topology.load import check_file

    _, found = check_file(file)
    for f in found:
        hint = f" (hint: {f.hint})" if f.hint else ""
        print(f"{file}: {f.severity}: {f.path or '-'}: {f.message}{hint}")
    bad = sum(f.severity == "error" for f in found)
    if bad:
        raise TopologyError(f"{file}: {bad} error(s), {len(found) - bad} warning(s)", hint="fix the errors above")
    lab = pipeline.load(file, _home())
    print(f"{file}: valid ({len(lab.plan.nodes)} nodes, {len(lab.topo.connections)} connections, "
          f"{len(found)} warning(s))")


def _image(runtime) -> str:  # noqa: ANN001
    from lab.runtime.image import default_containers_dir, ensure_image

    return ensure_image(runtime.client, default_containers_dir(), _progress)


@app.command(name="test-device")
def test_device(file: Path, report: Annotated[Path | None, typer.Option(help="write the report (.json: JSON, "
                                                                        "else markdown)")] = None,
                keep: Annotated[bool, typer.Option("--keep", help="leave the lab running")] = False,
                timeout: Annotated[float, typer.Option(help="seconds to wait for tunnels")] = 20.0,
                json_out: JsonOpt = False) -> None:
    """Test your own device config (a site's device.config) against the emulated gateway: up, verify, down."""
    from lab.device.testing import run_device_test
    from lab.runtime.preflight import require_preflight

    pipeline.load(file, _home())
    runtime = _runtime()
    dataplane = require_preflight(runtime, err.print)
    res = run_device_test(file, _home(), runtime, _connect, _image(runtime), dataplane, _progress, timeout, keep)
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

    runtime = _runtime()
    rep = diagnose_running(pipeline.load_running(_only_lab(name, runtime), _home()), _connect)
    if json_out:
        print(rep.model_dump_json(indent=2))
        return
    for d in rep.diagnoses:
        out.print(f"{d.severity}: {d.line()}", highlight=False)
        for e in d.evidence:
            out.print(f"  {e}", highlight=False)
    if not rep.diagnoses:
        out.print(f"lab {rep.lab}: nothing to report")


@app.command(name="device-config")
def device_config(gateway: str, site: Annotated[str, typer.Option("--site")],
                  fmt: Annotated[str, typer.Option("--format", help="swanctl or ipsec.conf")] = "swanctl",
                  lab: LabOpt = None, topology: Annotated[Path | None, typer.Option("--topology")] = None,
                  output: Annotated[Path | None, typer.Option("--output", "-o", help="file (ipsec.conf: "
                                                              "ipsec.secrets is written beside it)")] = None) -> None:
    """Write a working on-prem device config for a gateway (Azure's "download VPN device configuration")."""
    from lab.render.device_config import render_ipsec_conf_device, render_swanctl_device
    from lab.secrets import resolve_keys

    if fmt not in ("swanctl", "ipsec.conf"):
        raise LabError(f"--format {fmt!r}: unknown", hint="swanctl or ipsec.conf")
    loaded = pipeline.load(topology, _home()) if topology else pipeline.load_running(
        _only_lab(lab, _runtime()), _home())
    keys = resolve_keys(loaded.topo, loaded.dir.read_keys(), generate=str)  # str() == "": no key yet
    if fmt == "swanctl":
        files = [render_swanctl_device(loaded.topo, gateway, site, keys)]
    else:
        files = list(render_ipsec_conf_device(loaded.topo, gateway, site, keys))
    if output is None:
        print("\n".join(files), end="")
        return
    output.write_text(files[0])
    if len(files) > 1:
        output.with_name("ipsec.secrets").write_text(files[1])
    err.print(f"wrote {output}" + (f" and {output.with_name('ipsec.secrets')}" if len(files) > 1 else ""))


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
        print(render_graph(pipeline.load(topology, _home()).topo, fmt), end="")  # type: ignore[arg-type]
        return
    loaded = pipeline.load_running(_only_lab(name, _runtime()), _home())
    print(render_graph(loaded.topo, fmt, tunnel_states(loaded, _connect)), end="")  # type: ignore[arg-type]


@app.command()
def reload(node: str, lab: LabOpt = None) -> None:
    """Re-load NODE's config from the lab state directory (after editing it) and re-initiate its tunnels."""
    from lab.device.reload import reload_node

    runtime = _runtime()
    loaded = pipeline.load_running(_only_lab(lab, runtime), _home())
    for line in reload_node(loaded, node, runtime, _connect):
        err.print(line, highlight=False)


scenario_app = typer.Typer(no_args_is_help=True, help="Training scenarios: find and fix a broken tunnel.")
app.add_typer(scenario_app, name="scenario")


@scenario_app.command("list")
def scenario_list() -> None:
    """The scenarios and their titles."""
    from lab.scenario import load_scenario, scenario_names

    for n in scenario_names():
        out.print(f"{n:22} {load_scenario(n).title}", highlight=False)


@scenario_app.command("start")
def scenario_start(name: str) -> None:
    """Bring a scenario's broken lab up and show the task."""
    from lab import scenario_run
    from lab.runtime.preflight import require_preflight
    from lab.scenario import task

    runtime = _runtime()
    dataplane = require_preflight(runtime, err.print)
    state = scenario_run.start(name, _home(), runtime, _connect, _image(runtime), dataplane, _progress)
    out.print(task(name), highlight=False)
    err.print(f"lab {state.lab} is up; `lab scenario hint` helps, `lab scenario check` grades", highlight=False)


@scenario_app.command("hint")
def scenario_hint(n: Annotated[int | None, typer.Argument(help="hint number (default: the next one)")] = None) -> None:
    """Show hint N (or the next one)."""
    from lab.scenario import hints, read_state, write_state

    state = read_state(_home())
    all_hints = hints(state.name)
    k = n or min(state.hints_shown + 1, len(all_hints))
    if not 1 <= k <= len(all_hints):
        raise LabError(f"scenario {state.name}: hint {k} does not exist", hint=f"1..{len(all_hints)}")
    write_state(_home(), state.model_copy(update={"hints_shown": max(k, state.hints_shown)}))
    out.print(f"hint {k}/{len(all_hints)}: {all_hints[k - 1]}", highlight=False)


@scenario_app.command("check")
def scenario_check(json_out: JsonOpt = False) -> None:
    """Grade the running scenario: PASS/FAIL per check; exit 1 unless all pass."""
    from lab import scenario_run

    grades = scenario_run.check(_home(), _runtime(), _connect, _progress)
    if json_out:
        print(json.dumps([g.model_dump() for g in grades], indent=2))
    for g in grades if not json_out else []:
        out.print(f"{'PASS' if g.passed else 'FAIL'} {g.check}: {g.detail}", highlight=False)
    if not all(g.passed for g in grades):
        raise typer.Exit(1)


@scenario_app.command("reset")
def scenario_reset() -> None:
    """Start the running scenario again from scratch (undoes the learner's edits)."""
    from lab import scenario_run
    from lab.runtime.preflight import require_preflight

    runtime = _runtime()
    name = scenario_run.stop(_home(), runtime)
    if name is None:
        raise LabError("no scenario is running", hint="lab scenario start NAME")
    scenario_run.start(name, _home(), runtime, _connect, _image(runtime), require_preflight(runtime, err.print),
                       _progress)
    err.print(f"scenario {name} restarted", highlight=False)


@scenario_app.command("solve")
def scenario_solve() -> None:
    """Apply the scenario's known fix (for instructors and tests; `check` should pass afterwards)."""
    from lab import scenario_run

    for line in scenario_run.apply_fix(_home(), _runtime(), _connect):
        err.print(line, highlight=False)


@scenario_app.command("stop")
def scenario_stop() -> None:
    """Remove the running scenario's lab."""
    from lab import scenario_run

    err.print(f"stopped {scenario_run.stop(_home(), _runtime()) or 'nothing'}", highlight=False)


p2s_app = typer.Typer(no_args_is_help=True, help="Point-to-site: client profiles (docs/p2s.md).")
app.add_typer(p2s_app, name="p2s")


@p2s_app.command(name="client-config")
def p2s_client_config(gateway: str, client: str, lab: LabOpt = None,
                      out: Annotated[Path | None, typer.Option("--out", help="directory (default: ./<client>)")] = None
                      ) -> None:
    """Write a client's ready profile: swanctl.conf, strongswan.conf, certificate, key, gateway CA."""
    from lab.p2s_profile import write_profile

    loaded = pipeline.load_running(_only_lab(lab, _runtime()), _home())
    files = write_profile(loaded, gateway, client, out or Path(client))
    err.print(f"wrote {len(files)} files under {(out or Path(client))}: " + ", ".join(
        str(f.relative_to(out or Path(client))) for f in files))

@p2s_app.command(name="reconnect")
def p2s_reconnect(gateway: str, lab: LabOpt = None,
                  event: Annotated[str, typer.Option(help="planned (A/S failover) or charon-restart")] = "planned",
                  timeout: Annotated[float, typer.Option(help="seconds to wait for every client")] = 90.0,
                  json_out: JsonOpt = False) -> None:
    """Fail a P2S gateway over (or restart its charon) and time until every client reaches the VNet again."""
    from lab.p2s_measure import gateway_event, measure_reconnect
    from lab.runtime.preflight import detect_dataplane

    runtime = _runtime()
    loaded = pipeline.load_running(_only_lab(lab, runtime), _home())
    trigger = gateway_event(loaded, gateway, event, runtime, _connect, detect_dataplane())
    res = measure_reconnect(loaded, runtime, trigger, gateway, timeout)
    if json_out:
        print(json.dumps({**res.model_dump(), "all_back_s": res.all_back_s}, indent=2))
        return
    for name, t in sorted(res.clients.items()):
        out.print(f"{name}: {'not back' if t is None else f'{t:.2f} s'}")
    out.print(f"{res.event}: trigger took {res.trigger_s:.2f} s; every client back after "
              f"{'-' if res.all_back_s is None else f'{res.all_back_s:.2f} s'}")


def main() -> None:
    debug = "--debug" in sys.argv[1:]
    try:
        code = app(standalone_mode=False)  # click returns typer.Exit's code here instead of exiting
        sys.exit(code if isinstance(code, int) else 0)
    except LabError as exc:
        err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        if exc.hint:
            err.print(f"[dim]hint:[/dim] {exc.hint}", highlight=False)
        if debug:
            raise
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted: the lab may be half-built; `lab down NAME` removes what was made")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors arrive here in standalone_mode=False
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(2)
        raise
