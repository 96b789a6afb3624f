"""plan_changes: what `lab apply` may change in a running lab (as Azure allows in place) and what it refuses.

Azure rules cited by the refusals (Microsoft Learn, "About VPN Gateway" FAQ and "About gateway SKUs"):
- a gateway's VPN type cannot be changed (policy-based <-> route-based): delete and re-create the gateway;
- a gateway resizes within its SKU family (VpnGw1 <-> VpnGw2 ...); Basic cannot be resized to VpnGw1-5;
- a connection's gateway and peer (local network gateway) are fixed at creation, as is its IKE protocol.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from lab.ha.standby import standby_configs
from lab.ops.apply import Change, ChangeRefused, conn_work, file_changes, plan_changes, refuse, sku_family
from lab.render.connections import render_swanctl
from lab.topology.load import load_text
from lab.topology.model import Topology

DATA = Path(__file__).resolve().parents[1] / "integration" / "data"
TWO_SITES = yaml.safe_load((DATA / "two-sites.yml").read_text())
BASIC = yaml.safe_load((DATA / "basic-rb.yml").read_text())
POLICY = {"ike_encryption": "AES256", "ike_integrity": "SHA256", "dh_group": "DHGroup14",
          "ipsec_encryption": "GCMAES256", "ipsec_integrity": "GCMAES256", "pfs_group": "None"}


def topo(base: dict[str, Any], edit: Callable[[dict[str, Any]], None] | None = None) -> Topology:
    data = copy.deepcopy(base)
    if edit:
        edit(data)
    loaded, _ = load_text(yaml.safe_dump(data), "t.yml")
    return loaded


def kinds(changes: list[Change]) -> list[tuple[str, str]]:
    return [(c.kind, c.path) for c in changes]


def refused(changes: list[Change]) -> list[str]:
    return [c.kind for c in changes if c.refusal]


def test_same_topology_changes_nothing() -> None:
    assert plan_changes(topo(TWO_SITES), topo(TWO_SITES)) == []


# ---- allowed in place --------------------------------------------------------------------------


def test_remove_and_add_connection() -> None:
    old = topo(TWO_SITES)
    fewer = topo(TWO_SITES, lambda d: d["connections"].pop("azgw-branch2"))
    assert kinds(plan_changes(old, fewer)) == [("remove-connection", "connections.azgw-branch2")]
    assert kinds(plan_changes(fewer, old)) == [("add-connection", "connections.azgw-branch2")]


def test_new_shared_key_is_a_change_that_never_shows_the_key() -> None:
    new = topo(TWO_SITES, lambda d: d["connections"]["azgw-branch1"].update(shared_key="another-secret-key"))
    changes = plan_changes(topo(TWO_SITES), new)
    assert kinds(changes) == [("shared-key", "connections.azgw-branch1.shared_key")]
    assert "another-secret-key" not in repr(changes) + changes[0].model_dump_json()


def test_dropping_an_explicit_key_keeps_the_stored_one() -> None:
    """Without shared_key the lab uses the key it stored at `up` (the old one): nothing changes."""
    new = topo(TWO_SITES, lambda d: d["connections"]["azgw-branch1"].pop("shared_key"))
    assert plan_changes(topo(TWO_SITES), new) == []


@pytest.mark.parametrize("what", ["added", "changed", "removed"])
def test_ipsec_policy_change(what: str) -> None:
    with_policy = topo(TWO_SITES, lambda d: d["connections"]["azgw-branch2"].update(ipsec_policy=POLICY))
    other = topo(TWO_SITES, lambda d: d["connections"]["azgw-branch2"].update(
        ipsec_policy={**POLICY, "dh_group": "ECP384"}))
    old, new = {"added": (topo(TWO_SITES), with_policy), "changed": (with_policy, other),
                "removed": (with_policy, topo(TWO_SITES))}[what]
    changes = plan_changes(old, new)
    assert kinds(changes) == [("ipsec-policy", "connections.azgw-branch2.ipsec_policy")]
    assert what in changes[0].detail


def test_other_connection_settings_are_updates() -> None:
    new = topo(TWO_SITES, lambda d: d["connections"]["azgw-branch1"].update(dpd_timeout_seconds=30,
                                                                          connection_mode="ResponderOnly"))
    (change,) = plan_changes(topo(TWO_SITES), new)
    assert (change.kind, change.refusal) == ("update-connection", None)
    assert "connection_mode" in change.detail and "dpd_timeout_seconds" in change.detail


@pytest.mark.parametrize("old_sku, new_sku", [("VpnGw1", "VpnGw2"), ("VpnGw3", "VpnGw1"), ("VpnGw2", "VpnGw5")])
def test_resize_within_the_vpngw_family(old_sku: str, new_sku: str) -> None:
    old = topo(TWO_SITES, lambda d: d["gateways"]["azgw"].update(sku=old_sku))
    new = topo(TWO_SITES, lambda d: d["gateways"]["azgw"].update(sku=new_sku))
    (change,) = plan_changes(old, new)
    assert (change.kind, change.path, change.refusal) == ("resize", "gateways.azgw.sku", None)
    assert f"{old_sku} -> {new_sku}" in change.detail and "Mbps" in change.detail


# ---- refused, as Azure refuses -----------------------------------------------------------------


def test_vpn_type_change_is_refused_with_the_reason() -> None:
    pb = topo(BASIC, lambda d: (d["gateways"]["azgw"].update(vpn_type="PolicyBased"),
                                d["connections"]["azgw-onprem"].update(ike_version="IKEv1")))
    changes = plan_changes(topo(BASIC), pb)
    assert refused(changes) == ["vpn-type", "ike-version"]
    assert "cannot change a gateway's VPN type" in changes[0].refusal  # type: ignore[operator]
    assert "deleted and re-created" in changes[0].refusal  # type: ignore[operator]


@pytest.mark.parametrize("old_sku, new_sku", [("Basic", "VpnGw1"), ("Basic", "VpnGw3")])
def test_basic_cannot_be_resized_to_vpngw_or_back(old_sku: str, new_sku: str) -> None:
    small, big = topo(BASIC), topo(BASIC, lambda d: d["gateways"]["azgw"].update(sku=new_sku))
    for old, new in ((small, big), (big, small)):
        changes = plan_changes(old, new)
        assert refused(changes) == ["sku-family"]
        assert "within its SKU family" in changes[0].refusal  # type: ignore[operator]


def test_sku_families() -> None:
    assert {sku_family(s) for s in ("VpnGw1", "VpnGw2", "VpnGw3", "VpnGw4", "VpnGw5")} == {"VpnGw"}
    assert sku_family("Basic") == "Basic"


def test_connection_to_another_site_is_refused() -> None:
    new = topo(TWO_SITES, lambda d: d["connections"]["azgw-branch1"].update(site="branch2"))
    changes = plan_changes(topo(TWO_SITES), new)
    assert kinds(changes) == [("connection-endpoints", "connections.azgw-branch1.site")]
    assert "add a connection under a new name" in changes[0].refusal  # type: ignore[operator]


def test_ike_version_change_is_refused() -> None:
    new = topo(TWO_SITES, lambda d: d["connections"]["azgw-branch1"].update(ike_version="IKEv1"))
    assert refused(plan_changes(topo(TWO_SITES), new)) == ["ike-version"]


# ---- refused: the lab cannot add or re-wire nodes live (yet) ------------------------------------


def test_adding_a_site_needs_new_nodes() -> None:
    def add_site(d: dict[str, Any]) -> None:
        d["sites"]["aaa"] = {"public_ip": "198.51.100.49", "address_space": ["10.49.0.0/16"]}
        d["connections"]["azgw-aaa"] = {"gateway": "azgw", "site": "aaa"}

    changes = plan_changes(topo(TWO_SITES), topo(TWO_SITES, add_site))
    # 'aaa' sorts first, so the other sites' bridges are renumbered: that alone is not a re-wiring.
    assert kinds(changes) == [("new-nodes", "sites.aaa"), ("add-connection", "connections.azgw-aaa")]
    assert refused(changes) == ["new-nodes", "add-connection"]  # a route-based connection: its own interfaces


def test_removing_a_gateway_removes_nodes() -> None:
    old = topo(TWO_SITES, lambda d: d["gateways"].update(
        gw2={"public_ips": ["203.0.113.49"], "vnet": {"address_space": ["10.48.0.0/16"]}}))
    assert kinds(plan_changes(old, topo(TWO_SITES))) == [("new-nodes", "gateways.gw2")]


def test_adding_a_host_needs_a_new_node() -> None:
    new = topo(TWO_SITES, lambda d: d["sites"]["branch1"]["hosts"].update(pc9="10.42.0.99"))
    changes = plan_changes(topo(TWO_SITES), new)
    assert kinds(changes) == [("new-nodes", "sites.branch1")]
    assert "pc9" in changes[0].refusal  # type: ignore[operator]


def test_active_active_needs_a_second_instance() -> None:
    new = topo(TWO_SITES, lambda d: d["gateways"]["azgw"].update(active_active=True,
                                                                  public_ips=["203.0.113.40", "203.0.113.41"]))
    changes = plan_changes(topo(TWO_SITES), new)
    # The A/S standby azgw-1 already exists (lab.plan.standby_name): going A/A re-addresses both instances.
    assert ("rewire", "gateways.azgw") in kinds(changes)
    assert "azgw-1" in " ".join(c.refusal or "" for c in changes)
    assert "update-gateway" not in [c.kind for c in changes]  # covered by the refusal


@pytest.mark.parametrize("edit, node", [
    (lambda d: d["sites"]["branch1"].update(address_space=["10.42.0.0/16", "10.52.0.0/16"]), "branch1"),
    (lambda d: d["sites"]["branch2"].update(public_ip="198.51.100.99"), "branch2"),
    (lambda d: d["gateways"]["azgw"]["vnet"].update(address_space=["10.41.0.0/16", "10.51.0.0/16"]), "azgw-0"),
])
def test_readdressing_a_node_is_refused(edit: Callable[[dict[str, Any]], None], node: str) -> None:
    changes = plan_changes(topo(TWO_SITES), topo(TWO_SITES, edit))
    assert set(refused(changes)) == {"rewire"}  # a VNet change re-addresses the A/S standby azgw-1 too
    assert f"node {node!r}" in changes[0].refusal  # type: ignore[operator]


def test_refuse_raises_exit_2_listing_every_refusal() -> None:
    new = topo(TWO_SITES, lambda d: (d["connections"]["azgw-branch1"].update(ike_version="IKEv1"),
                                     d["sites"]["branch1"]["hosts"].update(pc9="10.42.0.99")))
    changes = plan_changes(topo(TWO_SITES), new)
    with pytest.raises(ChangeRefused, match="nothing was changed") as info:
        refuse(changes, "apply-2s", Path("new.yml"))
    assert info.value.exit_code == 2
    assert len(info.value.findings) == 2
    assert info.value.hint == "lab down apply-2s, then lab up new.yml (Azure: delete and re-create it)"


def test_refuse_lets_allowed_changes_through() -> None:
    refuse([Change(kind="resize", path="gateways.azgw.sku", detail="VpnGw1 -> VpnGw2")], "x", Path("x.yml"))


# ---- which connections the executor touches ------------------------------------------------------


KEYS = {"azgw-branch1": "k1", "azgw-branch2": "k2"}


def test_a_key_change_reloads_that_connection_on_both_ends_only() -> None:
    old = render_swanctl(topo(TWO_SITES), KEYS)
    work = conn_work(old, render_swanctl(topo(TWO_SITES), {**KEYS, "azgw-branch1": "k1-new"}))
    assert {n: (w.removed, w.load) for n, w in work.items()} == {
        "azgw-0": ([], ["azgw-branch1"]), "branch1": ([], ["azgw-branch1"])}
    assert [k.secret for k in work["azgw-0"].config.secrets] == ["k1-new"]
    assert list(work["azgw-0"].config.connections) == ["azgw-branch1"]


def test_unchanged_config_touches_nothing() -> None:
    assert conn_work(render_swanctl(topo(TWO_SITES), KEYS), render_swanctl(topo(TWO_SITES), KEYS)) == {}


def test_removed_connection_is_retired_on_both_ends() -> None:
    fewer = topo(TWO_SITES, lambda d: d["connections"].pop("azgw-branch2"))
    work = conn_work(render_swanctl(topo(TWO_SITES), KEYS), render_swanctl(fewer, KEYS))
    assert {n: (w.removed, w.load) for n, w in work.items()} == {
        "azgw-0": (["azgw-branch2"], []), "branch2": (["azgw-branch2"], [])}


def test_policy_change_reloads_the_connection_with_its_key() -> None:
    new = topo(TWO_SITES, lambda d: d["connections"]["azgw-branch2"].update(ipsec_policy=POLICY))
    work = conn_work(render_swanctl(topo(TWO_SITES), KEYS), render_swanctl(new, KEYS))
    assert sorted(work) == ["azgw-0", "branch2"]
    assert [k.name for k in work["branch2"].config.secrets] == ["ike-azgw-branch2"]


def test_a_warm_standby_gets_the_same_key_change_quietly() -> None:
    """Basic is active-standby: azgw-1 holds the active's connections, loaded with start_action none."""
    keys = {"azgw-onprem": "k"}
    old = render_swanctl(topo(BASIC), keys)
    new = render_swanctl(topo(BASIC), {"azgw-onprem": "k-new"})
    warm = conn_work(standby_configs(topo(BASIC), old), standby_configs(topo(BASIC), new))
    assert {n: w.load for n, w in warm.items()} == {"azgw-1": ["azgw-onprem"]}
    (child,) = warm["azgw-1"].config.connections["azgw-onprem"]["children"].values()  # type: ignore[union-attr]
    assert child["start_action"] == "none"  # type: ignore[index]


