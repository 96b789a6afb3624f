"""What verify probes (targets), how it talks to the agent, and how it runs, with fakes instead of Docker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.core import Lab
from lab.errors import ProbeError, RuntimeBackendError
from lab.plan import build_plan
from lab.probes.results import ProbeSpec, agent_argv, parse_agent_output
from lab.runtime.base import ExecResult
from lab.runtime.capture import TcpdumpCapture, tcpdump_argv
from lab.state import LabDir
from lab.topology.load import load_file, load_text
from lab.verify.run import VerifyOptions, verify
from lab.verify.targets import ProbeOptions, build_targets, free_addresses, reach_specs, selector_specs
from lab.verify.xfrm import XFRM_ARGV
from tests.fakes import Exec, FakeControl, FakeRuntime, running

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "topologies" / "s2s-route-based.yml"


def test_reference_targets() -> None:
    topo, _ = load_file(REFERENCE)
    t = build_targets(topo, build_plan(topo))
    assert [(p.host_a, p.host_b, p.group_a, p.group_b) for p in t.pairs] == [("vm1", "pc1", "azgw", "onprem")]
    assert t.public_ips == {"203.0.113.10": "azgw-0", "198.51.100.10": "onprem"}
    assert {"10.1.0.10", "10.2.0.10", "10.1.0.4", "10.2.0.1"} <= set(t.inner)
    assert (t.outside, t.spoofed) == ("10.99.0.1", "10.98.0.5")
    reach = reach_specs(t, 20001, ProbeOptions())
    assert [s.id for s in reach] == ["icmp:vm1>pc1", "udp:vm1>pc1", "icmp:pc1>vm1", "udp:pc1>vm1"]
    assert reach[1].port == 20001 and reach[1].dst == "10.2.0.10"
    sel = selector_specs(t, ProbeOptions())
    # route-based on both ends (tunnel interfaces, 0/0): routes decide, so no spoofed-source probe
    assert t.pairs[0].route_based
    assert {(s.src_node, s.src, s.dst) for s in sel} == {("pc1", None, "10.99.0.1"), ("vm1", None, "10.99.0.1")}
    narrowing = REFERENCE.read_text().replace("    hosts: {pc1: 10.2.0.10}",
                                              "    hosts: {pc1: 10.2.0.10}\n    device: {traffic_selectors: prefixes}")
    topo, _ = load_text(narrowing)
    t = build_targets(topo, build_plan(topo))
    assert not t.pairs[0].route_based
    assert {(s.src_node, s.src, s.dst) for s in selector_specs(t, ProbeOptions())} == {
        ("pc1", None, "10.99.0.1"), ("vm1", None, "10.99.0.1"),
        ("vm1", "10.98.0.5", "10.2.0.10"), ("pc1", "10.98.0.5", "10.1.0.10")}


def test_free_addresses_skip_prefixes_the_lab_uses() -> None:
    text = REFERENCE.read_text().replace("[10.2.0.0/16]", "[10.2.0.0/16, 10.99.0.0/16, 10.98.0.0/16]")
    topo, _ = load_text(text)
    assert free_addresses(topo) == ("10.97.0.1", "10.96.0.5")


def spec(i: str) -> ProbeSpec:
    return ProbeSpec(id=i, purpose="reach", kind="icmp", src_node="vm1", dst="10.2.0.10", dst_node="pc1")


def test_agent_argv_and_answer() -> None:
    argv = agent_argv("m", [spec("a")])
    assert argv[:3] == ["python3", "/lab/agent.py", "probe"]
    assert json.loads(argv[3]) == {"marker": "m", "probes": [
        {"id": "a", "kind": "icmp", "dst": "10.2.0.10", "src": None, "count": 10, "interval": 0.02,
         "timeout": 1.0, "port": 0}]}
    result = {"id": "a", "sent": 10, "received": 9, "rtts_ms": [1.0], "start": 1, "end": 2}
    out = "WARNING: noise\n" + json.dumps({"results": [result]})
    (r,) = parse_agent_output("vm1", out, [spec("a")])
    assert (r.sent, r.received, r.loss_pct) == (10, 9, 10.0)


@pytest.mark.parametrize("output, message", [
    ("python3: can't open file", "printed no result"),
    ('{"error": "PermissionError: x"}', "probe agent failed: PermissionError"),
    ('{"results": []}', "no result for probe 'a'"),
    ('{"results": [{"id": "a", "sent": "x"}]}', "malformed result"),
])
def test_agent_failures_are_probe_errors(output: str, message: str) -> None:
    with pytest.raises(ProbeError, match=message):
        parse_agent_output("vm1", output, [spec("a")])


def test_capture_runs_in_the_lab_namespace_only() -> None:
    argv = tcpdump_argv("lab-x", "inet", Path("/tmp/c.pcap"))
    assert argv[:3] == ["nsenter", "--net=/run/netns/lab-x", "tcpdump"]
    assert argv[argv.index("-i") + 1] == "inet" and "-U" in argv
    assert argv[argv.index("-B") + 1] == "32768"  # a burst waits in the kernel while tcpdump waits for a core
    with pytest.raises(RuntimeBackendError, match="namespace 'lab-no-such-lab-ns': does not exist"):
        TcpdumpCapture("lab-no-such-lab-ns", "inet", Path("/tmp/none.pcap"))


def agent(lab: Lab) -> Exec:
    """Nodes that answer every probe (as if the tunnel worked) while the capture (tests/fakes.py) sees nothing:
    verify must notice."""
    def on_exec(node: str, argv: list[str]) -> ExecResult:
        if argv == XFRM_ARGV:
            return ExecResult(0, "")  # libipsec: the kernel holds no SA
        if argv[2] == "echo":
            ready = argv[argv.index("--ready") + 1]
            lab.dir.node(node).joinpath(Path(ready).name).write_text("1")
            return ExecResult(0, "")
        probes = json.loads(argv[3])["probes"]
        res = [{"id": p["id"], "sent": p["count"], "received": p["count"] if p["src"] is None and
                not p["dst"].startswith("10.99") else 0, "rtts_ms": [], "start": 1, "end": 2} for p in probes]
        return ExecResult(0, json.dumps({"results": res}))
    return on_exec


def fake_runtime(lab: Lab, status: str = "running") -> FakeRuntime:
    return FakeRuntime(nodes=running(lab.topo.name, lab.plan.nodes, status), on_exec=agent(lab))


def asked(rt: FakeRuntime, what: str) -> list[tuple[str, str]]:
    """(node, agent command) of each exec whose third word is `what`."""
    return sorted((str(c[1]), what) for c in rt.calls if c[0] == "exec" and c[4:5] == (what,))


def fake_lab(tmp_path: Path) -> Lab:
    topo, _ = load_file(REFERENCE)
    d = LabDir.of(tmp_path, topo.name)
    for n in ("vm1", "pc1"):
        d.node(n).mkdir(parents=True)
    d.dataplane_file.write_text("libipsec\n")  # as `lab up` records it
    return Lab(topo, build_plan(topo), d)


def test_verify_orchestration_with_fakes(tmp_path: Path) -> None:
    lab = fake_lab(tmp_path)
    rt = fake_runtime(lab)
    report = verify(lab, rt, lambda _p: FakeControl(), VerifyOptions(), read_keys=lambda d, n: [])
    by = {c.name: c.passed for c in report.checks}
    assert by == {"reachability": True, "encrypted": False, "spis": False, "selectors": False,
                  "decryption": False, "dataplane": False}
    xfrm = sorted((str(c[1]), "xfrm") for c in rt.calls if c[0] == "exec" and list(c[2:]) == XFRM_ARGV)
    assert xfrm == [("azgw-0", "xfrm"), ("azgw-0", "xfrm"),
                                                           ("azgw-1", "xfrm"), ("azgw-1", "xfrm"),
                                                           ("onprem", "xfrm"), ("onprem", "xfrm")]
    assert "the capture is empty" in " ".join(report.check("encrypted").evidence)
    assert (lab.dir.node("vm1") / "agent.py").exists()
    assert asked(rt, "echo") == [("pc1", "echo"), ("vm1", "echo")]
    assert not report.passed and report.marker.startswith("labverify-")


def test_verify_refuses_a_lab_that_is_not_running(tmp_path: Path) -> None:
    lab = fake_lab(tmp_path)
    with pytest.raises(ProbeError, match="node 'azgw-0' of lab 's2s-rb' is exited"):
        verify(lab, fake_runtime(lab, "exited"), lambda _p: FakeControl())


def test_probe_packets_interleave_and_keep_each_probe_interval_apart() -> None:
    from lab.probes.agent import send_order

    order = send_order([["a1", "a2", "a3"], ["b1"], ["c1", "c2"]], 0.02, min_gap=0.002)
    assert [p for p, _ in order] == ["a1", "b1", "c1", "a2", "c2", "a3"]
    # each probe's next packet comes at least 20 ms later; a round of n probes is n gaps
    assert [round(g, 4) for _, g in order] == [0.0067, 0.0067, 0.0067, 0.01, 0.01, 0.02]
    many = send_order([[f"p{i}"] * 10 for i in range(200)], 0.02, min_gap=0.002)
    assert len(many) == 2000 and round(sum(g for _, g in many), 1) == 4.0  # 500 per second, not 40 s
    assert send_order([], 0.02) == []


def test_answer_sniffer_filters_in_the_kernel_to_the_probed_addresses() -> None:
    from lab.probes.agent import answer_filter

    assert answer_filter({"10.2.0.10", "10.1.0.10"}) == "ip and (src host 10.1.0.10 or src host 10.2.0.10)"
