"""`Runtime` on the Docker SDK: one container per node (network mode none), links wired by `links`.

The client is injected (built once in lab/cli.py). Containers are found again by label, never from
memory, so `remove_lab` and `list_nodes` work after a crash with no state file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import docker
import docker.errors
import requests

from lab.errors import RuntimeBackendError
from lab.plan_types import NodePlan, Plan
from lab.runtime import image, links, preflight, shaping
from lab.runtime.base import (
    LABEL_GROUP,
    LABEL_HOST,
    LABEL_LAB,
    LABEL_NODE,
    LABEL_ROLE,
    LABEL_STATE,
    Dataplane,
    ExecResult,
    NodeAction,
    NodeInfo,
    PreflightReport,
    Progress,
    Runtime,
    container_name,
)
from lab.runtime.hub import HubNamespace, remove_lab_namespace
from lab.timing import scaled

# ip_forward: every node may route; rp_filter off: asymmetric paths (ECMP, tunnels) are the point;
# IPv6 off: no RS/MLD/DAD chatter in captures of an IPv4-only lab (also applies to veths added later,
# via `default`).
SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
    # ECMP (active-active VNet hosts) hashes on L4 ports too, so several flows spread over both instances.
    "net.ipv4.fib_multipath_hash_policy": "1",
}
CAPS = ["NET_ADMIN", "NET_RAW"]
# FRR 8.4's zebra and bgpd refuse to start without CAP_SYS_ADMIN in their bounding set (privs_init:
# "Wanted caps: cap_net_admin,cap_net_raw,cap_sys_admin"): gateway and site nodes may run FRR (lab/routing).
# Route-based tunnels need it too: each tunnel's charon runs in its own network namespace inside the node, with a
# private /run (`ip netns add`, `ip netns exec` and mounts): docs/route-based.md.
ROUTER_CAPS = [*CAPS, "SYS_ADMIN"]
DEVICES = ["/dev/net/tun:/dev/net/tun:rwm"]
DAEMON_HINT = "is dockerd running? `make setup`, or start it with `dockerd &`"
IMAGE_HINT = "build the node image first (lab/runtime/image.py)"
REMOVE_WORKERS = 8
STOP_TIMEOUT_S = 5  # docker stop: SIGTERM, then SIGKILL after this


@contextmanager
def _docker_errors(subject: str, lab: str) -> Iterator[None]:
    """Re-raise Docker SDK/transport failures as RuntimeBackendError naming `subject` with a next step."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise RuntimeBackendError(f"{subject}: {exc.explanation}", hint=IMAGE_HINT) from exc
    except docker.errors.NotFound as exc:
        raise RuntimeBackendError(f"{subject}: {exc.explanation}", hint=f"is lab {lab!r} up?") from exc
    except docker.errors.APIError as exc:
        hint = f"run `lab down {lab}` to remove leftovers" if exc.status_code == 409 else None
        raise RuntimeBackendError(f"{subject}: {exc.explanation or exc}", hint=hint) from exc
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise RuntimeBackendError(f"{subject}: docker: {exc}", hint=DAEMON_HINT) from exc


def api_timeout() -> int:
    """LAB_DOCKER_TIMEOUT (seconds, default 60) bounds each API call: an emulated guest (`make test-kernel`)
    needs minutes where a host needs seconds."""
    return int(os.environ.get("LAB_DOCKER_TIMEOUT", "60"))


def client_from_env() -> docker.DockerClient:
    """docker-py's client from the environment (DOCKER_HOST, ...), bounded by `api_timeout`."""
    return docker.from_env(timeout=api_timeout())


def client_at(url: str) -> docker.DockerClient:
    """A client of the engine at `url` (a swarm host's), bounded by `api_timeout`."""
    return docker.DockerClient(base_url=url, timeout=api_timeout())


def connect_runtime(client_factory: Callable[[], docker.DockerClient] = client_from_env) -> DockerRuntime:
    """Build the one Docker client (for lab/cli.py) and check the daemon answers, naming the fix if not."""
    try:
        client = client_factory()
        client.ping()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise RuntimeBackendError(f"docker daemon not reachable: {exc}", hint=DAEMON_HINT) from exc
    return DockerRuntime(client)


