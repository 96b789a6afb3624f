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


@app.command()
def schema() -> None:
    """Print the topology file's JSON Schema (for editor completion and validation)."""
    from lab.topology.model import Topology

    print(json.dumps(Topology.model_json_schema(), indent=2, sort_keys=True))


@app.command()
def validate(file: Path) -> None:
    """Check a topology offline against the schema and Azure's rules; no Docker needed."""
    lab = pipeline.load(file, _home())
    for w in lab.warnings:
        err.print(w.render(str(file)))
    out.print(f"{file}: valid ({len(lab.plan.nodes)} nodes, {len(lab.topo.connections)} connections)")


def main() -> None:
    debug = "--debug" in sys.argv[1:]
    try:
        app(standalone_mode=False)
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
