"""Azure VPN Gateway facts, as data. Tests, rules, rendering and docs read them from here.

Sources (Microsoft Learn, "About VPN Gateway SKUs", "About cryptographic requirements and Azure VPN
gateways", "Configure custom IPsec/IKE connection policies", "About VPN devices and IPsec/IKE parameters").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

VpnType = Literal["RouteBased", "PolicyBased"]
SkuName = Literal["Basic", "VpnGw1", "VpnGw2", "VpnGw3", "VpnGw4", "VpnGw5"]
IkeVersion = Literal["IKEv2", "IKEv1"]
ConnectionMode = Literal["Default", "InitiatorOnly", "ResponderOnly"]


@dataclass(frozen=True)
class Sku:
    name: str
    s2s_tunnels: int
    p2s_ikev2: int  # 0: P2S IKEv2 not supported
    aggregate_mbps: int
    bgp: bool
    active_active: bool
    custom_policy: bool


SKUS: dict[str, Sku] = {
    s.name: s
    for s in (
        Sku("Basic", 10, 0, 100, bgp=False, active_active=False, custom_policy=False),
        Sku("VpnGw1", 30, 250, 650, bgp=True, active_active=True, custom_policy=True),
        Sku("VpnGw2", 30, 500, 1250, bgp=True, active_active=True, custom_policy=True),
        Sku("VpnGw3", 30, 1000, 2500, bgp=True, active_active=True, custom_policy=True),
        Sku("VpnGw4", 100, 5000, 5000, bgp=True, active_active=True, custom_policy=True),
        Sku("VpnGw5", 100, 10000, 10000, bgp=True, active_active=True, custom_policy=True),
    )
}

BGP_ASN = 65515
IKE_SA_LIFETIME_S = 28_800
ROUTE_BASED_CHILD_LIFETIME_S = 27_000
ROUTE_BASED_CHILD_LIFETIME_KB = 102_400_000
POLICY_BASED_CHILD_LIFETIME_S = 3_600
DPD_TIMEOUT_DEFAULT_S = 45
DPD_TIMEOUT_RANGE_S = (9, 3_600)
# Custom policy QM SA lifetime ranges (Azure accepts 300 s .. 172,799 s and 1,024 KB .. 2,147,483,647 KB).
SA_LIFETIME_RANGE_S = (300, 172_799)
SA_DATA_SIZE_RANGE_KB = (1_024, 2_147_483_647)

# Custom policy values Azure accepts, mapped to strongSwan proposal keywords.
IKE_ENCRYPTION = {
    "GCMAES256": "aes256gcm16", "GCMAES128": "aes128gcm16", "AES256": "aes256", "AES192": "aes192",
    "AES128": "aes128", "DES3": "3des", "DES": "des",
}
IKE_INTEGRITY = {"SHA384": "sha384", "SHA256": "sha256", "SHA1": "sha1", "MD5": "md5"}
DH_GROUP = {
    "DHGroup24": "modp2048s256", "ECP384": "ecp384", "ECP256": "ecp256", "DHGroup14": "modp2048",
    "DHGroup2048": "modp2048", "DHGroup2": "modp1024", "DHGroup1": "modp768",
}
IPSEC_ENCRYPTION = {
    "GCMAES256": "aes256gcm16", "GCMAES192": "aes192gcm16", "GCMAES128": "aes128gcm16",
    "AES256": "aes256", "AES192": "aes192", "AES128": "aes128", "DES3": "3des", "DES": "des",
    "None": "null",
}
IPSEC_INTEGRITY = {
    "GCMAES256": "", "GCMAES192": "", "GCMAES128": "", "SHA256": "sha256", "SHA1": "sha1", "MD5": "md5",
}
PFS_GROUP = {
    "PFS24": "modp2048s256", "ECP384": "ecp384", "ECP256": "ecp256", "PFS2048": "modp2048",
    "PFS14": "modp2048", "PFS2": "modp1024", "PFS1": "modp768", "PFSMM": "mm", "None": "",
}


@dataclass(frozen=True)
class PolicyOffer:
    """One default offer: Azure's names, as they appear in the documentation tables."""

    encryption: str
    integrity: str
    dh_or_pfs: str = "None"


