"""`lab up`, `lab verify` (and optionally `lab bench`) of one lab on a simulated 3-host Docker Swarm and/or on
this machine's Docker engine, once each (2 shared cores: take figures once, with the load beside each).

Usage: python bench/swarm.py [--runtime docker|swarm|both] [--hosts 3] [--bench] [--place NODE=I,...] [--sim NAME]
                             [--sites N | --p2s N | TOPOLOGY]
  TOPOLOGY     a topology file (default: the reference lab topologies/s2s-route-based.yml)
  --sites N    instead: one VpnGw1 gateway with N sites (one host each), N <= 30
  --p2s N      instead: one gateway with N point-to-site clients (VpnGw2 above 250), N <= 500; adds memory
               (each container's cgroup, and the machine's MemAvailable before and after `lab up`)
  --bench      after a passing verify: `lab bench -t 5 --cc cubic`: the uncapped tunnel and the plain
               VNet-host -> gateway hop; with both runtimes, the swarm / one-engine ratio of each
  --sim NAME   use a simulated swarm already up (python -m lab.runtime.swarm_sim up NAME --image TAG) and
               leave it up: several runs share one build
  --place      swarm placement by host index (1 = the manager, which holds the lab namespace), e.g.
               azgw-0=2,onprem=3: becomes LAB_SWARM_PLACE with the simulated hosts' names
After `lab up`, `lab inspect --json` gives where the nodes run (the placement) and the connected P2S clients.
Builds the simulation (python -m lab.runtime.swarm_sim) when the swarm runs, prints its build time, each
figure with the load average at its start and end, and removes every lab and the simulation even when a step
fails. Every step has a hard time limit.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.runtime import swarm_sim  # noqa: E402
from lab.runtime.base import LABEL_LAB, default_containers_dir  # noqa: E402
from lab.runtime.docker import connect_runtime  # noqa: E402
from lab.runtime.image import ensure_image  # noqa: E402

PREFIX = "sw2-"  # every lab and simulated swarm this bench makes
MAX_SITES = 30
MAX_P2S = 500  # VpnGw2's IKEv2 limit; 2 shared cores
STEP_LIMIT_S = {"up": 900.0, "verify": 600.0, "bench": 300.0, "inspect": 180.0, "down": 600.0}


# ---- topologies (pure) -------------------------------------------------------------------------------------


def sites_topology(name: str, count: int) -> dict[str, Any]:
    """One gateway, `count` sites 198.51.100.(40+i), LANs 10.(100+i).0.0/16."""
    if not 1 <= count <= MAX_SITES:
        raise SystemExit(f"--sites: 1..{MAX_SITES}")
    sites = {f"s{i}": {"public_ip": f"198.51.100.{40 + i}", "address_space": [f"10.{100 + i}.0.0/16"],
                       "hosts": {f"pc{i}": f"10.{100 + i}.0.10"}} for i in range(count)}
    return {"name": name, "gateways": {"hub": {
        "vpn_type": "RouteBased", "sku": "VpnGw1", "public_ips": ["203.0.113.40"], "active_active": False,
        "vnet": {"address_space": ["10.99.0.0/16"], "hosts": {"hubvm": "10.99.0.10"}}}},
        "sites": sites, "connections": {f"hub-s{i}": {"gateway": "hub", "site": f"s{i}"} for i in range(count)}}


def p2s_topology(name: str, count: int) -> dict[str, Any]:
    """One active-standby gateway with `count` certificate clients (VpnGw1 allows 250, VpnGw2 500)."""
    if not 1 <= count <= MAX_P2S:
        raise SystemExit(f"--p2s: 1..{MAX_P2S}")
    return {"name": name, "gateways": {"azgw": {
        "sku": "VpnGw1" if count <= 250 else "VpnGw2", "public_ips": ["203.0.113.10"], "active_active": False,
        "vnet": {"address_space": ["10.1.0.0/16"], "hosts": {"vm1": "10.1.0.10"}},
        "p2s": {"address_pool": "172.16.0.0/22" if count > 250 else "172.16.201.0/24", "clients": count}}}}


def placement(spec: str, host_names: list[str]) -> str:
    """`node=I,...` (I: 1-based host index) -> LAB_SWARM_PLACE `node=<host name>,...`."""
    out = []
    for item in filter(None, spec.split(",")):
        node, _, index = item.partition("=")
        if not index.isdigit() or not 1 <= int(index) <= len(host_names):
            raise SystemExit(f"--place {item!r}: want node=I with I in 1..{len(host_names)}")
        out.append(f"{node}={host_names[int(index) - 1]}")
    return ",".join(out)


def bench_figures(result: dict[str, Any]) -> dict[str, float]:
    """`lab bench --json` -> {"uncapped": Mbps, "veth": Mbps} (cubic)."""
    return {m["kind"]: m["mbps"] for m in result.get("measurements", [])
            if m["kind"] in ("uncapped", "veth") and m["congestion"] == "cubic"}


def cgroup_memory_mib(pid: int, root: Path = Path("/sys/fs/cgroup")) -> float:
    """A container's memory as `docker stats` counts it (usage minus inactive file pages), from the cgroup its
    init `pid` sits in (v1 memory controller, else v2)."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    v1 = next((ln.split(":", 2)[2] for ln in lines if ln.split(":")[1] == "memory"), None)
    if v1 is not None:
        d = root / "memory" / v1.lstrip("/")
        usage, stat_key = int((d / "memory.usage_in_bytes").read_text()), "total_inactive_file"
    else:
        d = root / next(ln.split(":", 2)[2] for ln in lines if ln.startswith("0::")).lstrip("/")
        usage, stat_key = int((d / "memory.current").read_text()), "inactive_file"
    stat = dict(ln.split() for ln in (d / "memory.stat").read_text().splitlines())
    return max(0, usage - int(stat.get(stat_key, 0))) / 2**20


