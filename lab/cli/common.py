"""What every command shares: the typer app, the two consoles, option types and the injected clients.

Clients (docker, vici) are created here, once per command, and injected into lab.pipeline.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from lab import pipeline
from lab.errors import LabError, TopologyError
from lab.runtime.base import Runtime
from lab.runtime.registry import Choice
from lab.state import lab_home

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Emulate Azure VPN Gateway with real IPsec.")
out = Console(width=None if sys.stdout.isatty() else 160)  # pipes and CI logs get full tables
err = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON on stdout")]


class DataplaneChoice(StrEnum):
    libipsec = "libipsec"
    kernel = "kernel"


DataplaneOpt = Annotated[DataplaneChoice | None, typer.Option(
    "--dataplane", help="ESP data plane: kernel (needs esp4) or libipsec (userspace); default: what preflight picks")]


def home() -> Path:
    return lab_home(dict(os.environ))


def progress(msg: str) -> None:
    err.print(f"[dim]·[/dim] {escape(msg)}")


def make_runtime(lab: str | None = None) -> Runtime:
    """The runtime backend the lab was brought up on (recorded in its state by `lab up`; with no lab named, the
    one every recorded lab shares), else the one LAB_RUNTIME names, else docker; connected
    (lab/runtime/registry.py)."""
    from lab.runtime.registry import connect_runtime, recorded_for

    return connect_runtime(choice=recorded_for(home(), lab_name_of(lab) if lab else None))


def new_runtime(choice: Choice | None = None) -> Runtime:
    """For a command that brings a lab up: `choice` (lab up's --runtime or runtime: key), else the backend
    LAB_RUNTIME names, else docker; connected."""
    from lab.runtime.registry import connect_runtime

    return connect_runtime(choice=choice)


def connect(socket: Path):  # noqa: ANN202 - returns lab.control.vici.ViciControl
    from lab.control.vici import ViciControl

    return ViciControl(socket)


def lab_name_of(name_or_file: str) -> str:
    """`lab down` takes a lab name or its topology file (only the file's `name:` is read)."""
    path = Path(name_or_file)
    if path.suffix in (".yml", ".yaml") or path.is_file():
        from lab.topology.load import parse_yaml, read_file

        data = parse_yaml(read_file(path), str(path)) if path.is_file() else None
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise TopologyError(f"{path}: cannot read a lab name from it", hint="pass the lab name instead")
        return data["name"]
    return name_or_file


def only_lab(name: str | None, runtime) -> str:  # noqa: ANN001
    if name:
        return name
    labs = pipeline.running_labs(runtime)
    if len(labs) != 1:
        raise LabError(f"{len(labs)} labs are running ({', '.join(labs) or 'none'})", hint="name the lab")
    return labs[0]



LabOpt = Annotated[str | None, typer.Option(help="lab name (needed if several run)")]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="draw the timeline into FILE.png")]
DurationOpt = Annotated[float, typer.Option("--duration", min=2, help="seconds of probe stream")]


def node_image(runtime) -> str:  # noqa: ANN001
    from lab.runtime.base import default_containers_dir

    return runtime.ensure_image(default_containers_dir(), progress)


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False) -> None:
    """Emulate Azure VPN Gateway with real IPsec (strongSwan in containers)."""
