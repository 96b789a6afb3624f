"""Asking a node's running FRR over vtysh: one JSON answer, and waiting for sessions to be Established.

FRR's daemons themselves are started, stopped and restarted by the daemon seam (lab/daemons.py: ZEBRA,
STATICD, BGPD), like charon.
"""

from __future__ import annotations

import json
import time
from typing import Any

from lab.runtime.base import Runtime


def vtysh_json(runtime: Runtime, lab: str, node: str, command: str) -> Any:
    """One `show ... json` command; None when bgpd is not running or answers no JSON."""
    res = runtime.exec(lab, node, ["vtysh", "-c", command], timeout=15)
    if not res.ok:
        return None
    text = res.output[res.output.find("{"):] if "{" in res.output else ""
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return None


def wait_established(runtime: Runtime, lab: str, expected: dict[str, list[str]], timeout: float) -> dict[str, str]:
    """Poll each node's neighbors until all are Established; returns {node peer: state} of those that are not."""
    deadline = time.monotonic() + timeout
    while True:
        stuck = {}
        for node, peers in expected.items():
            data = vtysh_json(runtime, lab, node, "show bgp neighbors json") or {}
            for peer in peers:
                state = (data.get(peer) or {}).get("bgpState", "no bgpd")
                if state != "Established":
                    stuck[f"{node} -> {peer}"] = state
        if not stuck or time.monotonic() > deadline:
            return stuck
        time.sleep(0.5)