def test_a_warm_standby_mirrors_each_route_based_tunnels_own_charon() -> None:
    """Route-based on libipsec: a tunnel's connection and key live in its own charon on both instances; the
    warm standby's mirrored tunnel charon gets a key change quietly (start_action none), its main charon none."""
    from lab.plan import build_plan
    from lab.render.lab_files import render_files

    t = topo(TWO_SITES)
    keys = {"azgw-branch1": "k1", "azgw-branch2": "k2"}
    _, old = render_files(t, build_plan(t), keys, "libipsec")
    _, new = render_files(t, build_plan(t), {**keys, "azgw-branch1": "k1-new"}, "libipsec")
    warm = conn_work(standby_configs(t, old), standby_configs(t, new))
    assert {n: w.load for n, w in warm.items() if w.load} == {"azgw-1/tunnels/azgw-branch1": ["azgw-branch1"]}
    tree = warm["azgw-1/tunnels/azgw-branch1"].config.connections["azgw-branch1"]
    (child,) = tree["children"].values()  # type: ignore[union-attr]
    assert child["start_action"] == "none"  # type: ignore[index]


SWANCTL = PurePosixPath("azgw-0/swanctl.conf")
STRONGSWAN = PurePosixPath("azgw-0/strongswan.conf")
BYO = PurePosixPath("onprem/swanctl.conf")


