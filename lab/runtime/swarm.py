"""`Runtime` on a Docker Swarm: each node is a container (network none) on one of the swarm's hosts, links are
per-link VXLAN into the segment bridges of the lab namespace on the hub host (see lab.runtime.vxlan).

The swarm gives membership and the hosts' underlay addresses; every swarm node carries the label
`lab.engine=<docker URL of that host's engine>`, through which containers are created, run and removed
exactly as the Docker runtime does (same names, labels, capabilities, devices, sysctls and /lab mount),
plus `lab.host=<host>` saying where a node runs. The hub is the manager `LAB_SWARM_MANAGER` points at; it
must be this machine (the lab namespace, captures and the state directory live here).

Host namespaces are reached through one agent container per (lab, host) with host networking: its
/proc/<pid>/ns/net is that host's underlay namespace. That needs every host's processes in this kernel's
pid space: true on the simulated swarm (lab/runtime/swarm_sim.py); a swarm of real machines needs the
agent to do the netlink work itself (docs/distributed.md).

Placement is a pure function of the node (`place`): a gateway's instances <gw>-0, <gw>-1 land on different
hosts; `LAB_SWARM_PLACE=node=host,...` overrides it per node.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

import docker
import docker.errors
import requests

from lab.errors import RuntimeBackendError
from lab.plan_types import NodePlan, Plan
from lab.runtime import image, links, preflight, vxlan
from lab.runtime.base import (
    LABEL_HOST,
    LABEL_LAB,
    Check,
    Dataplane,
    ExecResult,
    NodeAction,
    NodeInfo,
    PreflightReport,
    Progress,
    Runtime,
    container_name,
    namespace_name,
)
from lab.runtime.docker import DockerRuntime, client_at, client_from_env
from lab.runtime.hub import HubNamespace, remove_lab_namespace

ENGINE_LABEL = "lab.engine"
LABEL_AGENT = "lab.swarm.agent"  # agent containers carry this (not lab.topology: they are no lab node)
MANAGER_ENV = "LAB_SWARM_MANAGER"
PLACE_ENV = "LAB_SWARM_PLACE"
SETTINGS_ENV = (MANAGER_ENV, PLACE_ENV)  # recorded with a lab by `lab up` (lab/runtime/registry.py)
MANAGER_HINT = f"set {MANAGER_ENV}=<docker URL of a swarm manager on this machine> (python -m lab.runtime.swarm_sim up)"
NETNS_DIR = Path("/run/netns")


@dataclass(frozen=True)
class SwarmHost:
    name: str  # the swarm node's hostname
    addr: IPv4Address  # its underlay address (swarm's Status.Addr)
    url: str  # its engine (label lab.engine)
    ready: bool


# ---- placement (pure) ----------------------------------------------------------------------------------


def _stable(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def parse_overrides(text: str) -> dict[str, str]:
    """`node=host,node=host` -> {node: host}; a malformed entry is an error naming it."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        node, sep, host = item.partition("=")
        if not sep or not node or not host:
            raise RuntimeBackendError(f"{PLACE_ENV}: {item!r} is not node=host", hint="e.g. azgw-0=sw-n2,branch=sw-n3")
        out[node.strip()] = host.strip()
    return out


def place(node: NodePlan, hosts: Sequence[str], overrides: Mapping[str, str]) -> str:
    """The host a node runs on. Instances `<group>-<i>` of one gateway take consecutive hosts from a start
    chosen by the group's name (so two instances never share a host when there are two or more hosts); any
    other node goes where its name hashes. Deterministic: `heal` re-creates a node on the same host."""
    if not hosts:
        raise RuntimeBackendError("swarm: no ready host to place nodes on", hint="docker node ls on the manager")
    if node.name in overrides:
        if overrides[node.name] not in hosts:
            raise RuntimeBackendError(f"{PLACE_ENV}: node {node.name!r} -> {overrides[node.name]!r}: "
                                      "no such ready host", hint=f"one of: {', '.join(hosts)}")
        return overrides[node.name]
    ordered = sorted(hosts)
    suffix = node.name.removeprefix(f"{node.group}-")
    if node.role == "gateway" and node.group and suffix.isdigit():
        return ordered[(_stable(node.group) + int(suffix)) % len(ordered)]
    return ordered[_stable(node.name) % len(ordered)]


