"""DockerRuntime end to end: containers, lab namespace, bridges, veths, routes; and the host stays untouched.

Needs root, a running dockerd and a `lab-node:*` image (or LAB_NODE_IMAGE). Every test builds its own
lab (`rt<4 hex>`) and removes it in fixture teardown, pass or fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from lab.errors import RuntimeBackendError
from lab.plan_types import Iface, NodePlan, Plan, Route
from lab.runtime import links
from lab.runtime.base import NAME_PREFIX, ExecResult, container_name, namespace_name
from lab.runtime.docker import DockerRuntime
from tests.integration.helpers import lab_name

pytestmark = pytest.mark.integration

A, IF, N = IPv4Address, IPv4Interface, IPv4Network
ROUTER_LAN = (A("10.9.0.254"), A("10.9.0.253"))  # two addresses on one router: ECMP that always works
UDP_SEND = (
    "import socket, time\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "for _ in range(25):\n"
    "    s.sendto(b'x' * 100, ('203.0.113.2', 9999)); time.sleep(0.2)\n"
)


def make_plan(lab: str) -> Plan:
    """h1, h2 on lan; r1 routes lan <-> wan; far (with a loopback) and far2 (/32, on-link default) on wan."""
    h1 = NodePlan(
        "h1",
        "host",
        (Iface("eth0", "lan", (IF("10.9.0.1/24"),)),),
        routes=(Route(N("0.0.0.0/0"), via=ROUTER_LAN[:1]),),
        group="lan",
    )
    h2 = NodePlan(
        "h2",
        "host",
        (Iface("eth0", "lan", (IF("10.9.0.2/24"),)),),
        routes=(
            Route(N("203.0.113.0/24"), via=ROUTER_LAN),
            Route(N("198.51.100.0/24"), via=ROUTER_LAN[:1], dev="eth0"),
        ),
        group="lan",
    )
    r1 = NodePlan(
        "r1",
        "gateway",
        (
            Iface("eth0", "lan", (IF("10.9.0.254/24"), IF("10.9.0.253/24"))),
            Iface("eth1", "wan", (IF("203.0.113.1/24"),)),
        ),
        routes=(Route(N("198.51.100.7/32"), dev="eth1"),),
        group="edge",
    )
    far = NodePlan(
        "far",
        "site",
        (Iface("eth0", "wan", (IF("203.0.113.2/24"),)),),
        routes=(Route(N("10.9.0.0/24"), via=(A("203.0.113.1"),)),),
        loopbacks=(IF("198.51.100.7/32"),),
        group="remote",
    )
    far2 = NodePlan(
        "far2",
        "client",
        (Iface("eth0", "wan", (IF("203.0.113.3/32"),)),),
        routes=(Route(N("0.0.0.0/0"), dev="eth0"),),
        group="remote",
    )
    return Plan(lab=lab, nodes=(h1, h2, r1, far, far2), segments=("lan", "wan"))


# --- host state: what the lab must never change ------------------------------------------------------


def _ip_json(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run(["ip", "-j", *args], check=True, capture_output=True, text=True).stdout
    return list(json.loads(out or "[]"))


@dataclass(frozen=True)
class HostState:
    """Interfaces, addresses, routes (all tables, v4+v6), nft ruleset and named netns of the host."""

    links: tuple[str, ...]
    addrs: tuple[tuple[str, ...], ...]
    routes: tuple[tuple[str, ...], ...]
    nft: str
    netns: frozenset[str]


def host_state() -> HostState:
    route_keys = ("table", "type", "dst", "gateway", "dev", "protocol", "scope", "prefsrc")
    routes = [
        tuple(str(r.get(k)) for k in route_keys)
        for fam in ("-4", "-6")
        for r in _ip_json(fam, "route", "show", "table", "all")
    ]
    addr_keys = ("family", "local", "prefixlen")
    addrs = [
        (str(link["ifname"]), *(str(a.get(k)) for k in addr_keys))
        for link in _ip_json("addr")
        for a in link.get("addr_info", [])
    ]
    nft = shutil.which("nft")
    ruleset = ""
    if nft:  # -s: stateless, so packet counters do not count as a change
        ruleset = subprocess.run([nft, "-s", "list", "ruleset"], capture_output=True, text=True).stdout
    netns_dir = Path("/run/netns")
    return HostState(
        links=tuple(sorted(str(link["ifname"]) for link in _ip_json("link"))),
        addrs=tuple(sorted(addrs)),
        routes=tuple(sorted(routes)),
        nft=ruleset,
        netns=frozenset(os.listdir(netns_dir)) if netns_dir.is_dir() else frozenset(),
    )


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    try:
        docker_client = docker.from_env()
        docker_client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"docker not reachable: {exc}")
    yield docker_client
    docker_client.close()


@pytest.fixture(scope="module")
def image(client: docker.DockerClient) -> str:
    if tag := os.environ.get("LAB_NODE_IMAGE"):
        return tag
    images = sorted(client.images.list(name="lab-node"), key=lambda i: str(i.attrs["Created"]))
    if not images or not images[-1].tags:
        pytest.skip("no lab-node image: build it first (lab/runtime/image.py)")
    return str(images[-1].tags[0])


@pytest.fixture
def runtime(client: docker.DockerClient) -> DockerRuntime:
    return DockerRuntime(client)


@pytest.fixture
def lab(runtime: DockerRuntime) -> Iterator[str]:
    """A fresh lab name; whatever exists of the lab is removed afterwards, even when the test failed."""
    name = lab_name("rt")
    try:
        yield name
    finally:
        runtime.remove_lab(name)


@pytest.fixture
def before() -> HostState:
    return host_state()


@pytest.fixture
def wired(runtime: DockerRuntime, image: str, lab: str, before: HostState, tmp_path: Path) -> Plan:
    plan = make_plan(lab)
    start = time.perf_counter()
    for node in plan.nodes:
        runtime.create_node(lab, node, image, tmp_path / "state" / node.name)
    created = time.perf_counter()
    runtime.wire(plan)
    done = time.perf_counter()
    print(
        f"\n{lab}: create_node x{len(plan.nodes)} {created - start:.2f}s, wire {done - created:.2f}s", file=sys.stderr
    )
    return plan


def _ok(result: ExecResult) -> bool:
    return result.code == 0


# --- tests ------------------------------------------------------------------------------------------


def test_containers_carry_labels(
    runtime: DockerRuntime, client: docker.DockerClient, wired: Plan, tmp_path: Path
) -> None:
    infos = {info.node: info for info in runtime.list_nodes(wired.lab)}
    assert sorted(infos) == sorted(n.name for n in wired.nodes)
    for node in wired.nodes:
        info = infos[node.name]
        assert (info.lab, info.role, info.group, info.status) == (wired.lab, node.role, node.group, "running")
        assert info.container_name == container_name(wired.lab, node.name)
        assert info.pid > 0
        labels = client.containers.get(info.container_name).labels
        assert labels["lab.state"] == str(tmp_path / "state")
    assert {i.lab for i in runtime.list_nodes()} >= {wired.lab}


def test_ping_across_router(runtime: DockerRuntime, wired: Plan) -> None:
    lab = wired.lab
    cases = [
        ("h1", "10.9.0.2"),  # same bridge
        ("h1", "203.0.113.2"),  # via r1
        ("h2", "203.0.113.2"),  # ECMP route via both r1 addresses
        ("h1", "198.51.100.7"),  # far's loopback, reached by r1's on-link route
        ("far2", "198.51.100.7"),  # /32 address and `default dev eth0` on the emulated Internet
    ]
    failed = [(src, dst) for src, dst in cases if not _ok(runtime.exec(lab, src, ["ping", "-c1", "-W1", dst]))]
    assert failed == []
    route = runtime.exec(lab, "h2", ["ip", "route", "show", "203.0.113.0/24"]).output
    assert "nexthop via 10.9.0.254" in route and "nexthop via 10.9.0.253" in route
    assert "scope link" in runtime.exec(lab, "far2", ["ip", "route", "show", "default"]).output


def test_udp_checksums_are_complete(runtime: DockerRuntime, wired: Plan) -> None:
    """With tx checksum offload on, tcpdump at the sender shows `bad udp cksum` (partial checksums)."""
    captures: dict[str, ExecResult] = {}

    def capture(node: str) -> None:
        argv = ["tcpdump", "-n", "-vv", "-c1", "-i", "eth0", "udp", "port", "9999"]
        captures[node] = runtime.exec(wired.lab, node, argv, timeout=8)

    threads = [threading.Thread(target=capture, args=(node,)) for node in ("h1", "far")]
    for thread in threads:
        thread.start()
    runtime.exec(wired.lab, "h1", ["python3", "-c", UDP_SEND], timeout=10)
    for thread in threads:
        thread.join()
    for node, result in captures.items():
        assert result.code == 0, f"{node}: {result.output}"
        assert "[udp sum ok]" in result.output and "bad udp cksum" not in result.output, result.output


def own(state: HostState, lab: str) -> HostState:
    """The host state with other labs' namespaces left out: labs of other test runs come and go beside this one."""
    mine = namespace_name(lab)
    netns = frozenset(n for n in state.netns if n == mine or not n.startswith(NAME_PREFIX))
    return replace(state, netns=netns)