def mem_available_mib() -> float:
    line = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemAvailable:"))
    return int(line.split()[1]) / 1024


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ---- running the real CLI ----------------------------------------------------------------------------------


@dataclass
class Step:
    seconds: float
    error: str  # "" when it succeeded
    load_before: str
    load_after: str
    output: str = ""

    def show(self) -> str:
        state = f"FAILED ({self.error})" if self.error else "ok"
        return f"{self.seconds:6.1f} s {state} [load {self.load_before} -> {self.load_after}]"


@dataclass
class Run:
    runtime: str
    lab: str
    steps: dict[str, Step] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def timed(argv: list[str], env: dict[str, str], limit: float) -> Step:
    """Run `argv` (bounded by `limit` seconds); its time, the load beside it, and its last error line."""
    before, start = loadavg(), time.monotonic()
    try:
        res = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=limit)
        code, out, err = res.returncode, res.stdout, res.stderr
    except subprocess.TimeoutExpired:
        code, out, err = 124, "", f"error: no answer within {limit:.0f} s"
    seconds = time.monotonic() - start
    lines = (out + err).strip().splitlines() if code != 0 else []
    failed = next((ln for ln in reversed(lines) if ln.startswith("error")), lines[-1] if lines else "")
    return Step(seconds, failed, before, loadavg(), out)


def lab_env(runtime_env: dict[str, str]) -> dict[str, str]:
    home = os.environ.get("LAB_HOME") or tempfile.mkdtemp(prefix="lab-bench-swarm-")
    return {**os.environ, **runtime_env, "LAB_HOME": home}


def run_on(runtime: str, runtime_env: dict[str, str], data: dict[str, Any], args: argparse.Namespace,
           engines: Callable[[], list[str]]) -> Run:
    """Up, verify (and bench / P2S figures), down of one lab on one runtime."""
    env = lab_env(runtime_env)
    name = f"{PREFIX}{runtime[0]}{uuid.uuid4().hex[:4]}"
    path = Path(env["LAB_HOME"]) / f"{name}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({**data, "name": name}))
    lab = [sys.executable, "-m", "lab"]
    run = Run(runtime, name)
    mem_before = mem_available_mib()
    try:
        run.steps["up"] = timed([*lab, "up", str(path), "--timeout", str(args.up_timeout)], env, STEP_LIMIT_S["up"])
        run.extra.update(inspect_figures(lab, name, env))
        if args.p2s:
            run.extra.update(p2s_memory(name, engines(), mem_before))
        if not run.steps["up"].error:
            run.steps["verify"] = timed([*lab, "verify", name], env, STEP_LIMIT_S["verify"])
        if args.bench and "verify" in run.steps and not run.steps["verify"].error:
            step = timed([*lab, "bench", name, "--json", "-t", "5", "--cc", "cubic"], env, STEP_LIMIT_S["bench"])
            run.steps["bench"] = step
            if not step.error:
                run.extra["bench"] = bench_figures(json.loads(step.output))
    finally:
        run.steps["down"] = timed([*lab, "down", name], env, STEP_LIMIT_S["down"])
    return run


def inspect_figures(lab: list[str], name: str, env: dict[str, str]) -> dict[str, Any]:
    """From `lab inspect --json`: where the nodes run (node -> host; counts per host for a large lab) and the
    connected P2S clients."""
    step = timed([*lab, "inspect", name, "--json"], env, STEP_LIMIT_S["inspect"])
    if step.error:
        return {"inspect": step.show()}
    st = json.loads(step.output)
    return {"inspect_s": round(step.seconds, 1), "placement": placement_summary(st["nodes"]),
            **({"connected": sum(1 for c in st["p2s_clients"] if c["state"] == "connected")}
               if st.get("p2s_clients") else {})}


def placement_summary(nodes: list[dict[str, Any]], spell_out: int = 8) -> dict[str, Any]:
    """node -> host for a small lab; for a large one, the gateway instances' hosts and nodes per host."""
    where = {n["name"]: n.get("host") or "this engine" for n in nodes}
    if len(where) <= spell_out:
        return where
    counts: dict[str, int] = {}
    for host in where.values():
        counts[host] = counts.get(host, 0) + 1
    gateways = {n["name"]: where[n["name"]] for n in nodes if n["role"] == "gateway"}
    return {**gateways, "nodes per host": dict(sorted(counts.items()))}


