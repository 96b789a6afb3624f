"""The per-lab supervisor: a small process `lab up` starts and `lab down` stops, which heals the lab by itself.

It follows Docker's events for the lab's containers (label lab.topology=<lab>) in 1 s windows; a start, die,
pause or destroy event, or a sweep every few seconds (an event can be missed), makes it look for nodes that
are not as `lab up` left them (lab/ops/heal.py) and heal them, holding the lab's lock so it never interleaves
with `lab up`, `lab fault`, `lab restore` or `lab down`. It exits when the lab's state directory is gone or
its pid file names another process, so it cannot outlive its lab.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lab import core
from lab.core import Connect
from lab.errors import LabError
from lab.lock import lab_lock
from lab.ops import heal
from lab.runtime.base import Runtime

PID_FILE = "supervisor.pid"
LOG_FILE = "supervisor.log"
WINDOW_S = 1.0
DEBOUNCE_S = 1.0  # a restart is die + start; the standby's agent takes over meanwhile
SWEEP_S = 5.0
RELEVANT = frozenset({"start", "die", "destroy", "pause", "unpause", "restart", "oom"})
STOP_WAIT_S = 5.0
# What `lab inspect` and docs/faults.md promise: a node restarted behind the lab's back is healed within 15 s.
# Seeing it takes at most SWEEP_S + WINDOW_S (an event missed: the next sweep), the role decision at most
# heal.TAKEOVER_WAIT_S; that leaves 6 s to re-wire, start its daemons and bring its tunnels up (measured
# 0.2-1.8 s at load 6-15, `healed ... in` in the log).
HEAL_WITHIN_S = 15.0


def pid_path(state_root: Path) -> Path:
    return state_root / PID_FILE


def run(name: str, home: Path, runtime: Runtime, connect: Connect, log: Callable[[str], None]) -> None:
    """Watch and heal until the lab is gone."""
    lab = core.load_running(name, home)
    dataplane = lab.dataplane  # as `lab up` recorded it
    pid_path(lab.dir.root).write_text(f"{os.getpid()}\n")
    log(f"supervising lab {name} (pid {os.getpid()})")
    # nothing seen yet: the first window sweeps at once (a node may have restarted while we were starting)
    seen: dict[str, tuple[str, int]] = {}
    due: float | None = time.monotonic()
    since, last_sweep = time.time(), time.monotonic()
    while _still_mine(lab.dir.root):
        until = time.time() + WINDOW_S
        try:
            events = runtime.events(name, since, until)
        except LabError as exc:  # dockerd busy or restarting: keep watching, sweep instead
            log(f"docker events: {exc.message}")
            events, due = [], due or time.monotonic()
            time.sleep(max(0.0, until - time.time()))
        since = until
        now = time.monotonic()
        if any(action.split(":")[0] in RELEVANT for _, action in events):
            due = due or now + DEBOUNCE_S
        if (due is not None and now >= due) or now - last_sweep >= SWEEP_S:
            due, last_sweep = None, now
            seen = _look(lab, runtime, connect, dataplane, log, seen)
    log(f"lab {name} is gone: supervisor exits")


def _look(lab: core.Lab, runtime: Runtime, connect: Connect, dataplane: str, log: Callable[[str], None],
          seen: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    """Sweep when a container changed since the last look that left the lab healthy; returns the pids that
    look vouches for. They are read BEFORE the sweep: a container Docker restarts while the sweep runs (seen
    under load, the test's first `docker restart` right after `lab up` overlapping the supervisor's first
    sweep) then differs from them and is looked at next time. Read after the sweep, they named the restarted
    container, so no later sweep looked inside it and it stayed unhealed until another container changed.
    A failed heal keeps the old `seen`: it is tried again at the next sweep."""
    pids = _pids(lab, runtime)
    if pids == seen:
        return seen
    return pids if _sweep(lab, runtime, connect, dataplane, log) else seen


def _pids(lab: core.Lab, runtime: Runtime) -> dict[str, tuple[str, int]]:
    """Each node's container state and init pid: a restart changes the pid, so unchanged pids need no look
    inside the namespaces (a lab of 100 P2S clients stays cheap to watch)."""
    try:
        return {n.node: (n.status, n.pid) for n in runtime.list_nodes(lab.topo.name)}
    except LabError:
        return {}


def _still_mine(root: Path) -> bool:
    try:
        return pid_path(root).read_text().strip() == str(os.getpid())
    except OSError:
        return False


def _sweep(lab: core.Lab, runtime: Runtime, connect: Connect, dataplane: str, log: Callable[[str], None]) -> bool:
    """Heal what is broken; True when nothing is broken any more."""
    try:
        if not heal.find_broken(lab, runtime):
            return True
        with lab_lock(lab.topo.name, wait_s=120):
            if not _still_mine(lab.dir.root):
                return True
            broken = heal.find_broken(lab, runtime)  # again, under the lock: a command may have fixed it
            t0 = time.monotonic()
            for line in heal.heal(lab, broken, runtime, connect, dataplane, None, log):
                log(line)
            if broken:
                log(f"healed {', '.join(b.node for b in broken)} in {time.monotonic() - t0:.1f} s")
        return True
    except LabError as exc:
        log(f"heal failed: {exc.message}" + (f" (hint: {exc.hint})" if exc.hint else ""))
        return False
    except Exception as exc:  # noqa: BLE001 - a daemon that dies heals nothing: log, try again at the next sweep
        log(f"heal failed: {type(exc).__name__}: {exc}")
        return False


# ---- the process, as `lab up` and `lab down` see it -------------------------------------------------


def spawn(name: str, home: Path, state_root: Path) -> int:
    """Start `python -m lab supervise NAME` detached (own session, output to the state directory)."""
    with open(state_root / LOG_FILE, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "lab", "supervise", name], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=out, start_new_session=True,
                                env={**os.environ, "LAB_HOME": str(home)})
    return proc.pid


def running_pid(state_root: Path, name: str) -> int | None:
    """The supervisor's pid when that process is alive and really ours (its command line names the lab)."""
    try:
        pid = int(pid_path(state_root).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if b"supervise" in cmdline and name.encode() in cmdline else None


def stop(state_root: Path, name: str) -> bool:
    """Stop the lab's supervisor (SIGTERM, then SIGKILL); True if one was running."""
    pid = running_pid(state_root, name)
    pid_path(state_root).unlink(missing_ok=True)  # it exits at its next window even if the signal is lost
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_S
    while Path(f"/proc/{pid}").exists() and _not_zombie(pid):
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    return True


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False
