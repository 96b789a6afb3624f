"""NAT between overlapping address spaces, for real (topologies/nat-overlap.yml, Azure's NAT example): the VNet
and two branches all use 10.0.1.0/24 and vm1, pc1 and pc2 all hold 10.0.1.10. vm1 reaches each branch at its own
external prefix and the packets land on that branch's host, not the other's (their ICMP counters say which);
`lab verify` passes with real traffic and, inside ESP, each branch's device only sees the VNet translated.
The gateway is active-standby with `ha_timing: fast`: a standby agent stalled past its takeover window (what a
loaded machine does to a process) stays standby, so verify finds the traffic on the active's SAs.
One lab per data plane (`module_dataplane`: the kernel one runs in the QEMU guest, `make test-kernel`), unique
name, down even when a test fails."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import yaml

from lab.ha.agents import WATCH_INTERVAL_S, WATCH_MISSES, scaled_misses
from tests.integration.helpers import ROOT, TIME_SCALE, lab_name, lab_up, run_lab

pytestmark = pytest.mark.integration
PINGS = 4


@pytest.fixture(scope="module")
def overlap_lab(lab_home: Path, image: str, tmp_path_factory: pytest.TempPathFactory,
                module_dataplane: str) -> Iterator[str]:
    name = lab_name(f"natov-{module_dataplane[0]}")
    data = yaml.safe_load((ROOT / "topologies" / "nat-overlap.yml").read_text())
    data["name"] = name
    path = tmp_path_factory.mktemp("natov") / f"{name}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with lab_up(path, name, lab_home, "--timeout", "90", "--dataplane", module_dataplane, timeout=300) as up:
        yield up


def _echoes_in(lab: str, host: str, home: Path) -> int:
    """ICMP echo requests the host has received (its kernel's counter, /proc/net/snmp)."""
    res = run_lab("exec", "--lab", lab, host, "--", "cat", "/proc/net/snmp", home=home)
    assert res.returncode == 0, res.stderr
    head, values = [line.split() for line in res.stdout.splitlines() if line.startswith("Icmp:")][:2]
    return int(values[head.index("InEchos")])


@pytest.mark.parametrize(("dst", "reached", "other"), [("100.0.2.10", "pc1", "pc2"), ("100.0.3.10", "pc2", "pc1")])
def test_each_external_prefix_reaches_its_own_branch(overlap_lab: str, lab_home: Path, dst: str, reached: str,
                                                     other: str) -> None:
    before = {h: _echoes_in(overlap_lab, h, lab_home) for h in (reached, other)}
    ping = run_lab("exec", "--lab", overlap_lab, "vm1", "--", "ping", "-c", str(PINGS), "-W", "2", dst, home=lab_home)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    after = {h: _echoes_in(overlap_lab, h, lab_home) for h in (reached, other)}
    assert after[reached] - before[reached] >= PINGS, f"{dst} did not land on {reached}"
    assert after[other] == before[other], f"{dst} also reached {other}, which holds the same address"


def test_a_stalled_standby_agent_does_not_take_over_from_the_healthy_active(overlap_lab: str, lab_home: Path) -> None:
    """A full CI run failed verify here (spis: the ESP on the wire was not azgw-0's): under load the standby's
    agent had not run for longer than its window (3 probes of 200 ms) and, counting seconds since the last
    answer, took over from a healthy active: two instances on one public IP. Stopped for 3 windows, the agent
    now resumes with the active's answers queued and stays standby. Waits for the agent's rounds after the
    stall on the active's ICMP counter (each round is one echo to its floating address)."""
    nodes = lab_home / overlap_lab / "nodes"
    stall = 3 * WATCH_INTERVAL_S * scaled_misses(WATCH_MISSES)
    res = run_lab("exec", "--lab", overlap_lab, "azgw-1", "--", "sh", "-c",
                  f"p=$(cat /lab/ha-agent.pid) && kill -STOP $p && sleep {stall:g} && kill -CONT $p", home=lab_home)
    assert res.returncode == 0, res.stdout + res.stderr
    stalled = _echoes_in(overlap_lab, "azgw-0", lab_home)
    deadline = time.monotonic() + 10 * TIME_SCALE
    while _echoes_in(overlap_lab, "azgw-0", lab_home) < stalled + scaled_misses(WATCH_MISSES) + 2:
        assert time.monotonic() < deadline, "the standby's agent sent no probes after the stall"
    events = (nodes / "azgw-1" / "ha-events.jsonl").read_text()
    assert "peer-dead" not in events, events
    assert [(nodes / n / "ha-role").read_text().strip() for n in ("azgw-0", "azgw-1")] == ["active", "standby"]


def test_verify_passes_and_branches_see_only_the_translated_vnet(overlap_lab: str, lab_home: Path) -> None:
    res = run_lab("verify", overlap_lab, "--json", home=lab_home, timeout=240)
    report = json.loads(res.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    failed = {n: {k: c.get(k) for k in ("summary", "evidence")} for n, c in checks.items() if not c.get("passed")}
    assert res.returncode == 0, f"{res.stderr}\nfailed checks: {json.dumps(failed, indent=1)[:6000]}"
    probes = {(p["src_node"], p["dst_node"]): p["dst"] for p in checks["reachability"]["data"]["probes"]}
    assert probes[("vm1", "pc1")] == "100.0.2.10" and probes[("vm1", "pc2")] == "100.0.3.10"
    assert probes[("pc1", "vm1")] == probes[("pc2", "vm1")] == "100.0.1.10"
    inner = checks["decryption"]["data"]["inner"]
    assert inner == ["10.0.1.10 -> 100.0.1.10", "100.0.1.10 -> 10.0.1.10"]
    seen = {IPv4Address(a) for pair in inner for a in pair.split(" -> ")}
    assert not any(a in IPv4Network("100.0.2.0/23") for a in seen), "a branch saw its own external address"
