#!/usr/bin/env python3
"""Throughput figures of this machine, end to end through the real CLI: a Basic lab and a VpnGw1 lab (two
sites) are brought up under unique names in a scratch LAB_HOME, `lab bench --json` runs on each, and
the labs are removed again (also on failure or Ctrl-C).

Prints: raw (uncapped) tunnel Mbps, plain veth Mbps and their ratio, and the capped aggregate beside the
SKU cap, per congestion control. `--tune-host` adds the run with net.core.rmem_default = 4 MiB (host-wide,
restored afterwards by `lab bench`). Run as root on the lab machine: `python bench/bench.py [-t 5]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "integration" / "data"
LABS = (("basic-rb.yml", "bench-basic", "Basic"), ("vpngw1.yml", "bench-gw1", "VpnGw1"))


def lab(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


def run_one(home: Path, file: str, name: str, bench_args: list[str]) -> dict[str, Any]:
    """Up (under a unique name), bench, down; the result of `lab bench --json`."""
    unique = f"{name[:9]}-{os.getpid() % 100000}"
    topo = home / f"{unique}.yml"
    topo.write_text((DATA / file).read_text().replace(f"name: {name}", f"name: {unique}"))
    try:
        up = lab(home, "up", str(topo))
        if up.returncode != 0:
            raise SystemExit(f"lab up {topo} failed:\n{up.stderr}")
        res = lab(home, "bench", unique, "--json", *bench_args)
        if res.returncode != 0:
            raise SystemExit(f"lab bench {unique} failed:\n{res.stderr}")
        return dict(json.loads(res.stdout))
    finally:
        lab(home, "down", unique)


def figure(result: dict[str, Any], kind: str, cc: str) -> str | None:
    """'<Mbps> Mbps (<TCP retransmits> retr)' of the first measurement of that kind and congestion control."""
    found = [m for m in result["measurements"] if m["kind"] == kind and m["congestion"] == cc]
    if not found:
        return None
    return f"{found[0]['mbps']} Mbps ({sum(f['retransmits'] for f in found[0]['flows'])} retr)"


def show(sku: str, result: dict[str, Any]) -> None:
    ccs = list(dict.fromkeys(m["congestion"] for m in result["measurements"]))
    (cap,) = {m["cap_mbps"] for m in result["measurements"] if m["kind"] == "aggregate"}
    print(f"\n{sku} lab ({result['lab']}), iperf3 TCP {result['seconds']} s, load at start {result['loadavg']}")
    for cc in ccs:
        used = sorted({f["congestion"] for m in result["measurements"] if m["congestion"] == cc for f in m["flows"]})
        row = {k: figure(result, k, cc) for k in ("aggregate", "uncapped", "uncapped-tuned", "veth")}
        ratio = result["ratios"].get(cc)
        print(f"  {cc} ({'/'.join(used)}): capped aggregate {row['aggregate']} (SKU cap {cap} Mbps), "
              f"uncapped tunnel {row['uncapped']}, plain veth {row['veth']}, "
              f"tunnel/veth {f'{ratio:.1%}' if ratio else '-'}")
        if row["uncapped-tuned"] is not None:
            print(f"    uncapped tunnel with net.core.rmem_default = 4 MiB: {row['uncapped-tuned']}")
    for m in result["measurements"]:
        if m["kind"] in ("tunnel", "aggregate") and len(m["flows"]) > 1:
            flows = ", ".join(f"{f['server']} {f['mbps']}" for f in m["flows"])
            print(f"  {m['kind']} {m['label']} ({m['congestion']}): {flows}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-t", "--time", type=int, default=5, help="iperf3 -t per run (1-10)")
    parser.add_argument("--tune-host", action="store_true", help="also measure with a 4 MiB rmem_default")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON instead")
    args = parser.parse_args()
    bench_args = ["-t", str(args.time)] + (["--tune-host"] if args.tune_host else [])
    results = {}
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        for file, name, sku in LABS:
            print(f"measuring the {sku} lab ...", file=sys.stderr)
            results[sku] = run_one(Path(tmp), file, name, bench_args)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for sku, result in results.items():
        show(sku, result)


if __name__ == "__main__":
    main()
