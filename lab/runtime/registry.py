"""The runtime backends, by name: the one place a new backend is registered, and which one a lab runs on.

A backend is a module with a `connect_runtime()` returning an object that satisfies lab.runtime.base.Runtime;
it is imported only when chosen, so a backend's library (docker, kubernetes, ...) is needed only by those who
use it. A backend that reads settings from the environment (the swarm: its manager, its placement) names them
in `SETTINGS_ENV` and takes the environment as `connect_runtime(env)`.

`lab up` chooses: `--runtime`, else the topology's `runtime:` key, else `LAB_RUNTIME`, else docker; and records
the choice with those settings in the lab's state directory (`runtime.json`), so every later command on that
lab (down, inspect, fault, the supervisor, ...) connects to the same backend with no flag or variable.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import RuntimeBackendError
from lab.runtime.base import Runtime

BACKENDS = {
    "docker": "lab.runtime.docker",
    "swarm": "lab.runtime.swarm",
}
DEFAULT = "docker"
ENV = "LAB_RUNTIME"
RECORD_FILE = "runtime.json"  # in the lab's state directory
STATE_MARK = "topology.yml"  # every lab's state directory has one (lab/state.py)


@dataclass(frozen=True)
class Choice:
    """A backend and its environment settings, as `lab up` used them."""

    backend: str
    settings: dict[str, str] = field(default_factory=dict)


def backend_name(env: Mapping[str, str]) -> str:
    return check_backend(env.get(ENV) or DEFAULT, ENV)


def check_backend(name: str, where: str) -> str:
    if name not in BACKENDS:
        raise RuntimeBackendError(f"{where}={name}: no such runtime backend", hint=f"one of: {', '.join(BACKENDS)}")
    return name


def choose(flag: str | None, key: str | None, env: Mapping[str, str]) -> Choice:
    """`lab up`'s backend: the flag, else the topology's key, else LAB_RUNTIME, else docker; with the settings
    that backend reads from `env`."""
    if flag:
        name = check_backend(flag, "--runtime")
    elif key:
        name = check_backend(key, "runtime")
    else:
        name = backend_name(env)
    keys: tuple[str, ...] = getattr(importlib.import_module(BACKENDS[name]), "SETTINGS_ENV", ())
    return Choice(name, {k: env[k] for k in keys if env.get(k)})


def record(lab_root: Path, choice: Choice) -> None:
    lab_root.mkdir(parents=True, exist_ok=True)
    (lab_root / RECORD_FILE).write_text(json.dumps({"backend": choice.backend, "settings": choice.settings}) + "\n")


def forget_if_alone(lab_root: Path) -> None:
    """Remove the record, and the directory, when nothing else is there (`lab up` failed before it wrote the
    lab's state); a record beside a lab's state stays, for `lab down`."""
    if lab_root.is_dir() and [p.name for p in lab_root.iterdir()] == [RECORD_FILE]:
        (lab_root / RECORD_FILE).unlink()
        lab_root.rmdir()


def recorded(lab_root: Path) -> Choice | None:
    """What `lab up` recorded for this lab; None if nothing (or nothing readable) is there."""
    try:
        data = json.loads((lab_root / RECORD_FILE).read_text())
        choice = Choice(str(data["backend"]), {str(k): str(v) for k, v in dict(data.get("settings", {})).items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return choice if choice.backend in BACKENDS else None


def recorded_for(home: Path, lab: str | None) -> Choice | None:
    """The named lab's record; with no name, the record every lab under `home` shares (None if one has none
    or two differ: then LAB_RUNTIME decides, or the user names the lab)."""
    if lab:
        return recorded(home / lab)
    found = [recorded(d.parent) for d in sorted(home.glob(f"*/{STATE_MARK}"))] if home.is_dir() else []
    first = found[0] if found else None
    return first if first is not None and all(c == first for c in found) else None


def connect_runtime(env: Mapping[str, str] | None = None, choice: Choice | None = None) -> Runtime:
    """The backend `choice` names with its recorded settings (they win over the environment), else the one
    LAB_RUNTIME names; connected (its own errors, such as a daemon that does not answer, are its own)."""
    merged = dict(os.environ if env is None else env)
    if choice is not None:
        merged |= {ENV: choice.backend, **choice.settings}
    module = importlib.import_module(BACKENDS[backend_name(merged)])
    runtime: Runtime = module.connect_runtime(merged) if getattr(module, "SETTINGS_ENV", ()) \
        else module.connect_runtime()
    return runtime
