"""The daemons a node runs, and the one place that starts, stops, checks and reloads them.

A node's plan lists its daemons by name (`NodePlan.daemons`, in start order); `DAEMONS` says how each one
runs. Every process is found through its pid file, never by name: `pkill charon` would also hit a second
charon (or anything else called that) in the node. Adding a daemon is one `Daemon` entry here, its name in
the plan and its config in the render stage; `up`, faults, `lab reload`, restore, heal and bring-your-own
configs then start, stop and reload it like charon. FRR's zebra, staticd and bgpd are such entries: the
nodes that speak BGP list them after charon (lab/routing/nodes.py: with_frr).

Commands run inside the node through `Runtime.exec`, so this module works with any runtime backend.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from lab.errors import RuntimeBackendError
from lab.plan_types import NodePlan
from lab.runtime.base import ExecResult, Runtime

STOP_WAIT_S = 5.0  # per signal: SIGTERM, then SIGKILL, then give up
POLL_S = 0.05
EXEC_TIMEOUT_S = 5.0
LOAD_TIMEOUT_S = 20.0

STRONGSWAN_ENV = {"STRONGSWAN_CONF": "/lab/strongswan.conf"}
CHARON_PID = "/var/run/charon.pid"  # charon writes it itself, also when strongswan-starter started it
SWANCTL_LOAD = ("swanctl", "--load-all", "--file", "/lab/swanctl.conf")


@dataclass(frozen=True)
class Daemon:
    """How one daemon runs in a node: its start command, its pid file, and what makes it re-read its config.

    `detach=False`: `start` waits for the command (a starter that forks the daemon and returns).
    swanctl finds charon's vici socket through the image's /etc/strongswan.conf, so the charon reload needs
    no environment; the starter's commands read the node's /lab/strongswan.conf."""

    name: str
    start: tuple[str, ...]
    pid_file: str
    env: Mapping[str, str] = field(default_factory=dict)
    reload: tuple[tuple[str, ...], ...] = ()
    reload_env: Mapping[str, str] = field(default_factory=dict)
    detach: bool = True
    start_timeout: float = LOAD_TIMEOUT_S
    label: str = ""  # how errors name the start command (default: the command itself)
    hint: str = "lab logs {node}"  # where the user looks when it does not start


CHARON = Daemon("charon", ("/usr/lib/ipsec/charon",), CHARON_PID, STRONGSWAN_ENV, reload=(SWANCTL_LOAD,))
# A site's own legacy ipsec.conf (bring-your-own): strongswan-starter parses it and starts charon itself.
CHARON_BY_STARTER = Daemon("charon", ("ipsec", "start", "--conf", "/lab/ipsec.conf"), CHARON_PID, STRONGSWAN_ENV,
                           reload=(("ipsec", "rereadsecrets"), ("ipsec", "reload")), reload_env=STRONGSWAN_ENV,
                           detach=False)

# FRR without systemd or watchfrr (a killed bgpd stays dead, as a fault should). Each node is its own
# container, so FRR's default run directory (pid files, the vty sockets `lab exec NODE -- vtysh` finds) is
# private to it. Each daemon starts with an empty config; bgpd, started last, waits for all three vty sockets
# and loads /lab/frr.conf into them with vtysh. Measured on FRR 8.4.4 (bookworm): the daemons drop to user frr,
# so the run directory and /lab/frr.log are made theirs first; `-d` returns once the daemon has forked, so
# each start waits for its own vty socket. Output goes to /dev/null: a forked daemon holding the exec's
# stdout would keep the exec open.
FRR_RUN = "/var/run/frr"
FRR_CONF = "/lab/frr.conf"
FRR_LOG = "/lab/frr.log"
FRR_PREPARE = f"""mkdir -p {FRR_RUN} && chown frr:frr {FRR_RUN}
touch {FRR_LOG} && chown frr:frr {FRR_LOG}
[ -f /etc/frr/vtysh.conf ] || : > /etc/frr/vtysh.conf
"""
FRR_HINT = f"lab exec {{node}} -- cat {FRR_LOG}"


def _vty_wait(names: tuple[str, ...]) -> str:
    ready = " && ".join(f"[ -S {FRR_RUN}/{n}.vty ]" for n in names)
    return f"for i in $(seq 200); do {ready} && break; sleep 0.05; done\n{ready}\n"


def frr_daemon(name: str, before: str = "", after: str = "", label: str = "") -> Daemon:
    pid_file = f"{FRR_RUN}/{name}.pid"
    script = (f"set -e\n{before}/usr/lib/frr/{name} -d -F traditional -f /dev/null -i {pid_file} >/dev/null 2>&1\n"
              f"{_vty_wait((name,))}{after}")
    return Daemon(name, ("sh", "-c", script), pid_file, detach=False, label=label or f"/usr/lib/frr/{name} -d",
                  hint=FRR_HINT)


ZEBRA = frr_daemon("zebra", before=FRR_PREPARE)
STATICD = frr_daemon("staticd")
BGPD = frr_daemon("bgpd", after=_vty_wait(("zebra", "staticd", "bgpd")) + f"vtysh -f {FRR_CONF}\n",
                  label=f"/usr/lib/frr/bgpd -d, then vtysh -f {FRR_CONF}")

DAEMONS: dict[str, Daemon] = {d.name: d for d in (CHARON, ZEBRA, STATICD, BGPD)}


def of(node: NodePlan) -> list[Daemon]:
    """The node's daemons, in the order its plan lists them (the order they start)."""
    unknown = [d for d in node.daemons if d not in DAEMONS]
    if unknown:
        raise RuntimeBackendError(f"node {node.name!r}: no daemon named {', '.join(unknown)}",
                                  hint=f"known: {', '.join(sorted(DAEMONS))} (lab/daemons.py)")
    return [DAEMONS[d] for d in node.daemons]


