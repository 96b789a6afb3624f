"""The swarm runtime on a simulated 3-host Docker Swarm (lab/runtime/swarm_sim.py), one swarm for the module:
the harness builds it (three dockerds in their own namespaces, image by save | load); the reference lab comes
up with the gateway's instances on different hosts (`lab inspect --json` shows each node's host), passes
`lab verify`, recovers from `lab fault kill` and `link-down` of a node on another host with `lab restore`, and
goes down leaving nothing on any host; P2S
clients spread over the hosts connect; an active-active lab keeps carrying traffic when the host of one
instance dies (its dockerd and everything on it), and `lab down` still removes the rest; the harness's
teardown leaves no process, mount, cgroup, namespace or file, and the host's own network never changed.
The reference lab is brought up with `--runtime swarm`, the P2S lab with `runtime: swarm` in its file (only the
manager's URL in the environment), and every later command on them runs with no swarm variable at all: the
runtime recorded in the lab's state is used; the active-active lab uses LAB_RUNTIME.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import yaml

from lab.runtime import swarm_sim
from lab.runtime.base import LABEL_HOST
from tests.integration.helpers import ROOT, TIME_SCALE, host_network, lab_name, lab_up, run_lab

pytestmark = pytest.mark.integration
HUB = 0  # the manager (first host) holds the lab namespace: crash another host


@pytest.fixture(scope="module")
def sim(image: str) -> Iterator[swarm_sim.SimSwarm]:
    name = lab_name("sw")  # a swarm name: at most 10 characters
    before = host_network()
    t0 = time.monotonic()
    swarm = swarm_sim.up(name, 3, [image])
    print(f"swarm sim {name} up in {time.monotonic() - t0:.1f} s: {swarm.timings}")
    try:
        yield swarm
    finally:
        swarm_sim.down(name)
        assert not swarm_sim.leftovers(name)
        assert host_network() == before


def _topology(tmp_path: Path, file: str, name: str, **keys: str) -> Path:
    data = yaml.safe_load((ROOT / "topologies" / file).read_text())
    data.update(name=name, **keys)
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def _hosts_of(sim: swarm_sim.SimSwarm, lab: str) -> dict[str, str]:
    """node -> the host whose engine runs it, read from every engine."""
    out = {}
    for host in sim.hosts:
        try:
            client = docker.DockerClient(base_url=host.url)
        except docker.errors.DockerException:
            continue  # a crashed host
        try:
            for box in client.containers.list(all=True, filters={"label": f"lab.topology={lab}"}):
                assert box.labels[LABEL_HOST] == host.name
                out[box.labels["lab.node"]] = host.name
        finally:
            client.close()
    return out


def _gone(sim: swarm_sim.SimSwarm, lab: str) -> None:
    """After helpers.lab_up's `lab down` (no swarm variables: the lab's state names its runtime; no container
    on this machine's engine, no namespace, host network unchanged): no container on any host either."""
    assert _hosts_of(sim, lab) == {}


def test_harness_builds_three_ready_hosts_with_the_image(sim: swarm_sim.SimSwarm, image: str) -> None:
    client = docker.DockerClient(base_url=sim.manager.url)
    try:
        nodes = client.nodes.list()
        assert sorted(n.attrs["Description"]["Hostname"] for n in nodes) == [h.name for h in sim.hosts]
        assert all(n.attrs["Status"]["State"] == "ready" for n in nodes)
        assert {n.attrs["Spec"]["Labels"]["lab.engine"] for n in nodes} == {h.url for h in sim.hosts}
    finally:
        client.close()
    for host in sim.hosts:
        engine = docker.DockerClient(base_url=host.url)
        try:
            assert engine.images.get(image)
            assert engine.info()["Name"] == host.name
        finally:
            engine.close()


