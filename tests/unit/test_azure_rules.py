"""One test per Azure rule; each reads the value it enforces from lab.azure.facts (the single source)."""

from __future__ import annotations

from typing import Any

import pytest

from lab.azure import facts
from tests.topology.builders import at, base, findings, model, second_gateway


def policy_based(**conn: Any) -> dict[str, Any]:
    data = base()
    data["gateways"]["azgw"].update(vpn_type="PolicyBased", sku="Basic")
    data["connections"]["c1"].update({"ike_version": "IKEv1", **conn})
    return data


def with_sites(data: dict[str, Any], count: int, gateway: str = "azgw") -> dict[str, Any]:
    """Replace sites and connections with `count` sites, each with its own IP and prefix, all on `gateway`."""
    template = {k: v for k, v in data["connections"].get("c1", {}).items() if k not in ("gateway", "site")}
    data["sites"] = {f"s{i}": {"public_ip": f"198.51.100.{i + 1}",
                               "address_space": [f"10.{100 + i // 200}.{i % 200}.0/24"]} for i in range(count)}
    data["connections"] = {f"c{i}": {**template, "gateway": gateway, "site": f"s{i}"} for i in range(count)}
    return data


def test_policy_based_gateway_needs_a_policy_based_sku() -> None:
    data = policy_based()
    assert not at(data, "gateways.azgw.sku", "error")
    data["gateways"]["azgw"]["sku"] = "VpnGw1"
    assert "VpnGw1" not in facts.POLICY_BASED_SKUS
    (f,) = at(data, "gateways.azgw.sku", "error")
    assert "must use the Basic SKU" in f.message


def test_policy_based_gateway_speaks_ikev1_only() -> None:
    assert facts.POLICY_BASED_IKE_VERSIONS == ("IKEv1",)
    assert not at(policy_based(), "connections.c1.ike_version")
    (f,) = at(policy_based(ike_version="IKEv2"), "connections.c1.ike_version", "error")
    assert "IKEv1 only" in f.message


def test_policy_based_gateway_has_one_s2s_connection() -> None:
    limit = facts.POLICY_BASED_MAX_S2S
    assert not at(with_sites(policy_based(), limit), "gateways.azgw")
    (f,) = at(with_sites(policy_based(), limit + 1), "gateways.azgw", "error")
    assert f"supports {limit} S2S connection" in f.message


def test_policy_based_gateway_cannot_be_active_active() -> None:
    data = policy_based()
    data["gateways"]["azgw"].update(active_active=True, public_ips=["203.0.113.10", "203.0.113.11"])
    (f,) = at(data, "gateways.azgw.active_active", "error")
    assert "RouteBased" in f.message


@pytest.mark.parametrize("sku", sorted(facts.SKUS))
def test_active_active_follows_the_sku(sku: str) -> None:
    data = base()
    data["gateways"]["azgw"].update(sku=sku, active_active=True, public_ips=["203.0.113.10", "203.0.113.11"])
    errors = at(data, "gateways.azgw.active_active", "error")
    assert bool(errors) == (not facts.SKUS[sku].active_active)


def test_active_active_gateway_has_two_public_ips() -> None:
    data = base()
    data["gateways"]["azgw"]["active_active"] = True
    (f,) = at(data, "gateways.azgw.public_ips", "error")
    assert "2 public IP(s), found 1" in f.message


@pytest.mark.parametrize("sku", sorted(facts.SKUS))
def test_ikev1_on_route_based_follows_the_sku(sku: str) -> None:
    data = base()
    data["gateways"]["azgw"]["sku"] = sku
    data["connections"]["c1"]["ike_version"] = "IKEv1"
    errors = at(data, "connections.c1.ike_version", "error")
    assert bool(errors) == (not facts.SKUS[sku].route_based_ikev1)


@pytest.mark.parametrize("sku", ["Basic", "VpnGw1", "VpnGw4"])
def test_tunnel_count_is_limited_by_the_sku(sku: str) -> None:
    limit = facts.SKUS[sku].s2s_tunnels // facts.TUNNELS_PER_CONNECTION
    data = base()
    data["gateways"]["azgw"]["sku"] = sku
    assert not at(with_sites(data, limit), "gateways.azgw")
    (f,) = at(with_sites(data, limit + 1), "gateways.azgw", "error")
    assert f"allows {facts.SKUS[sku].s2s_tunnels} S2S/VNet-to-VNet tunnels" in f.message


