"""Training scenarios: list, start, hint, check, reset, solve, stop."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from lab.cli.common import (
    JsonOpt,
    app,
    connect,
    err,
    home,
    make_runtime,
    new_runtime,
    node_image,
    out,
    progress,
)
from lab.errors import LabError

scenario_app = typer.Typer(no_args_is_help=True, help="Training scenarios: find and fix a broken tunnel.")
app.add_typer(scenario_app, name="scenario")


@scenario_app.command("list")
def scenario_list() -> None:
    """The scenarios and their titles."""
    from lab.scenarios.catalog import load_scenario, scenario_names

    for n in scenario_names():
        out.print(f"{n:22} {load_scenario(n).title}", highlight=False)


@scenario_app.command("start")
def scenario_start(name: str, lab: Annotated[str | None, typer.Option(
        "--lab", help="run it under this lab name (default: the scenario's own)")] = None) -> None:
    """Bring a scenario's broken lab up and show the task."""
    from lab.runtime.base import require_preflight
    from lab.scenarios import run as scenario_run
    from lab.scenarios.catalog import task

    runtime = new_runtime()
    dataplane = require_preflight(runtime, err.print)
    state = scenario_run.start(name, home(), runtime, connect, node_image(runtime), dataplane, progress, lab_name=lab)
    out.print(task(name), highlight=False)
    err.print(f"lab {state.lab} is up; `lab scenario hint` helps, `lab scenario check` grades", highlight=False)


@scenario_app.command("hint")
def scenario_hint(n: Annotated[int | None, typer.Argument(help="hint number (default: the next one)")] = None) -> None:
    """Show hint N (or the next one)."""
    from lab.scenarios.catalog import hints, read_state, write_state

    state = read_state(home())
    all_hints = hints(state.name)
    k = n or min(state.hints_shown + 1, len(all_hints))
    if not 1 <= k <= len(all_hints):
        raise LabError(f"scenario {state.name}: hint {k} does not exist", hint=f"1..{len(all_hints)}")
    write_state(home(), state.model_copy(update={"hints_shown": max(k, state.hints_shown)}))
    out.print(f"hint {k}/{len(all_hints)}: {all_hints[k - 1]}", highlight=False, markup=False)


@scenario_app.command("check")
def scenario_check(json_out: JsonOpt = False) -> None:
    """Grade the running scenario: PASS/FAIL per check; exit 1 unless all pass."""
    from lab.scenarios import run as scenario_run

    grades = scenario_run.check(home(), make_runtime(), connect, progress)
    if json_out:
        print(json.dumps([g.model_dump() for g in grades], indent=2))
    for g in grades if not json_out else []:
        out.print(f"{'PASS' if g.passed else 'FAIL'} {g.check}: {g.detail}", highlight=False, markup=False)
    if not all(g.passed for g in grades):
        raise typer.Exit(1)


@scenario_app.command("reset")
def scenario_reset() -> None:
    """Start the running scenario again from scratch (undoes the learner's edits)."""
    from lab.runtime.base import require_preflight
    from lab.scenarios import run as scenario_run
    from lab.scenarios.catalog import read_state

    runtime = make_runtime()
    try:
        lab = read_state(home()).lab
    except LabError:
        lab = None
    name = scenario_run.stop(home(), runtime)
    if name is None:
        raise LabError("no scenario is running", hint="lab scenario start NAME")
    scenario_run.start(name, home(), runtime, connect, node_image(runtime), require_preflight(runtime, err.print),
                       progress, lab_name=lab)
    err.print(f"scenario {name} restarted", highlight=False)


@scenario_app.command("solve")
def scenario_solve() -> None:
    """Apply the scenario's known fix (for instructors and tests; `check` should pass afterwards)."""
    from lab.scenarios import run as scenario_run

    for line in scenario_run.apply_fix(home(), make_runtime(), connect):
        err.print(line, highlight=False)


@scenario_app.command("stop")
def scenario_stop() -> None:
    """Remove the running scenario's lab."""
    from lab.scenarios import run as scenario_run

    err.print(f"stopped {scenario_run.stop(home(), make_runtime()) or 'nothing'}", highlight=False)