# ---- engines ---------------------------------------------------------------------------------------------


@contextmanager
def _errors(subject: str) -> Iterator[None]:
    try:
        yield
    except docker.errors.APIError as exc:
        raise RuntimeBackendError(f"{subject}: {exc.explanation or exc}") from exc
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise RuntimeBackendError(f"{subject}: {exc}", hint="is that host's dockerd up?") from exc


def swarm_hosts(manager: docker.DockerClient) -> list[SwarmHost]:
    """Every swarm node with its engine label; a node without one is an error naming the fix."""
    with _errors("swarm manager"):
        nodes = manager.nodes.list()
    hosts = []
    for node in nodes:
        name = node.attrs["Description"]["Hostname"]
        url = node.attrs["Spec"].get("Labels", {}).get(ENGINE_LABEL)
        if not url:
            raise RuntimeBackendError(f"swarm node {name}: no label {ENGINE_LABEL}",
                                      hint=f"docker node update --label-add {ENGINE_LABEL}=<its docker URL> {name}")
        status = node.attrs["Status"]
        hosts.append(SwarmHost(name, IPv4Address(status["Addr"]), url, status.get("State") == "ready"))
    return sorted(hosts, key=lambda h: h.name)


def copy_image(tag: str, url: str) -> None:
    """Pipe `docker save` (this machine's engine) into `docker load` on the engine at `url` (no registry)."""
    save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
    load = subprocess.run(["docker", "-H", url, "load", "-q"], stdin=save.stdout, capture_output=True, text=True)
    if save.stdout is not None:
        save.stdout.close()
    if save.wait() != 0 or load.returncode != 0:
        raise RuntimeBackendError(f"image {tag}: save | load into {url} failed: {load.stderr.strip()}",
                                  hint=f"is {tag} on this machine's engine? `docker images`")


def connect_runtime(env: Mapping[str, str] | None = None) -> SwarmRuntime:
    env = os.environ if env is None else env
    url = env.get(MANAGER_ENV)
    if not url:
        raise RuntimeBackendError(f"{MANAGER_ENV} is not set", hint=MANAGER_HINT)
    manager = client_at(url)
    with _errors(f"swarm manager {url}"):
        info = manager.info()
    if info.get("Swarm", {}).get("ControlAvailable") is not True:
        raise RuntimeBackendError(f"{url}: not a swarm manager", hint=MANAGER_HINT)
    local = client_from_env()
    hub = info["Swarm"]["NodeAddr"]
    return SwarmRuntime(manager, local, swarm_hosts(manager), IPv4Address(hub),
                        parse_overrides(env.get(PLACE_ENV, "")))


