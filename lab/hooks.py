"""The named hooks of `lab up`'s stages, where features plug in instead of being called from inside a stage.

`lab.pipeline.up` runs render, create, wire, shape, start daemons, load, wait and agents; `features()` there
lists the plugged-in features (bring-your-own devices, point-to-site, BGP, HA) and every stage calls its hook on
each of them in that order. A hook that a feature does not override does nothing. Restarts of a running lab
(`lab fault`, `lab restore`, `lab bench`) replay the same hooks for the nodes they restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from lab.control.base import VpnControl
from lab.core import Connect, Lab, Progress
from lab.daemons import Daemon
from lab.plan_types import NodePlan
from lab.render.strongswan_conf import Dataplane
from lab.render.swanctl import SwanctlConfig
from lab.runtime.base import Runtime
from lab.status import LabStatus

Expected = dict[str, list[tuple[str, list[str]]]]  # node -> [(IKE connection, [its CHILD_SAs])] to wait for


def _quiet(_line: str) -> None:
    pass


@dataclass(frozen=True)
class Stage:
    """What every hook gets: the lab and the seams of the command running the stages."""

    lab: Lab
    runtime: Runtime
    connect: Connect
    progress: Progress = _quiet
    timeout: float | None = None  # how long the wait stage waits; None: nothing waits (up --no-wait, restarts)


@dataclass(frozen=True)
class Rendered:
    """What the render stage made: the keys, every file per node (/lab), and the swanctl trees the lab itself
    loads over vici (a bring-your-own site's config is loaded its own way, so it is not among them)."""

    keys: dict[str, str]
    files: dict[PurePosixPath, str]
    swan: dict[str, SwanctlConfig]
    dataplane: Dataplane


class Feature:
    """One feature's hooks into the stages; override the ones the feature needs."""

    def render(self, st: Stage, out: Rendered) -> Rendered:
        """Render stage, after the lab's own files: add or replace files and trees (runs before any node)."""
        return out

    def start_daemon(self, st: Stage, node: NodePlan, daemon: Daemon) -> bool:
        """Start-daemons stage: start `daemon` on `node` another way and return True, or False to leave it."""
        return False

    def before_load(self, st: Stage, controls: Mapping[str, VpnControl]) -> None:
        """Load stage, before the lab's swanctl trees go to these nodes (credentials, a device's own config)."""

    def load_last(self, st: Stage) -> set[str]:
        """Load stage: nodes whose trees load after every other node's (initiators that must find peers ready)."""
        return set()

    def expect(self, st: Stage, wants: Expected) -> Expected:
        """Wait stage: the SAs to wait for (drop those that must stay down)."""
        return wants

    def running(self, st: Stage, swan: dict[str, SwanctlConfig]) -> None:
        """Agents stage, once the tunnels are up: start what runs on top of them (BGP, HA agents)."""

    def inspect(self, st: Stage, running: set[str], status: LabStatus) -> LabStatus:
        """`lab inspect` / the end of `up`: add the feature's part to the lab's status."""
        return status
