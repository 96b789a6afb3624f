"""The `ifb` kernel module, loaded so that it creates nothing in the host's network namespace.

Loaded with its default options, `ifb` creates `numifbs=2` devices (ifb0, ifb1) in the initial (host)
network namespace. The kernel autoloads it that way the first time anyone asks for an IFB link, even from
inside a container's namespace, which is how the lab's ingress shaping asks for one. So before the first IFB
the lab loads the module itself with `numifbs=0` (an IFB then exists only where the lab creates it: inside a
node), and refuses to shape rather than let the kernel autoload it with the defaults.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from lab.errors import RuntimeBackendError

MODULE = "ifb"
LOAD = ("modprobe", MODULE, "numifbs=0")
FIX = "load it yourself without host devices: `modprobe ifb numifbs=0` (or unload it: `modprobe -r ifb`)"
State = Literal["loaded", "builtin", "module", "absent"]
Runner = Callable[[list[str]], subprocess.CompletedProcess[str]]


def ifb_state(root: Path, release: str) -> State:
    """loaded (a module in /sys/module), builtin (modules.builtin lists it), module (an ifb.ko the kernel
    would autoload) or absent (no module file: nothing to autoload, so nothing can appear in the host)."""
    if (root / "sys/module" / MODULE).is_dir():
        return "loaded"
    moddir = root / "lib/modules" / release
    builtin = moddir / "modules.builtin"
    if builtin.is_file() and f"{MODULE}.ko" in {Path(line).name for line in builtin.read_text().split()}:
        return "builtin"
    if moddir.is_dir() and any(moddir.rglob(f"{MODULE}.ko*")):
        return "module"
    return "absent"


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)


def ensure_ifb_without_host_devices(root: Path = Path("/"), release: str | None = None,
                                    run: Runner = _run) -> State:
    """Load `ifb` with numifbs=0 if the kernel would otherwise autoload it with its defaults; returns the
    state found. A failed load is an error: shaping never goes on to trigger the autoload."""
    state = ifb_state(root, release or os.uname().release)
    if state != "module":
        return state
    try:
        res = run(list(LOAD))
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeBackendError(f"cannot load the ifb module ({' '.join(LOAD)}): {exc}", hint=FIX) from exc
    if res.returncode != 0 and not (root / "sys/module" / MODULE).is_dir():
        raise RuntimeBackendError(f"cannot load the ifb module ({' '.join(LOAD)}): {res.stderr.strip()}",
                                  hint=FIX)
    return state
