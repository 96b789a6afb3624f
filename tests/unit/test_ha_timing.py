"""`ha_timing`: how the standby watches its active (Azure's modelled probes vs the lab's fast ones), how long
`lab failover` streams, and Azure's documented figure beside the measurement."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.azure import facts
from lab.core import Lab
from lab.ha.agents import WATCH_INTERVAL_S, WATCH_MISSES, scaled_misses, standby_pairs, watch_of
from lab.ha.failover import azure_figure
from lab.ha.failover_run import default_duration
from lab.plan import build_plan
from lab.state import LabDir
from tests.topology.builders import base, model


def lab_of(data: dict) -> Lab:
    topo = model(data)
    return Lab(topo, build_plan(topo), LabDir.of(Path("/nonexistent"), topo.name))


def test_azure_timing_is_the_default_and_lands_in_azures_windows() -> None:
    topo = model(base())
    assert topo.gateways["azgw"].ha_timing == "azure"
    watch = watch_of(topo.gateways["azgw"])
    planned, unplanned = watch.window_s(planned=True), watch.window_s(planned=False)
    assert facts.PLANNED_FAILOVER_S[0] <= planned[0] and planned[1] <= facts.PLANNED_FAILOVER_S[1]
    assert facts.UNPLANNED_FAILOVER_S[0] <= unplanned[0] and unplanned[1] <= facts.UNPLANNED_FAILOVER_S[1]


def test_what_waits_for_a_takeover_waits_as_long_as_the_scaled_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    """In the QEMU guest (LAB_TIME_SCALE 6) the agent's planned 11 misses become 66: `lab p2s reconnect --event
    planned` gave up after 12 + 30 s while the agent was still counting (seen in the guest)."""
    watch = watch_of(model(base()).gateways["azgw"])
    assert watch.agent_window_s(planned=True) == watch.window_s(planned=True)
    monkeypatch.setenv("LAB_TIME_SCALE", "6")
    m = scaled_misses(watch.planned_misses)
    assert m == 6 * watch.planned_misses
    assert watch.agent_window_s(planned=True) == (m * watch.interval_s, (m + 1) * watch.interval_s)


def test_fast_timing_keeps_the_sub_second_watch() -> None:
    data = base()
    data["gateways"]["azgw"]["ha_timing"] = "fast"
    watch = watch_of(model(data).gateways["azgw"])
    assert (watch.interval_s, watch.misses, watch.planned_misses) == (WATCH_INTERVAL_S, WATCH_MISSES, 0)
    assert watch.window_s(planned=False)[1] < 1.0


def test_the_standby_pair_carries_its_watch() -> None:
    (pair,) = standby_pairs(lab_of(base()))
    assert pair.watch.misses == facts.HEALTH_MISSES_UNPLANNED
    assert pair.watch.planned_misses == facts.HEALTH_MISSES_PLANNED


def test_the_stream_outlasts_the_takeover_or_the_dpd() -> None:
    lab = lab_of(base())
    assert default_duration(lab, "azgw", "unplanned") > facts.UNPLANNED_FAILOVER_S[0] + 3
    assert default_duration(lab, "azgw", "planned") > facts.PLANNED_FAILOVER_S[1]
    data = base()
    data["gateways"]["azgw"].update(public_ips=["203.0.113.10", "203.0.113.11"])
    aa = lab_of(data)
    assert aa.topo.gateways["azgw"].is_active_active
    assert default_duration(aa, "azgw", "unplanned") > facts.DPD_TIMEOUT_DEFAULT_S + 3  # a DPD-bound outage fits
    data["connections"]["c1"]["dpd"] = "fast"
    assert default_duration(lab_of(data), "azgw", "unplanned") <= 20.0  # dpd fast: seconds suffice


def test_azure_figure_beside_the_measurement() -> None:
    assert azure_figure("active-standby", "planned") == "10-15 s (planned)"
    assert azure_figure("active-standby", "unplanned") == "60-90 s (unplanned)"
    assert azure_figure("active-active", "unplanned").startswith("no figure")
    assert azure_figure("active-standby", "none") == ""


def test_a_reset_standby_is_wired_without_the_moving_addresses() -> None:
    """`lab reset` on active-standby reboots <gw>-0 as the standby: the public IP and floating .4 stay put."""
    from lab.ha.reset import without_addresses

    lab = lab_of(base())
    (pair,) = standby_pairs(lab)
    plan = without_addresses(lab.plan, "azgw-0", set(pair.take))
    node = plan.node("azgw-0")
    assert [str(a) for i in node.ifaces for a in i.addresses] == ["10.1.0.5/16"]  # its own inside address only
    assert plan.node("azgw-1") == lab.plan.node("azgw-1")
    assert {str(a) for i in lab.plan.node("azgw-0").ifaces for a in i.addresses} >= {"203.0.113.10/24", "10.1.0.4/16"}
