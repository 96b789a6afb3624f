"""What bench/failover.py and bench/bgp_failover.py share: run `lab` in a temporary LAB_HOME, bring a renamed
topology up, run `lab failover ... --json` N times with `lab restore` between runs, always `lab down`, and turn
each run's JSON into worst-flow outages (VNet -> site, site -> VNet, ICMP) and medians.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lab(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def outage_s(stats: dict, fault_at: float) -> float | None:
    """Worst-flow outage in s; None when the stream never recovered (the largest gap ended before the fault)."""
    if stats["lost"] and stats["flow_outage_to"] < fault_at:
        return None
    return stats["flow_outage_ms"] / 1000


def outages(r: dict) -> dict:
    """One `lab failover --json` result as outages: udp (VNet -> site), rev (site -> VNet), icmp."""
    rev = r.get("udp_reverse")
    return {"udp": outage_s(r["udp"], r["fault_at"]), "icmp": outage_s(r["icmp"], r["fault_at"]),
            "rev": outage_s(rev, r["fault_at"]) if rev else None}


def measure(name: str, topology_text: str, runs: int, failover_args: Callable[[], list[str]], label: str,
            env: dict[str, str], timeout: float = 600) -> list[dict]:
    """Up the topology as lab `name`, run `lab failover azgw <failover_args> --lab name --json` `runs` times
    with `lab restore` between, down it whatever happens (each lab command bounded by `timeout`); exits with
    lab's stderr when a step fails."""
    topo = Path(env["LAB_HOME"]) / f"{name}.yml"
    topo.write_text(topology_text)
    up = lab("up", str(topo), env=env, timeout=timeout)
    if up.returncode:
        sys.exit(f"lab up {name} failed:\n{up.stderr}")
    out = []
    try:
        for _ in range(runs):
            res = lab("failover", "azgw", *failover_args(), "--lab", name, "--json", env=env, timeout=timeout)
            if res.returncode:
                sys.exit(f"lab failover on {name} failed:\n{res.stderr}")
            out.append(outages(json.loads(res.stdout)))
            print(f"  {label}: {out[-1]}", file=sys.stderr)
            restore = lab("restore", "--lab", name, env=env, timeout=timeout)
            if restore.returncode:
                sys.exit(f"lab restore {name} failed:\n{restore.stderr}")
    finally:
        lab("down", name, env=env, timeout=timeout)
    return out


def median_text(values: list[float | None]) -> str:
    if any(v is None for v in values):
        return f"> stream ({sum(v is None for v in values)}/{len(values)} runs never recovered)"
    return f"{statistics.median(values):.2f} s"  # type: ignore[type-var]


def medians(res: list[dict]) -> tuple[str, str, str]:
    """(VNet -> site, site -> VNet, ICMP) median texts of a case's runs."""
    return tuple(median_text([r[k] for r in res]) for k in ("udp", "rev", "icmp"))  # type: ignore[return-value]