# IKE phase 1 (main mode / IKE_SA) that Azure offers and accepts with no custom policy.
DEFAULT_IKE_OFFERS: tuple[PolicyOffer, ...] = (
    PolicyOffer("AES256", "SHA256", "DHGroup2"),
    PolicyOffer("AES256", "SHA1", "DHGroup2"),
    PolicyOffer("AES128", "SHA256", "DHGroup2"),
    PolicyOffer("AES128", "SHA1", "DHGroup2"),
    PolicyOffer("DES3", "SHA256", "DHGroup2"),
    PolicyOffer("DES3", "SHA1", "DHGroup2"),
    PolicyOffer("AES256", "SHA256", "DHGroup14"),
    PolicyOffer("AES256", "SHA384", "DHGroup24"),
    PolicyOffer("GCMAES256", "SHA384", "ECP384"),
    PolicyOffer("GCMAES256", "SHA256", "ECP256"),
)

# Route-based IPsec (quick mode / CHILD_SA) offers with Azure as initiator, in order.
ROUTE_BASED_INITIATOR_OFFERS: tuple[PolicyOffer, ...] = (
    PolicyOffer("GCMAES256", "GCMAES256"),
    PolicyOffer("AES256", "SHA1"),
    PolicyOffer("DES3", "SHA1"),
    PolicyOffer("AES256", "SHA256"),
    PolicyOffer("AES128", "SHA1"),
    PolicyOffer("DES3", "SHA256"),
)

# Route-based IPsec offers Azure accepts as responder (initiator list plus DES and PFS variants).
ROUTE_BASED_RESPONDER_OFFERS: tuple[PolicyOffer, ...] = ROUTE_BASED_INITIATOR_OFFERS + (
    PolicyOffer("DES", "SHA1"),
    PolicyOffer("AES256", "SHA1", "PFS1"),
    PolicyOffer("AES256", "SHA1", "PFS2"),
    PolicyOffer("AES256", "SHA1", "PFS14"),
    PolicyOffer("AES128", "SHA1", "PFS1"),
    PolicyOffer("AES128", "SHA1", "PFS2"),
    PolicyOffer("AES128", "SHA1", "PFS14"),
    PolicyOffer("DES3", "SHA1", "PFS1"),
    PolicyOffer("DES3", "SHA1", "PFS2"),
    PolicyOffer("DES3", "SHA256", "PFS2"),
    PolicyOffer("AES256", "SHA256", "PFS1"),
    PolicyOffer("AES256", "SHA256", "PFS2"),
    PolicyOffer("AES256", "SHA256", "PFS14"),
    PolicyOffer("AES256", "SHA1", "PFS24"),
    PolicyOffer("AES256", "SHA256", "PFS24"),
    PolicyOffer("AES128", "SHA256", "None"),
    PolicyOffer("AES128", "SHA256", "PFS1"),
    PolicyOffer("AES128", "SHA256", "PFS2"),
    PolicyOffer("AES128", "SHA256", "PFS14"),
    PolicyOffer("DES3", "SHA1", "PFS14"),
)

# Policy-based (IKEv1 quick mode) offers: AES256/AES128/3DES with SHA1/SHA256, no PFS.
POLICY_BASED_OFFERS: tuple[PolicyOffer, ...] = (
    PolicyOffer("AES256", "SHA1"),
    PolicyOffer("AES256", "SHA256"),
    PolicyOffer("AES128", "SHA1"),
    PolicyOffer("AES128", "SHA256"),
    PolicyOffer("DES3", "SHA1"),
    PolicyOffer("DES3", "SHA256"),
)
