"""Azure policy names -> strongSwan proposal strings (default offers and custom policies)."""

from __future__ import annotations

from lab.azure import facts
from lab.topology.model import Connection, Gateway, IpsecPolicy


def ike_proposal(enc: str, integ: str, dh: str) -> str:
    e, i, g = facts.IKE_ENCRYPTION[enc], facts.IKE_INTEGRITY[integ], facts.DH_GROUP[dh]
    # AEAD IKE ciphers carry no integrity algorithm, only a PRF.
    return f"{e}-prf{i}-{g}" if "gcm" in e else f"{e}-{i}-{g}"


def esp_proposal(enc: str, integ: str, pfs: str, mm_group: str | None = None) -> str:
    parts = [facts.IPSEC_ENCRYPTION[enc]]
    if facts.IPSEC_INTEGRITY[integ]:
        parts.append(facts.IPSEC_INTEGRITY[integ])
    group = facts.PFS_GROUP[pfs]
    if group == "mm":  # PFSMM: the same group as the IKE SA
        group = mm_group or ""
    if group:
        parts.append(group)
    return "-".join(parts)


def default_ike_proposals() -> list[str]:
    return [ike_proposal(o.encryption, o.integrity, o.dh_or_pfs) for o in facts.DEFAULT_IKE_OFFERS]


def default_esp_proposals(vpn_type: str) -> list[str]:
    offers = facts.POLICY_BASED_OFFERS if vpn_type == "PolicyBased" else facts.ROUTE_BASED_RESPONDER_OFFERS
    return [esp_proposal(o.encryption, o.integrity, o.dh_or_pfs) for o in offers]


def custom_proposals(pol: IpsecPolicy) -> tuple[list[str], list[str]]:
    mm = facts.DH_GROUP[pol.dh_group]
    return (
        [ike_proposal(pol.ike_encryption, pol.ike_integrity, pol.dh_group)],
        [esp_proposal(pol.ipsec_encryption, pol.ipsec_integrity, pol.pfs_group, mm)],
    )


def gateway_proposals(conn: Connection, gw: Gateway) -> tuple[list[str], list[str]]:
    """What the emulated gateway offers and accepts on this connection."""
    if conn.ipsec_policy is not None:
        return custom_proposals(conn.ipsec_policy)
    return default_ike_proposals(), default_esp_proposals(gw.vpn_type)


def child_lifetime(conn: Connection, gw: Gateway) -> tuple[int, int | None]:
    """Phase-2 lifetime (seconds, kilobytes) the gateway uses on this connection."""
    if conn.ipsec_policy is not None:
        return conn.ipsec_policy.sa_lifetime_seconds, conn.ipsec_policy.sa_data_size_kilobytes
    if gw.vpn_type == "PolicyBased":
        return facts.POLICY_BASED_CHILD_LIFETIME_S, None
    return facts.ROUTE_BASED_CHILD_LIFETIME_S, facts.ROUTE_BASED_CHILD_LIFETIME_KB