def p2s_memory(name: str, engines: list[str], mem_before: float) -> dict[str, Any]:
    """Memory per client container (its cgroup), of all the lab's containers, and what the machine lost."""
    mem = {node: cgroup_memory_mib(pid) for node, pid in container_pids(name, engines).items()}
    clients = [v for k, v in mem.items() if "-client" in k]
    return {"containers": len(mem), "mib_per_client": round(sum(clients) / max(1, len(clients)), 2),
            "mib_all_containers": round(sum(mem.values()), 1),
            "mem_available_delta_mib": round(mem_before - mem_available_mib(), 1)}


def container_pids(lab: str, engines: list[str]) -> dict[str, int]:
    """node -> its container's init pid, on every engine given."""
    pids = {}
    for url in engines:
        client = docker.DockerClient(base_url=url, timeout=120)
        try:
            for box in client.containers.list(filters={"label": f"{LABEL_LAB}={lab}"}):
                pids[str(box.labels.get("lab.node", box.name))] = int(box.attrs["State"]["Pid"])
        finally:
            client.close()
    return pids


# ---- the simulated swarm -----------------------------------------------------------------------------------


@contextmanager
def simulated_swarm(hosts: int, image: str, existing: str | None) -> Iterator[swarm_sim.SimSwarm]:
    """A new simulated swarm, removed afterwards; or (`existing`) one already built, left as it is."""
    if existing:
        if not swarm_sim.leftovers(existing):
            raise SystemExit(f"--sim {existing}: no such simulated swarm (python -m lab.runtime.swarm_sim up)")
        yield swarm_sim.SimSwarm(existing, swarm_sim.hosts_of(existing, hosts), {})
        return
    name = f"{PREFIX}{uuid.uuid4().hex[:5]}"
    before = loadavg()
    swarm = swarm_sim.up(name, hosts, [image])
    print(f"simulated swarm {name}, {hosts} hosts: built in {swarm.timings['total_s']:.1f} s (engines "
          f"{swarm.timings['engines_s']:.1f} s, swarm init/join {swarm.timings['swarm_s']:.1f} s, image "
          f"save|load {swarm.timings['images_s']:.1f} s) [load {before} -> {loadavg()}]", flush=True)
    try:
        yield swarm
    finally:
        t0 = time.monotonic()
        swarm_sim.down(name)
        print(f"simulated swarm removed in {time.monotonic() - t0:.1f} s, leftovers: {swarm_sim.leftovers(name)}")


def report(what: str, runs: list[Run]) -> None:
    for run in runs:
        label = "one engine" if run.runtime == "docker" else "swarm"
        for key, step in run.steps.items():
            print(f"{what}: lab {key:6} {label:10} {step.show()}")
        for key, value in run.extra.items():
            print(f"{what}: {label:10} {key} {value}")
    if len(runs) == 2:
        one, many = runs
        for key in ("up", "verify"):
            a, b = one.steps.get(key), many.steps.get(key)
            if a and b and not a.error and not b.error:
                print(f"{what}: lab {key} swarm / one engine = {b.seconds / a.seconds:.2f}")
        a_bench, b_bench = one.extra.get("bench", {}), many.extra.get("bench", {})
        for kind in ("uncapped", "veth"):
            if a_bench.get(kind) and b_bench.get(kind):
                print(f"{what}: lab bench {kind} (cubic) swarm {b_bench[kind]} Mbps / one engine "
                      f"{a_bench[kind]} Mbps = {b_bench[kind] / a_bench[kind]:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("topology", nargs="?", default=str(ROOT / "topologies" / "s2s-route-based.yml"))
    ap.add_argument("--runtime", choices=("docker", "swarm", "both"), default="both")
    ap.add_argument("--sites", type=int)
    ap.add_argument("--p2s", type=int)
    ap.add_argument("--hosts", type=int, default=3)
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--place", default="")
    ap.add_argument("--sim", help="use this simulated swarm (already up, with the image) and leave it up")
    ap.add_argument("--up-timeout", type=int, default=300, help="lab up --timeout (tunnels)")
    args = ap.parse_args()
    if args.sites:
        data, what = sites_topology("x", args.sites), f"{args.sites} sites"
    elif args.p2s:
        data, what = p2s_topology("x", args.p2s), f"{args.p2s} P2S clients"
    else:
        data, what = yaml.safe_load(Path(args.topology).read_text()), Path(args.topology).name
    local = connect_runtime()
    image = ensure_image(local.client, default_containers_dir(), lambda line: None)
    print(f"before: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}", flush=True)
    runs = []
    if args.runtime in ("docker", "both"):
        host_url = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        runs.append(run_on("docker", {"LAB_RUNTIME": "docker"}, data, args, lambda: [host_url]))
    if args.runtime in ("swarm", "both"):
        with simulated_swarm(args.hosts, image, args.sim) as swarm:
            env = swarm.env() | {"LAB_SWARM_PLACE": placement(args.place, [h.name for h in swarm.hosts])}
            runs.append(run_on("swarm", env, data, args, lambda: [h.url for h in swarm.hosts]))
    report(what, runs)
    print(f"after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
