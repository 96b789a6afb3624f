"""Helpers for integration tests: run the real CLI, snapshot the host's network, find leftovers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lab.timing import time_scale

ROOT = Path(__file__).resolve().parents[2]
# The emulated kernel-test guest (`make test-kernel`) runs everything 10-20x slower: it scales the time the
# tests give each command, and the HA outage bounds (its HA agents wait that much longer before acting).
TIME_SCALE = time_scale()  # LAB_TIME_SCALE (lab/timing.py)


def run_lab(*args: str, home: Path, timeout: float = 120, check: bool = False,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `lab` CLI in a subprocess, as a user would (`env`: extra variables, e.g. a runtime)."""
    env = {**os.environ, **(env or {}), "LAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True,
                          env=env, timeout=timeout * TIME_SCALE, check=check, cwd=ROOT)


def host_network() -> dict[str, object]:
    """The host namespace's interfaces, addresses, routes, rules and nftables ruleset."""
    def cmd(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True).stdout

    links = json.loads(cmd("ip", "-j", "link") or "[]")
    return {
        "links": sorted(link["ifname"] for link in links),
        "addr": cmd("ip", "-4", "-o", "addr"),
        "route": cmd("ip", "-4", "route", "show", "table", "all"),
        "rule": cmd("ip", "rule"),
        "nft": cmd("nft", "list", "ruleset"),
    }


def lab_leftovers(name: str) -> list[str]:
    """Containers and namespaces of a lab that still exist."""
    containers = subprocess.run(["docker", "ps", "-a", "--filter", f"label=lab.topology={name}",
                                 "--format", "{{.Names}}"], capture_output=True, text=True).stdout.split()
    namespaces = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
                  .stdout.split() if n == f"lab-{name}"]
    return containers + namespaces