def test_host_namespace_untouched(runtime: DockerRuntime, wired: Plan, before: HostState) -> None:
    during = own(host_state(), wired.lab)
    assert during.netns - own(before, wired.lab).netns == {namespace_name(wired.lab)}
    assert replace(during, netns=own(before, wired.lab).netns) == own(before, wired.lab)

    removed = runtime.remove_lab(wired.lab)
    assert f"namespace {namespace_name(wired.lab)}" in removed
    assert len([r for r in removed if r.startswith("container ")]) == len(wired.nodes)
    assert runtime.list_nodes(wired.lab) == []
    assert namespace_name(wired.lab) not in runtime.lab_namespaces()
    assert own(host_state(), wired.lab) == own(before, wired.lab)
    assert runtime.remove_lab(wired.lab) == []  # idempotent


def test_remove_half_built_lab(runtime: DockerRuntime, image: str, lab: str, tmp_path: Path) -> None:
    """wire fails midway (a gateway no interface reaches): remove_lab still clears everything."""
    plan = make_plan(lab)
    broken = NodePlan(
        "h3",
        "host",
        (Iface("eth0", "lan", (IF("10.9.0.3/24"),)),),
        routes=(Route(N("0.0.0.0/0"), via=(A("192.0.2.99"),)),),
    )
    plan = Plan(lab=lab, nodes=(*plan.nodes[:2], broken), segments=("lan",))
    for node in plan.nodes:
        runtime.create_node(lab, node, image, tmp_path / node.name)
    with pytest.raises(RuntimeBackendError, match=r"node 'h3': route 0\.0\.0\.0/0 via 192\.0\.2\.99"):
        runtime.wire(plan)
    assert namespace_name(lab) in runtime.lab_namespaces()

    start = time.perf_counter()
    removed = runtime.remove_lab(lab)
    print(f"\n{lab}: remove_lab {time.perf_counter() - start:.2f}s", file=sys.stderr)
    assert removed == [
        *(f"container {container_name(lab, n)}" for n in ("h1", "h2", "h3")),
        f"namespace {namespace_name(lab)}",
    ]
    assert runtime.remove_lab(lab) == []