class DockerRuntime(HubNamespace):
    """Nodes as Docker containers with no Docker networking; see lab.runtime.base.Runtime (the lab
    namespace's part: lab.runtime.hub)."""

    def __init__(self, client: docker.DockerClient) -> None:
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        """The injected client, for other lab.runtime code that needs Docker (image builds, preflight)."""
        return self._client

    def preflight(self, requested: Dataplane | None = None) -> PreflightReport:
        """docker reachable, /dev/net/tun, root, network namespaces, and the kernel's ESP data plane."""
        return preflight.preflight(lambda: self._client, requested=requested)

    def ensure_image(self, containers_dir: Path, progress: Progress) -> str:
        """debootstrap base + node image, tagged by the hash of their inputs (see lab.runtime.image)."""
        return image.ensure_image(self._client, containers_dir, progress)

    def create_node(self, lab: str, node: NodePlan, image: str, mount: Path,
                    extra_labels: dict[str, str] | None = None) -> None:
        """Create and start the container; safe to call from several threads at once. `extra_labels`: what
        another backend built on this one adds (the swarm runtime: the node's host)."""
        mount = mount.absolute()
        labels = {
            LABEL_LAB: lab,
            LABEL_NODE: node.name,
            LABEL_ROLE: node.role,
            LABEL_GROUP: node.group,
            LABEL_STATE: str(mount.parent),
            **(extra_labels or {}),
        }
        with _docker_errors(f"node {node.name!r}", lab):
            self._client.containers.run(
                image,
                name=container_name(lab, node.name),
                hostname=node.name,
                labels=labels,
                network_mode="none",
                cap_add=ROUTER_CAPS if node.runs("charon") else CAPS,
                devices=DEVICES,
                sysctls=SYSCTLS,
                volumes={str(mount): {"bind": "/lab", "mode": "rw"}},
                init=True,  # reaps what detached execs (charon) leave behind
                detach=True,
            )

    def wire(self, plan: Plan) -> None:
        """Wire every node of `plan`; all its containers must be running."""
        pids = {node.name: self.pid(plan.lab, node.name) for node in plan.nodes}
        links.wire(plan, pids)

    def exec(
        self,
        lab: str,
        node: str,
        argv: list[str],
        *,
        detach: bool = False,
        env: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """Run argv in the node (no shell). Detached: returns (0, "") once started.

        A timeout wraps argv in coreutils `timeout` inside the container, so the command is really
        killed (TERM, then KILL 1 s later) and the code is 124, instead of leaving it running.
        """
        cmd = ["timeout", "-k", "1", f"{scaled(timeout):g}", *argv] if timeout is not None else list(argv)
        api = self._client.api
        with _docker_errors(f"node {node!r}: exec {argv[0] if argv else ''!r}", lab):
            exec_id = api.exec_create(container_name(lab, node), cmd, environment=env)["Id"]
            output = api.exec_start(exec_id, detach=detach)
            if detach:
                return ExecResult(0, "")
            code = api.exec_inspect(exec_id)["ExitCode"]
        return ExecResult(int(code), output.decode(errors="replace"))

    def list_nodes(self, lab: str | None = None) -> list[NodeInfo]:
        """Nodes by label, sorted by (lab, node)."""
        label = f"{LABEL_LAB}={lab}" if lab is not None else LABEL_LAB
        with _docker_errors(f"lab {lab!r}" if lab else "labs", lab or "<name>"):
            found = self._client.containers.list(all=True, filters={"label": label}, ignore_removed=True)
        infos = [_node_info(c) for c in found]
        return sorted(infos, key=lambda i: (i.lab, i.node))

    def remove_lab(self, lab: str) -> list[str]:
        """Force-remove the lab's containers (in parallel) and its namespace; idempotent."""
        with _docker_errors(f"lab {lab!r}", lab):
            found = self._client.containers.list(all=True, filters={"label": f"{LABEL_LAB}={lab}"}, sparse=True)
        with ThreadPoolExecutor(max_workers=REMOVE_WORKERS) as pool:
            removed = list(pool.map(lambda c: self._remove_container(lab, c.id, _sparse_name(c)), found))
        return sorted(f"container {name}" for name in removed if name) + remove_lab_namespace(lab)

    def node_action(self, lab: str, node: str, action: NodeAction) -> None:
        """docker kill/stop/start/pause/unpause on the node's container (it is never removed here)."""
        with _docker_errors(f"node {node!r}: {action}", lab):
            box = self._client.containers.get(container_name(lab, node))
            actions: dict[str, Callable[[], object]] = {
                "kill": box.kill, "stop": lambda: box.stop(timeout=STOP_TIMEOUT_S), "start": box.start,
                "pause": box.pause, "unpause": box.unpause,
            }
            actions[action]()

    def rewire_node(self, plan: Plan, node: str) -> None:
        """Wire one (re)started node again (its container must be running); running peers forget its
        old MACs."""
        links.rewire_node(plan, plan.node(node), self.pid(plan.lab, node))
        running = {n.node: n.pid for n in self.list_nodes(plan.lab) if n.status == "running" and n.pid}
        links.forget_neighbours(plan, plan.node(node), running)

    def live_links(self, lab: str, node: str) -> dict[str, list[str]]:
        try:
            pid = self.pid(lab, node)
        except RuntimeBackendError:
            return {}
        return links.live_links(pid)

    def events(self, lab: str, since: float, until: float) -> list[tuple[str, str]]:
        filters = {"type": "container", "label": f"{LABEL_LAB}={lab}"}
        with _docker_errors(f"lab {lab!r}: docker events", lab):
            stream = self._client.events(since=since, until=until, filters=filters, decode=True)
            return [(e.get("Actor", {}).get("Attributes", {}).get(LABEL_NODE, ""), str(e.get("Action", "")))
                    for e in stream]

    def shape(self, lab: str, node: str, iface: str, rate_mbps: int | None) -> None:
        """HTB on `iface` and on an IFB for its ingress, in the node's namespace (see lab.runtime.shaping)."""
        params = shaping.htb_params(rate_mbps) if rate_mbps is not None else None
        shaping.shape_link(f"/proc/{self.pid(lab, node)}/ns/net", f"node {node!r}", iface, params)

    def _remove_container(self, lab: str, container_id: str, name: str) -> str | None:
        """Remove one container; None when it was already gone (a concurrent `down`)."""
        try:
            with _docker_errors(f"lab {lab!r}: container {name}", lab):
                self._client.api.remove_container(container_id, force=True)
        except RuntimeBackendError as exc:
            if isinstance(exc.__cause__, docker.errors.NotFound):
                return None
            raise
        return name

    def pid(self, lab: str, node: str) -> int:
        """Host pid of the node's init process, whose /proc/<pid>/ns/net is the node's namespace."""
        name = container_name(lab, node)
        with _docker_errors(f"node {node!r}", lab):
            state = self._client.api.inspect_container(name)["State"]
        if not state.get("Running") or not state.get("Pid"):
            raise RuntimeBackendError(
                f"node {node!r}: container {name} is {state.get('Status', 'not running')}",
                hint=f"see `docker logs {name}`; `lab down {lab}` then `lab up`",
            )
        return int(state["Pid"])


def _sparse_name(container: docker.models.containers.Container) -> str:
    """Name from a sparse listing (which carries `Names`, not `Name`)."""
    names = container.attrs.get("Names") or [container.id]
    return str(names[0]).lstrip("/")


def _node_info(container: docker.models.containers.Container) -> NodeInfo:
    labels = container.labels
    return NodeInfo(
        lab=labels.get(LABEL_LAB, ""),
        node=labels.get(LABEL_NODE, ""),
        role=labels.get(LABEL_ROLE, ""),
        group=labels.get(LABEL_GROUP, ""),
        container_name=container.name or "",
        status=container.status,
        pid=int(container.attrs.get("State", {}).get("Pid") or 0),
        host=labels.get(LABEL_HOST, ""),
    )


def _is_a_runtime(client: docker.DockerClient) -> Runtime:
    """Checked by mypy (`make lint`): DockerRuntime satisfies the Runtime protocol."""
    return DockerRuntime(client)
