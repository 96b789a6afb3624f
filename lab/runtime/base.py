"""The seam between the pipeline and whatever runs nodes: one narrow protocol, plain result types.

Everything the runtime creates is named and labelled from the lab name alone (`lab-<lab>-<node>`,
namespace `lab-<lab>`), so `down`/`status` find it again after a crash without any state file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from lab.plan_types import NodePlan, Plan

LABEL_LAB = "lab.topology"
LABEL_NODE = "lab.node"
LABEL_ROLE = "lab.role"
LABEL_GROUP = "lab.group"
LABEL_STATE = "lab.state"
NAME_PREFIX = "lab-"
# What `lab fault`/`lab restore` do to a node's container (docker kill/stop/start/pause/unpause).
NodeAction = Literal["kill", "stop", "start", "pause", "unpause"]


def container_name(lab: str, node: str) -> str:
    """Docker name of a node's container; unique per lab, readable in `docker ps`."""
    return f"{NAME_PREFIX}{lab}-{node}"


def namespace_name(lab: str) -> str:
    """The lab's own network namespace, which holds every segment bridge and the bridge-side veths."""
    return f"{NAME_PREFIX}{lab}"


@dataclass(frozen=True)
class ExecResult:
    """What a command run inside a node returned: exit code and stdout+stderr interleaved."""

    code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass(frozen=True)
class NodeInfo:
    """A node as the runtime sees it now (from labels), independent of any topology file."""

    lab: str
    node: str
    role: str
    group: str
    container_name: str
    status: str  # docker's: created, running, exited, ...
    pid: int  # 0 when not running


@dataclass(frozen=True)
class CaptureStats:
    """A finished capture: the pcap file and tcpdump's own counters (-1 when it printed none)."""

    path: Path
    packets: int
    dropped: int


class CaptureHandle(Protocol):
    """A running capture; `stop()` ends it and returns once the file is complete."""

    def stop(self) -> CaptureStats: ...


class Runtime(Protocol):
    """Runs a Plan's nodes and wires their links; `DockerRuntime` in production, a fake in unit tests."""

    def create_node(self, lab: str, node: NodePlan, image: str, mount: Path) -> None:
        """Start the node's container (no network yet) with `mount` bind-mounted at /lab."""
        ...

    def wire(self, plan: Plan) -> None:
        """Create the lab namespace, one bridge per segment, and every node's interfaces and routes."""
        ...

    def exec(
        self,
        lab: str,
        node: str,
        argv: list[str],
        *,
        detach: bool = False,
        env: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """Run argv in the node; on timeout the command is killed and the code is 124 (as timeout(1))."""
        ...

    def list_nodes(self, lab: str | None = None) -> list[NodeInfo]:
        """Nodes found by label, of one lab or (None) of every lab."""
        ...

    def remove_lab(self, lab: str) -> list[str]:
        """Remove the lab's containers and namespace, whatever exists of them; return what was removed."""
        ...

    def lab_namespaces(self) -> list[str]:
        """Existing `lab-*` namespaces, so `down --all` also finds labs whose containers are gone."""
        ...

    def capture(self, lab: str, segment: str, path: Path) -> CaptureHandle:
        """Start capturing every frame on a segment bridge (inside the lab namespace) into pcap `path`."""
        ...

    def node_action(self, lab: str, node: str, action: NodeAction) -> None:
        """Kill, stop, start, pause or unpause a node's container (faults and restore)."""
        ...

    def set_link(self, plan: Plan, node: str, iface: str, up: bool) -> None:
        """Set the bridge-side veth of a node's interface up or down, inside the lab namespace."""
        ...

    def rewire_node(self, plan: Plan, node: str) -> None:
        """Re-create one node's veths, addresses and routes (a restarted container has a new namespace)."""
        ...

    def live_links(self, lab: str, node: str) -> dict[str, list[str]]:
        """The node's interfaces and IPv4 addresses as they are now (empty: not running)."""
        ...

    def events(self, lab: str, since: float, until: float) -> list[tuple[str, str]]:
        """(node, action) of the lab's container events in [since, until); blocks until `until`."""
        ...

    def shape(self, lab: str, node: str, iface: str, rate_mbps: int | None) -> None:
        """Cap `iface`'s egress and ingress at rate_mbps each (a SKU's aggregate); None removes the cap."""
        ...