def test_only_lab_loaded_swanctl_files_may_change_live() -> None:
    loaded = {"azgw-0"}  # onprem: a BYO site, its swanctl.conf is the user's
    disk = {SWANCTL: "old", STRONGSWAN: "retransmit_timeout = 2.0", BYO: "user v1"}
    assert file_changes(disk, {**disk, SWANCTL: "new"}, loaded) == []
    changes = file_changes(disk, {SWANCTL: "new", STRONGSWAN: "retransmit_timeout = 1.0", BYO: "user v2"}, loaded)
    assert kinds(changes) == [("charon-settings", "nodes.azgw-0"), ("charon-settings", "nodes.onprem")]
    assert "strongswan.conf would change" in changes[0].refusal  # type: ignore[operator]


def test_a_route_based_tunnels_own_swanctl_file_changes_live_and_results_are_per_node() -> None:
    """A key change on a route-based tunnel rewrites its own charon's swanctl.conf (`<node>/tunnels/<conn>/`):
    that unit is loaded by the lab, so the change is live, not a charon-settings refusal; the result names nodes."""
    from lab.ops.apply import by_node, unit_of_file

    own = PurePosixPath("azgw-0/tunnels/azgw-onprem/swanctl.conf")
    script = PurePosixPath("azgw-0/tunnels/azgw-onprem/strongswan.conf")
    assert unit_of_file(own) == "azgw-0/tunnels/azgw-onprem" and unit_of_file(SWANCTL) == "azgw-0"
    loaded = {"azgw-0/tunnels/azgw-onprem"}
    assert file_changes({own: "old"}, {own: "new"}, loaded) == []
    assert kinds(file_changes({own: "old"}, {own: "new"}, {"azgw-0"})) == [("charon-settings", "nodes.azgw-0")]
    assert kinds(file_changes({script: "a"}, {script: "b"}, loaded)) == [("charon-settings", "nodes.azgw-0")]
    assert by_node({"azgw-0/tunnels/b": ["b"], "azgw-0": ["p2s"], "onprem/tunnels/a": ["a"]}) == {
        "azgw-0": ["b", "p2s"], "onprem": ["a"]}


