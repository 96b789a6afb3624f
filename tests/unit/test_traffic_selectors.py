"""Custom traffic selectors (trafficSelectorPolicies): one CHILD_SA per line proposed by the gateway, a catch-all
responder child that accepts any peer proposal, the device mirroring the lines; rules and the libipsec limit."""

from __future__ import annotations

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
    assert [gw[c]["start_action"] for c in gw] == ["none", "start", "start"]  # type: ignore[index]
    assert (gw["c1-any"]["local_ts"], gw["c1-any"]["dpd_action"]) == (["0.0.0.0/0"], "clear")
    site = render_swanctl(topo, {"c1": "k"})["onprem"].connections["c1"]["children"]
    assert list(site) == ["c1-ts0", "c1-ts1"]  # type: ignore[arg-type]
    assert site["c1-ts1"]["local_ts"] == ["10.2.0.0/16", "10.3.0.0/24"]
    assert expected_children(topo)["azgw-0"] == [("c1", ["c1-ts0", "c1-ts1"])]  # the catch-all is not awaited


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
