"""Failover outages beside Azure's figures: A/A unplanned with `dpd: fast` and `dpd: azure`; A/S planned and
unplanned with `ha_timing: fast` and `ha_timing: azure` (A/S with Azure's DPD: its recovery does not wait for DPD).

Usage: python bench/failover.py [--runs N] [--only azure|fast]
Each case brings a renamed copy of topologies/active-*.yml up (in a temporary LAB_HOME), runs
`lab failover azgw --planned|--unplanned --json` N times (stream length: lab's default for the case, long
enough for Azure's timing and DPD) with `lab restore` between runs, and prints the median outage of the worst
UDP flow in each direction (VNet -> site, site -> VNet) and of the ICMP round trip, and the load average.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import uuid

from failover_common import ROOT, measure, medians

AZURE = {("active-active", "unplanned"): "no figure (device DPD decides)", ("active-standby", "planned"): "10-15 s",
         ("active-standby", "unplanned"): "60-90 s"}
# (gateway, failover, what varies, its values): A/A by the site's DPD, A/S by the gateway's HA timing.
CASES = [("active-active", "unplanned", "dpd"), ("active-standby", "planned", "ha_timing"),
         ("active-standby", "unplanned", "ha_timing")]


def topology(mode: str, name: str, knob: str, value: str) -> str:
    text = (ROOT / "topologies" / f"{mode}.yml").read_text()
    text = text.replace("name: aa\n", f"name: {name}\n").replace("name: as\n", f"name: {name}\n")
    if knob == "dpd":
        return text.replace("dpd: fast", f"dpd: {value}")
    text = text.replace("dpd: fast", "dpd: azure")  # A/S: Azure's DPD; the HA timing decides
    return re.sub(r"ha_timing: fast.*", f"ha_timing: {value}", text)


def run_case(mode: str, kind: str, knob: str, value: str, runs: int, env: dict[str, str]) -> list[dict]:
    name = f"bf{mode[7]}{kind[0]}{value[0]}-{uuid.uuid4().hex[:4]}"
    return measure(name, topology(mode, name, knob, value), runs, lambda: [f"--{kind}"],
                   f"{mode} {kind} {knob}={value}", env, timeout=400)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--only", choices=["azure", "fast"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lab-bench-failover-") as home:
        env = {**os.environ, "LAB_HOME": home}
        rows = []
        for mode, kind, knob in CASES:
            for value in [v for v in ("fast", "azure") if args.only in (None, v)]:
                res = run_case(mode, kind, knob, value, args.runs, env)
                rows.append((mode, kind, f"{knob} {value}", *medians(res), AZURE[(mode, kind)]))
    print(f"| gateway | failover | setting | worst UDP flow VNet->site (median of {args.runs}) | worst UDP flow "
          "site->VNet | ICMP round trip | Azure documents |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"load average after the runs: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
