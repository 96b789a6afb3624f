"""A simulated multi-node Docker Swarm on one machine, for tests and demos of the swarm runtime.

Each simulated host is a network namespace `<sim>-nN` running its own dockerd (own data root, exec root,
socket, containerd namespace and cgroup parent, a private mount namespace with its own /run and
/etc/docker); the hosts reach each other over an underlay bridge in a further namespace `<sim>-u`.
Nothing is added to the host's own network namespace, and the host's dockerd is only read from (`docker
save` of the images to copy). Everything is found again from the simulation's name alone, so `down`
removes what a crashed run left: processes (by the namespaces and cgroups they sit in), mounts, cgroups,
namespaces and the state directory.

    python -m lab.runtime.swarm_sim up NAME [--hosts 3]   # prints the environment that points lab at it
    python -m lab.runtime.swarm_sim down NAME
    python -m lab.runtime.swarm_sim crash NAME HOST        # a host dies: all its processes, its underlay link
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import docker
import docker.errors

from lab.errors import RuntimeBackendError
from lab.runtime.docker import client_at
from lab.runtime.image import image_exists
from lab.runtime.swarm import ENGINE_LABEL, copy_image

ROOT = Path(os.environ.get("LAB_SWARM_SIM_DIR", "/tmp/lab-swarm-sim"))
NETNS_DIR = Path("/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")
# An emulated datacenter underlay: only inside the simulation's namespaces (198.18.0.0/15 is lab-safe).
UNDERLAY = IPv4Network("198.19.254.0/24")
UNDERLAY_MTU = 1600  # room for VXLAN's 50 bytes around a 1500-byte lab frame
UP_TIMEOUT_S = 60.0
DATA_SIZE = "2g"  # per host's data root (tmpfs): the ~250 MB node image plus the containers' writes
DAEMON_JSON = {
    "bridge": "none",  # no docker0: lab nodes run with network none; the swarm needs no default bridge
    "shutdown-timeout": 2,
    "log-level": "warn",
    "storage-driver": "overlay2",
}
Progress = Callable[[str], None]


@dataclass(frozen=True)
class SimHost:
    """One simulated machine: its namespace, underlay address and engine socket."""

    sim: str
    index: int

    @property
    def name(self) -> str:
        return f"{self.sim}-n{self.index}"

    @property
    def netns(self) -> str:
        return self.name

    @property
    def addr(self) -> IPv4Address:
        return UNDERLAY.network_address + self.index

    @property
    def dir(self) -> Path:
        return ROOT / self.sim / self.name

    @property
    def socket(self) -> Path:
        return self.dir / "docker.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def underlay_port(self) -> str:
        """The host's veth in the underlay namespace."""
        return f"n{self.index}"


@dataclass(frozen=True)
class SimSwarm:
    name: str
    hosts: tuple[SimHost, ...]
    timings: dict[str, float]

    @property
    def manager(self) -> SimHost:
        return self.hosts[0]

    @property
    def underlay_ns(self) -> str:
        return f"{self.name}-u"

    def env(self) -> dict[str, str]:
        """What points `lab` at this swarm (lab/runtime/swarm.py reads them)."""
        return {"LAB_RUNTIME": "swarm", "LAB_SWARM_MANAGER": self.manager.url}


def hosts_of(name: str, count: int) -> tuple[SimHost, ...]:
    return tuple(SimHost(name, i) for i in range(1, count + 1))


