"""The `lab ui` process as `lab down` sees it: its pid file in the lab's state directory, and a stop that
ends only that process (its command line must hold the `ui` argument)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

PID_FILE = "ui.pid"
STOP_WAIT_S = 5.0


def pid_path(state_root: Path) -> Path:
    return state_root / PID_FILE


def write_pid(state_root: Path) -> None:
    pid_path(state_root).write_text(f"{os.getpid()}\n")


def forget(state_root: Path) -> None:
    """Remove the pid file if it still names this process (at exit)."""
    try:
        if pid_path(state_root).read_text().strip() == str(os.getpid()):
            pid_path(state_root).unlink()
    except OSError:
        pass


def running_pid(state_root: Path) -> int | None:
    try:
        pid = int(pid_path(state_root).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if b"ui" in cmdline and pid != os.getpid() else None


def stop(state_root: Path) -> bool:
    """Stop the lab's UI server (SIGTERM, then SIGKILL); True if one was running."""
    pid = running_pid(state_root)
    pid_path(state_root).unlink(missing_ok=True)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_S
    while _alive(pid):
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False
