"""lab/daemons.py against a fake node whose process table the fake runtime keeps: processes are found by
their pid file (never by name), a daemon that ignores SIGTERM gets SIGKILL, reload runs its commands."""

from __future__ import annotations

import pytest

from lab import daemons
from lab.daemons import CHARON, CHARON_BY_STARTER, Daemon
from lab.errors import RuntimeBackendError
from lab.plan_types import NodePlan
from lab.runtime.base import ExecResult
from tests.fakes import FakeRuntime


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
    with pytest.raises(RuntimeBackendError, match="no daemon named bgpd"):
        daemons.of(NodePlan(name="gw", role="gateway", ifaces=(), daemons=("charon", "bgpd")))
    extra = Daemon("bgpd", ("/usr/lib/frr/bgpd", "-d"), "/var/run/frr/bgpd.pid")
    assert extra.detach and extra.reload == ()