def _run(*argv: str) -> str:
    res = subprocess.run(argv, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeBackendError(f"swarm sim: {' '.join(argv)}: {res.stderr.strip()}")
    return res.stdout


def _check_name(name: str) -> None:
    if not name or len(name) > 10 or not name.replace("-", "").isalnum():
        raise RuntimeBackendError(f"swarm sim name {name!r}: 1-10 letters, digits or '-'",
                                  hint="e.g. swarm-a1 (namespace names <name>-nN must fit 15 characters)")


def up(name: str, count: int = 3, images: Iterable[str] = (), progress: Progress = lambda _: None) -> SimSwarm:
    """Build the simulation; on any failure everything built so far is removed again."""
    _check_name(name)
    if leftovers(name):
        raise RuntimeBackendError(f"swarm sim {name!r} already exists",
                                  hint=f"python -m lab.runtime.swarm_sim down {name}")
    hosts = hosts_of(name, count)
    swarm = SimSwarm(name, hosts, {})
    t0 = time.monotonic()
    try:
        _underlay(swarm)
        swarm.timings["underlay_s"] = time.monotonic() - t0
        with ThreadPoolExecutor(max_workers=count) as pool:
            list(pool.map(_start_engine, hosts))
        swarm.timings["engines_s"] = time.monotonic() - t0 - swarm.timings["underlay_s"]
        progress(f"{count} engines up in {swarm.timings['engines_s']:.1f} s")
        t1 = time.monotonic()
        _form_swarm(swarm)
        swarm.timings["swarm_s"] = time.monotonic() - t1
        t2 = time.monotonic()
        for image in images:
            load_image(image, hosts, progress)
        swarm.timings["images_s"] = time.monotonic() - t2
    except BaseException:
        down(name)
        raise
    swarm.timings["total_s"] = time.monotonic() - t0
    progress(f"swarm {name}: {count} hosts in {swarm.timings['total_s']:.1f} s")
    return swarm


def _underlay(swarm: SimSwarm) -> None:
    u = swarm.underlay_ns
    _run("ip", "netns", "add", u)
    _run("ip", "-n", u, "link", "add", "br0", "mtu", str(UNDERLAY_MTU), "type", "bridge")
    _run("ip", "-n", u, "link", "set", "br0", "up")
    for host in swarm.hosts:
        _run("ip", "netns", "add", host.netns)
        _run("ip", "-n", host.netns, "link", "set", "lo", "up")
        _run("ip", "-n", host.netns, "link", "add", "eth0", "mtu", str(UNDERLAY_MTU), "type", "veth",
             "peer", "name", host.underlay_port, "mtu", str(UNDERLAY_MTU), "netns", u)
        _run("ip", "-n", u, "link", "set", host.underlay_port, "master", "br0", "up")
        _run("ip", "-n", host.netns, "addr", "add", f"{host.addr}/{UNDERLAY.prefixlen}", "dev", "eth0")
        _run("ip", "-n", host.netns, "link", "set", "eth0", "up")


def dockerd_argv(host: SimHost) -> list[str]:
    """dockerd in the host's namespace with a private mount namespace (sysfs of that namespace, tmpfs /run
    and /etc/docker so it shares no pid file, lock or engine ID with the machine's own dockerd). Its data root
    is a tmpfs in that mount namespace: it vanishes with the last process of the host (removing image
    layers from disk took ~30 s of `down` under load), and loading the image writes no disk."""
    d = host.dir
    script = (
        f"hostname {host.name} && mount --rbind /sys/fs/cgroup {d}/cgsave && mount -t sysfs sysfs /sys && "
        f"mount --rbind {d}/cgsave /sys/fs/cgroup && mount -t tmpfs tmpfs /run && "
        f"mount -t tmpfs tmpfs /etc/docker && mkdir -p {d}/data && "
        f"mount -t tmpfs -o size={DATA_SIZE} tmpfs {d}/data && "
        f"exec dockerd --config-file {d}/daemon.json "
        f"--data-root {d}/data --exec-root {d}/exec --pidfile {d}/docker.pid -H {host.url} "
        f"--cgroup-parent /{host.name} --containerd-namespace {host.name} "
        f"--containerd-plugins-namespace {host.name}-plugins"
    )
    return ["nsenter", f"--net={NETNS_DIR / host.netns}", "unshare", "-m", "-u", "--propagation", "private",
            "sh", "-c", script]


def _start_engine(host: SimHost) -> None:
    (host.dir / "cgsave").mkdir(parents=True, exist_ok=True)
    (host.dir / "daemon.json").write_text(json.dumps(DAEMON_JSON))
    with (host.dir / "dockerd.log").open("ab") as log:
        subprocess.Popen(dockerd_argv(host), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         start_new_session=True)
    deadline = time.monotonic() + UP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with engine(host) as client:
                client.ping()
                return
        except docker.errors.DockerException:
            time.sleep(0.1)
    raise RuntimeBackendError(f"swarm sim: dockerd of {host.name} did not answer in {UP_TIMEOUT_S:g} s",
                              hint=f"see {host.dir / 'dockerd.log'}")


@contextmanager
def engine(host: SimHost) -> Iterator[docker.DockerClient]:
    with _client(host.url) as client:
        yield client


@contextmanager
def _client(url: str) -> Iterator[docker.DockerClient]:
    """A client for one engine, closed afterwards (this docker SDK's client is no context manager)."""
    client = client_at(url)
    try:
        yield client
    finally:
        client.close()


def _form_swarm(swarm: SimSwarm) -> None:
    """init on the first host, join the others as workers, label every node with its engine's URL."""
    mgr = swarm.manager
    with engine(mgr) as client:
        client.swarm.init(advertise_addr=str(mgr.addr), listen_addr=f"{mgr.addr}:2377")
        token = client.swarm.attrs["JoinTokens"]["Worker"]
        for host in swarm.hosts[1:]:
            with engine(host) as worker:
                worker.swarm.join(remote_addrs=[f"{mgr.addr}:2377"], join_token=token,
                                  listen_addr=f"{host.addr}:2377", advertise_addr=str(host.addr))
        by_name = {h.name: h for h in swarm.hosts}
        for node in client.nodes.list():
            host = by_name[node.attrs["Description"]["Hostname"]]
            spec = node.attrs["Spec"]
            spec["Labels"] = {**spec.get("Labels", {}), ENGINE_LABEL: host.url}
            node.update(spec)


def load_image(image: str, hosts: Iterable[SimHost], progress: Progress = lambda _: None) -> None:
    """`docker save` from this machine's engine, `docker load` into every host missing it, in parallel."""
    missing = [h for h in hosts if not _has_image(h.url, image)]
    if not missing:
        return
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(missing)) as pool:
        list(pool.map(lambda h: copy_image(image, h.url), missing))
    progress(f"image {image} loaded into {len(missing)} hosts in {time.monotonic() - t0:.1f} s")