def start(runtime: Runtime, lab: str, node: str, daemon: Daemon) -> ExecResult:
    """Start the daemon; a detached start returns at once (`alive` says whether it stayed up)."""
    if daemon.detach:
        return runtime.exec(lab, node, list(daemon.start), detach=True, env=dict(daemon.env))
    res = runtime.exec(lab, node, list(daemon.start), env=dict(daemon.env) or None, timeout=daemon.start_timeout)
    if not res.ok:
        said = daemon.label or " ".join(daemon.start)
        raise RuntimeBackendError(f"node {node!r}: `{said}` failed: {res.output.strip()[-400:] or f'exit {res.code}'}",
                                  hint=daemon.hint.format(node=node))
    return res


def pid(runtime: Runtime, lab: str, node: str, daemon: Daemon) -> str | None:
    """The pid its pid file names, or None (no file: not started, or stopped cleanly)."""
    res = runtime.exec(lab, node, ["cat", daemon.pid_file], timeout=EXEC_TIMEOUT_S)
    value = res.output.strip()
    return value if res.ok and value.isdigit() else None


def alive(runtime: Runtime, lab: str, node: str, daemon: Daemon) -> bool:
    """The process its pid file names exists."""
    found = pid(runtime, lab, node, daemon)
    return found is not None and runtime.exec(lab, node, ["kill", "-0", found], timeout=EXEC_TIMEOUT_S).ok


def stop(runtime: Runtime, lab: str, node: str, daemon: Daemon, wait_s: float = STOP_WAIT_S,
         kill: bool = False) -> None:
    """SIGTERM by pid file (charon then sends a DELETE for each IKE_SA, bgpd a Cease), SIGKILL if it is still
    there after wait_s, RuntimeBackendError if even that did not end it. Not running: nothing to do.
    `kill`: SIGKILL at once (a crash: no goodbye to the peers; `lab fault bgpd-kill`)."""
    found = pid(runtime, lab, node, daemon)
    if found is None:
        return
    runtime.exec(lab, node, ["kill", "-KILL" if kill else "-TERM", found], timeout=EXEC_TIMEOUT_S)
    deadline = time.monotonic() + wait_s
    signal: str | None = None if kill else "-KILL"  # then None: nothing left to send
    while runtime.exec(lab, node, ["kill", "-0", found], timeout=EXEC_TIMEOUT_S).ok:
        if time.monotonic() > deadline:
            if signal is None:
                raise RuntimeBackendError(f"node {node!r}: {daemon.name} (pid {found}) survived SIGKILL",
                                          hint=f"lab logs {node}")
            runtime.exec(lab, node, ["kill", signal, found], timeout=EXEC_TIMEOUT_S)
            deadline, signal = time.monotonic() + wait_s, None
        time.sleep(POLL_S)
    runtime.exec(lab, node, ["rm", "-f", daemon.pid_file], timeout=EXEC_TIMEOUT_S)  # a killed daemon leaves it


def restart(runtime: Runtime, lab: str, node: str, ds: list[Daemon]) -> None:
    """Stop `ds` (last first), then start them in order: how daemons without a reload command re-read /lab."""
    for daemon in reversed(ds):
        stop(runtime, lab, node, daemon)
    for daemon in ds:
        start(runtime, lab, node, daemon)


def reload(runtime: Runtime, lab: str, node: str, daemon: Daemon) -> ExecResult:
    """Make the running daemon re-read its config from /lab; the first failing command's result, else the last."""
    res = ExecResult(0, "")
    for argv in daemon.reload:
        res = runtime.exec(lab, node, list(argv), env=dict(daemon.reload_env) or None, timeout=LOAD_TIMEOUT_S)
        if not res.ok:
            return res
    return res