def test_vnet_to_vnet_counts_a_tunnel_on_both_gateways() -> None:
    data = second_gateway(base(), sku="Basic")
    limit = facts.SKUS["Basic"].s2s_tunnels
    data = with_sites(data, limit, gateway="west")
    data["connections"]["v2v"] = {"gateway": "azgw", "peer_gateway": "west"}
    (f,) = at(data, "gateways.west", "error")
    assert f"{limit + 1} connections use this gateway" in f.message
    assert not at(data, "gateways.azgw")


def test_vnet_to_vnet_needs_route_based_gateways() -> None:
    assert facts.VNET_TO_VNET_VPN_TYPES == ("RouteBased",)
    data = second_gateway(base(), vpn_type="PolicyBased", sku="Basic")
    data["connections"] = {"v2v": {"gateway": "azgw", "peer_gateway": "west"}}
    (f,) = at(data, "connections.v2v.peer_gateway", "error")
    assert "'west' is PolicyBased" in f.message
    assert not at(data, "connections.v2v.gateway")


def test_connection_ends_at_exactly_one_site_or_peer_gateway() -> None:
    data = second_gateway(base())
    data["connections"]["c1"]["peer_gateway"] = "west"
    (both,) = at(data, "connections.c1.site", "error")
    assert "exactly one of 'site' (site-to-site) or 'peer_gateway' (VNet-to-VNet), found both" in both.message
    del data["connections"]["c1"]["peer_gateway"], data["connections"]["c1"]["site"]
    (neither,) = at(data, "connections.c1", "error")
    assert "found neither" in neither.message


def test_peer_gateway_must_be_another_defined_gateway() -> None:
    data = base(connections={"v2v": {"gateway": "azgw", "peer_gateway": "azgw"}})
    (f,) = at(data, "connections.v2v.peer_gateway", "error")
    assert "found 'azgw' twice" in f.message
    data["connections"]["v2v"]["peer_gateway"] = "nope"
    (f,) = at(data, "connections.v2v.peer_gateway", "error")
    assert "gateway 'nope' is not defined" in f.message and f.hint and "azgw" in f.hint


POLICY = {"ike_encryption": "AES256", "ike_integrity": "SHA256", "dh_group": "DHGroup14",
          "ipsec_encryption": "AES256", "ipsec_integrity": "SHA256", "pfs_group": "None"}


@pytest.mark.parametrize("sku", sorted(facts.SKUS))
def test_custom_policy_follows_the_sku(sku: str) -> None:
    data = base()
    data["gateways"]["azgw"]["sku"] = sku
    data["connections"]["c1"]["ipsec_policy"] = dict(POLICY)
    assert bool(at(data, "connections.c1.ipsec_policy", "error")) == (not facts.SKUS[sku].custom_policy)


@pytest.mark.parametrize("field, allowed", [
    ("ike_encryption", facts.IKE_ENCRYPTION), ("ike_integrity", facts.IKE_INTEGRITY), ("dh_group", facts.DH_GROUP),
    ("ipsec_encryption", facts.IPSEC_ENCRYPTION), ("ipsec_integrity", facts.IPSEC_INTEGRITY),
    ("pfs_group", facts.PFS_GROUP)])
def test_custom_policy_value_outside_azures_list_names_the_field_and_the_values(field: str,
                                                                               allowed: tuple[str, ...]) -> None:
    data = base()
    data["connections"]["c1"]["ipsec_policy"] = {**POLICY, field: "PFS14"}
    (f,) = at(data, f"connections.c1.ipsec_policy.{field}", "error")
    assert all(f"'{value}'" in f.message for value in allowed), f.message
    assert "found 'PFS14'" in f.message