def test_create_node_twice_names_the_node(runtime: DockerRuntime, image: str, lab: str, tmp_path: Path) -> None:
    node = make_plan(lab).nodes[0]
    runtime.create_node(lab, node, image, tmp_path / node.name)
    with pytest.raises(RuntimeBackendError, match="node 'h1': .*already in use") as info:
        runtime.create_node(lab, node, image, tmp_path / node.name)
    assert info.value.hint and f"lab down {lab}" in info.value.hint


def test_wire_refuses_stopped_node(
    runtime: DockerRuntime, client: docker.DockerClient, image: str, lab: str, tmp_path: Path
) -> None:
    plan = make_plan(lab)
    for node in plan.nodes[:2]:
        runtime.create_node(lab, node, image, tmp_path / node.name)
    client.containers.get(container_name(lab, "h2")).kill()
    with pytest.raises(RuntimeBackendError, match="node 'h2': container .* is exited"):
        runtime.wire(Plan(lab=lab, nodes=plan.nodes[:2]))
    assert namespace_name(lab) not in runtime.lab_namespaces()


def test_exec(runtime: DockerRuntime, image: str, lab: str, tmp_path: Path) -> None:
    node = make_plan(lab).nodes[0]
    runtime.create_node(lab, node, image, tmp_path / node.name)
    result = runtime.exec(lab, "h1", ["sh", "-c", 'echo "$FOO"; echo err >&2; exit 3'], env={"FOO": "bar"})
    # stdout and stderr arrive on two streams: their interleaving is not ordered, their content is
    assert result.code == 3 and sorted(result.output.splitlines()) == ["bar", "err"]
    assert runtime.exec(lab, "h1", ["sleep", "30"], timeout=0.5).code == 124
    assert runtime.exec(lab, "h1", ["sh", "-c", "sleep 30 > /lab/slept"], detach=True) == ExecResult(0, "")
    deadline = time.monotonic() + 5
    while not (tmp_path / "h1" / "slept").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "h1" / "slept").exists()  # the detached command runs, in the bind mount
    with pytest.raises(RuntimeBackendError, match="node 'nope': exec 'true'"):
        runtime.exec(lab, "nope", ["true"])


# --- pure helpers (no docker, no root) ----------------------------------------------------------------


def test_veth_names_are_short_unique_and_readable() -> None:
    long = NodePlan("vnet-azgw-instance0", "gateway", (Iface("eth0", "a", ()), Iface("eth1", "a", ())))
    plan = Plan(lab="x", nodes=(make_plan("x").nodes[0], long))
    names = links.veth_names(plan)
    assert names[("h1", "eth0")] == "h1-eth0"
    assert all(len(n) <= 15 for n in names.values())
    assert len(set(names.values())) == len(names)


def test_segment_names_must_fit_a_bridge() -> None:
    plan = Plan(lab="x", nodes=(NodePlan("h", "host", (Iface("eth0", "a-segment-name-too-long", ()),)),))
    with pytest.raises(RuntimeBackendError, match="not a valid bridge name"):
        links.segments(plan)