def _has_image(url: str, image: str) -> bool:
    with _client(url) as client:
        return image_exists(client, image)


# ---- teardown: from the name alone -----------------------------------------------------------------------


def _sim_netns(name: str) -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name == f"{name}-u" or _is_host_ns(name, p.name))


def _is_host_ns(name: str, ns: str) -> bool:
    prefix = f"{name}-n"
    return ns.startswith(prefix) and ns[len(prefix):].isdigit()


def _sim_cgroups(name: str) -> list[Path]:
    if not CGROUP_ROOT.is_dir():
        return []
    found = []
    for controller in CGROUP_ROOT.iterdir():
        if controller.is_dir() and not controller.is_symlink():
            found += [p for p in controller.glob(f"{name}-n*") if _is_host_ns(name, p.name)]
    return sorted(found)


def _sim_pids(name: str) -> set[int]:
    """Processes in a host namespace of the simulation or in one of its cgroups (container processes have
    their own network namespaces but sit in the host's cgroup parent)."""
    inodes = {os.stat(NETNS_DIR / ns).st_ino for ns in _sim_netns(name)}
    pids: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.stat(proc / "ns" / "net").st_ino in inodes:
                pids.add(int(proc.name))
        except OSError:
            continue
    for cg in _sim_cgroups(name):
        for tasks in cg.rglob("cgroup.procs"):
            try:
                pids |= {int(p) for p in tasks.read_text().split()}
            except OSError:
                continue
    pids.discard(os.getpid())
    return pids


def leftovers(name: str) -> list[str]:
    """Everything of the simulation that exists now (empty: nothing left)."""
    found = [f"netns {ns}" for ns in _sim_netns(name)]
    found += [f"cgroup {cg}" for cg in _sim_cgroups(name)]
    found += [f"process {pid}" for pid in sorted(_sim_pids(name))]
    if (ROOT / name).exists():
        found.append(f"dir {ROOT / name}")
    return found


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue


def _wait_gone(name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _sim_pids(name):
            return True
        time.sleep(0.2)
    return not _sim_pids(name)


def down(name: str) -> list[str]:
    """Kill every process of the simulation (its state is thrown away, so nothing needs a clean stop), then
    remove cgroups, namespaces and files."""
    _check_name(name)
    before = leftovers(name)
    for _ in range(10):  # engines may still be starting processes while the first ones die
        _signal_all(_sim_pids(name), signal.SIGKILL)
        if _wait_gone(name, 2.0):
            break
    for cg in _sim_cgroups(name):
        for sub in sorted(cg.rglob("*"), key=lambda p: len(p.parts), reverse=True) + [cg]:
            if sub.is_dir():
                try:
                    sub.rmdir()
                except OSError:
                    continue
    for ns in _sim_netns(name):
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
    shutil.rmtree(ROOT / name, ignore_errors=True)
    left = leftovers(name)
    if left:
        raise RuntimeBackendError(f"swarm sim {name!r}: could not remove {', '.join(left)}")
    return before


def crash(name: str, host_name: str) -> None:
    """The host dies at once: its underlay link goes down and every process on it is killed (its dockerd,
    containerd, shims and containers), as a power cut would."""
    host = next((h for h in hosts_of(name, 64) if h.name == host_name), None)
    if host is None or host.netns not in _sim_netns(name):
        raise RuntimeBackendError(f"swarm sim {name!r}: no host {host_name!r}")
    _run("ip", "-n", f"{name}-u", "link", "set", host.underlay_port, "down")
    inode = os.stat(NETNS_DIR / host.netns).st_ino
    victims = {p for p in _sim_pids(name) if _in_host(p, inode, host)}
    _signal_all(victims, signal.SIGKILL)


def _in_host(pid: int, inode: int, host: SimHost) -> bool:
    try:
        if os.stat(f"/proc/{pid}/ns/net").st_ino == inode:
            return True
        return f"/{host.name}/" in Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.runtime.swarm_sim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="build a simulated swarm")
    p_up.add_argument("name")
    p_up.add_argument("--hosts", type=int, default=3)
    p_up.add_argument("--image", action="append", default=[], help="image to copy onto every host")
    sub.add_parser("down", help="remove it, whatever is left of it").add_argument("name")
    sub.add_parser("leftovers", help="list what exists of it").add_argument("name")
    p_crash = sub.add_parser("crash", help="kill one host")
    p_crash.add_argument("name")
    p_crash.add_argument("host")
    args = parser.parse_args(argv)
    say = lambda line: print(line, file=sys.stderr)  # noqa: E731
    if args.cmd == "up":
        swarm = up(args.name, args.hosts, args.image, say)
        for key, value in swarm.env().items():
            print(f"export {key}={value}")
        say(" ".join(f"{k}={v:.2f}" for k, v in swarm.timings.items()))
    elif args.cmd == "down":
        say("\n".join(down(args.name)) or "nothing to remove")
    elif args.cmd == "leftovers":
        left = leftovers(args.name)
        print("\n".join(left))
        return 1 if left else 0
    else:
        crash(args.name, args.host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