def test_reference_lab_up_verified_down_with_instances_on_two_hosts(sim: swarm_sim.SimSwarm, lab_home: Path,
                                                                     tmp_path: Path) -> None:
    lab = lab_name("swref")
    manager = {"LAB_SWARM_MANAGER": sim.manager.url}  # no LAB_RUNTIME: the flag chooses
    with lab_up(_topology(tmp_path, "s2s-route-based.yml", lab), lab, lab_home, "--runtime", "swarm", env=manager):
        where = _hosts_of(sim, lab)
        assert where["azgw-0"] != where["azgw-1"], where
        assert len(set(where.values())) >= 2
        shown = json.loads(run_lab("inspect", lab, "--json", home=lab_home, timeout=120).stdout)
        assert {n["name"]: n["host"] for n in shown["nodes"]} == where  # lab inspect shows the placement
        verify = run_lab("verify", lab, home=lab_home, timeout=180)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "all checks passed" in verify.stdout
        remote = next(n for n in ("onprem", "azgw-0", "pc1") if where[n] != sim.hosts[HUB].name)
        for fault in (("kill", remote), ("link-down", f"{remote}:eth0")):  # a node on another host: VXLAN ports
            res = run_lab("fault", *fault, "--lab", lab, home=lab_home, timeout=120)
            assert res.returncode == 0, res.stderr
            res = run_lab("restore", "--lab", lab, home=lab_home, timeout=180)
            assert res.returncode == 0 and "every tunnel is up" in res.stdout + res.stderr, res.stdout + res.stderr
        ping = run_lab("exec", "--lab", lab, "vm1", "--", "ping", "-c", "2", "-W", "2", "10.2.0.10",
                       home=lab_home)
        assert ping.returncode == 0, ping.stdout
    _gone(sim, lab)


def test_p2s_clients_spread_over_hosts_connect(sim: swarm_sim.SimSwarm, lab_home: Path, tmp_path: Path) -> None:
    lab = lab_name("swp2s")
    with lab_up(_topology(tmp_path, "p2s.yml", lab, runtime="swarm"), lab, lab_home, "--timeout", "90",
                env={"LAB_SWARM_MANAGER": sim.manager.url}):  # the file's runtime: no flag, no LAB_RUNTIME
        where = _hosts_of(sim, lab)
        clients = {n: h for n, h in where.items() if "client" in n}
        assert len(set(clients.values())) >= 2, clients
        inspect = run_lab("inspect", lab, "--json", home=lab_home, check=True)
        states = {c["name"]: c["state"] for c in json.loads(inspect.stdout)["p2s_clients"]}
        assert [states[f"azgw-client{i}"] for i in (1, 2, 3)] == ["connected"] * 3, states
        ping = run_lab("exec", "--lab", lab, "azgw-client1", "--", "ping", "-c", "2", "-W", "2", "10.1.0.10",
                       home=lab_home)
        assert ping.returncode == 0, ping.stdout
    _gone(sim, lab)


def test_active_active_survives_the_loss_of_one_instance_host(sim: swarm_sim.SimSwarm, lab_home: Path,
                                                               tmp_path: Path) -> None:
    """Runs last but one: the crashed host stays dead for the rest of the module."""
    lab = lab_name("swaa")
    res = run_lab("up", str(_topology(tmp_path, "active-active.yml", lab)), home=lab_home, env=sim.env(),
                  timeout=300)
    try:
        assert res.returncode == 0, res.stderr
        where = _hosts_of(sim, lab)
        assert where["azgw-0"] != where["azgw-1"], where
        victim = next(n for n in ("azgw-0", "azgw-1") if where[n] != sim.hosts[HUB].name)
        survivor = "azgw-1" if victim == "azgw-0" else "azgw-0"
        swarm_sim.crash(sim.name, where[victim])
        deadline = time.monotonic() + 30 * TIME_SCALE
        while True:  # the VNet agent drops the dead hop, the site's DPD (fast) drops the dead SA
            ping = run_lab("exec", "--lab", lab, "vm1", "--", "ping", "-c", "3", "-W", "1", "10.2.0.10",
                           home=lab_home, env=sim.env())
            if ping.returncode == 0 or time.monotonic() > deadline:
                break
        assert ping.returncode == 0, ping.stdout
        status = json.loads(run_lab("inspect", lab, "--json", home=lab_home, env=sim.env(), check=True).stdout)
        states = {n["name"]: n["state"] for n in status["nodes"]}
        assert states[victim] != "running" and states[survivor] == "running", states
        assert survivor in {t["node"] for t in status["tunnels"] if t["state"] == "ESTABLISHED"}
    finally:
        res = run_lab("down", lab, home=lab_home, env=sim.env(), timeout=120)
        assert res.returncode == 0, res.stderr
        assert "unreachable" in res.stdout + res.stderr
        assert _hosts_of(sim, lab) == {}


def test_harness_teardown_leaves_nothing(sim: swarm_sim.SimSwarm) -> None:
    assert swarm_sim.leftovers(sim.name)
    swarm_sim.down(sim.name)
    assert swarm_sim.leftovers(sim.name) == []
