"""How long `lab verify` lets a probe agent run: the budget follows the work (packets), not a fixed figure, so a
large lab on a loaded machine is not failed for being slow; a stuck agent is still ended and named."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from lab.errors import ProbeError
from lab.plan import build_plan
from lab.runtime.base import ExecResult
from lab.topology.load import load_text
from lab.verify import run
from lab.verify.run import VerifyOptions, verify
from lab.verify.targets import ProbeOptions, build_targets, by_node, reach_specs, selector_specs
from tests.fakes import FakeControl
from tests.unit.test_verify_plan import fake_lab, fake_runtime


def _sites(count: int) -> str:
    """One VpnGw1 gateway with `count` sites, one host each (as bench/swarm.py --sites)."""
    sites = {f"s{i}": {"public_ip": f"198.51.100.{40 + i}", "address_space": [f"10.{100 + i}.0.0/16"],
                       "hosts": {f"h{i}": f"10.{100 + i}.0.10"}} for i in range(count)}
    return yaml.safe_dump({
        "name": "budget", "gateways": {"hub": {"sku": "VpnGw1", "public_ips": ["203.0.113.10"], "vnet": {
            "address_space": ["10.1.0.0/16"], "hosts": {"hubvm": "10.1.0.10"}}}},
        "sites": sites, "connections": {f"hub-s{i}": {"gateway": "hub", "site": f"s{i}"} for i in range(count)}})


def _reach(count: int) -> dict[str, list]:
    topo, _ = load_text(_sites(count))
    return by_node(reach_specs(build_targets(topo, build_plan(topo)), 20001, ProbeOptions()))


def test_the_vnet_hosts_budget_grows_with_its_packets() -> None:
    one, thirty = run.agent_budget(_reach(1)["hubvm"]), run.agent_budget(_reach(30)["hubvm"])
    packets = sum(s.count for s in _reach(30)["hubvm"])
    assert packets == 600  # 30 sites x (ICMP + UDP) x 10
    pacing = 600 * ProbeOptions().interval_s
    assert thirty >= pacing + 600 * run.PACKET_BUDGET_S + run.EXEC_SLACK_S  # the old fixed figure was 33 s
    assert thirty - one == pytest.approx(580 * (ProbeOptions().interval_s + run.PACKET_BUDGET_S), abs=0.1)
    assert one < 30  # a small lab's stuck agent is still ended soon


def test_a_phase_takes_its_longest_node() -> None:
    topo, _ = load_text(_sites(30))
    reach = reach_specs(build_targets(topo, build_plan(topo)), 20001, ProbeOptions())
    assert run.phase_budget(reach) == run.agent_budget(by_node(reach)["hubvm"])
    assert run.phase_budget([]) == 0.0


def test_echo_responders_outlive_both_phases_budgets(tmp_path: Path) -> None:
    lab = fake_lab(tmp_path)
    rt = fake_runtime(lab)
    verify(lab, rt, lambda _p: FakeControl(), VerifyOptions(), read_keys=lambda d, n: [])
    t = build_targets(lab.topo, lab.plan)
    opt = ProbeOptions()
    phases = run.phase_budget(reach_specs(t, 1, opt)) + run.phase_budget(selector_specs(t, opt))
    lifetimes = {float(argv[argv.index("--lifetime") + 1]) for argv in rt.execs() if "echo" in argv}
    assert sorted(lifetimes) == pytest.approx([run.ECHO_LIFETIME_S + phases], abs=0.01)


def test_the_agent_gets_its_budget_and_a_stuck_one_is_named_with_its_work() -> None:
    timeouts: list[float | None] = []

    def exec_(lab: str, node: str, argv: list[str], *, timeout: float | None = None, **_: object) -> ExecResult:
        timeouts.append(timeout)
        return ExecResult(124, "")

    specs = _reach(30)["hubvm"]
    lab = SimpleNamespace(topo=SimpleNamespace(name="budget"))
    with pytest.raises(ProbeError, match=r"node 'hubvm': probe agent \(60 probes, 600 packets\) did not finish"):
        run._run_phase(lab, SimpleNamespace(exec=exec_), "m", specs)  # type: ignore[arg-type]
    assert timeouts == [run.agent_budget(specs)]