def test_custom_policy_gcm_needs_the_same_algorithm_for_integrity() -> None:
    data = base()
    data["connections"]["c1"]["ipsec_policy"] = {**POLICY, "ipsec_encryption": "GCMAES256", "ipsec_integrity": "SHA256"}
    (f,) = at(data, "connections.c1.ipsec_policy.ipsec_integrity", "error")
    assert "GCMAES256/SHA256" in f.message and f.hint == "set both to GCMAES256"
    data["connections"]["c1"]["ipsec_policy"]["ipsec_integrity"] = "GCMAES256"
    assert not at(data, "connections.c1.ipsec_policy.ipsec_integrity")


@pytest.mark.parametrize("field, bounds", [("sa_lifetime_seconds", facts.SA_LIFETIME_RANGE_S),
                                           ("sa_data_size_kilobytes", facts.SA_DATA_SIZE_RANGE_KB)])
def test_custom_policy_lifetimes_stay_in_azures_range(field: str, bounds: tuple[int, int]) -> None:
    low, high = bounds
    for value, ok in ((low - 1, False), (low, True), (high, True), (high + 1, False)):
        data = base()
        data["connections"]["c1"]["ipsec_policy"] = {**POLICY, field: value}
        assert bool(at(data, f"connections.c1.ipsec_policy.{field}", "error")) != ok, (field, value)


def test_dpd_timeout_stays_in_azures_range() -> None:
    low, high = facts.DPD_TIMEOUT_RANGE_S
    for value, ok in ((low - 1, False), (low, True), (high, True), (high + 1, False)):
        data = base()
        data["connections"]["c1"]["dpd_timeout_seconds"] = value
        assert bool(at(data, "connections.c1.dpd_timeout_seconds", "error")) != ok, value
    assert model(base()).connections["c1"].dpd_timeout_seconds == facts.DPD_TIMEOUT_DEFAULT_S


def test_connection_mode_lists_azures_modes() -> None:
    data = base()
    data["connections"]["c1"]["connection_mode"] = "Passive"
    (f,) = at(data, "connections.c1.connection_mode", "error")
    assert all(f"'{m}'" in f.message for m in ("Default", "InitiatorOnly", "ResponderOnly"))


def test_aead_ike_cipher_needs_ikev2_in_the_lab() -> None:
    data = base()
    data["connections"]["c1"].update(ike_version="IKEv1", ipsec_policy={**POLICY, "ike_encryption": "GCMAES256"})
    (f,) = at(data, "connections.c1.ipsec_policy.ike_encryption", "error")
    assert "needs IKEv2" in f.message
    data["connections"]["c1"]["ike_version"] = "IKEv2"
    assert not at(data, "connections.c1.ipsec_policy.ike_encryption")


def test_policy_based_traffic_selectors_are_for_route_based_gateways_and_need_no_custom_policy() -> None:
    data = base()
    data["connections"]["c1"]["use_policy_based_traffic_selectors"] = True
    assert not [f for f in findings(data) if f.severity == "error"]  # docs: allowed with the Default policy
    (f,) = at(policy_based(use_policy_based_traffic_selectors=True),
              "connections.c1.use_policy_based_traffic_selectors", "error")
    assert "RouteBased gateways only" in f.message


def test_policy_based_gateway_has_no_dpd() -> None:
    assert facts.POLICY_BASED_DPD is False
    assert not at(policy_based(), "connections.c1.dpd_timeout_seconds")
    (f,) = at(policy_based(dpd_timeout_seconds=30), "connections.c1.dpd_timeout_seconds", "warning")
    assert "does not support DPD" in f.message


def test_more_prefix_pairs_than_quick_mode_sas_warns() -> None:
    data = policy_based()
    n = facts.MAX_QUICK_MODE_SAS // 10 + 1  # n * 10 pairs > the limit
    data["gateways"]["azgw"]["vnet"] = {"address_space": [f"10.1.{k}.0/24" for k in range(n)]}
    data["sites"]["onprem"] = {"public_ip": "198.51.100.10", "address_space": [f"10.2.{k}.0/24" for k in range(10)]}
    (f,) = at(data, "connections.c1", "warning")
    assert f"{n * 10} prefix pairs" in f.message
    data["gateways"]["azgw"]["vnet"]["address_space"] = data["gateways"]["azgw"]["vnet"]["address_space"][:10]
    assert not at(data, "connections.c1")
