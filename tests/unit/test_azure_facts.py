"""The facts tables against Azure's documentation, and the proposal strings rendered from them."""

from __future__ import annotations

from itertools import product

import pytest

from lab.azure import facts
from lab.azure.algorithms import parse_proposal
from lab.azure.proposals import (
    custom_proposals,
    default_esp_proposals,
    default_ike_proposals,
    documented_ike_proposals,
    esp_proposal,
)
from lab.topology.model import IpsecPolicy


def test_documented_ike_phase1_offers_use_dh_group_2_only() -> None:
    """Docs, "IKE Phase 1 (Main Mode) parameters": DH group 2 (1024 bit); AES256/AES128/3DES x SHA1/SHA256."""
    for offers in (facts.ROUTE_BASED_IKE_OFFERS, facts.POLICY_BASED_IKE_OFFERS):
        assert {o.dh_or_pfs for o in offers} == {"DHGroup2"}
        assert all(o.documented for o in offers)
        assert {o.encryption for o in offers} <= {"AES256", "AES128", "DES3"}
        assert {o.integrity for o in offers} <= {"SHA1", "SHA256"}
    assert len(facts.ROUTE_BASED_IKE_OFFERS) == 6
    assert [(o.encryption, o.integrity) for o in facts.POLICY_BASED_IKE_OFFERS] == [
        ("AES256", "SHA256"), ("AES256", "SHA1"), ("AES128", "SHA1"), ("DES3", "SHA1")]


def test_assumed_ike_offers_are_marked_and_come_after_the_documented_ones() -> None:
    assert facts.ROUTE_BASED_IKE_ASSUMED and not any(o.documented for o in facts.ROUTE_BASED_IKE_ASSUMED)
    rendered = default_ike_proposals("RouteBased", "IKEv2")
    documented = documented_ike_proposals("RouteBased", "IKEv2")
    assert rendered[: len(documented)] == documented and len(rendered) > len(documented)
    assert default_ike_proposals("PolicyBased", "IKEv1") == documented_ike_proposals("PolicyBased", "IKEv1")


def test_ikev1_defaults_leave_out_aead_ike_ciphers() -> None:
    assert any("gcm" in p for p in default_ike_proposals("RouteBased", "IKEv2"))
    assert not any("gcm" in p for p in default_ike_proposals("RouteBased", "IKEv1"))


def test_quick_mode_tables() -> None:
    """Docs: PolicyBased QM offers have no PFS; Azure as responder accepts everything it offers as initiator."""
    assert all(o.dh_or_pfs == "None" for o in facts.POLICY_BASED_OFFERS)
    assert all(o.dh_or_pfs == "None" for o in facts.ROUTE_BASED_INITIATOR_OFFERS)
    assert facts.ROUTE_BASED_RESPONDER_OFFERS[: len(facts.ROUTE_BASED_INITIATOR_OFFERS)] == \
        facts.ROUTE_BASED_INITIATOR_OFFERS
    assert len(facts.ROUTE_BASED_RESPONDER_OFFERS) == 26
    assert default_esp_proposals("RouteBased", initiates=True)[0] == "aes256gcm16"
    assert "aes256-sha1-modp2048" in default_esp_proposals("RouteBased", initiates=False)
    assert "aes256-sha1-modp2048" not in default_esp_proposals("RouteBased", initiates=True)


def test_lifetimes() -> None:
    assert facts.IKE_SA_LIFETIME_S == 28_800
    assert (facts.ROUTE_BASED_CHILD_LIFETIME_S, facts.POLICY_BASED_CHILD_LIFETIME_S) == (27_000, 3_600)
    assert facts.ROUTE_BASED_CHILD_LIFETIME_KB == facts.POLICY_BASED_CHILD_LIFETIME_KB == 102_400_000


def test_every_default_offer_renders_a_valid_strongswan_proposal() -> None:
    for vpn_type, version in product(("RouteBased", "PolicyBased"), ("IKEv1", "IKEv2")):
        for p in default_ike_proposals(vpn_type, version):
            parse_proposal(p, "ike")
    for vpn_type, initiates in product(("RouteBased", "PolicyBased"), (True, False)):
        for p in default_esp_proposals(vpn_type, initiates):
            parse_proposal(p, "esp")


@pytest.mark.parametrize("ike_enc, ike_int, dh",
                         list(product(facts.IKE_ENCRYPTION, facts.IKE_INTEGRITY, facts.DH_GROUP)))
def test_every_custom_ike_combination_renders(ike_enc: str, ike_int: str, dh: str) -> None:
    pol = IpsecPolicy(ike_encryption=ike_enc, ike_integrity=ike_int, dh_group=dh, ipsec_encryption="AES256",
                      ipsec_integrity="SHA256", pfs_group="None")
    (ike,), _ = custom_proposals(pol)
    t = parse_proposal(ike, "ike")
    assert t.dh == {facts.DH_GROUPS[dh]} and t.prf == {f"prf{facts.IKE_INTEGRITY_ALGORITHMS[ike_int]}"}


@pytest.mark.parametrize("enc, integ, pfs", [
    (e, i, p) for e, i, p in product(facts.IPSEC_ENCRYPTION, facts.IPSEC_INTEGRITY, facts.PFS_GROUP)
    if e.startswith("GCM") == i.startswith("GCM") and (not e.startswith("GCM") or e == i)])
def test_every_valid_custom_esp_combination_renders(enc: str, integ: str, pfs: str) -> None:
    t = parse_proposal(esp_proposal(enc, integ, pfs), "esp")
    assert t.dh == ({facts.PFS_GROUPS[pfs]} if facts.PFS_GROUPS[pfs] else set())
