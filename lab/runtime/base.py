"""The seam between the pipeline and whatever runs nodes: one narrow protocol, plain result types.

Everything the runtime creates is named and labelled from the lab name alone (`lab-<lab>-<node>`,
namespace `lab-<lab>`), so `down`/`status` find it again after a crash without any state file.
A second backend (remote Docker, Kubernetes) is one module implementing `Runtime` plus one line in
lab/runtime/registry.py; nothing above lab/runtime/ names a backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from lab.errors import OptionError, RuntimeBackendError
from lab.plan_types import NodePlan, Plan

LABEL_LAB = "lab.topology"
LABEL_NODE = "lab.node"
LABEL_ROLE = "lab.role"
LABEL_GROUP = "lab.group"
LABEL_STATE = "lab.state"
LABEL_HOST = "lab.host"  # the host a node runs on, where a backend spreads nodes over hosts (swarm)
NAME_PREFIX = "lab-"
# What `lab fault`/`lab restore` do to a node's container (docker kill/stop/start/pause/unpause).
NodeAction = Literal["kill", "stop", "start", "pause", "unpause"]
Dataplane = Literal["kernel", "libipsec"]
Progress = Callable[[str], None]


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
    container_name: str  # the backend's name for the node's instance (Docker: the container name)
    status: str  # "running" when it runs; otherwise the backend's word (created, exited, paused, ...)
    pid: int = 0  # changes whenever the node's instance restarts (Docker: its init's host pid); 0: not running
    host: str = ""  # the host it runs on (label lab.host) where a backend places nodes; "": this machine


@dataclass(frozen=True)
class Check:
    """One preflight finding; `fix` says what to do when it failed."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class PreflightReport:
    checks: tuple[Check, ...]
    dataplane: Dataplane  # the ESP data plane nodes will use: kernel ESP, or strongSwan's userspace libipsec

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.ok)


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
    """Runs a Plan's nodes and wires their links; `DockerRuntime` in production, tests/fakes.py in unit tests.

    What every backend promises: every packet of a lab stays inside what the lab created (nodes have no
    network but the lab's own segments; the host's own network namespace gains no interface, address, route
    or rule); everything is found again from the lab name alone; errors are RuntimeBackendError naming the
    node and the fix."""

    def preflight(self, requested: Dataplane | None = None) -> PreflightReport:
        """Every check this backend needs before `up`, and the ESP data plane its nodes will use (`requested`
        if it can run it). Never raises: a failed check is reported with its fix, so the user sees all
        problems at once."""
        ...

    def ensure_image(self, containers_dir: Path, progress: Progress) -> str:
        """The reference of the node image built from `containers_dir`; built only when no image of the
        same inputs exists (its tag is a hash of them), with build output through `progress`."""
        ...

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
        """`lab-<lab>` names of what a lab left besides its nodes (Docker: network namespaces), so
        `down --all` also finds labs whose nodes are gone."""
        ...

    def capture(self, lab: str, segment: str, path: Path) -> CaptureHandle:
        """Start capturing every frame that crosses `segment` into the pcap file `path` on this machine.
        Where the capture runs is the backend's business (Docker: tcpdump in the lab's namespace), never
        in the host's own network namespace; returns once the capture is listening."""
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


def default_containers_dir() -> Path:
    """containers/ of this checkout: the node image's inputs (any backend builds its image from them)."""
    return Path(__file__).resolve().parents[2] / "containers"


def enforce(report: PreflightReport, say: Progress) -> Dataplane:
    """Report every failed check through `say` (all at once), then raise if any failed; say the data
    plane chosen and why."""
    for check in report.failed:
        say(f"preflight {check.name}: {check.detail}" + (f" (fix: {check.fix})" if check.fix else ""))
    if not report.ok:
        names = ", ".join(check.name for check in report.failed)
        fixes = "; ".join(check.fix for check in report.failed if check.fix)
        if names == "dataplane":  # only the option asks the impossible: bad input (exit 2), not a broken host
            raise OptionError(f"preflight failed: {report.failed[0].detail}", hint=fixes or None)
        raise RuntimeBackendError(f"preflight failed: {names}", hint=fixes or None)
    why = next((c.detail for c in report.checks if c.name == "dataplane"), report.dataplane)
    say(f"data plane: {why}")
    return report.dataplane


def require_preflight(runtime: Runtime, say: Progress, requested: Dataplane | None = None) -> Dataplane:
    """Run the runtime's preflight before `up`; see `enforce`."""
    return enforce(runtime.preflight(requested), say)
