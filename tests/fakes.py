"""The test doubles for the two seams, in one place: a Runtime and a VpnControl (and a capture) that record
what they were asked and answer as told. `make lint` runs mypy on this file: `_seams()` below fails to
type-check the moment a fake stops satisfying its protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lab.control.base import ChildSaStatus, Creds, IkeSaStatus, P2sSa, VpnControl
from lab.plan_types import NodePlan, Plan
from lab.render.swanctl import SwanctlConfig
from lab.runtime.base import (
    CaptureHandle,
    CaptureStats,
    Check,
    Dataplane,
    ExecResult,
    NodeAction,
    NodeInfo,
    PreflightReport,
    Runtime,
)

EMPTY_PCAP = bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000")  # a pcap header, no packets
Exec = Callable[[str, list[str]], ExecResult]  # (node, argv) -> what the command returned


def running(lab: str, nodes: Iterable[str | NodePlan], status: str = "running") -> list[NodeInfo]:
    """NodeInfo for each node (a name or a NodePlan, whose role and group are kept)."""
    out = []
    for n in nodes:
        name, role, group = (n, "", "") if isinstance(n, str) else (n.name, n.role, n.group)
        out.append(NodeInfo(lab, name, role, group, f"lab-{lab}-{name}", status))
    return out


def established(config: SwanctlConfig) -> list[IkeSaStatus]:
    """What a charon that loaded `config` reports once every connection is up: each IKE_SA ESTABLISHED, each of
    its CHILD_SAs INSTALLED."""
    out = []
    for conn, tree in config.connections.items():
        children = tree.get("children")
        kids = [ChildSaStatus(name=c, uniqueid=1, state="INSTALLED") for c in (children if isinstance(children, dict)
                                                                                else {})]
        out.append(IkeSaStatus(name=conn, uniqueid=1, state="ESTABLISHED", version=2, local_host="", remote_host="",
                               children=kids))
    return out


class FakeCapture:
    """A capture that saw nothing: stop() writes an empty pcap."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def stop(self) -> CaptureStats:
        self.path.write_bytes(EMPTY_PCAP)
        return CaptureStats(self.path, 0, 0)


@dataclass
class FakeRuntime:
    """Records every call in `calls`; `exec` answers with `on_exec` (default: success, no output). A node in
    `linkless` has only lo, as a container Docker restarted: `node_action(start)` puts it there (a fresh
    network namespace) and `rewire_node` takes it out."""

    nodes: list[NodeInfo] = field(default_factory=list)
    on_exec: Exec = lambda node, argv: ExecResult(0, "")
    dataplane: str = "libipsec"
    calls: list[tuple[object, ...]] = field(default_factory=list)
    linkless: set[str] = field(default_factory=set)

    def execs(self, node: str | None = None) -> list[tuple[str, ...]]:
        """The argv of every exec (on `node`), in order."""
        return [tuple(str(a) for a in c[2:]) for c in self.calls if c[0] == "exec" and node in (None, c[1])]

    def ensure_image(self, containers_dir: Path, progress: Callable[[str], None]) -> str:
        self.calls.append(("image", str(containers_dir)))
        return "lab-node:fake"

    def preflight(self, requested: Dataplane | None = None) -> PreflightReport:
        return PreflightReport((Check("fake", True, "a fake runtime"),), requested or "libipsec")

    def create_node(self, lab: str, node: NodePlan, image: str, mount: Path) -> None:
        self.calls.append(("create", node.name, image))

    def wire(self, plan: Plan) -> None:
        self.calls.append(("wire", plan.lab))

    def exec(self, lab: str, node: str, argv: list[str], *, detach: bool = False,
             env: dict[str, str] | None = None, timeout: float | None = None) -> ExecResult:
        self.calls.append(("exec", node, *argv))
        return self.on_exec(node, argv)

    def list_nodes(self, lab: str | None = None) -> list[NodeInfo]:
        return [n for n in self.nodes if lab is None or n.lab == lab]

    def remove_lab(self, lab: str) -> list[str]:
        self.calls.append(("remove", lab))
        return []

    def lab_namespaces(self) -> list[str]:
        return []

    def live_links(self, lab: str, node: str) -> dict[str, list[str]]:
        """Every interface up, with no address (the node is as `up` wired it); only lo on a linkless node."""
        up: dict[str, list[str]] = {} if node in self.linkless else {f"eth{i}": [] for i in range(4)}
        return {**up, "lo": []}

    def events(self, lab: str, since: float, until: float) -> list[tuple[str, str]]:
        return []

    def capture(self, lab: str, segment: str, path: Path) -> CaptureHandle:
        self.calls.append(("capture", segment))
        return FakeCapture(path)

    def node_action(self, lab: str, node: str, action: NodeAction) -> None:
        self.calls.append(("action", node, action))
        if action == "start":
            self.linkless.add(node)

    def set_link(self, plan: Plan, node: str, iface: str, up: bool) -> None:
        self.calls.append(("link", node, iface, up))

    def rewire_node(self, plan: Plan, node: str) -> None:
        self.calls.append(("rewire", node))
        self.linkless.discard(node)

    def shape(self, lab: str, node: str, iface: str, rate_mbps: int | None) -> None:
        self.calls.append(("shape", lab, node, iface, rate_mbps))


@dataclass
class FakeControl:
    """One charon: `snapshots` are what successive `sas()` calls return (the last one forever); every
    request is recorded in `calls`."""

    snapshots: list[list[IkeSaStatus]] = field(default_factory=lambda: [[]])
    p2s: list[P2sSa] = field(default_factory=list)
    calls: list[tuple[object, ...]] = field(default_factory=list)
    asked: int = 0

    def load(self, config: SwanctlConfig) -> None:
        self.calls.append(("load", *config.connections))

    def unload_conn(self, name: str) -> None:
        self.calls.append(("unload", name))

    def initiate(self, child: str, ike: str, timeout: float) -> None:
        self.calls.append(("initiate", ike, child))

    def terminate_ike(self, ike: str) -> None:
        self.calls.append(("terminate", ike))

    def sas(self) -> list[IkeSaStatus]:
        self.asked += 1
        return self.snapshots[min(self.asked, len(self.snapshots)) - 1]

    def conns(self) -> list[str]:
        return []

    def load_creds(self, creds: Creds) -> None:
        self.calls.append(("creds", len(creds.certs)))

    def p2s_sas(self, conn: str) -> list[P2sSa]:
        return [s for s in self.p2s if s.conn == conn]

    def close(self) -> None:
        self.calls.append(("close",))


def _seams() -> tuple[Runtime, VpnControl, CaptureHandle]:
    """Type-checked by mypy: each fake satisfies its protocol."""
    return FakeRuntime(), FakeControl(), FakeCapture(Path("x.pcap"))
