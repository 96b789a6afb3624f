"""`lab test-device` and `lab diagnose` for a running lab: bring the lab up with the user's device config,
wait for the gateway's tunnels, prove them with `lab verify`, explain any failure, bring the lab down."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from lab import core, pipeline, tunnel_units
from lab.control.wait import missing
from lab.device.byo import byo_from_state
from lab.device.diagnose import DiagnosisReport, TunnelsDownError, diagnose, wait_diagnosed
from lab.errors import LabError
from lab.plan import site_node_names
from lab.render.connections import expected_children
from lab.render.strongswan_conf import Dataplane
from lab.render.tunnel_ifaces import by_unit, container_of
from lab.routing import run as routing_run
from lab.routing.collect import bgp_diagnoses
from lab.runtime.base import Runtime
from lab.secrets import resolve_keys
from lab.timing import scaled
from lab.verify.model import VerifyReport
from lab.verify.run import VerifyOptions, verify


class DeviceTestReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lab: str
    topology: str
    passed: bool
    established: bool
    error: str | None = None
    diagnosis: DiagnosisReport
    verify: VerifyReport | None = None

    def markdown(self) -> str:
        lines = [f"# Device test: {self.lab}", "", f"- topology: `{self.topology}`",
                 f"- result: **{'PASS' if self.passed else 'FAIL'}**",
                 f"- tunnels established: {'yes' if self.established else 'no'}", ""]
        if self.error:
            lines += ["## Error", "", "```", self.error, "```", ""]
        found = [f"- **{d.kind}** ({d.severity}): {d.line()}" + "".join(f"\n  - `{e}`" for e in d.evidence)
                 for d in self.diagnosis.diagnoses]
        lines += ["## Diagnosis", "", *(found or ["- nothing to report"])]
        if self.verify:
            lines += ["", "## lab verify", ""] + [f"- {'PASS' if c.passed else 'FAIL'} {c.name}: {c.summary}"
                                                  for c in self.verify.checks]
        return "\n".join(lines) + "\n"


def down_nodes(lab: core.Lab, connect: core.Connect) -> set[str]:
    """Gateway nodes with an expected connection that is not up (BYO sites' names are unknown)."""
    out = set()
    for unit, wants in by_unit(expected_children(lab.topo), tunnel_units.ifaces_of(lab)).items():
        if container_of(unit) in site_node_names(lab.topo):
            continue
        ctl = connect(lab.dir.vici_socket(unit))
        try:
            if missing(ctl.sas(), wants):
                out.add(container_of(unit))
        finally:
            ctl.close()
    return out


def diagnose_running(lab: core.Lab, connect: core.Connect) -> DiagnosisReport:
    keys = resolve_keys(lab.topo, lab.dir.read_keys())
    byo = byo_from_state(lab.topo, lab.dir.root / "nodes")
    return diagnose(lab.topo, down_nodes(lab, connect), lab.dir.log_tail, byo, keys)


def wait_gateways(lab: core.Lab, connect: core.Connect, timeout: float) -> None:
    """Wait for the lab's own (gateway) ends only: a BYO site's connection names are unknown."""
    keys = resolve_keys(lab.topo, lab.dir.read_keys())
    byo = byo_from_state(lab.topo, lab.dir.root / "nodes")
    expected = by_unit({n: w for n, w in expected_children(lab.topo).items() if n not in byo},
                       tunnel_units.ifaces_of(lab))
    with pipeline.open_controls(lab, expected, connect) as controls:
        wait_diagnosed(lab.topo, controls, expected, timeout, lab.dir.log_tail, byo, keys)


def run_device_test(path: Path, home: Path, runtime: Runtime, connect: core.Connect, image: str,
                dataplane: Dataplane, progress: core.Progress, timeout: float, keep: bool) -> DeviceTestReport:
    """Up (keeping the lab when tunnels stay down, to diagnose it), verify, diagnose, down unless `keep`.
    `timeout` is scaled by LAB_TIME_SCALE like `lab up`'s own wait (a slow machine, the kernel-test guest)."""
    timeout = scaled(timeout)
    lab = core.load(path, home)
    name = lab.topo.name
    pipeline.up(path, home, runtime, connect, image, dataplane, progress, wait=False, lab=lab)
    try:
        progress("waiting for the gateway's tunnels")
        wait_gateways(lab, connect, timeout)
    except TunnelsDownError as exc:
        if not keep:
            pipeline.down(name, home, runtime)
        return DeviceTestReport(lab=name, topology=str(path), passed=False, established=False,
                                error=exc.message, diagnosis=exc.report)
    try:
        progress("waiting for the gateway's BGP sessions")
        routing_run.wait_gateway_sessions(lab, runtime, timeout)  # lab/routing: none without BGP
        progress("verifying")
        try:
            report: VerifyReport | None = verify(lab, runtime, connect, VerifyOptions(), progress=progress)
            error = None
        except LabError as exc:
            report, error = None, exc.message
        diag = diagnose_running(lab, connect)
        bgp = bgp_diagnoses(runtime, lab.topo.name, lab.topo, lab.dir.root / "nodes")
        diag = diag.model_copy(update={"diagnoses": [*diag.diagnoses, *bgp]})
    finally:
        if not keep:
            pipeline.down(name, home, runtime)
    passed = report is not None and report.passed and not diag.errors
    return DeviceTestReport(lab=name, topology=str(path), passed=passed, established=True, error=error,
                            diagnosis=diag, verify=report)


def tunnel_states(lab: core.Lab, connect: core.Connect) -> dict[tuple[str, str], str]:
    """(gateway instance, connection) -> 'up'/'down', for `lab graph` of a running lab."""
    out = {}
    for unit, wants in by_unit(expected_children(lab.topo), tunnel_units.ifaces_of(lab)).items():
        node = container_of(unit)
        if node in site_node_names(lab.topo):
            continue
        try:
            ctl = connect(lab.dir.vici_socket(unit))
            try:
                sas = ctl.sas()
            finally:
                ctl.close()
        except LabError:
            sas = []
        for conn, kids in wants:
            out[(node, conn)] = "down" if missing(sas, [(conn, kids)]) else "up"
    return out
