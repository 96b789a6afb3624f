"""Failover outages: A/A unplanned, A/S planned, A/S unplanned, each with `dpd: azure` and `dpd: fast`.

Usage: python bench/failover.py [--runs N] [--cap S] [--only azure|fast]
Each case brings a renamed copy of topologies/active-*.yml up (in a temporary LAB_HOME), runs
`lab failover azgw --planned|--unplanned --json` N times with `lab restore` between runs, and prints the
median outage of the worst UDP flow (VNet -> site) and of the ICMP round trip (which also needs the site's
direction back). A stream that never recovers within its length (A/A with dpd azure: --cap s; others 12-30 s)
prints ">N s". Azure's figures beside.
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
AZURE = {("active-active", "unplanned"): "automatic (no figure)", ("active-standby", "planned"): "10-15 s",
         ("active-standby", "unplanned"): "1-3 min"}
CASES = [("active-active", "unplanned"), ("active-standby", "planned"), ("active-standby", "unplanned")]


def lab(*args: str, env: dict[str, str], timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def outage_s(stats: dict, fault_at: float) -> float | None:
    """Worst-flow outage in s; None when the stream never recovered (the largest gap ended before the fault)."""
    if stats["lost"] and stats["flow_outage_to"] < fault_at:
        return None
    return stats["flow_outage_ms"] / 1000


def run_case(mode: str, kind: str, dpd: str, runs: int, cap: float, env: dict[str, str]) -> list[dict]:
    name = f"bf{mode[7]}{dpd[0]}-{uuid.uuid4().hex[:4]}"
    text = (ROOT / "topologies" / f"{mode}.yml").read_text()
    text = text.replace("name: aa\n", f"name: {name}\n").replace("name: as\n", f"name: {name}\n")
    topo = Path(env["LAB_HOME"]) / f"{name}.yml"
    topo.write_text(text.replace("dpd: fast", f"dpd: {dpd}"))
    up = lab("up", str(topo), env=env)
    if up.returncode:
        sys.exit(f"lab up {name} failed:\n{up.stderr}")
    # Only an A/A site's DPD can take minutes (its outbound SA may be the dead instance's); A/S recovery does
    # not wait for DPD (the standby's INITIAL_CONTACT replaces the site's IKE_SA), 30 s shows if it would.
    duration = cap if (dpd == "azure" and mode == "active-active") else 12.0 if dpd == "fast" else 30.0
    out = []
    try:
        for _ in range(runs):
            res = lab("failover", "azgw", f"--{kind}", "--lab", name, "--duration", f"{duration:g}", "--json", env=env)
            if res.returncode:
                sys.exit(f"lab failover on {name} failed:\n{res.stderr}")
            r = json.loads(res.stdout)
            out.append({"udp": outage_s(r["udp"], r["fault_at"]), "icmp": outage_s(r["icmp"], r["fault_at"])})
            print(f"  {mode} {kind} dpd={dpd}: {out[-1]}", file=sys.stderr)
            restore = lab("restore", "--lab", name, env=env)
            if restore.returncode:
                sys.exit(f"lab restore {name} failed:\n{restore.stderr}")
    finally:
        lab("down", name, env=env)
    return out


def median_text(values: list[float | None], cap: float) -> str:
    if any(v is None for v in values):
        return f"> stream ({sum(v is None for v in values)}/{len(values)} runs never recovered)"
    return f"{statistics.median(values):.2f} s"  # type: ignore[type-var]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cap", type=float, default=180.0, help="stream length for dpd: azure runs (s)")
    ap.add_argument("--only", choices=["azure", "fast"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lab-bench-failover-") as home:
        env = {**os.environ, "LAB_HOME": home}
        rows = []
        for mode, kind in CASES:
            for dpd in [d for d in ("fast", "azure") if args.only in (None, d)]:
                res = run_case(mode, kind, dpd, args.runs, args.cap, env)
                rows.append((mode, kind, dpd, median_text([r["udp"] for r in res], args.cap),
                             median_text([r["icmp"] for r in res], args.cap), AZURE[(mode, kind)]))
    print(f"| gateway | failover | dpd | outage, worst UDP flow VNet->site (median of {args.runs}) "
          "| outage, ICMP round trip | Azure documents |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
