"""The pure parts of the swarm runtime: placement, its overrides, per-link VNIs, the backend's registration,
and the simulation harness's naming (everything found again from the simulation's name)."""

from __future__ import annotations

import pytest

from lab.errors import RuntimeBackendError
from lab.plan_types import NodePlan
from lab.runtime import registry, swarm_sim
from lab.runtime.swarm import connect_runtime, parse_overrides, place
from lab.runtime.vxlan import VNI_BASE, vni_for

HOSTS = ["h1", "h2", "h3"]


def _gw(group: str, i: int) -> NodePlan:
    return NodePlan(name=f"{group}-{i}", role="gateway", ifaces=(), group=group)


@pytest.mark.parametrize("group", ["azgw", "hub", "gw2", "x", "spoke-gateway"])
@pytest.mark.parametrize("hosts", [HOSTS[:2], HOSTS])
def test_a_gateways_two_instances_land_on_different_hosts(group: str, hosts: list[str]) -> None:
    assert place(_gw(group, 0), hosts, {}) != place(_gw(group, 1), hosts, {})


def test_placement_is_deterministic_and_ignores_host_order() -> None:
    node = NodePlan(name="onprem", role="site", ifaces=(), group="onprem")
    assert place(node, HOSTS, {}) == place(node, list(reversed(HOSTS)), {})
    assert place(_gw("azgw", 1), HOSTS, {}) == place(_gw("azgw", 1), HOSTS[::-1], {})


def test_an_override_wins_and_must_name_a_ready_host() -> None:
    assert place(_gw("azgw", 0), HOSTS, {"azgw-0": "h2"}) == "h2"
    with pytest.raises(RuntimeBackendError, match="no such ready host"):
        place(_gw("azgw", 0), HOSTS, {"azgw-0": "h9"})
    with pytest.raises(RuntimeBackendError, match="no ready host"):
        place(_gw("azgw", 0), [], {})


def test_overrides_parse_and_name_a_bad_entry() -> None:
    assert parse_overrides(" azgw-0=h1, branch=h3 ,") == {"azgw-0": "h1", "branch": "h3"}
    with pytest.raises(RuntimeBackendError, match="'azgw-0' is not node=host"):
        parse_overrides("azgw-0")


def test_vni_is_stable_in_range_and_differs_per_link_and_attempt() -> None:
    vnis = {vni_for("lab", node, iface, attempt) for node in ("a", "b") for iface in ("eth0", "eth1")
            for attempt in (0, 1)}
    assert len(vnis) == 8
    assert all(VNI_BASE <= v < 1 << 24 for v in vnis)
    assert vni_for("lab", "a", "eth0") == vni_for("lab", "a", "eth0")


def test_swarm_is_a_registered_backend_that_needs_a_manager() -> None:
    assert registry.backend_name({"LAB_RUNTIME": "swarm"}) == "swarm"
    with pytest.raises(RuntimeBackendError, match="LAB_SWARM_MANAGER is not set"):
        connect_runtime({})


def test_sim_names_fit_namespace_names_and_hosts_are_found_by_name() -> None:
    hosts = swarm_sim.hosts_of("swarm-a1", 3)
    assert [h.netns for h in hosts] == ["swarm-a1-n1", "swarm-a1-n2", "swarm-a1-n3"]
    assert all(len(h.netns) <= 15 for h in hosts)
    assert str(hosts[1].addr) == "198.19.254.2"
    assert swarm_sim._is_host_ns("swarm-a1", "swarm-a1-n12")
    assert not swarm_sim._is_host_ns("swarm-a1", "swarm-a1-nx")
    with pytest.raises(RuntimeBackendError, match="1-10 letters"):
        swarm_sim.up("much-too-long-name")


def test_dockerd_runs_in_the_hosts_namespace_with_its_own_roots() -> None:
    host = swarm_sim.hosts_of("s1", 1)[0]
    argv = swarm_sim.dockerd_argv(host)
    assert argv[:2] == ["nsenter", "--net=/run/netns/s1-n1"]
    script = argv[-1]
    for part in ("--data-root", "--exec-root", "--cgroup-parent /s1-n1", "--containerd-namespace s1-n1",
                 "mount -t tmpfs tmpfs /run", "mount -t tmpfs tmpfs /etc/docker", str(host.dir)):
        assert part in script
