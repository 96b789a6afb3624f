"""`lab up` and `lab verify` of one topology on a simulated 3-host Docker Swarm vs on this machine's Docker
engine, once each (2 shared cores: take figures once, with the load beside them).

Usage: python bench/swarm.py [--sites N] [--hosts 3] [TOPOLOGY]
  --sites N: instead of TOPOLOGY, one VpnGw1 gateway with N sites (one host each), N <= 30.
Builds the simulation (python -m lab.runtime.swarm_sim), prints its build time, the figures and `uptime`
before and after, and removes every lab and the simulation even when a step fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.runtime import swarm_sim  # noqa: E402
from lab.runtime.base import default_containers_dir  # noqa: E402
from lab.runtime.docker import connect_runtime  # noqa: E402
from lab.runtime.image import ensure_image  # noqa: E402


def sites_topology(name: str, count: int) -> dict:
    """One gateway, `count` sites 198.51.100.(40+i), LANs 10.(100+i).0.0/16."""
    if not 1 <= count <= 30:
        raise SystemExit("--sites: 1..30")
    sites = {f"s{i}": {"public_ip": f"198.51.100.{40 + i}", "address_space": [f"10.{100 + i}.0.0/16"],
                       "hosts": {f"pc{i}": f"10.{100 + i}.0.10"}} for i in range(count)}
    return {"name": name, "gateways": {"hub": {
        "vpn_type": "RouteBased", "sku": "VpnGw1", "public_ips": ["203.0.113.40"], "active_active": False,
        "vnet": {"address_space": ["10.99.0.0/16"], "hosts": {"hubvm": "10.99.0.10"}}}},
        "sites": sites, "connections": {f"hub-s{i}": {"gateway": "hub", "site": f"s{i}"} for i in range(count)}}


def timed(argv: list[str], env: dict[str, str], timeout: float) -> tuple[float, str]:
    """Seconds the command took, and "" when it succeeded or its last error line when it failed."""
    start = time.monotonic()
    res = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    lines = (res.stdout + res.stderr).strip().splitlines() if res.returncode != 0 else []
    failed = next((ln for ln in reversed(lines) if ln.startswith("error")), lines[-1] if lines else "")
    return time.monotonic() - start, failed


def run_on(runtime_env: dict[str, str], data: dict, label: str) -> dict[str, tuple[float, str]]:
    env = {**os.environ, **runtime_env, "LAB_HOME": tempfile.mkdtemp(prefix="lab-bench-swarm-")}
    name = f"swb{label[:2]}-{uuid.uuid4().hex[:4]}"
    path = Path(env["LAB_HOME"]) / f"{name}.yml"
    path.write_text(yaml.safe_dump({**data, "name": name}))
    lab = [sys.executable, "-m", "lab"]
    out = {}
    try:
        out["up"] = timed([*lab, "up", str(path), "--timeout", "300"], env, 900)
        if not out["up"][1]:
            out["verify"] = timed([*lab, "verify", name], env, 900)
    finally:
        out["down"] = timed([*lab, "down", name], env, 300)
    return out


def show(result: tuple[float, str] | None) -> str:
    if result is None:
        return "not run"
    return f"{result[0]:6.1f} s" + (f" FAILED ({result[1]})" if result[1] else "")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("topology", nargs="?", default=str(ROOT / "topologies" / "s2s-route-based.yml"))
    ap.add_argument("--sites", type=int)
    ap.add_argument("--hosts", type=int, default=3)
    args = ap.parse_args()
    data = sites_topology("x", args.sites) if args.sites else yaml.safe_load(Path(args.topology).read_text())
    what = f"{args.sites} sites" if args.sites else Path(args.topology).name
    image = ensure_image(connect_runtime().client, default_containers_dir(), lambda line: None)
    print(f"before: {uptime()}")
    sim_name = f"swb{uuid.uuid4().hex[:5]}"
    swarm = swarm_sim.up(sim_name, args.hosts, [image])
    try:
        print(f"simulated swarm, {args.hosts} hosts: built in {swarm.timings['total_s']:.1f} s (engines "
              f"{swarm.timings['engines_s']:.1f} s, swarm init/join {swarm.timings['swarm_s']:.1f} s, image "
              f"save|load {swarm.timings['images_s']:.1f} s)")
        one = run_on({"LAB_RUNTIME": "docker"}, data, "docker")
        many = run_on(swarm.env(), data, "swarm")
    finally:
        t0 = time.monotonic()
        swarm_sim.down(sim_name)
        print(f"simulated swarm removed in {time.monotonic() - t0:.1f} s, leftovers: {swarm_sim.leftovers(sim_name)}")
    for key in ("up", "verify", "down"):
        a, b = one.get(key), many.get(key)
        ratio = f" | ratio {b[0] / a[0]:.2f}" if a and b and not a[1] and not b[1] else ""
        print(f"{what}: lab {key:6} one engine {show(a)} | swarm ({args.hosts} hosts) {show(b)}{ratio}")
    print(f"after: {uptime()}")


if __name__ == "__main__":
    main()
