"""Lab lifecycle and checks: up, down, inspect, verify, exec, logs, bench, apply, schema, validate."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lab import core, pipeline
from lab.cli.common import (
    DataplaneOpt,
    JsonOpt,
    app,
    connect,
    err,
    home,
    lab_name_of,
    make_runtime,
    new_runtime,
    only_lab,
    out,
    progress,
)
from lab.errors import BusyError, LabError, TopologyError
from lab.runtime import registry
from lab.topology.model import Topology


class RuntimeChoice(StrEnum):
    docker = "docker"
    swarm = "swarm"


RuntimeOpt = Annotated[RuntimeChoice | None, typer.Option(
    "--runtime", help="where the nodes run: docker (this machine) or swarm (LAB_SWARM_MANAGER); default: the "
    "file's runtime:, else LAB_RUNTIME, else docker. Recorded: later commands on the lab use it")]


@app.command()
def up(file: Path, timeout: Annotated[float, typer.Option(help="seconds to wait for tunnels")] = 30.0,
       json_out: JsonOpt = False, dataplane: DataplaneOpt = None, runtime_opt: RuntimeOpt = None,
       no_heal: Annotated[bool, typer.Option("--no-heal", help="start no supervisor: a node restarted from "
                                             "outside stays broken until `lab restore`")] = False) -> None:
    """Bring a lab up from a topology file and wait until every tunnel is established."""
    from lab.report.status_view import show_status
    from lab.runtime.base import default_containers_dir, require_preflight

    lab = core.load(file, home())  # bad input fails here, before anything is created
    for f in lab.warnings:  # every `lab validate` warning: where the lab (or the file) differs from Azure
        err.print(f"warning: {f.path or '-'}: {f.message}" + (f" (hint: {f.hint})" if f.hint else ""),
                  markup=False, highlight=False)
    _refuse_beyond_machine(lab.topo, file)
    choice = _choose_runtime(lab, runtime_opt.value if runtime_opt else None)
    runtime = new_runtime(choice)
    plane = require_preflight(runtime, err.print, dataplane.value if dataplane else None)
    image = runtime.ensure_image(default_containers_dir(), progress)
    registry.record(lab.dir.root, choice)  # before anything is created: `lab down` finds a half-built lab too
    try:
        st = pipeline.up(file, home(), runtime, connect, image, plane, progress, timeout, lab=lab)
    except BaseException:
        registry.forget_if_alone(lab.dir.root)  # failed before it wrote its state: leave no directory behind
        raise
    if not no_heal:
        from lab.ops import supervisor

        pid = supervisor.spawn(lab.topo.name, home(), lab.dir.root)
        progress(f"supervisor (pid {pid}) heals nodes restarted from outside; `lab down` stops it")
    if json_out:
        print(st.model_dump_json(indent=2))
    else:
        show_status(st, out)


def _choose_runtime(lab: core.Lab, flag: str | None) -> registry.Choice:
    """--runtime, else the file's runtime:, else LAB_RUNTIME, else docker. A lab whose state names another
    backend is refused: it may still run there."""
    choice = registry.choose(flag, lab.topo.runtime, os.environ)
    before = registry.recorded(lab.dir.root)
    if before is not None and before.backend != choice.backend:
        raise BusyError(f"lab {lab.topo.name!r} was brought up on the {before.backend} runtime (its state "
                        f"{lab.dir.root} says so), not {choice.backend}", hint=f"lab down {lab.topo.name} first")
    if choice.backend != registry.DEFAULT:
        progress(f"runtime: {choice.backend}")
    return choice


def _refuse_beyond_machine(topo: Topology, file: Path) -> None:
    """P2S clients beyond what this machine's memory holds: refused before anything is created."""
    from lab.p2s.rules import machine_limit
    from lab.runtime.preflight import mem_available_bytes

    found = machine_limit(topo, mem_available_bytes())
    if found is not None:
        raise TopologyError(f"{file}: {found.path}: {found.message}", hint=found.hint)


@app.command()
def down(name: Annotated[str | None, typer.Argument(help="lab name or topology file")] = None,
         all_labs: Annotated[bool, typer.Option("--all", help="every lab on this machine")] = False) -> None:
    """Remove every container, link, namespace and state a lab made (works after a crash too)."""
    runtime = make_runtime(name)
    if not name and not all_labs:
        raise LabError("name a lab (or a topology file), or pass --all", hint="lab down NAME")
    names = pipeline.running_labs(runtime) if all_labs else [lab_name_of(name or "")]
    from lab.ops import supervisor
    from lab.state import LabDir
    from lab.ui import process as ui_process

    for lab in names:
        stopped = supervisor.stop(LabDir.of(home(), lab).root, lab)
        ui = ui_process.stop(LabDir.of(home(), lab).root)
        removed = pipeline.down_locked(lab, home(), runtime) + (["supervisor process"] if stopped else []) \
            + (["lab ui server"] if ui else [])
        err.print(f"lab {lab}: removed {len(removed)} object(s)" + "".join(f"\n  {r}" for r in removed))


