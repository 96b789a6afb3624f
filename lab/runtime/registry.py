"""The runtime backends, by name: the one place a new backend is registered.

`LAB_RUNTIME` chooses one (default: docker). A backend is a module with a `connect_runtime()` returning an
object that satisfies lab.runtime.base.Runtime; it is imported only when chosen, so a backend's library
(docker, kubernetes, ...) is needed only by those who use it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping

from lab.errors import RuntimeBackendError
from lab.runtime.base import Runtime

BACKENDS = {
    "docker": "lab.runtime.docker",
    "swarm": "lab.runtime.swarm",
}
DEFAULT = "docker"
ENV = "LAB_RUNTIME"


def backend_name(env: Mapping[str, str]) -> str:
    name = env.get(ENV) or DEFAULT
    if name not in BACKENDS:
        raise RuntimeBackendError(f"{ENV}={name}: no such runtime backend", hint=f"one of: {', '.join(BACKENDS)}")
    return name


def connect_runtime(env: Mapping[str, str] | None = None) -> Runtime:
    """The chosen backend, connected (its own errors, such as a daemon that does not answer, are its own)."""
    module = importlib.import_module(BACKENDS[backend_name(os.environ if env is None else env)])
    runtime: Runtime = module.connect_runtime()
    return runtime
