"""Custom traffic selectors (trafficSelectorPolicies): one CHILD_SA per line proposed by the gateway, a catch-all
responder child that accepts any peer proposal, the device mirroring the lines; rules and the libipsec limit."""

from __future__ import annotations

import socket
import struct

from lab.acquire import agent_specs
from lab.ops.apply_live import ConnWork, awaited
from lab.pipeline import expected_sas
from lab.probes.acquire_agent import bpf_program, matching
from lab.render.connections import expected_children, render_swanctl
from tests.topology.builders import at, base, model

LINES = [{"local_address_ranges": ["10.1.0.0/24"], "remote_address_ranges": ["10.2.0.0/24"]},
         {"local_address_ranges": ["10.1.0.0/16"], "remote_address_ranges": ["10.2.0.0/16", "10.3.0.0/24"]}]


def with_selectors(**conn: object) -> dict:
    data = base()
    data["connections"]["c1"].update(use_policy_based_traffic_selectors=True, traffic_selector_policies=LINES, **conn)
    return data


def test_one_child_per_line_proposed_by_the_gateway_and_a_catch_all_it_only_accepts() -> None:
    topo = model(with_selectors())
    gw = render_swanctl(topo, {"c1": "k"})["azgw-0"].connections["c1"]["children"]
    assert list(gw) == ["c1-any", "c1-ts0", "c1-ts1"]  # type: ignore[arg-type]
    assert (gw["c1-ts0"]["local_ts"], gw["c1-ts0"]["remote_ts"]) == (["10.1.0.0/24"], ["10.2.0.0/24"])
    assert gw["c1-ts1"]["remote_ts"] == ["10.2.0.0/16", "10.3.0.0/24"]
    # Azure: only the first line comes up with the tunnel, the others on first traffic (trap policies)
    assert [gw[c]["start_action"] for c in gw] == ["none", "start", "trap"]  # type: ignore[index]
    assert (gw["c1-ts1"]["dpd_action"], gw["c1-ts1"]["close_action"]) == ("trap", "trap")  # type: ignore[index]
    assert (gw["c1-any"]["local_ts"], gw["c1-any"]["dpd_action"]) == (["0.0.0.0/0"], "clear")
    site = render_swanctl(topo, {"c1": "k"})["onprem"].connections["c1"]["children"]
    assert list(site) == ["c1-ts0", "c1-ts1"]  # type: ignore[arg-type]
    assert site["c1-ts1"]["local_ts"] == ["10.2.0.0/16", "10.3.0.0/24"]
    assert [site[c]["start_action"] for c in site] == ["none", "trap"]  # type: ignore[index]
    # neither the catch-all nor a line that waits for traffic is awaited
    assert expected_children(topo)["azgw-0"] == [("c1", ["c1-ts0"])]
    assert expected_children(topo)["onprem"] == [("c1", ["c1-ts0"])]
    swan = render_swanctl(topo, {"c1": "k"})
    assert expected_sas(swan) == {"azgw-0": [("c1", ["c1-ts0"])], "onprem": [("c1", ["c1-ts0"])]}


def test_the_acquire_agent_watches_every_line_that_waits_for_traffic() -> None:
    specs = agent_specs(render_swanctl(model(with_selectors()), {"c1": "k"}))
    assert sorted(specs) == ["azgw-0", "onprem"]
    assert specs["azgw-0"]["lines"] == [{"child": "c1-ts1", "ike": "c1", "local": ["10.1.0.0/16"],
                                         "remote": ["10.2.0.0/16", "10.3.0.0/24"]}]
    assert specs["onprem"]["lines"] == [{"child": "c1-ts1", "ike": "c1", "local": ["10.2.0.0/16", "10.3.0.0/24"],
                                         "remote": ["10.1.0.0/16"]}]
    assert agent_specs(render_swanctl(model(base()), {"c1": "k"})) == {}


def test_a_responder_only_gateway_initiates_no_line_and_the_device_starts_them_all() -> None:
    swan = render_swanctl(model(with_selectors(connection_mode="ResponderOnly")), {"c1": "k"})
    gw, site = (swan[n].connections["c1"]["children"] for n in ("azgw-0", "onprem"))
    assert [gw[c]["start_action"] for c in gw] == ["none", "none", "none"]  # type: ignore[index]
    assert [site[c]["start_action"] for c in site] == ["start", "start"]  # type: ignore[index]


def test_the_agents_filter_wakes_only_for_a_waiting_lines_packets() -> None:
    lines = [{"child": "a", "local": ["10.1.0.0/16"], "remote": ["10.2.0.0/16", "10.3.0.0/24"]},
             {"child": "b", "local": ["10.1.0.0/16"], "remote": ["10.4.0.0/16"]}]
    program = bpf_program(lines)
    for src, dst, accept in (("10.1.0.10", "10.3.0.10", True), ("10.1.0.10", "10.4.9.9", True),
                             ("10.1.0.10", "10.3.1.10", False), ("10.2.0.10", "10.1.0.10", False),
                             ("10.9.0.1", "10.2.0.1", False)):
        packet = bytes(12) + socket.inet_aton(src) + socket.inet_aton(dst)
        assert run_bpf(program, packet) == accept, (src, dst)
        assert (matching(lines, packet) is not None) == accept
    assert run_bpf(bpf_program([]), bytes(12) + socket.inet_aton("10.1.0.1") + socket.inet_aton("10.3.0.1")) is False


def run_bpf(program: bytes, packet: bytes) -> bool:
    """A classic BPF interpreter for the four opcodes the agent emits (ld [k], and #k, jeq #k, ret #k)."""
    insns = [struct.unpack("HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:
            acc = struct.unpack("!I", packet[k:k + 4])[0]
        elif code == 0x54:
            acc &= k
        elif code == 0x15:
            pc += jt if acc == k else jf
        elif code == 0x06:
            return k != 0
        pc += 1


def test_custom_selectors_need_policy_based_traffic_selectors() -> None:
    data = with_selectors()
    data["connections"]["c1"]["use_policy_based_traffic_selectors"] = False
    (f,) = at(data, "connections.c1.traffic_selector_policies", "error")
    assert "use_policy_based_traffic_selectors: true" in (f.hint or "")


def test_a_range_without_the_labs_address_warns_about_libipsec() -> None:
    data = with_selectors()
    data["connections"]["c1"]["traffic_selector_policies"] = [
        {"local_address_ranges": ["10.1.7.0/24"], "remote_address_ranges": ["10.2.0.0/24"]}]
    (f,) = at(data, "connections.c1.traffic_selector_policies[0].local_address_ranges", "warning")
    assert "libipsec" in f.message
    assert not at(data, "connections.c1.traffic_selector_policies[0].remote_address_ranges")


def test_lab_apply_waits_for_the_first_line_only_as_lab_up_does() -> None:
    swan = render_swanctl(model(with_selectors()), {"c1": "k"})
    work = {n: ConnWork([], ["c1"], swan[n]) for n in ("azgw-0", "onprem")}
    assert awaited(work) == {"azgw-0": [("c1", ["c1-ts0"])], "onprem": [("c1", ["c1-ts0"])]}
