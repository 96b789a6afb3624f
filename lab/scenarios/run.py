"""`lab scenario start | check | reset` and the known fix, over the pipeline (no docker or vici here)."""

from __future__ import annotations

import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from lab import core, pipeline
from lab.device.reload import reload_node
from lab.device.testing import diagnose_running, down_nodes
from lab.errors import LabError
from lab.ha import agents as ha
from lab.ops import faults, heal
from lab.render.strongswan_conf import Dataplane
from lab.routing import run as routing_run
from lab.routing.collect import bgp_diagnoses, peer_statuses
from lab.runtime.base import Runtime
from lab.scenarios.catalog import (
    SCENARIOS_DIR,
    Scenario,
    ScenarioState,
    load_scenario,
    read_state,
    scenario_dir,
    write_state,
)
from lab.verify.run import VerifyOptions, verify

SCENARIO_COPIES = ".scenarios"


class Grade(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    check: str
    passed: bool
    detail: str


def start(name: str, home: Path, runtime: Runtime, connect: core.Connect, image: str, dataplane: Dataplane,
          progress: core.Progress, root: Path = SCENARIOS_DIR, lab_name: str | None = None) -> ScenarioState:
    """Bring the scenario's lab up without waiting for tunnels (it is broken on purpose), then break it: the
    commands first (a misconfiguration already in place), then the fault. `lab_name`: run it under a lab name
    of its own (two runs of one scenario on one machine must not share container names)."""
    sc = load_scenario(name, root)
    topo_path = scenario_dir(name, root) / sc.topology
    if lab_name:
        topo_path = _renamed_copy(scenario_dir(name, root), sc.topology, core.load(topo_path, home).topo.name,
                                  lab_name, home)
    lab = core.load(topo_path, home)
    pipeline.up(topo_path, home, runtime, connect, image, dataplane, progress, wait=False, lab=lab)
    lab_name = lab.topo.name
    state = ScenarioState(name=name, lab=lab_name)
    write_state(home, state)
    lab = core.load_running(lab_name, home)
    for cmd in sc.commands:
        res = runtime.exec(lab_name, cmd.node, cmd.argv, timeout=20)
        if not res.ok:
            raise LabError(f"scenario {name!r}: `{' '.join(cmd.argv)}` on {cmd.node!r} failed: {res.output.strip()}")
    if sc.fault:
        faults.inject(lab, faults.parse_fault(lab, sc.fault.kind, sc.fault.target, None), runtime, connect, dataplane)
    return state


def _scenario_grades(sc: Scenario, lab: core.Lab, runtime: Runtime, connect: core.Connect) -> list[Grade]:
    out = []
    if "standby-ready" in sc.checks:
        problems = ha.standby_problems(lab, runtime)
        out.append(Grade(check="standby-ready", passed=not problems,
                         detail="; ".join(problems) or "both instances run, each with its HA agent"))
    if "bgp-established" in sc.checks:
        out.append(_bgp_grade(lab, runtime))
    try:
        return out + _charon_grades(sc, lab, connect)
    except LabError as exc:  # a dead gateway instance: its vici socket does not answer
        names = [c for c in ("tunnels-up", "no-diagnosis-errors", "azure-lifetimes") if c in sc.checks]
        return out + [Grade(check=c, passed=False, detail=exc.message) for c in names]


def _bgp_grade(lab: core.Lab, runtime: Runtime) -> Grade:
    """Every BGP session Established on both ends, and no BGP diagnosis (lab/routing)."""
    nodes = routing_run.frr_nodes(lab.plan, [n.name for n in lab.plan.nodes])
    wanted = routing_run.expected_peers(lab.topo, nodes)  # not a warm standby's idle sessions
    down = [f"{p.node} -> {p.peer} ({p.state})" for p in peer_statuses(runtime, lab.topo.name, list(wanted))
            if p.state != "Established" and p.peer in wanted[p.node]]
    errs = [d for d in bgp_diagnoses(runtime, lab.topo.name, lab.topo, lab.dir.root / "nodes") if d.severity == "error"]
    detail = "; ".join(down) or (errs[0].line() if errs else "every BGP session is established")
    return Grade(check="bgp-established", passed=not down and not errs, detail=detail)


def _charon_grades(sc: Scenario, lab: core.Lab, connect: core.Connect) -> list[Grade]:
    """The checks that ask every gateway's charon (over vici) and `lab diagnose`."""
    out = []
    diag = diagnose_running(lab, connect)
    if "tunnels-up" in sc.checks:
        down = down_nodes(lab, connect)
        out.append(Grade(check="tunnels-up", passed=not down,
                         detail=f"not up on {', '.join(sorted(down))}" if down else "every gateway tunnel is up"))
    if "no-diagnosis-errors" in sc.checks:
        errs = diag.errors
        out.append(Grade(check="no-diagnosis-errors", passed=not errs,
                         detail=errs[0].line() if errs else "no cause of failure found"))
    if "azure-lifetimes" in sc.checks:
        bad = [d for d in diag.diagnoses if d.kind in ("lifetime-mismatch", "dpd-rejected")]
        out.append(Grade(check="azure-lifetimes", passed=not bad,
                         detail=bad[0].line() if bad else "lifetimes and DPD as Azure's"))
    return out


def check(home: Path, runtime: Runtime, connect: core.Connect, progress: core.Progress,
          root: Path = SCENARIOS_DIR) -> list[Grade]:
    """PASS/FAIL per check of the running scenario: its own checks first, then the named `lab verify` ones."""
    state = read_state(home)
    sc = load_scenario(state.name, root)
    lab = core.load_running(state.lab, home)
    grades = _scenario_grades(sc, lab, runtime, connect)
    wanted = [c for c in sc.checks if c not in {g.check for g in grades}]
    if wanted:
        try:
            report = verify(lab, runtime, connect, VerifyOptions(), progress=progress)
            results = {c.name: c for c in report.checks}
            grades += [Grade(check=c, passed=results[c].passed, detail=results[c].summary) for c in wanted]
        except LabError as exc:
            grades += [Grade(check=c, passed=False, detail=exc.message) for c in wanted]
    return grades


def apply_fix(home: Path, runtime: Runtime, connect: core.Connect, root: Path = SCENARIOS_DIR) -> list[str]:
    """The scenario's known fix, step by step (what the tests do; a learner does it by hand)."""
    state = read_state(home)
    lab = core.load_running(state.lab, home)
    done = []
    for step in load_scenario(state.name, root).fix:
        if step.edit:
            path = lab.dir.node(step.edit["node"]) / step.edit["file"]
            text = path.read_text()
            if step.edit["old"] not in text:
                raise LabError(f"{path}: {step.edit['old']!r} not found", hint="was it already fixed?")
            path.write_text(text.replace(step.edit["old"], step.edit["new"]))
            done.append(f"edited {path}")
        if step.reload:
            done += reload_node(lab, step.reload, runtime, connect)
        if step.exec:
            res = runtime.exec(state.lab, step.exec.node, step.exec.argv, timeout=20)
            done.append(f"{step.exec.node}: {' '.join(step.exec.argv)} -> exit {res.code}")
        if step.restore:
            done.append(restore_all(lab, runtime, connect, lab.dataplane))
    return done


def restore_all(lab: core.Lab, runtime: Runtime, connect: core.Connect, dataplane: Dataplane,
                timeout: float = 60.0) -> str:
    """What `lab restore` does: every fault is undone, every node not as `lab up` left it is healed, HA agents
    that died restart (roles untouched), then every tunnel is waited for (lab/ops/heal.py)."""
    undone, done = heal.restore(lab, None, runtime, connect, dataplane, None, lambda _: None, timeout)
    return f"restored {', '.join(f.describe() for f in undone) or 'nothing'}; " + ("; ".join(done) or "nothing to heal")


def _renamed_copy(src: Path, topology: str, old: str, new: str, home: Path) -> Path:
    """The scenario's directory copied under <home>/.scenarios/<new> (its device configs stay beside the
    topology), the topology's `name:` replaced."""
    dst = home / SCENARIO_COPIES / new
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    path = dst / topology
    path.write_text(path.read_text().replace(f"name: {old}\n", f"name: {new}\n", 1))
    return path


def stop(home: Path, runtime: Runtime) -> str | None:
    """Remove the running scenario's lab (`reset` then starts it again)."""
    try:
        state = read_state(home)
    except LabError:
        return None
    pipeline.down(state.lab, home, runtime)
    shutil.rmtree(home / SCENARIO_COPIES / state.lab, ignore_errors=True)
    write_state(home, None)
    return state.name
