"""Route withdrawal outage on an active-active BGP gateway: instance 0 killed (`lab failover --unplanned`) and
instance 0's bgpd killed (`lab fault bgpd-kill`), with `bgp_timers: fast` and `azure`.

Usage: python bench/bgp_failover.py [--runs N] [--only azure|fast] [--cap S]
Each case brings a renamed copy of topologies/bgp-active-active.yml up (temporary LAB_HOME), measures the
worst UDP flow's outage (VNet -> site) and the ICMP round trip under `lab failover azgw --unplanned` (or
`--bgpd`), `lab restore` between runs, and prints medians with `uptime`.
A stream that never recovers prints ">N s" (with the azure preset, the site waits for the 180 s hold timer or
for DPD, whichever notices first).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lab(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def outage_s(stats: dict, fault_at: float) -> float | None:
    if stats["lost"] and stats["flow_outage_to"] < fault_at:
        return None
    return stats["flow_outage_ms"] / 1000


def one_run(kind: str, name: str, duration: float, env: dict[str, str]) -> dict:
    how = "--unplanned" if kind == "instance-kill" else "--bgpd"  # bgpd: the tunnels stay, the routes go
    res = lab("failover", "azgw", how, "--lab", name, "--duration", f"{duration:g}", "--json", env=env)
    if res.returncode:
        sys.exit(f"{kind} on {name} failed:\n{res.stderr}")
    r = json.loads(res.stdout)
    rev = r.get("udp_reverse")  # site -> VNet: the site's BGP withdrawal of the dead instance's routes
    return {"udp": outage_s(r["udp"], r["fault_at"]), "icmp": outage_s(r["icmp"], r["fault_at"]),
            "rev": outage_s(rev, r["fault_at"]) if rev else None}


def run_case(kind: str, timers: str, runs: int, cap: float, env: dict[str, str]) -> list[dict]:
    name = f"routing-bf{timers[0]}{uuid.uuid4().hex[:4]}"
    text = (ROOT / "topologies" / "bgp-active-active.yml").read_text().replace("name: bgp-aa\n", f"name: {name}\n")
    topo = Path(env["LAB_HOME"]) / f"{name}.yml"
    topo.write_text(text.replace("    enable_bgp: true\n", f"    enable_bgp: true\n    bgp_timers: {timers}\n"
                                 f"    dpd: {timers}\n"))
    up = lab("up", str(topo), env=env)
    if up.returncode:
        sys.exit(f"lab up {name} failed:\n{up.stderr}")
    out = []
    try:
        for _ in range(runs):
            out.append(one_run(kind, name, 12.0 if timers == "fast" else cap, env))
            print(f"  {kind} timers={timers}: {out[-1]}", file=sys.stderr)
            res = lab("restore", "--lab", name, env=env)
            if res.returncode:
                sys.exit(f"lab restore {name} failed:\n{res.stderr}")
    finally:
        lab("down", name, env=env)
    return out


def median_text(values: list[float | None]) -> str:
    if any(v is None for v in values):
        return f"> stream ({sum(v is None for v in values)}/{len(values)} runs never recovered)"
    return f"{statistics.median(values):.2f} s"  # type: ignore[type-var]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cap", type=float, default=200.0, help="stream length with the azure preset (s)")
    ap.add_argument("--only", choices=["azure", "fast"])
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="lab-bench-bgp-failover-") as home:
        env = {**os.environ, "LAB_HOME": home}
        for kind in ("instance-kill", "bgpd-kill"):
            for timers in [t for t in ("fast", "azure") if args.only in (None, t)]:
                res = run_case(kind, timers, args.runs, args.cap, env)
                rows.append((kind, timers, median_text([r["udp"] for r in res]),
                             median_text([r["rev"] for r in res]), median_text([r["icmp"] for r in res])))
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"| fault | bgp_timers (and dpd) | outage, worst UDP flow VNet->site (median of {args.runs}) "
          "| worst UDP flow site->VNet | ICMP round trip |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"uptime: {load}")


if __name__ == "__main__":
    main()
