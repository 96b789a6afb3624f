"""Route withdrawal outage on an active-active BGP gateway: instance 0 killed (`lab failover --unplanned`) and
instance 0's bgpd killed (`lab fault bgpd-kill`), with `bgp_timers: fast` and `azure`.

Usage: python bench/bgp_failover.py [--runs N] [--only azure|fast] [--cap S] [--faults instance-kill bgpd-kill]
Each case brings a renamed copy of topologies/bgp-active-active.yml up (temporary LAB_HOME), measures the
worst UDP flow's outage (VNet -> site) and the ICMP round trip under `lab failover azgw --unplanned` (or
`--bgpd`), `lab restore` between runs, and prints medians with `uptime`.
A stream that never recovers prints ">N s" (with the azure preset, the site waits for the 180 s hold timer or
for DPD, whichever notices first).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import uuid

from failover_common import ROOT, measure, medians

FAULTS = ("instance-kill", "bgpd-kill")


def run_case(kind: str, timers: str, runs: int, cap: float, env: dict[str, str], prefix: str) -> list[dict]:
    name = f"{prefix}-bf{timers[0]}{uuid.uuid4().hex[:4]}"
    text = (ROOT / "topologies" / "bgp-active-active.yml").read_text().replace("name: bgp-aa\n", f"name: {name}\n")
    text = text.replace("    enable_bgp: true\n",
                        f"    enable_bgp: true\n    bgp_timers: {timers}\n    dpd: {timers}\n")
    how = "--unplanned" if kind == "instance-kill" else "--bgpd"  # bgpd: the tunnels stay, the routes go
    duration = 12.0 if timers == "fast" else cap
    return measure(name, text, runs, lambda: [how, "--duration", f"{duration:g}"], f"{kind} timers={timers}", env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cap", type=float, default=200.0, help="stream length with the azure preset (s)")
    ap.add_argument("--only", choices=["azure", "fast"])
    ap.add_argument("--faults", nargs="+", choices=FAULTS, default=list(FAULTS))
    ap.add_argument("--prefix", default="routing", help="lab names start with it (unique to whoever runs it)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="lab-bench-bgp-failover-") as home:
        env = {**os.environ, "LAB_HOME": home}
        for kind in args.faults:
            for timers in [t for t in ("fast", "azure") if args.only in (None, t)]:
                res = run_case(kind, timers, args.runs, args.cap, env, args.prefix)
                rows.append((kind, timers, *medians(res)))
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"| fault | bgp_timers (and dpd) | outage, worst UDP flow VNet->site (median of {args.runs}) "
          "| worst UDP flow site->VNet | ICMP round trip |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"uptime: {load}")


if __name__ == "__main__":
    main()
