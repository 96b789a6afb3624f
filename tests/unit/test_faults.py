"""Faults without Docker: the state file, target checks, merging, and restore order with fakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import core
from lab.control.base import ChildSaStatus, IkeSaStatus
from lab.errors import LabError
from lab.ops import faults, heal
from lab.ops.faults import Fault
from lab.runtime.base import ExecResult, NodeInfo

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "topologies" / "s2s-route-based.yml"


@pytest.fixture
def lab(tmp_path: Path) -> core.Lab:
    return core.load(REFERENCE, tmp_path)


def test_state_file_round_trip_and_removal(tmp_path: Path) -> None:
    assert faults.read_faults(tmp_path) == []
    active = [Fault(kind="kill", node="onprem"), Fault(kind="loss", node="onprem", iface="eth0", percent=30)]
    faults.write_faults(tmp_path, active)
    assert faults.read_faults(tmp_path) == active
    faults.write_faults(tmp_path, [])
    assert not faults.faults_path(tmp_path).exists()


def test_corrupt_state_file_names_the_file(tmp_path: Path) -> None:
    faults.faults_path(tmp_path).write_text('{"faults": [{"kind": "melt", "node": "x"}]}')
    with pytest.raises(LabError, match=r"faults\.json: not a faults file"):
        faults.read_faults(tmp_path)


def test_parse_fault_accepts_node_and_link_targets(lab: core.Lab) -> None:
    assert faults.parse_fault(lab, "kill", "onprem", None) == Fault(kind="kill", node="onprem")
    loss = faults.parse_fault(lab, "loss", "onprem:eth0", 50)
    assert (loss.iface, loss.percent, loss.describe()) == ("eth0", 50, "loss onprem:eth0 50 %")


@pytest.mark.parametrize(("kind", "target", "percent", "message"), [
    ("melt", "onprem", None, "unknown fault kind"),
    ("kill", "nowhere", None, "node 'nowhere' is not in lab 's2s-rb'"),
    ("link-down", "onprem", None, "a link fault needs NODE:IFACE"),
    ("link-down", "onprem:eth9", None, "a link fault needs NODE:IFACE"),
    ("loss", "onprem:eth0", None, "loss needs a percentage"),
    ("loss", "onprem:eth0", 150, "loss needs a percentage"),
    ("kill", "onprem:eth0", None, "a node fault takes a node name only"),
    ("charon-restart", "vm1", None, "node 'vm1' runs no charon"),
])
def test_parse_fault_rejects_with_place(lab: core.Lab, kind: str, target: str, percent: float | None,
                                        message: str) -> None:
    with pytest.raises(LabError, match=message):
        faults.parse_fault(lab, kind, target, percent)


def test_merge_replaces_loss_and_refuses_second_node_fault() -> None:
    first = Fault(kind="loss", node="onprem", iface="eth0", percent=10)
    second = Fault(kind="loss", node="onprem", iface="eth0", percent=40)
    assert faults.merge([first], second) == [second]
    with pytest.raises(LabError, match="node 'onprem' already has fault 'kill onprem'"):
        faults.merge([Fault(kind="kill", node="onprem")], Fault(kind="pause", node="onprem"))
    down = Fault(kind="link-down", node="onprem", iface="eth0")
    with pytest.raises(LabError, match="already active"):
        faults.merge([down], down)


class FakeRuntime:
    """Records node actions, link changes, rewires and exec argv (every exec succeeds). A started container
    comes back link-less (a fresh namespace) until it is rewired."""

    def __init__(self, plan: object = None) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.plan = plan
        self.linkless: set[str] = set()

    def node_action(self, lab: str, node: str, action: str) -> None:
        self.calls.append(("action", node, action))
        if action == "start":
            self.linkless.add(node)

    def list_nodes(self, lab: str | None = None) -> list[NodeInfo]:
        return [NodeInfo(lab or "", n.name, n.role, n.group, n.name, "running") for n in self.plan.nodes]

    def live_links(self, lab: str, node: str) -> dict[str, list[str]]:
        ifaces = [] if node in self.linkless else self.plan.node(node).ifaces
        return {"lo": [], **{i.name: [] for i in ifaces}}

    def shape(self, lab: str, node: str, iface: str, rate: object) -> None:
        self.calls.append(("shape", node, iface))

    def set_link(self, plan: object, node: str, iface: str, up: bool) -> None:
        self.calls.append(("link", node, iface, up))

    def rewire_node(self, plan: object, node: str) -> None:
        self.calls.append(("rewire", node))
        self.linkless.discard(node)

    def exec(self, lab: str, node: str, argv: list[str], **kw: object) -> ExecResult:
        self.calls.append(("exec", node, argv[0], *argv[1:3]))
        return ExecResult(1 if argv[0] == "pgrep" else 0, "")


class FakeControl:
    """A charon whose every loaded connection is up at once."""

    def __init__(self, node: str, swan: dict) -> None:  # noqa: ANN401
        self.node, self.swan = node, swan

    def load(self, config: object) -> None: ...
    def terminate_ike(self, ike: str) -> None: ...
    def initiate(self, child: str, ike: str, timeout: float) -> None: ...
    def close(self) -> None: ...

    def sas(self) -> list[IkeSaStatus]:
        conns = self.swan[self.node].connections
        return [IkeSaStatus(name=c, uniqueid=1, state="ESTABLISHED", version=2, local_host="", remote_host="",
                            children=[ChildSaStatus(name=ch, uniqueid=1, state="INSTALLED")
                                      for ch in tree["children"]])
                for c, tree in conns.items()]


def test_kill_then_restore_restarts_rewires_and_reloads(lab: core.Lab) -> None:
    for node in lab.plan.nodes:
        lab.dir.node(node.name).mkdir(parents=True)
    swan = core.swanctl_configs(lab)
    rt = FakeRuntime(lab.plan)

    def connect(sock: Path) -> FakeControl:
        return FakeControl(sock.parent.parent.name, swan)

    faults.inject(lab, Fault(kind="kill", node="onprem"), rt, connect, "libipsec")  # type: ignore[arg-type]
    faults.inject(lab, Fault(kind="loss", node="pc1", iface="eth0", percent=20), rt, connect,  # type: ignore[arg-type]
                  "libipsec")
    assert [f.kind for f in faults.read_faults(lab.dir.root)] == ["kill", "loss"]
    assert (lab.dir.node("pc1") / "faults.nft").exists()
    rt.calls.clear()
    undone, done = heal.restore(lab, None, rt, connect, "libipsec", "img", lambda _: None, 5.0)  # type: ignore[arg-type]
    assert [f.kind for f in undone] == ["kill", "loss"]
    assert done == ["onprem: restarted -> re-wired, daemons started"]
    assert rt.calls[0] == ("action", "onprem", "start")
    assert rt.calls.index(("rewire", "onprem")) < rt.calls.index(("exec", "onprem", "/usr/lib/ipsec/charon"))
    assert ("exec", "onprem", "/usr/lib/ipsec/charon") in rt.calls
    assert ("exec", "pc1", "nft", "delete", "table") in rt.calls
    assert faults.read_faults(lab.dir.root) == []
    assert not (lab.dir.node("pc1") / "faults.nft").exists()


def test_restore_of_unfaulted_target_says_what_is_active(lab: core.Lab) -> None:
    lab.dir.root.mkdir(parents=True)
    faults.write_faults(lab.dir.root, [Fault(kind="pause", node="vm1")])
    with pytest.raises(LabError, match="lab restore onprem: no active fault there"):
        faults.restore(lab, "onprem", FakeRuntime())  # type: ignore[arg-type]


def test_bgpd_kill_needs_a_node_that_runs_bgp(lab: core.Lab, tmp_path: Path) -> None:
    with pytest.raises(LabError, match="runs no BGP"):
        faults.parse_fault(lab, "bgpd-kill", "azgw-0", None)
    bgp = core.load(ROOT / "topologies" / "bgp-active-active.yml", tmp_path)  # its plan runs FRR there
    assert faults.parse_fault(bgp, "bgpd-kill", "azgw-0", None).kind == "bgpd-kill"
