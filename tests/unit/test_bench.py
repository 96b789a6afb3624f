"""`lab bench`'s pure parts: where flows run, the iperf3 command, parsing its JSON, the host sysctl guard."""

from __future__ import annotations

import copy
import json
from ipaddress import IPv4Address
from pathlib import Path

import pytest
import yaml

from lab.ops.bench import (
    INHERITED,
    BenchError,
    BenchPath,
    BenchResult,
    Flow,
    Measurement,
    bench_paths,
    host_sysctl,
    iperf_argv,
    parse_iperf,
    veth_path,
)
from lab.plan import build_plan
from lab.topology.load import load_text

DATA = Path(__file__).resolve().parents[1] / "integration" / "data"
PATH = BenchPath("azgw-onprem", "azgw", "vm1", "pc1", IPv4Address("10.12.0.10"), 5201)


def _iperf_json(received_bps: float, sent_bps: float, retransmits: int, cc: str = "cubic") -> str:
    return json.dumps({"start": {}, "intervals": [], "end": {
        "sum_sent": {"bits_per_second": sent_bps, "retransmits": retransmits},
        "sum_received": {"bits_per_second": received_bps},
        "sender_tcp_congestion": cc, "receiver_tcp_congestion": cc}})


def test_one_path_per_site_connection_on_its_own_port() -> None:
    topo, _ = load_text((DATA / "vpngw1.yml").read_text(), "t.yml")
    paths, notes = bench_paths(topo)
    assert [(p.label, p.client, p.server, str(p.target), p.port) for p in paths] == [
        ("azgw-branch1", "vm1", "pc1", "10.22.0.10", 5201),
        ("azgw-branch2", "vm1", "pc2", "10.23.0.10", 5202),
    ]
    assert notes == []


def test_a_connection_without_hosts_is_skipped_with_a_note() -> None:
    data = yaml.safe_load((DATA / "vpngw1.yml").read_text())
    edited = copy.deepcopy(data)
    edited["sites"]["branch2"].pop("hosts")
    topo, _ = load_text(yaml.safe_dump(edited), "t.yml")
    paths, notes = bench_paths(topo)
    assert [p.label for p in paths] == ["azgw-branch1"]
    assert notes == ["connection 'azgw-branch2': needs a host on both ends, not measured"]


def test_veth_path_is_vnet_host_to_its_gateway_instance_own_inside_address() -> None:
    topo, _ = load_text((DATA / "basic-rb.yml").read_text(), "t.yml")
    plan = build_plan(topo)
    veth = veth_path(plan, bench_paths(topo)[0][0], 5202)
    own = next(i for i in plan.node("azgw-0").ifaces if i.name == "eth1").addresses[0].ip
    assert (veth.client, veth.server, veth.target, veth.port) == ("vm1", "azgw-0", own, 5202)


def test_a_path_lists_the_charons_that_carry_it() -> None:
    topo, _ = load_text((DATA / "vpngw1.yml").read_text(), "t.yml")
    paths, _ = bench_paths(topo)
    assert [p.charons[-1] for p in paths] == ["branch1", "branch2"]
    assert all(p.charons[0] == "azgw-0" and not p.own_device for p in paths)


def test_iperf_argv() -> None:
    assert iperf_argv(PATH, 3, "cubic", False) == [
        "iperf3", "-c", "10.12.0.10", "-p", "5201", "-t", "3", "-J", "-C", "cubic"]
    assert iperf_argv(PATH, 5, INHERITED, True) == [
        "iperf3", "-c", "10.12.0.10", "-p", "5201", "-t", "5", "-J", "-R"]


def test_parse_iperf_takes_receiver_goodput() -> None:
    flow = parse_iperf(_iperf_json(91_231_892.5, 101_707_634.2, 12), PATH)
    assert (flow.mbps, flow.sender_mbps, flow.retransmits, flow.congestion) == (91.2, 101.7, 12, "cubic")


def test_parse_iperf_reports_iperfs_own_error() -> None:
    text = json.dumps({"start": {}, "intervals": [], "end": {},
                       "error": "unable to connect to server: Connection refused"})
    with pytest.raises(BenchError, match=r"vm1 -> pc1 \(10.12.0.10:5201\): unable to connect"):
        parse_iperf(text, PATH)


def test_parse_iperf_without_json() -> None:
    with pytest.raises(BenchError, match="no JSON result"):
        parse_iperf("OCI runtime exec failed", PATH)


def _flow(mbps: float) -> Flow:
    return Flow(client="vm1", server="pc1", target="10.12.0.10", mbps=mbps, sender_mbps=mbps, retransmits=0,
                congestion="cubic")


def test_aggregate_is_the_sum_of_parallel_flows_and_ratio_is_uncapped_over_veth() -> None:
    res = BenchResult(lab="x", seconds=3, reverse=False, loadavg="0.1", measurements=[
        Measurement(kind="aggregate", label="azgw", congestion="cubic", cap_mbps=650, flows=[_flow(300), _flow(50.5)]),
        Measurement(kind="uncapped", label="c", congestion="cubic", flows=[_flow(250)]),
        Measurement(kind="veth", label="v", congestion="cubic", flows=[_flow(5000)]),
    ])
    assert res.figure("aggregate", "cubic") == 350.5
    assert res.ratios == {"cubic": 0.05}
    assert json.loads(res.model_dump_json())["measurements"][0]["mbps"] == 350.5


def test_host_sysctl_is_restored_even_when_the_block_fails(tmp_path: Path) -> None:
    knob = tmp_path / "net" / "core" / "rmem_default"
    knob.parent.mkdir(parents=True)
    knob.write_text("212992\n")
    with pytest.raises(RuntimeError), host_sysctl("net/core/rmem_default", 4194304, root=tmp_path) as old:
        assert old == 212992
        assert knob.read_text() == "4194304\n"
        raise RuntimeError("measurement failed")
    assert knob.read_text() == "212992\n"
