"""One lock per lab name, machine-wide: container and namespace names are global, so two `lab up` of one
name (even with different LAB_HOMEs) must never interleave. flock: the kernel drops it when the holder
exits or crashes, so a stale lock cannot exist.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lab.errors import BusyError

DEFAULT_LOCK_DIR = Path("/run/lab")


def lock_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("LAB_LOCK_DIR", str(DEFAULT_LOCK_DIR)))


@contextmanager
def lab_lock(name: str, wait_s: float = 0.0, directory: Path | None = None) -> Iterator[None]:
    """Hold lab `name`'s lock for the block. Busy for longer than `wait_s`: BusyError (exit 2) naming the
    holder's pid and command."""
    d = directory or lock_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _acquire(fd, name, path, wait_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {' '.join(sys.argv[1:])[:200]}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock


def _acquire(fd: int, name: str, path: Path, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = path.read_text(errors="replace").strip() or "unknown"
                raise BusyError(f"lab {name!r} is busy: another lab command holds {path} (pid and args: {holder})",
                                hint="wait for it to finish, or use another lab name") from None
            time.sleep(0.1)
