"""Bounded chaos: N cycles of a random fault on a random node, each followed by heal/restore and `lab verify`.

Usage: python bench/soak.py [--cycles N] [--seed S] [--topology FILE] [--bound S]
The lab (a renamed copy of the reference topology: an active-standby gateway, a site, two hosts) runs in a
temporary LAB_HOME with its supervisor. Fault kinds: `lab fault kill|pause|charon-restart|link-down|loss`
followed by `lab restore`, and `docker restart` of a container from outside (the supervisor heals it, no lab
command). Recovery time: from the start of the recovery (the `lab restore` call, the `docker restart`, the
charon restart) until `lab inspect` shows every node running, no problem and both ends' tunnel up. Each
cycle ends with `lab verify` (all five checks). At the end: `lab down`, then leftovers (containers, namespace,
state directory, supervisor process). Prints per kind count / median / worst, the verify failures, the
leftovers and the load average. Bounded: N cycles, each at most --bound seconds to recover.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("kill", "docker-restart", "pause", "charon-restart", "link-down", "loss")
CHARON_NODES = ("azgw-0", "azgw-1", "onprem")
ALL_NODES = (*CHARON_NODES, "vm1", "pc1")
LINKS = ("azgw-0:eth0", "azgw-1:eth1", "onprem:eth0", "onprem:eth1", "vm1:eth0", "pc1:eth0")


def lab(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def healthy(name: str, env: dict[str, str]) -> bool:
    res = lab("inspect", name, "--json", env=env)
    if res.returncode:
        return False
    st = json.loads(res.stdout)
    up = {t["node"] for t in st["tunnels"] if t["state"] == "ESTABLISHED" and t["children"]
          and all(c["state"] == "INSTALLED" for c in t["children"])}
    return all(n["state"] == "running" for n in st["nodes"]) and not st["problems"] and "onprem" in up \
        and len(up) == 2


def wait_healthy(name: str, env: dict[str, str], t0: float, bound: float) -> float | None:
    while time.monotonic() - t0 < bound:
        if healthy(name, env):
            return time.monotonic() - t0
        time.sleep(0.25)
    return None


def one_cycle(kind: str, rng: random.Random, name: str, env: dict[str, str], bound: float) -> tuple[str, float | None]:
    """Break, recover; returns (what was done, recovery time or None when not recovered within bound)."""
    if kind == "docker-restart":
        node = rng.choice(ALL_NODES)
        t0 = time.monotonic()
        subprocess.run(["docker", "restart", "-t", "1", f"lab-{name}-{node}"], check=True, capture_output=True)
        return f"docker restart {node}", wait_healthy(name, env, t0, bound)
    target = rng.choice(CHARON_NODES if kind == "charon-restart" else LINKS if kind in ("link-down", "loss")
                        else ALL_NODES)
    extra = [str(rng.choice((20, 50, 80)))] if kind == "loss" else []
    res = lab("fault", kind, target, *extra, "--lab", name, env=env)
    if res.returncode:
        raise SystemExit(f"lab fault {kind} {target} failed:\n{res.stderr}")
    t0 = time.monotonic()
    if kind != "charon-restart":
        time.sleep(1.0)  # let the fault bite (the standby's agent may take over meanwhile)
        t0 = time.monotonic()
        res = lab("restore", "--lab", name, env=env)
        if res.returncode:
            return f"{kind} {target} (restore exit {res.returncode}: {res.stderr.strip()[-200:]})", None
    return f"{kind} {target} {' '.join(extra)}".strip(), wait_healthy(name, env, t0, bound)


def leftovers(name: str, home: Path, sup_pid: int | None) -> list[str]:
    out = subprocess.run(["docker", "ps", "-a", "--filter", f"label=lab.topology={name}", "--format", "{{.Names}}"],
                         capture_output=True, text=True).stdout.split()
    out += [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
            if n == f"lab-{name}"]
    out += [str(home / name)] if (home / name).exists() else []
    if sup_pid and Path(f"/proc/{sup_pid}/stat").exists() and \
            Path(f"/proc/{sup_pid}/stat").read_text().split(") ", 1)[1][0] != "Z":
        out.append(f"supervisor pid {sup_pid}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--topology", type=Path, default=ROOT / "topologies" / "s2s-route-based.yml")
    ap.add_argument("--bound", type=float, default=60.0, help="seconds a recovery may take")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    home = Path(tempfile.mkdtemp(prefix="lab-soak-"))
    env = {**os.environ, "LAB_HOME": str(home)}
    name = f"soak-{uuid.uuid4().hex[:4]}"
    topo = home / f"{name}.yml"
    topo.write_text(args.topology.read_text().replace("name: s2s-rb\n", f"name: {name}\n"))
    up = lab("up", str(topo), env=env)
    if up.returncode:
        raise SystemExit(f"lab up failed:\n{up.stderr}")
    sup = home / name / "supervisor.pid"
    time.sleep(0.5)
    sup_pid = int(sup.read_text()) if sup.exists() else None
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    failures: list[str] = []
    t_start = time.monotonic()
    try:
        for i in range(args.cycles):
            kind = rng.choice(KINDS)
            what, took = one_cycle(kind, rng, name, env, args.bound)
            ver = lab("verify", name, "--json", env=env)
            ok = ver.returncode == 0 and json.loads(ver.stdout or "{}").get("passed", False)
            if took is None:
                failures.append(f"cycle {i + 1}: {what}: not recovered within {args.bound:g} s")
            else:
                times[kind].append(took)
            if not ok:
                failures.append(f"cycle {i + 1}: {what}: lab verify failed (exit {ver.returncode})")
            print(f"cycle {i + 1:3}/{args.cycles}: {what:32} recovered "
                  f"{'never' if took is None else f'{took:5.1f} s'}  verify {'ok' if ok else 'FAILED'}", flush=True)
    finally:
        down = lab("down", name, env=env)
        time.sleep(1.0)
        left = leftovers(name, home, sup_pid)
    total = time.monotonic() - t_start
    print(f"\n{args.cycles} cycles in {total:.0f} s (seed {args.seed}); lab down exit {down.returncode}")
    print(f"{'fault kind':16} {'n':>3} {'median s':>9} {'worst s':>8}")
    for kind, xs in times.items():
        med = f"{statistics.median(xs):9.1f}" if xs else f"{'-':>9}"
        worst = f"{max(xs):8.1f}" if xs else f"{'-':>8}"
        print(f"{kind:16} {len(xs):3} {med} {worst}")
    print(f"verify failures / unrecovered: {len(failures)}" + "".join(f"\n  {f}" for f in failures))
    print(f"leftovers after lab down: {len(left)}" + "".join(f"\n  {x}" for x in left))
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    topo.unlink(missing_ok=True)
    if not any(home.iterdir()):
        home.rmdir()


if __name__ == "__main__":
    main()
