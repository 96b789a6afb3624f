"""The bottom floor every stage and feature stands on: a loaded `Lab` and the callables injected into them.

`Lab` lives here, not in the pipeline, so that features the pipeline calls (P2S, HA, bring-your-own devices)
and commands that call the pipeline can both name it without an import circle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lab.control.base import VpnControl
from lab.errors import LabError
from lab.findings import Finding
from lab.plan import build_plan
from lab.plan_types import Plan
from lab.render.lab_files import render_files
from lab.render.strongswan_conf import Dataplane
from lab.render.swanctl import SwanctlConfig
from lab.routing.nodes import with_frr
from lab.secrets import resolve_keys
from lab.state import LabDir
from lab.topology.load import load_file, load_text
from lab.topology.model import Topology

Connect = Callable[[Path], VpnControl]  # a vici socket path -> an open control session (lab.control)
Progress = Callable[[str], None]  # one line of progress for the user


@dataclass(frozen=True)
class Lab:
    """A loaded lab: its model, plan and state directory (what every command after `up` needs)."""

    topo: Topology
    plan: Plan
    dir: LabDir
    warnings: tuple[Finding, ...] = ()

    @property
    def dataplane(self) -> Dataplane:
        """The ESP data plane `lab up` chose for this lab: read from its state directory, where `up` recorded it,
        so commands on a running lab use the same one and never probe the host kernel themselves."""
        return recorded_dataplane(self.dir)


def recorded_dataplane(d: LabDir) -> Dataplane:
    """The data plane recorded in a lab's state directory; LabError when there is none (the lab is not up)."""
    found = d.read_dataplane()
    if found is None:
        raise LabError(f"lab {d.root.name!r} has no data plane recorded in {d.dataplane_file}: it is not up here",
                       hint=f"lab down {d.root.name}, then lab up FILE")
    return found


def lab_plan(topo: Topology) -> Plan:
    """The plan with every node's daemons: charon from lab.plan, FRR where BGP runs (lab/routing)."""
    return with_frr(build_plan(topo), topo)


def load(path: Path, home: Path) -> Lab:
    topo, found = load_file(path)
    return Lab(topo, lab_plan(topo), LabDir.of(home, topo.name), tuple(found))


def load_running(name: str, home: Path) -> Lab:
    """A lab from its state directory copy of the topology (as it was brought up)."""
    d = LabDir.of(home, name)
    if not d.topology.exists():
        raise LabError(f"lab {name!r} has no state directory at {d.root}", hint="lab up FILE first; lab down NAME")
    topo, found = load_text(d.topology.read_text(), str(d.topology))
    return Lab(topo, lab_plan(topo), d, tuple(found))


def swanctl_configs(lab: Lab) -> dict[str, SwanctlConfig]:
    """The swanctl trees of a running lab, re-rendered from its state directory's topology and keys, for the
    data plane it was brought up with (libipsec: a route-based tunnel's tree is its own charon's)."""
    _, swan = render_files(lab.topo, lab.plan, resolve_keys(lab.topo, lab.dir.read_keys()),
                           lab.dir.read_dataplane() or "libipsec")
    return swan
