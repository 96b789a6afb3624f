"""lab/daemons.py against a fake node whose process table the fake runtime keeps: processes are found by
their pid file (never by name), a daemon that ignores SIGTERM gets SIGKILL, reload runs its commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import core, daemons
from lab.daemons import CHARON, CHARON_BY_STARTER, Daemon
from lab.errors import RuntimeBackendError
from lab.plan_types import NodePlan
from lab.routing.nodes import FRR, frr_node_names
from lab.runtime.base import ExecResult
from tests.fakes import FakeRuntime

ROOT = Path(__file__).resolve().parents[2]


class Node:
    """One node's files and processes, as the commands daemons.py runs see them."""

    def __init__(self, deaf_to: tuple[str, ...] = ()) -> None:
        self.files: dict[str, str] = {}
        self.procs: set[str] = set()
        self.deaf_to = deaf_to  # signals the process ignores
        self.next_pid = 100

    def __call__(self, node: str, argv: list[str]) -> ExecResult:
        if argv[0] == "cat":
            return ExecResult(0, self.files[argv[1]]) if argv[1] in self.files else ExecResult(1, "No such file")
        if argv[0] == "kill":
            sig, pid = argv[1], argv[2]
            if pid not in self.procs:
                return ExecResult(1, "No such process")
            if sig != "-0" and sig not in self.deaf_to:
                self.procs.discard(pid)
            return ExecResult(0, "")
        if argv[0] == "rm":
            self.files.pop(argv[-1], None)
            return ExecResult(0, "")
        if tuple(argv) in (CHARON.start, CHARON_BY_STARTER.start):
            self.next_pid += 1
            self.procs.add(str(self.next_pid))
            self.files[CHARON.pid_file] = f"{self.next_pid}\n"
            return ExecResult(0, "Starting strongSwan")
        return ExecResult(0, "")


def test_start_alive_stop_by_pid_file() -> None:
    node = Node()
    rt = FakeRuntime(on_exec=node)
    assert not daemons.alive(rt, "lab", "gw", CHARON)
    daemons.start(rt, "lab", "gw", CHARON)
    assert daemons.alive(rt, "lab", "gw", CHARON)
    daemons.stop(rt, "lab", "gw", CHARON)
    assert not daemons.alive(rt, "lab", "gw", CHARON) and node.procs == set()
    assert CHARON.pid_file not in node.files  # a killed daemon's stale pid file is gone too
    argv = [c[2:] for c in rt.calls]
    assert ("kill", "-TERM", "101") in argv
    assert not any(a[0] in ("pkill", "pgrep", "killall") for a in argv)  # never by name


def test_stop_escalates_to_sigkill_then_gives_up() -> None:
    node = Node(deaf_to=("-TERM",))
    rt = FakeRuntime(on_exec=node)
    daemons.start(rt, "lab", "gw", CHARON)
    daemons.stop(rt, "lab", "gw", CHARON, wait_s=0.01)
    assert ("exec", "gw", "kill", "-KILL", "101") in rt.calls and node.procs == set()
    stubborn = Node(deaf_to=("-TERM", "-KILL"))
    rt = FakeRuntime(on_exec=stubborn)
    daemons.start(rt, "lab", "gw", CHARON)
    with pytest.raises(RuntimeBackendError, match="charon \\(pid 101\\) survived SIGKILL"):
        daemons.stop(rt, "lab", "gw", CHARON, wait_s=0.01)


def test_stop_of_a_daemon_that_never_started_does_nothing() -> None:
    rt = FakeRuntime(on_exec=Node())
    daemons.stop(rt, "lab", "gw", CHARON)
    assert [c[2] for c in rt.calls] == ["cat"]


def test_detached_start_and_a_starter_that_waits() -> None:
    rt = FakeRuntime(on_exec=Node())
    daemons.start(rt, "lab", "site", CHARON_BY_STARTER)
    assert ("exec", "site", "ipsec", "start", "--conf", "/lab/ipsec.conf") in rt.calls
    failing = FakeRuntime(on_exec=lambda node, argv: ExecResult(1, "ipsec.conf: syntax error"))
    with pytest.raises(RuntimeBackendError, match="ipsec start --conf /lab/ipsec.conf` failed: ipsec.conf: syntax"):
        daemons.start(failing, "lab", "site", CHARON_BY_STARTER)


