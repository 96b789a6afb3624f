"""The `lab` command: thin typer commands over lab.pipeline. The only place that exits the process.

Errors become exit codes here: 2 bad input, 3 runtime backend, 4 control, 1 failed checks, 130 interrupted.
Commands are registered explicitly by importing their modules below (order = order in `lab --help`).
"""

from __future__ import annotations

import sys

# isort: off
from lab.cli import lab_cmds, fault_cmds, device_cmds, scenario_cmds, p2s_cmds, routing_cmds, ui_cmds  # noqa: F401 (registers commands)
# isort: on
import typer
from rich.markup import escape

from lab.cli.common import app, err
from lab.errors import LabError


def main() -> None:
    debug = "--debug" in sys.argv[1:]
    try:
        code = app(standalone_mode=False)  # click returns typer.Exit's code here instead of exiting
        sys.exit(code if isinstance(code, int) else 0)
    except LabError as exc:
        # escape: messages quote user text and patterns such as [a-z], which rich would read as markup
        err.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False)
        if exc.hint:
            err.print(f"[dim]hint:[/dim] {escape(exc.hint)}", highlight=False)
        if debug:
            raise
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted: the lab may be half-built; `lab down NAME` removes what was made")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # usage errors arrive here in standalone_mode=False
        # typer vendors its own click, so match the ClickException shape instead of a class
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(2)
        raise
