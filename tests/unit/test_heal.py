"""Heal without Docker: which nodes are broken, which role an active-standby instance comes back in, the
plan of an instance in a role, the config it runs, and that the supervisor's pid is only trusted when it is
really the lab's supervisor."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from lab import core
from lab.ha import agents as ha
from lab.ops import faults, heal, supervisor
from lab.ops.faults import Fault
from lab.runtime.base import ExecResult, NodeInfo
from tests.fakes import FakeRuntime

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def lab(tmp_path: Path) -> core.Lab:
    loaded = core.load(ROOT / "topologies" / "active-standby.yml", tmp_path)
    for n in loaded.plan.nodes:
        loaded.dir.node(n.name).mkdir(parents=True)
    ha.set_role(loaded, "azgw-0", "active")
    ha.set_role(loaded, "azgw-1", "standby")
    return loaded


def fake(lab: core.Lab, states: dict[str, str], linkless: set[str], agents: bool = True) -> FakeRuntime:
    """Nodes in `states` (node -> container status), `linkless` ones restarted; every exec (the HA agents'
    liveness check among them) fails when `agents` is False."""
    return FakeRuntime(nodes=[NodeInfo(lab.topo.name, n, "", "", n, s) for n, s in states.items()],
                       linkless=set(linkless), on_exec=lambda node, argv: ExecResult(0 if agents else 1, ""))


def _states(lab: core.Lab, **override: str) -> dict[str, str]:
    return {n.name: override.get(n.name.replace("-", "_"), "running") for n in lab.plan.nodes}


def test_find_broken_skips_recorded_faults(lab: core.Lab) -> None:
    states = {**_states(lab), "vm1": "exited", "pc1": "paused"}
    del states["onprem"]
    rt = fake(lab, states, {"azgw-0"})
    assert heal.find_broken(lab, rt) == [heal.Broken("azgw-0", "restarted"), heal.Broken("vm1", "stopped"),
                                         heal.Broken("onprem", "missing"), heal.Broken("pc1", "paused")]
    faults.write_faults(lab.dir.root, [Fault(kind="kill", node="vm1")])
    assert [b.node for b in heal.find_broken(lab, rt)] == ["azgw-0", "onprem", "pc1"]


def test_restarted_active_comes_back_as_standby_when_the_other_took_over(lab: core.Lab) -> None:
    ha.set_role(lab, "azgw-1", "active")  # its agent took over
    rt = fake(lab, _states(lab), {"azgw-0"})
    assert heal.decide_roles(lab, ["azgw-0"], rt) == {"azgw-0": False}


def test_instance_comes_back_active_when_the_other_cannot_carry(lab: core.Lab,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    rt = fake(lab, _states(lab), {"azgw-0", "azgw-1"})
    assert heal.decide_roles(lab, ["azgw-0", "azgw-1"], rt) == {"azgw-0": True, "azgw-1": False}
    rt = fake(lab, _states(lab), {"azgw-0"}, agents=False)  # standby up, but its agent is dead
    monkeypatch.setattr(heal, "TAKEOVER_WAIT_S", 0.2)
    assert heal.decide_roles(lab, ["azgw-0"], rt) == {"azgw-0": True}


def test_as_role_moves_only_the_moving_addresses(lab: core.Lab) -> None:
    pair = ha.pair_with(lab, "azgw-0")
    assert pair is not None
    standby = ha.as_role(pair, lab.plan.node("azgw-0"), False)
    assert [[str(a) for a in i.addresses] for i in standby.ifaces] == [[], ["10.1.0.5/16"]]
    active = ha.as_role(pair, lab.plan.node("azgw-1"), True)
    assert [[str(a) for a in i.addresses] for i in active.ifaces] == [["203.0.113.10/24"],
                                                                        ["10.1.0.6/16", "10.1.0.4/16"]]
    assert faults.node_addresses(lab, "azgw-0", active=False) == {"10.1.0.5"}


def test_a_standby_never_runs_a_config_that_initiates(lab: core.Lab) -> None:
    swan = core.swanctl_configs(lab)

    def starts(cfgs: dict) -> set[str]:  # every charon of the node: route-based tunnels have their own
        return {c.get("start_action") for cfg in cfgs.values() for t in cfg.connections.values()
                for c in t["children"].values()}

    assert starts(faults.configs_for(lab, "azgw-0", swan, active=True)) == {"start"}
    assert starts(faults.configs_for(lab, "azgw-0", swan, active=False)) == {"none"}
    assert starts(faults.configs_for(lab, "azgw-1", swan, active=True)) == {"none"}  # initiates via takeover
    assert set(faults.configs_for(lab, "azgw-1", swan)) == {"azgw-1/tunnels/azgw-onprem"}


def test_supervisor_pid_is_trusted_only_for_its_own_process(tmp_path: Path) -> None:
    supervisor.pid_path(tmp_path).write_text(f"{os.getpid()}\n")  # pytest itself: not a supervisor
    assert supervisor.running_pid(tmp_path, "x") is None
    supervisor.pid_path(tmp_path).write_text("not-a-pid\n")
    assert supervisor.running_pid(tmp_path, "x") is None
    assert supervisor.stop(tmp_path, "x") is False and not supervisor.pid_path(tmp_path).exists()


def test_supervisor_looks_again_at_a_container_restarted_during_its_sweep(lab: core.Lab,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Seen under load: `docker restart` of azgw-0 while the supervisor's first sweep ran (right after `lab up`)
    was healed only 92 s later, when another container changed: the sweep found the lab healthy, then the
    supervisor recorded the pids read after it, the restarted container's new one among them, and skipped
    every later look. The pids it keeps are those read before the sweep, so the next look sweeps again."""
    rt = fake(lab, _states(lab), set())
    rt.nodes = [replace(n, pid=100 + i) for i, n in enumerate(rt.nodes)]
    sweeps: list[dict[str, tuple[str, int]]] = []

    def sweep(*_: object) -> bool:  # healthy when it looked, but azgw-0 restarts before it returns
        sweeps.append(supervisor._pids(lab, rt))
        if len(sweeps) == 1:
            rt.nodes = [replace(n, pid=999) if n.node == "azgw-0" else n for n in rt.nodes]
            rt.linkless.add("azgw-0")
        return True

    monkeypatch.setattr(supervisor, "_sweep", sweep)
    seen = supervisor._look(lab, rt, None, "libipsec", print, {})  # type: ignore[arg-type]
    assert seen != supervisor._pids(lab, rt)  # the restarted container is not vouched for ...
    seen = supervisor._look(lab, rt, None, "libipsec", print, seen)  # type: ignore[arg-type]
    assert len(sweeps) == 2 and sweeps[1]["azgw-0"] == ("running", 999)  # ... so the next look sweeps it
    supervisor._look(lab, rt, None, "libipsec", print, seen)  # type: ignore[arg-type]
    assert len(sweeps) == 2  # nothing changed since: no look inside the namespaces