def test_reload_runs_each_command_and_stops_at_the_first_failure() -> None:
    rt = FakeRuntime(on_exec=Node())
    assert daemons.reload(rt, "lab", "gw", CHARON).ok
    assert rt.calls == [("exec", "gw", "swanctl", "--load-all", "--file", "/lab/swanctl.conf")]
    refusing = FakeRuntime(on_exec=lambda node, argv: ExecResult(1, "no secrets"))
    res = daemons.reload(refusing, "lab", "site", CHARON_BY_STARTER)
    assert not res.ok and len(refusing.calls) == 1  # `ipsec reload` not tried after rereadsecrets failed


def test_a_node_lists_its_daemons_in_start_order() -> None:
    node = NodePlan(name="gw", role="gateway", ifaces=(), daemons=("charon",))
    assert daemons.of(node) == [CHARON] and node.runs("charon") and not node.runs("bgpd")
    bgp = NodePlan(name="gw", role="gateway", ifaces=(), daemons=("charon", "zebra", "staticd", "bgpd"))
    assert daemons.of(bgp) == [CHARON, daemons.ZEBRA, daemons.STATICD, daemons.BGPD]
    with pytest.raises(RuntimeBackendError, match="no daemon named ospfd"):
        daemons.of(NodePlan(name="gw", role="gateway", ifaces=(), daemons=("charon", "ospfd")))
    extra = Daemon("ospfd", ("/usr/lib/frr/ospfd", "-d"), "/var/run/frr/ospfd.pid")
    assert extra.detach and extra.reload == ()


def test_bgp_nodes_run_frr_after_charon_and_others_do_not() -> None:
    lab = core.load(ROOT / "topologies" / "bgp-active-active.yml", Path("/nonexistent"))
    runs = {n.name: n.daemons for n in lab.plan.nodes}
    assert runs["azgw-0"] == runs["azgw-1"] == ("charon", *FRR)
    assert all(runs[n] == ("charon", *FRR) for n in frr_node_names(lab.topo))
    assert {n for n, d in runs.items() if "bgpd" in d} == frr_node_names(lab.topo)
    assert all(d == () for n, d in runs.items() if lab.plan.node(n).role == "host")
    static = core.load(ROOT / "topologies" / "s2s-route-based.yml", Path("/nonexistent"))
    assert not any(n.runs("bgpd") for n in static.plan.nodes)


def test_frr_daemons_wait_for_their_vty_socket_and_bgpd_loads_the_config() -> None:
    zebra, bgpd = " ".join(daemons.ZEBRA.start), " ".join(daemons.BGPD.start)
    assert not daemons.ZEBRA.detach and daemons.ZEBRA.pid_file == "/var/run/frr/zebra.pid"
    assert "chown frr:frr /var/run/frr" in zebra and "-i /var/run/frr/zebra.pid" in zebra
    assert "[ -S /var/run/frr/zebra.vty ]" in zebra and "vtysh -f" not in zebra
    assert bgpd.index("[ -S /var/run/frr/staticd.vty ]") < bgpd.index("vtysh -f /lab/frr.conf")
    assert daemons.BGPD.reload == ()  # `vtysh -f` only adds: FRR re-reads its config by a restart


def test_a_daemon_that_does_not_start_names_itself_and_where_to_look() -> None:
    failing = FakeRuntime(on_exec=lambda node, argv: ExecResult(1, "line 3: % Unknown command: router bgpp"))
    with pytest.raises(RuntimeBackendError, match="`/usr/lib/frr/bgpd -d, then vtysh -f /lab/frr.conf` failed: "
                                                  "line 3") as err:
        daemons.start(failing, "lab", "azgw-0", daemons.BGPD)
    assert err.value.hint == "lab exec azgw-0 -- cat /lab/frr.log"


def test_kill_sends_sigkill_at_once_and_restart_stops_last_first() -> None:
    node = Node()
    rt = FakeRuntime(on_exec=node)
    daemons.start(rt, "lab", "gw", CHARON)
    daemons.stop(rt, "lab", "gw", CHARON, kill=True)
    argv = [c[2:] for c in rt.calls]
    assert ("kill", "-KILL", "101") in argv and ("kill", "-TERM", "101") not in argv and node.procs == set()
    rt.calls.clear()
    node.files |= {daemons.ZEBRA.pid_file: "7\n", daemons.BGPD.pid_file: "9\n"}
    node.procs |= {"7", "9"}
    daemons.restart(rt, "lab", "gw", [daemons.ZEBRA, daemons.BGPD])
    order = [(c[2], c[3]) for c in rt.calls if c[2] in ("kill", "sh") and c[3] != "-0"]
    assert order == [("kill", "-TERM"), ("kill", "-TERM"), ("sh", "-c"), ("sh", "-c")]
    terms = [c[4] for c in rt.calls if c[2:4] == ("kill", "-TERM")]
    assert terms == ["9", "7"]  # bgpd before zebra
