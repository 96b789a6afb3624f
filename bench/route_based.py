"""Route-based scale bench: N route-based tunnels on one VpnGw4 gateway (one charon and interface per tunnel
on each end): `lab up` time, `lab verify` time, `lab inspect --json` time, charon memory per tunnel, containers,
and the load average.

Bounded: at most MAX_TUNNELS tunnels, each size with an up timeout and a hard subprocess limit; every lab is
brought down afterwards under its own unique name. Goal (issue #12): 100 tunnels up and verified in <= 60 s.
Usage: python bench/route_based.py [--sizes 10 100] [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MAX_TUNNELS = 100  # VpnGw4's S2S limit, and 2 shared cores


def lab(*args: str, home: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


def timed_lab(*args: str, home: Path, timeout: float) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Like `lab`, and each progress line on stderr with the seconds since the start it appeared at: where
    the time goes, stage by stage (the profile the figures need)."""
    env = {**os.environ, "LAB_HOME": str(home)}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "lab", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read() if proc.stdout else ""))
    reader.start()
    err, stages = [], []
    for line in proc.stderr or ():
        err.append(line)
        stages.append(f"{time.monotonic() - t0:6.1f}s {line.strip()[:100]}")
    code = proc.wait()
    reader.join()
    timer.cancel()
    stages.append(f"{time.monotonic() - t0:6.1f}s exit {code}")
    return subprocess.CompletedProcess(proc.args, code, "".join(out), "".join(err)), stages


def topology(name: str, n: int) -> dict:
    """One VpnGw4 gateway (active-standby: its warm standby mirrors every tunnel) and n sites with a host."""
    sites = {f"s{i}": {"public_ip": f"198.51.100.{i + 1}", "address_space": [f"10.2.{i}.0/24"],
                       "hosts": {f"h{i}": f"10.2.{i}.10"}} for i in range(n)}
    return {"name": name,
            "gateways": {"azgw": {"sku": "VpnGw4", "public_ips": ["203.0.113.10"],
                                  "vnet": {"address_space": ["10.1.0.0/16"], "hosts": {"vm1": "10.1.0.10"}}}},
            "sites": sites,
            "connections": {f"c{i}": {"gateway": "azgw", "site": f"s{i}"} for i in range(n)}}


def charon_rss_mib(name: str, node: str) -> list[float]:
    """RSS of every charon in a node's container (its main one and one per tunnel), MiB."""
    out = subprocess.run(["docker", "exec", f"lab-{name}-{node}", "ps", "-C", "charon", "-o", "rss="],
                         capture_output=True, text=True, timeout=60).stdout
    return [int(x) / 1024 for x in out.split()]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_size(n: int, home: Path, up_timeout: float, prefix: str) -> dict[str, object]:
    name = f"{prefix}-rbb-{uuid.uuid4().hex[:4]}"
    path = Path(tempfile.mkdtemp(prefix="rb-bench-")) / "rb.yml"
    path.write_text(yaml.safe_dump(topology(name, n)))
    try:
        load_before = loadavg()
        t0 = time.monotonic()
        up, up_stages = timed_lab("up", str(path), "--timeout", str(up_timeout), home=home,
                                  timeout=up_timeout + 300)
        up_s = time.monotonic() - t0
        if up.returncode != 0:
            return {"tunnels": n, "up_ok": False, "up_s": round(up_s, 1), "up_stages": up_stages,
                    "error": up.stderr.strip()[-600:]}
        t1 = time.monotonic()
        ver, verify_stages = timed_lab("verify", name, "--json", home=home, timeout=600)
        verify_s = time.monotonic() - t1
        report = json.loads(ver.stdout) if ver.stdout.strip().startswith("{") else {}
        t2 = time.monotonic()
        st = json.loads(lab("inspect", name, "--json", home=home, timeout=300).stdout)
        inspect_s = time.monotonic() - t2
        gw, site, standby = charon_rss_mib(name, "azgw-0"), charon_rss_mib(name, "s0"), charon_rss_mib(name, "azgw-1")
        return {"tunnels": n, "up_ok": True, "containers": len(st["nodes"]),
                "interfaces": len(st["interfaces"]), "charons_gateway": len(gw), "charons_standby": len(standby),
                "up_s": round(up_s, 1), "up_stages": up_stages, "verify_stages": verify_stages,
                "verify_ok": ver.returncode == 0, "verify_s": round(verify_s, 1),
                "up_plus_verify_s": round(up_s + verify_s, 1), "inspect_json_s": round(inspect_s, 1),
                "failed_checks": [f"{c['name']}: {c['summary']}: {c.get('evidence', [])[:3]}"
                                  for c in report.get("checks", []) if not c["passed"]],
                # no report: `lab verify` could not check the lab (exit 2); its error says why
                "verify_error": "" if report else ver.stderr.strip()[-800:],
                "charon_rss_mib_avg": round(sum(gw) / max(1, len(gw)), 1),
                "gateway_charons_rss_mib": round(sum(gw), 1), "site_charons_rss_mib": round(sum(site), 1),
                "load_before": load_before, "load_after": loadavg()}
    finally:
        lab("down", name, home=home, timeout=600)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10])
    ap.add_argument("--home", type=Path, default=Path(tempfile.mkdtemp(prefix="rb-bench-home-")))
    ap.add_argument("--up-timeout", type=float, default=300.0)
    ap.add_argument("--prefix", default="tun", help="lab names start with it (unique to whoever runs the bench)")
    args = ap.parse_args()
    if max(args.sizes) > MAX_TUNNELS:
        sys.exit(f"at most {MAX_TUNNELS} tunnels per run")
    for n in args.sizes:
        print(json.dumps(run_size(n, args.home, args.up_timeout, args.prefix)), flush=True)


if __name__ == "__main__":
    main()
