"""P2S scale bench: `lab up` time, connected clients, `lab verify` time and memory per client for N clients.

Bounded: each size has an up timeout (--up-timeout) and a hard subprocess limit; every lab it makes is brought
down afterwards under its own unique name. Goal: 100 clients up and verified in <= 120 s.
Usage: python bench/p2s.py [--sizes 10 50 100] [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MAX_CLIENTS = 200  # the bench refuses more: 2 shared cores


def lab(*args: str, home: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


def topology(name: str, n: int) -> dict:
    pool = "172.16.0.0/22" if n > 250 else "172.16.201.0/24"
    return {"name": name, "gateways": {"azgw": {
        "sku": "VpnGw1", "public_ips": ["203.0.113.10"], "active_active": False,
        "vnet": {"address_space": ["10.1.0.0/16"], "hosts": {"vm1": "10.1.0.10"}},
        "p2s": {"address_pool": pool, "clients": n}}}}


def memory_mib(name: str) -> dict[str, float]:
    """docker stats of the lab's containers: MiB per container."""
    out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}"],
                         capture_output=True, text=True, timeout=120).stdout
    sizes = {}
    for line in out.splitlines():
        cname, usage = line.split(" ", 1)
        if cname.startswith(f"lab-{name}-"):
            value = usage.split("/")[0].strip()
            num, unit = float(value.rstrip("KMGiB")), value.lstrip("0123456789.")
            sizes[cname] = num * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}.get(unit, 1)
    return sizes


def run_size(n: int, home: Path, up_timeout: float) -> dict[str, object]:
    name = f"p2sb-{uuid.uuid4().hex[:5]}"
    path = Path(tempfile.mkdtemp(prefix="p2s-bench-")) / "p2s.yml"
    path.write_text(yaml.safe_dump(topology(name, n)))
    try:
        t0 = time.monotonic()
        up = lab("up", str(path), "--timeout", str(up_timeout), home=home, timeout=up_timeout + 300)
        up_s = time.monotonic() - t0
        if up.returncode != 0:
            return {"clients": n, "up_ok": False, "up_s": round(up_s, 1), "error": up.stderr.strip()[-400:]}
        t1 = time.monotonic()
        ver = lab("verify", name, "--json", home=home, timeout=300)
        verify_s = time.monotonic() - t1
        st = json.loads(lab("inspect", name, "--json", home=home, timeout=120).stdout)
        connected = sum(1 for c in st["p2s_clients"] if c["state"] == "connected")
        mem = memory_mib(name)
        client_mem = [v for k, v in mem.items() if "-client" in k]
        return {"clients": n, "up_ok": True, "connected": connected, "up_s": round(up_s, 1),
                "up_s_per_client": round(up_s / n, 3), "verify_ok": ver.returncode == 0,
                "verify_s": round(verify_s, 1), "up_plus_verify_s": round(up_s + verify_s, 1),
                "mem_mib_per_client": round(sum(client_mem) / max(1, len(client_mem)), 1)}
    finally:
        lab("down", name, home=home, timeout=300)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10])
    ap.add_argument("--home", type=Path, default=Path(tempfile.mkdtemp(prefix="p2s-bench-home-")))
    ap.add_argument("--up-timeout", type=float, default=240.0)
    args = ap.parse_args()
    if max(args.sizes) > MAX_CLIENTS:
        sys.exit(f"at most {MAX_CLIENTS} clients per run")
    for n in args.sizes:
        print(json.dumps(run_size(n, args.home, args.up_timeout)), flush=True)


if __name__ == "__main__":
    main()