def test_files_of_nodes_not_on_disk_are_not_compared() -> None:
    assert file_changes({}, {STRONGSWAN: "anything"}, set()) == []


def test_a_failed_over_gateway_is_refused(tmp_path: Path) -> None:
    from lab import core
    from lab.ha import agents as ha
    from lab.ops.apply import lab_state_refusals
    from lab.plan import build_plan
    from lab.state import LabDir

    basic = topo(BASIC)
    lab = core.Lab(basic, build_plan(basic), LabDir(tmp_path))
    for node in ("azgw-0", "azgw-1"):
        lab.dir.node(node).mkdir(parents=True)
    assert lab_state_refusals(lab) == []  # as `up` left it
    ha.set_role(lab, "azgw-0", "standby")
    ha.set_role(lab, "azgw-1", "active")
    (change,) = lab_state_refusals(lab)
    assert (change.kind, change.path) == ("lab-state", "gateways.azgw")
    assert "failover" in change.refusal  # type: ignore[operator]


def test_ha_timing_change_is_refused_as_a_lab_limit() -> None:
    """The HA agents read ha_timing when they start: a live change would leave them on the old timing."""
    changes = plan_changes(topo(BASIC), topo(BASIC, lambda d: d["gateways"]["azgw"].update(ha_timing="fast")))
    assert refused(changes) == ["ha-timing"]
    assert "bring the lab up again" in changes[0].refusal  # type: ignore[operator]


def test_adding_or_removing_a_route_based_connection_is_refused_for_now() -> None:
    """Its tunnel interface and charon on each end are made by `lab up` only (docs/route-based.md)."""
    old = topo(TWO_SITES)
    fewer = topo(TWO_SITES, lambda d: d["connections"].pop("azgw-branch2"))
    for change in (*plan_changes(old, fewer), *plan_changes(fewer, old)):
        assert change.refusal and "own tunnel interface and charon" in change.refusal