class SwarmRuntime(HubNamespace):
    """Nodes spread over a swarm's hosts, one engine each; see the module docstring and base.Runtime."""

    def __init__(self, manager: docker.DockerClient, local: docker.DockerClient, hosts: list[SwarmHost],
                 hub_addr: IPv4Address, overrides: Mapping[str, str]) -> None:
        self._manager = manager
        self._local = local
        self._hosts = {h.name: h for h in hosts}
        self._hub = next((h.name for h in hosts if h.addr == hub_addr), hosts[0].name if hosts else "")
        self._overrides = dict(overrides)
        self._engines: dict[str, DockerRuntime] = {}
        self._where: dict[tuple[str, str], str] = {}  # (lab, node) -> host, filled as found
        self._lock = threading.Lock()

    # -- engines and where nodes are

    def _engine(self, host: str) -> DockerRuntime:
        with self._lock:
            if host not in self._engines:
                self._engines[host] = DockerRuntime(client_at(self._hosts[host].url))
            return self._engines[host]

    def _ready(self) -> list[str]:
        return [h.name for h in self._hosts.values() if h.ready]

    def placement(self, plan: Plan) -> dict[str, str]:
        """node -> host for every node of the plan."""
        return {n.name: place(n, self._ready(), self._overrides) for n in plan.nodes}

    def _host_of(self, lab: str, node: str) -> str:
        """The host whose engine holds the node's container (from its label, found on the engines)."""
        if (lab, node) in self._where:
            return self._where[(lab, node)]
        for host in self._reachable():
            try:
                box = self._engine(host).client.containers.get(container_name(lab, node))
            except (docker.errors.NotFound, requests.RequestException):
                continue
            self._where[(lab, node)] = box.labels.get(LABEL_HOST, host)
            return self._where[(lab, node)]
        raise RuntimeBackendError(f"node {node!r}: no container {container_name(lab, node)} on any swarm host",
                                  hint=f"is lab {lab!r} up? `lab status`")

    def _reachable(self) -> list[str]:
        """Hosts whose engine answers now (a dead host is skipped, not an error)."""
        def answers(host: str) -> bool:
            try:
                return bool(self._engine(host).client.ping())
            except (docker.errors.DockerException, requests.RequestException):
                return False
        with ThreadPoolExecutor(max_workers=max(1, len(self._hosts))) as pool:
            flags = list(pool.map(answers, self._hosts))
        return [h for h, ok in zip(self._hosts, flags, strict=True) if ok]

    def _node_engine(self, lab: str, node: str) -> DockerRuntime:
        return self._engine(self._host_of(lab, node))

    # -- Runtime

    def preflight(self, requested: Dataplane | None = None) -> PreflightReport:
        """The Docker checks on this machine, plus: the swarm has ready hosts, each engine answers."""
        base = preflight.preflight(lambda: self._local, requested=requested)
        ready = self._ready()
        checks = [Check("swarm hosts", bool(ready), f"{len(ready)} ready: {', '.join(ready)}",
                        None if ready else "docker node ls on the manager")]
        reachable = set(self._reachable())
        for name in ready:
            ok = name in reachable
            checks.append(Check(f"engine {name}", ok, self._hosts[name].url,
                                None if ok else f"start the dockerd of {name} or fix its {ENGINE_LABEL} label"))
        return PreflightReport(base.checks + tuple(checks), base.dataplane)

    def ensure_image(self, containers_dir: Path, progress: Progress) -> str:
        """Built on this machine's engine; copied (save | load) onto every ready host that lacks it."""
        tag = image.ensure_image(self._local, containers_dir, progress)
        missing = [h for h in self._ready() if not image.image_exists(self._engine(h).client, tag)]
        if missing:
            progress(f"loading {tag} onto {', '.join(missing)}")
            with ThreadPoolExecutor(max_workers=len(missing)) as pool:
                list(pool.map(lambda h: copy_image(tag, self._hosts[h].url), missing))
        return tag

    def create_node(self, lab: str, node: NodePlan, image: str, mount: Path) -> None:
        host = place(node, self._ready(), self._overrides)
        self._ensure_agent(lab, host, image)
        self._engine(host).create_node(lab, node, image, mount, extra_labels={LABEL_HOST: host})
        self._where[(lab, node.name)] = host

    def wire(self, plan: Plan) -> None:
        pids = {n.name: self._node_engine(plan.lab, n.name).pid(plan.lab, n.name) for n in plan.nodes}
        links.wire(plan, pids, self._port_maker(plan))

    def _port_maker(self, plan: Plan) -> vxlan.PortMaker:
        where = {n.name: self._host_of(plan.lab, n.name) for n in plan.nodes}
        image_ref = self._agent_image(plan.lab)
        hosts = {h: self._vxlan_host(plan.lab, h, image_ref) for h in {*where.values(), self._hub}}
        return vxlan.PortMaker(plan.lab, str(NETNS_DIR / namespace_name(plan.lab)), hosts[self._hub],
                               {node: hosts[h] for node, h in where.items()})

    def exec(self, lab: str, node: str, argv: list[str], *, detach: bool = False,
             env: dict[str, str] | None = None, timeout: float | None = None) -> ExecResult:
        return self._node_engine(lab, node).exec(lab, node, argv, detach=detach, env=env, timeout=timeout)

    def list_nodes(self, lab: str | None = None) -> list[NodeInfo]:
        """Nodes by label on every reachable host."""
        hosts = self._reachable()
        with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
            found = list(pool.map(lambda h: self._engine(h).list_nodes(lab), hosts))
        return sorted((i for infos in found for i in infos), key=lambda i: (i.lab, i.node))

    def remove_lab(self, lab: str) -> list[str]:
        """Containers and agents on every reachable host, then the lab namespace; a host that does not answer
        is named (its containers died with it, or go when it is back and `lab down` runs again)."""
        names: list[str] = []
        reachable = self._reachable()
        for host in sorted(self._hosts):
            if host not in reachable:
                names.append(f"host {host} unreachable: skipped")
                continue
            engine = self._engine(host)
            names += [f"{n} on {host}" for n in engine.remove_lab(lab) if n.startswith("container ")]
            names += [f"agent on {host}" for _ in self._remove_agents(engine.client, lab)]
        names += remove_lab_namespace(lab)
        self._where = {k: v for k, v in self._where.items() if k[0] != lab}
        return names

    def node_action(self, lab: str, node: str, action: NodeAction) -> None:
        self._node_engine(lab, node).node_action(lab, node, action)

    def rewire_node(self, plan: Plan, node: str) -> None:
        engine = self._node_engine(plan.lab, node)
        links.rewire_node(plan, plan.node(node), engine.pid(plan.lab, node), self._port_maker(plan))
        running = {n.node: n.pid for n in self.list_nodes(plan.lab) if n.status == "running" and n.pid}
        links.forget_neighbours(plan, plan.node(node), running)

    def live_links(self, lab: str, node: str) -> dict[str, list[str]]:
        try:
            return self._node_engine(lab, node).live_links(lab, node)
        except RuntimeBackendError:
            return {}

    def events(self, lab: str, since: float, until: float) -> list[tuple[str, str]]:
        hosts = self._reachable()
        with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
            found = list(pool.map(lambda h: self._engine(h).events(lab, since, until), hosts))
        return [e for events in found for e in events]

    def shape(self, lab: str, node: str, iface: str, rate_mbps: int | None) -> None:
        self._node_engine(lab, node).shape(lab, node, iface, rate_mbps)

    # -- agents: one host-network container per (lab, host), a handle on that host's namespace

    def _agent_name(self, lab: str, host: str) -> str:
        return f"{container_name(lab, 'swarm-agent')}.{host}"

    def _ensure_agent(self, lab: str, host: str, image_ref: str) -> None:
        client = self._engine(host).client
        with self._lock, _errors(f"agent on {host}"):
            try:
                client.containers.get(self._agent_name(lab, host))
                return
            except docker.errors.NotFound:
                pass
            client.containers.run(image_ref, ["sleep", "infinity"], name=self._agent_name(lab, host),
                                  labels={LABEL_AGENT: lab, LABEL_HOST: host}, network_mode="host",
                                  init=True, detach=True)

    def _agent_image(self, lab: str) -> str:
        """The image the lab's nodes run (agents use it too: it is on every host they are on)."""
        for host in self._reachable():
            boxes = self._engine(host).client.containers.list(filters={"label": f"{LABEL_LAB}={lab}"})
            if boxes:
                return str(boxes[0].attrs["Config"]["Image"])
        raise RuntimeBackendError(f"lab {lab!r}: no running node on any host", hint="lab up first")

    def _vxlan_host(self, lab: str, host: str, image_ref: str) -> vxlan.Host:
        self._ensure_agent(lab, host, image_ref)
        engine = self._engine(host)
        with _errors(f"agent on {host}"):
            state = engine.client.api.inspect_container(self._agent_name(lab, host))["State"]
        if not state.get("Running"):
            raise RuntimeBackendError(f"agent on {host} is {state.get('Status')}", hint=f"lab down {lab}")
        return vxlan.Host(host, f"/proc/{state['Pid']}/ns/net", self._hosts[host].addr)

    @staticmethod
    def _remove_agents(client: docker.DockerClient, lab: str) -> list[str]:
        with _errors("agents"):
            boxes = client.containers.list(all=True, filters={"label": f"{LABEL_AGENT}={lab}"})
            for box in boxes:
                box.remove(force=True)
        return [str(box.name) for box in boxes]


def _is_a_runtime(runtime: SwarmRuntime) -> Runtime:
    """Checked by mypy (`make lint`): SwarmRuntime satisfies the Runtime protocol."""
    return runtime

