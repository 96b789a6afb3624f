"""Faults without Docker: the state file, target checks, merging, and restore order with fakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import core
from lab.errors import LabError
from lab.ops import faults, heal
from lab.ops.faults import Fault
from lab.render.swanctl import SwanctlConfig
from tests.fakes import FakeControl, FakeRuntime, established, running

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


def test_kill_then_restore_restarts_rewires_and_reloads(lab: core.Lab) -> None:
    for node in lab.plan.nodes:
        lab.dir.node(node.name).mkdir(parents=True)
    swan = core.swanctl_configs(lab)
    rt = FakeRuntime(nodes=running(lab.topo.name, lab.plan.nodes))

    def connect(sock: Path) -> FakeControl:  # a charon whose every loaded connection is up at once
        unit = str(sock.parent.parent.relative_to(lab.dir.root / "nodes"))  # a node or <node>/tunnels/<conn>
        return FakeControl(snapshots=[established(swan.get(unit, SwanctlConfig()))])

    faults.inject(lab, Fault(kind="kill", node="onprem"), rt, connect, "libipsec")
    faults.inject(lab, Fault(kind="loss", node="pc1", iface="eth0", percent=20), rt, connect, "libipsec")
    assert [f.kind for f in faults.read_faults(lab.dir.root)] == ["kill", "loss"]
    assert (lab.dir.node("pc1") / "faults.nft").exists()
    rt.calls.clear()
    undone, done = heal.restore(lab, None, rt, connect, "libipsec", "img", lambda _: None, 5.0)
    assert [f.kind for f in undone] == ["kill", "loss"]
    assert done == ["onprem: restarted -> re-wired, daemons started"]
    assert rt.calls[0] == ("action", "onprem", "start")
    # onprem's tunnels have their own charons (it runs no main one): namespaces after the rewire, then each charon
    assert rt.calls.index(("rewire", "onprem")) < rt.calls.index(("exec", "onprem", "sh", "/lab/tunnels/setup.sh"))
    assert ("sh", "/lab/tunnels/start.sh") in rt.execs("onprem")
    assert ("/usr/lib/ipsec/charon",) not in rt.execs("onprem")
    assert any(argv[:3] == ("nft", "delete", "table") for argv in rt.execs("pc1"))
    assert faults.read_faults(lab.dir.root) == []
    assert not (lab.dir.node("pc1") / "faults.nft").exists()


def test_restore_of_unfaulted_target_says_what_is_active(lab: core.Lab) -> None:
    lab.dir.root.mkdir(parents=True)
    faults.write_faults(lab.dir.root, [Fault(kind="pause", node="vm1")])
    with pytest.raises(LabError, match="lab restore onprem: no active fault there"):
        faults.restore(lab, "onprem", FakeRuntime())


def test_bgpd_kill_needs_a_node_that_runs_bgp(lab: core.Lab, tmp_path: Path) -> None:
    with pytest.raises(LabError, match="runs no BGP"):
        faults.parse_fault(lab, "bgpd-kill", "azgw-0", None)
    bgp = core.load(ROOT / "topologies" / "bgp-active-active.yml", tmp_path)  # its plan runs FRR there
    assert faults.parse_fault(bgp, "bgpd-kill", "azgw-0", None).kind == "bgpd-kill"
