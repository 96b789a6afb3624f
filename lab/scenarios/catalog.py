"""Training scenarios: scenarios/<name>/ holds topology.yml, scenario.yml (what is broken, which checks prove
it fixed, the known fix), task.md and hints.yml. This module reads them and keeps the learner's progress in
<LAB_HOME>/scenario.json (which scenario runs, how many hints were shown)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lab.errors import LabError, TopologyError

SCENARIOS_DIR = Path(__file__).resolve().parents[2] / "scenarios"
STATE_FILE = "scenario.json"
VERIFY_CHECKS = ("reachability", "encrypted", "spis", "selectors", "decryption")
SCENARIO_CHECKS = ("tunnels-up", "no-diagnosis-errors", "azure-lifetimes", "standby-ready", "bgp-established")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Command(_Strict):
    node: str
    argv: list[str] = Field(min_length=1)


class InjectedFault(_Strict):
    kind: str
    target: str


class FixStep(_Strict):
    """One step of the known fix (used by the tests, and shown by `lab scenario hint` last): edit a file in
    a node's state directory, reload a node, run a command in a node, or `lab restore` (every fault undone,
    HA agents restarted)."""

    edit: dict[str, str] | None = None  # node, file, old, new
    reload: str | None = None
    exec: Command | None = None
    restore: bool = False


class Scenario(_Strict):
    title: str
    topology: str = "topology.yml"
    fault: InjectedFault | None = None
    commands: list[Command] = Field(default_factory=list)
    checks: list[str] = Field(min_length=1)
    fix: list[FixStep] = Field(default_factory=list)


class ScenarioState(_Strict):
    name: str
    lab: str
    hints_shown: int = 0


def scenario_names(root: Path = SCENARIOS_DIR) -> list[str]:
    return sorted(p.parent.name for p in root.glob("*/scenario.yml"))


def scenario_dir(name: str, root: Path = SCENARIOS_DIR) -> Path:
    d = root / name
    if not (d / "scenario.yml").is_file():
        raise LabError(f"no scenario {name!r} in {root}", hint=f"scenarios: {', '.join(scenario_names(root))}")
    return d


def load_scenario(name: str, root: Path = SCENARIOS_DIR) -> Scenario:
    path = scenario_dir(name, root) / "scenario.yml"
    try:
        sc = Scenario.model_validate(yaml.safe_load(path.read_text()))
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(map(str, e["loc"]))
        raise TopologyError(f"{path}: {where}: {e['msg']}", hint="see docs/scenarios.md") from exc
    unknown = [c for c in sc.checks if c not in VERIFY_CHECKS + SCENARIO_CHECKS]
    if unknown:
        raise TopologyError(f"{path}: checks: unknown {', '.join(unknown)}",
                            hint=f"known: {', '.join(VERIFY_CHECKS + SCENARIO_CHECKS)}")
    return sc


def hints(name: str, root: Path = SCENARIOS_DIR) -> list[str]:
    data = yaml.safe_load((scenario_dir(name, root) / "hints.yml").read_text()) or []
    return [str(h) for h in data]


def task(name: str, root: Path = SCENARIOS_DIR) -> str:
    return (scenario_dir(name, root) / "task.md").read_text()


def read_state(home: Path) -> ScenarioState:
    path = home / STATE_FILE
    if not path.exists():
        raise LabError("no scenario is running", hint="lab scenario list; lab scenario start NAME")
    return ScenarioState.model_validate_json(path.read_text())


def write_state(home: Path, state: ScenarioState | None) -> None:
    path = home / STATE_FILE
    if state is None:
        path.unlink(missing_ok=True)
        return
    home.mkdir(parents=True, exist_ok=True)
    path.write_text(state.model_dump_json())
