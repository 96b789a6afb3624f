"""FRR in a node without systemd: zebra, staticd and bgpd started directly, config pushed with vtysh.

Each node is its own container, so FRR's default paths (/var/run/frr for pid files and vty sockets, which
`lab exec NODE -- vtysh` finds) are private to it; the config and log live in /lab (the state directory).
No watchfrr: a killed bgpd stays dead, as a fault should (`lab fault bgpd-kill`, then `lab restore`).
Measured on FRR 8.4.4 (bookworm): the daemons drop to user frr, so /lab/frr.log is made theirs first.
"""

from __future__ import annotations

import json
import time
from typing import Any

from lab.errors import RuntimeBackendError
from lab.runtime.base import Runtime

DAEMONS = ("zebra", "staticd", "bgpd")
RUN_DIR = "/var/run/frr"
CONFIG = "/lab/frr.conf"
LOG = "/lab/frr.log"
START = f"""set -e
mkdir -p {RUN_DIR} && chown frr:frr {RUN_DIR}
touch {LOG} && chown frr:frr {LOG}
[ -f /etc/frr/vtysh.conf ] || : > /etc/frr/vtysh.conf
for d in {' '.join(DAEMONS)}; do
  /usr/lib/frr/$d -d -F traditional -f /dev/null -i {RUN_DIR}/$d.pid >/dev/null 2>&1
done
for i in $(seq 100); do
  [ -S {RUN_DIR}/zebra.vty ] && [ -S {RUN_DIR}/staticd.vty ] && [ -S {RUN_DIR}/bgpd.vty ] && break
  sleep 0.05
done
vtysh -f {CONFIG}
"""


def start_frr(runtime: Runtime, lab: str, node: str) -> None:
    """Start the daemons and load /lab/frr.conf; a config FRR refuses fails loudly with vtysh's words."""
    res = runtime.exec(lab, node, ["sh", "-c", START], timeout=20)
    if not res.ok:
        raise RuntimeBackendError(f"node {node!r}: FRR did not start or refused {CONFIG}: {res.output.strip()}",
                                  hint=f"lab exec {node} -- cat {LOG}")


def stop_frr(runtime: Runtime, lab: str, node: str, daemons: tuple[str, ...] = DAEMONS,
             signal: str = "TERM") -> None:
    """Signal each daemon by its pid file (SIGTERM: bgpd sends a Cease; SIGKILL: the peer waits for hold)."""
    pids = " ".join(f"{RUN_DIR}/{d}.pid" for d in daemons)
    script = f"for f in {pids}; do [ -f $f ] && kill -{signal} $(cat $f) 2>/dev/null; rm -f $f; done; true"
    runtime.exec(lab, node, ["sh", "-c", script], timeout=10)


def running(runtime: Runtime, lab: str, node: str, daemon: str = "bgpd") -> bool:
    res = runtime.exec(lab, node, ["sh", "-c", f"kill -0 $(cat {RUN_DIR}/{daemon}.pid)"], timeout=5)
    return res.ok


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
