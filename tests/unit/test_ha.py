"""Active-standby and active-active as planned and rendered: standby nodes, addresses, agents' inputs."""

from __future__ import annotations

from ipaddress import IPv4Interface
from pathlib import Path

from lab.core import Lab
from lab.ha import agents as ha
from lab.ha.standby import fast_dpd_nodes, takeover_children
from lab.plan import build_plan
from lab.render.lab_files import render_files
from lab.render.swanctl import SwanctlConfig
from lab.runtime.base import ExecResult
from lab.state import LabDir
from lab.topology.load import load_file
from tests.fakes import FakeRuntime, running

ROOT = Path(__file__).resolve().parents[2]


def lab_of(name: str) -> Lab:
    topo, _ = load_file(ROOT / "topologies" / f"{name}.yml")
    return Lab(topo, build_plan(topo), LabDir(Path("/nonexistent")))


def test_unset_active_active_follows_what_the_gateway_allows() -> None:
    aa, s2s = lab_of("active-active"), lab_of("s2s-route-based")
    assert aa.topo.gateways["azgw"].active_active is None and aa.topo.gateways["azgw"].is_active_active
    assert not s2s.topo.gateways["azgw"].is_active_active
    assert not lab_of("policy-based-basic").topo.gateways[next(iter(lab_of("policy-based-basic").topo.gateways))] \
        .is_active_active


def test_active_standby_has_a_warm_standby_without_a_public_address() -> None:
    lab = lab_of("active-standby")
    active, standby = lab.plan.node("azgw-0"), lab.plan.node("azgw-1")
    assert active.ifaces[0].addresses == (IPv4Interface("203.0.113.10/24"),)
    assert standby.ifaces[0].addresses == ()
    assert active.ifaces[1].addresses == (IPv4Interface("10.1.0.5/16"), IPv4Interface("10.1.0.4/16"))
    assert standby.ifaces[1].addresses == (IPv4Interface("10.1.0.6/16"),)
    assert lab.plan.node("vm1").routes[0].via == (IPv4Interface("10.1.0.4/16").ip,)


def test_standby_pair_moves_public_and_floating_addresses() -> None:
    (pair,) = ha.standby_pairs(lab_of("active-standby"))
    assert pair.nodes == ("azgw-0", "azgw-1")
    assert pair.take == (("eth0", "203.0.113.10/24"), ("eth1", "10.1.0.4/16"))
    assert pair.peer == "10.1.0.4"
    assert ha.ecmp_hosts(lab_of("active-standby")) == []
    assert ha.ecmp_hosts(lab_of("active-active")) == [("vm1", ["10.1.0.4", "10.1.0.5"])]


def test_standby_config_mirrors_the_active_but_starts_nothing() -> None:
    lab = lab_of("active-standby")
    files, swan = render_files(lab.topo, lab.plan, {"azgw-onprem": "k"}, "libipsec")
    assert "azgw-1" not in swan  # not loaded by `up`, nor expected up: lab.ha.agents loads it
    assert "azgw-1/tunnels/azgw-onprem" not in swan
    text = files[Path("azgw-1/tunnels/azgw-onprem/swanctl.conf")]  # type: ignore[index]
    assert "start_action = none" in text and "start_action = start" not in text
    assert "local_addrs = 203.0.113.10" in text
    assert takeover_children(swan["azgw-0/tunnels/azgw-onprem"]) == [("azgw-onprem", "azgw-onprem")]
    assert files[Path("azgw-1/tunnels/setup.sh")] == files[Path("azgw-0/tunnels/setup.sh")].replace(  # type: ignore[index]
        "azgw-0", "azgw-1")


def test_takeover_initiates_each_tunnel_on_its_own_charon() -> None:
    lab = lab_of("active-standby")
    _, swan = render_files(lab.topo, lab.plan, {"azgw-onprem": "k"}, "libipsec")
    assert ha._takeover("azgw-0", swan, None) == [
        ["azgw-onprem", "azgw-onprem", "unix:///lab/tunnels/azgw-onprem/run/charon.vici"]]
    (pair,) = ha.standby_pairs(lab)
    warm = ha._warm_units(pair, swan, {"azgw-1": SwanctlConfig()})
    assert list(warm) == ["azgw-1", "azgw-1/tunnels/azgw-onprem"]
    assert "'start_action': 'start'" not in str(warm["azgw-1/tunnels/azgw-onprem"].connections)


def test_fast_dpd_renders_one_second_dpd_and_fast_retransmits() -> None:
    lab = lab_of("active-standby")
    assert fast_dpd_nodes(lab.topo) == {"azgw-0", "azgw-1", "onprem"}
    files, _ = render_files(lab.topo, lab.plan, {"azgw-onprem": "k"}, "libipsec")
    for node in ("azgw-0", "azgw-1", "onprem"):
        assert "retransmit_timeout = 0.5" in files[Path(f"{node}/tunnels/azgw-onprem/strongswan.conf")]  # type: ignore[index]
        assert "dpd_delay = 1s" in files[Path(f"{node}/tunnels/azgw-onprem/swanctl.conf")]  # type: ignore[index]
    s2s = lab_of("s2s-route-based")
    files, _ = render_files(s2s.topo, s2s.plan, {"azgw-onprem": "k"}, "libipsec")
    assert "retransmit_timeout = 2.0" in files[Path("azgw-0/strongswan.conf")]  # type: ignore[index]


def dead_active(agents: set[str]) -> FakeRuntime:
    """azgw-0 exited, azgw-1 running; `kill -0` of an agent succeeds only on the nodes in `agents`."""
    nodes = running("as", ["azgw-0"], "exited") + running("as", ["azgw-1"])
    return FakeRuntime(nodes, on_exec=lambda node, argv: ExecResult(0 if node in agents else 1, ""))


def test_standby_problems_name_a_dead_instance_and_a_missing_agent() -> None:
    none, standby_only = dead_active(set()), dead_active({"azgw-1"})
    problems = ha.standby_problems(lab_of("active-standby"), none)
    assert problems == ["azgw-0 is not running", "azgw-1: no HA agent runs"]
    assert ha.standby_problems(lab_of("active-standby"), standby_only) == ["azgw-0 is not running"]


def test_release_of_a_dead_instance_asks_neither_charon_nor_the_container(tmp_path: Path) -> None:
    topo, _ = load_file(ROOT / "topologies" / "active-standby.yml")
    lab = Lab(topo, build_plan(topo), LabDir(tmp_path))
    (pair,) = ha.standby_pairs(lab)
    lab.dir.node("azgw-0").mkdir(parents=True)
    runtime = dead_active({"azgw-1"})

    def connect(path: Path) -> None:
        raise AssertionError(f"no vici for a dead instance: {path}")

    ha.release(lab, pair, "azgw-0", runtime, connect)  # type: ignore[arg-type]
    assert ha.role(lab, "azgw-0") == "releasing" and runtime.calls == []
