"""Device overrides against the gateway's policy: warnings `lab validate` prints, errors for bad shapes."""

from __future__ import annotations

from typing import Any

from lab.azure import facts
from tests.topology.builders import at, base, findings

CUSTOM = {"ike_encryption": "AES256", "ike_integrity": "SHA256", "dh_group": "DHGroup14",
          "ipsec_encryption": "AES256", "ipsec_integrity": "SHA256", "pfs_group": "None"}


def device(conn: dict[str, Any] | None = None, **dev: Any) -> dict[str, Any]:
    data = base()
    data["sites"]["onprem"]["device"] = dev
    data["connections"]["c1"].update(conn or {})
    return data


def test_a_device_without_overrides_gets_no_warning() -> None:
    assert findings(base()) == []


def test_ike_proposals_outside_the_custom_policy_warn_and_list_what_azure_accepts() -> None:
    data = device({"ipsec_policy": CUSTOM}, ike_proposals=["aes128-sha1-modp1024"])
    (f,) = at(data, "sites.onprem.device.ike_proposals", "warning")
    assert "no IKE proposal in common with the custom policy of connection 'c1'" in f.message
    assert "aes256-sha256-modp2048" in f.message and "no proposal chosen" in (f.hint or "")
    data = device({"ipsec_policy": CUSTOM}, ike_proposals=["aes128-sha1-modp1024", "aes256-sha256-modp2048"])
    assert not at(data, "sites.onprem.device.ike_proposals")


def test_ike_proposal_matching_only_an_assumed_default_offer_is_flagged() -> None:
    (f,) = at(device(ike_proposals=["aes256-sha256-modp2048"]), "sites.onprem.device.ike_proposals", "warning")
    assert "assumes Azure accepts" in f.message
    assert not at(device(ike_proposals=["aes256-sha1-modp1024"]), "sites.onprem.device.ike_proposals")


def test_esp_with_other_pfs_comes_up_on_ikev2_but_not_on_ikev1() -> None:
    v2 = device(esp_proposals=["aes256-sha1-modp2048"])
    (f,) = at(v2, "sites.onprem.device.esp_proposals", "warning")
    assert "rekeying it will fail" in f.message
    v1 = device({"ike_version": "IKEv1"}, esp_proposals=["aes256-sha1-modp2048"])
    (f,) = at(v1, "sites.onprem.device.esp_proposals", "warning")
    assert "no ESP proposal in common with the default policy" in f.message


def test_lifetimes_that_differ_from_azures_warn() -> None:
    data = device(ike_lifetime_seconds=3600, child_lifetime_seconds=facts.ROUTE_BASED_CHILD_LIFETIME_S)
    (f,) = at(data, "sites.onprem.device.ike_lifetime_seconds", "warning")
    assert f"Azure's fixed IKE SA lifetime of {facts.IKE_SA_LIFETIME_S} s" in f.message
    assert not at(data, "sites.onprem.device.child_lifetime_seconds")
    pb = device({"ike_version": "IKEv1"}, child_lifetime_seconds=facts.ROUTE_BASED_CHILD_LIFETIME_S)
    pb["gateways"]["azgw"].update(vpn_type="PolicyBased", sku="Basic")
    (f,) = at(pb, "sites.onprem.device.child_lifetime_seconds", "warning")
    assert f"the {facts.POLICY_BASED_CHILD_LIFETIME_S} s phase-2 lifetime" in f.message


def test_malformed_device_proposal_is_an_error_at_its_index() -> None:
    (f,) = at(device(esp_proposals=["aes256", "aes256-sha256"]), "sites.onprem.device.esp_proposals[0]", "error")
    assert f.message == "ESP proposal 'aes256': needs an integrity algorithm (e.g. sha256)"


def test_ikev1_device_with_aead_ike_proposal_warns() -> None:
    data = device({"ike_version": "IKEv1"}, ike_proposals=["aes256gcm16-prfsha256-ecp256"])
    msgs = [f.message for f in at(data, "sites.onprem.device.ike_proposals", "warning")]
    assert any("IKEv1 cannot negotiate AEAD" in m for m in msgs)