def test_verify_waits_for_the_heal_to_end_not_only_for_the_links(lab: core.Lab, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Seen under load: `lab verify` right after a site restart exited 2 ("Peer netns reference is invalid"):
    it went on as soon as the node was wired again, while the supervisor, under the lab's lock, had not yet
    made its tunnel namespace. It waits for the lock (the heal's end); a heal that outlasts the wait is
    checked as it is, said so."""
    from lab.lock import lab_lock
    from lab.verify import run as verify_run
    from lab.verify.run import wait_healed

    monkeypatch.setenv("LAB_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setattr(verify_run, "HEAL_POLL_S", 0.1)
    monkeypatch.setattr(supervisor, "running_pid", lambda root, name: 1)
    rt = fake(lab, _states(lab), {"onprem"})

    def heal_in_thread(daemons_s: float) -> tuple[threading.Thread, threading.Event]:
        """The supervisor: under the lock, wires the node after 0.3 s, then starts its daemons for daemons_s."""
        holding, healed = threading.Event(), threading.Event()

        def supervise() -> None:
            with lab_lock(lab.topo.name):
                holding.set()
                time.sleep(0.3)
                rt.linkless.discard("onprem")
                time.sleep(daemons_s)
                healed.set()

        worker = threading.Thread(target=supervise)
        worker.start()
        holding.wait(5)
        return worker, healed

    said: list[str] = []
    worker, healed = heal_in_thread(0.6)
    assert wait_healed(lab, rt, said.append) == frozenset() and healed.is_set()
    worker.join()
    assert set(said) == {"node onprem restarted, healing: waiting for the lab's supervisor"}
    rt.linkless.add("onprem")
    worker, healed = heal_in_thread(2.0)  # a heal that outlasts verify's wait
    assert wait_healed(lab, rt, said.append, wait_s=1.2) == frozenset() and not healed.is_set()
    worker.join()
    assert said[-1] == "the lab's supervisor is still healing: checking the lab as it is"


def test_a_peer_restarted_during_a_heal_does_not_fail_it(lab: core.Lab) -> None:
    """Seen: vm1 restarted while the supervisor healed azgw-1; forgetting azgw-1's old MACs in vm1's namespace
    (gone with vm1's old init) failed azgw-1's heal half-way. A peer whose namespace is gone is skipped."""
    from lab.runtime import links

    gone = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # never a live pid
    links.forget_neighbours(lab.plan, lab.plan.node("azgw-1"), {"vm1": gone, "onprem": gone})


def test_stale_pid_files_go_before_a_healed_nodes_daemons_start(lab: core.Lab) -> None:
    """After a container restart a stale pid can name a live process again (seen: the main charon refused to
    start, "already running", because a tunnel charon started before it got the old main charon's pid):
    every daemon's pid file in the container and each tunnel charon's in the state directory go first."""
    from lab import daemons, tunnel_units

    rt = fake(lab, _states(lab), set())
    node = lab.plan.node("onprem")
    (tunnel,) = tunnel_units.ifaces_of(lab)["onprem"]
    stale = lab.dir.node(tunnel.unit) / "charon.pid"
    stale.parent.mkdir(parents=True)
    stale.write_text("7\n")
    agent = lab.dir.node("onprem") / ha.PID_FILE
    agent.write_text("60\n")  # the old agent's pid: after a restart, maybe the new main charon's
    heal.clear_stale_pids(lab, rt, node)
    assert rt.execs("onprem") == [("rm", "-f", *(d.pid_file for d in daemons.of(node)))]
    assert daemons.CHARON_PID in rt.execs("onprem")[0] and not stale.exists() and not agent.exists()
