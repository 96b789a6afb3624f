"""Azure policy names -> strongSwan proposal strings (default offers and custom policies)."""

from __future__ import annotations

from lab.azure import facts
from lab.topology.model import Connection, Gateway, IpsecPolicy


def ike_proposal(enc: str, integ: str, dh: str) -> str:
    e, i, g = facts.IKE_ENCRYPTION_ALGORITHMS[enc], facts.IKE_INTEGRITY_ALGORITHMS[integ], facts.DH_GROUPS[dh]
    # AEAD IKE ciphers carry no integrity algorithm, only a PRF.
    return f"{e}-prf{i}-{g}" if "gcm" in e else f"{e}-{i}-{g}"


def esp_proposal(enc: str, integ: str, pfs: str) -> str:
    parts = [facts.IPSEC_ENCRYPTION_ALGORITHMS[enc], facts.IPSEC_INTEGRITY_ALGORITHMS[integ],
             facts.PFS_GROUPS[pfs]]
    return "-".join(p for p in parts if p)


def default_ike_offers(vpn_type: str, ike_version: str) -> list[facts.PolicyOffer]:
    """Documented offers first, then (RouteBased) the assumed ones; IKEv1 cannot do AEAD IKE ciphers."""
    if vpn_type == "PolicyBased":
        return list(facts.POLICY_BASED_IKE_OFFERS)
    offers = [*facts.ROUTE_BASED_IKE_OFFERS, *facts.ROUTE_BASED_IKE_ASSUMED]
    return [o for o in offers if ike_version == "IKEv2" or not o.encryption.startswith("GCM")]


def default_ike_proposals(vpn_type: str, ike_version: str) -> list[str]:
    return [ike_proposal(o.encryption, o.integrity, o.dh_or_pfs) for o in default_ike_offers(vpn_type, ike_version)]


def documented_ike_proposals(vpn_type: str, ike_version: str) -> list[str]:
    return [ike_proposal(o.encryption, o.integrity, o.dh_or_pfs)
            for o in default_ike_offers(vpn_type, ike_version) if o.documented]


def default_esp_proposals(vpn_type: str, initiates: bool = True) -> list[str]:
    """Azure's quick-mode offers. strongSwan has one list per connection for both roles, so a gateway
    that initiates gets Azure's initiator offers (no PFS: with PFS entries in the list, an IKEv1
    initiator would force PFS on every offer) and a ResponderOnly one the longer responder list."""
    if vpn_type == "PolicyBased":
        offers = facts.POLICY_BASED_OFFERS
    else:
        offers = facts.ROUTE_BASED_INITIATOR_OFFERS if initiates else facts.ROUTE_BASED_RESPONDER_OFFERS
    return [esp_proposal(o.encryption, o.integrity, o.dh_or_pfs) for o in offers]


def custom_proposals(pol: IpsecPolicy) -> tuple[list[str], list[str]]:
    return (
        [ike_proposal(pol.ike_encryption, pol.ike_integrity, pol.dh_group)],
        [esp_proposal(pol.ipsec_encryption, pol.ipsec_integrity, pol.pfs_group)],
    )


def gateway_proposals(conn: Connection, gw: Gateway) -> tuple[list[str], list[str]]:
    """What the emulated gateway offers and accepts on this connection."""
    if conn.ipsec_policy is not None:
        return custom_proposals(conn.ipsec_policy)
    initiates = conn.connection_mode != "ResponderOnly"
    return default_ike_proposals(gw.vpn_type, conn.ike_version), default_esp_proposals(gw.vpn_type, initiates)


def child_lifetime(conn: Connection, gw: Gateway) -> tuple[int, int]:
    """Phase-2 lifetime (seconds, kilobytes) the gateway uses on this connection."""
    if conn.ipsec_policy is not None:
        return conn.ipsec_policy.sa_lifetime_seconds, conn.ipsec_policy.sa_data_size_kilobytes
    if gw.vpn_type == "PolicyBased":
        return facts.POLICY_BASED_CHILD_LIFETIME_S, facts.POLICY_BASED_CHILD_LIFETIME_KB
    return facts.ROUTE_BASED_CHILD_LIFETIME_S, facts.ROUTE_BASED_CHILD_LIFETIME_KB