@app.command()
def inspect(name: Annotated[str | None, typer.Argument()] = None, json_out: JsonOpt = False) -> None:
    """Nodes, addresses and tunnels (state, SPIs, bytes) of a running lab."""
    from lab.report.status_view import show_status

    runtime = make_runtime(name)
    lab = core.load_running(only_lab(name, runtime), home())
    st = pipeline.status(lab, runtime, connect, lab.dataplane)
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

    runtime = make_runtime(name)
    options = VerifyOptions(pcap_dir=pcap, wireshark_keys=wireshark_keys)
    report = verify_running(only_lab(name, runtime), home(), runtime, connect, options, progress)
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
    runtime = make_runtime(lab)
    if not ctx.args:
        raise LabError("no command given", hint="lab exec NODE -- ip addr")
    res = runtime.exec(only_lab(lab, runtime), node, list(ctx.args))
    sys.stdout.write(res.output)
    raise typer.Exit(res.code)


@app.command()
def logs(node: str, lab: Annotated[str | None, typer.Option()] = None,
         lines: Annotated[int, typer.Option("-n", help="last N lines")] = 50) -> None:
    """Show a node's charon (IKE) logs from the lab state directory: its main charon's, then each route-based
    tunnel's own charon's, prefixed [<connection>] (NODE/tunnels/CONN shows one alone)."""
    runtime = make_runtime(lab)
    d = core.load_running(only_lab(lab, runtime), home()).dir
    if not d.charon_logs(node):
        raise LabError(f"node {node!r} has no charon log at {d.charon_log(node)}", hint="lab inspect lists nodes")
    print("\n".join(d.log_tail(node, lines)))


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
    from lab.ops.bench import BenchOptions, run_bench
    from lab.report.bench_view import show_bench

    runtime = make_runtime(name)
    loaded = core.load_running(only_lab(name, runtime), home())
    opts = BenchOptions(seconds=seconds, reverse=reverse, tune_host=tune_host)
    if cc:
        opts = dataclasses.replace(opts, congestions=tuple(cc))
    res = run_bench(loaded, runtime, connect, loaded.dataplane, opts, progress)
    if json_out:
        print(res.model_dump_json(indent=2))
    else:
        show_bench(res, out)


@app.command(name="apply")
def apply_(file: Path, timeout: Annotated[float, typer.Option(help="seconds to wait for tunnels")] = 30.0,
           dry_run: Annotated[bool, typer.Option("--dry-run", help="show the changes, touch nothing")] = False,
           json_out: JsonOpt = False) -> None:
    """Change a running lab in place as Azure allows: connections, keys, policies, resize within a SKU family."""
    from lab.ops.apply import apply_file

    res = apply_file(file, home(), make_runtime(str(file)), connect, progress, timeout, dry_run)
    if json_out:
        print(res.model_dump_json(indent=2))
    else:
        for c in res.changes or []:
            out.print(f"{c.kind:18} {c.path}: {c.detail}", highlight=False, markup=False)
        if not res.changes:
            out.print(f"lab {res.lab}: nothing to change")
        for node in sorted(res.removed.keys() | res.loaded.keys()):
            verbs = ("would remove", "would load") if res.dry_run else ("removed", "loaded")
            done = [f"{v} {', '.join(c)}" for v, c in zip(verbs, (res.removed.get(node), res.loaded.get(node)),
                                                         strict=True) if c]
            out.print(f"node {node}: {'; '.join(done)}; untouched: {', '.join(res.kept.get(node, [])) or 'none'}",
                      highlight=False)
    for p in res.problems:
        err.print(f"[red]problem:[/red] {escape(str(p))}", highlight=False)
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
    from lab.p2s.creds import check_user_files
    from lab.p2s.rules import machine_limit
    from lab.runtime.preflight import mem_available_bytes
    from lab.topology.load import check_file

    topo, found = check_file(file)
    machine = machine_limit(topo, mem_available_bytes()) if topo is not None else None
    found = [*found, *([machine] if machine else [])]
    for f in found:  # errors on stderr (a script sees them), warnings on stdout with the verdict
        hint = f" (hint: {f.hint})" if f.hint else ""
        print(f"{file}: {f.severity}: {f.path or '-'}: {f.message}{hint}",
              file=sys.stderr if f.severity == "error" else sys.stdout)
    bad = sum(f.severity == "error" for f in found)
    if bad:
        raise TopologyError(f"{file}: {bad} error(s), {len(found) - bad} warning(s)", hint="fix the errors above")
    lab = core.load(file, home())
    check_user_files(lab.dir.root, lab.topo, file.resolve().parent)  # P2S user roots and client pairs
    print(f"{file}: valid ({len(lab.plan.nodes)} nodes, {len(lab.topo.connections)} connections, "
          f"{len(found)} warning(s))")


@app.command(hidden=True)
def supervise(name: str) -> None:
    """The per-lab supervisor `lab up` starts (lab/ops/supervisor.py): heals restarted nodes until `lab down`."""
    import datetime

    from lab.ops import supervisor

    def log(line: str) -> None:
        print(f"{datetime.datetime.now().isoformat(timespec='seconds')} {line}", flush=True)

    supervisor.run(name, home(), make_runtime(name), connect, log)
