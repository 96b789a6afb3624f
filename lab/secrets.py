"""Pre-shared keys: taken from the topology, or generated once per lab and kept in its state directory."""

from __future__ import annotations

import secrets as _random
from collections.abc import Callable

from lab.topology.model import Topology


def generate_key() -> str:
    """32 URL-safe characters: strong, and safe in swanctl.conf quotes and in device configs."""
    return _random.token_urlsafe(24)


def resolve_keys(topo: Topology, stored: dict[str, str], generate: Callable[[], str] = generate_key) -> dict[str, str]:
    """Key per connection: the topology's own, else the stored one, else a new one."""
    keys = {}
    for name, conn in sorted(topo.connections.items()):
        if conn.shared_key is not None:
            keys[name] = conn.shared_key.get_secret_value()
        else:
            keys[name] = stored.get(name) or generate()
    return keys
