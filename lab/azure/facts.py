"""Azure VPN Gateway facts, as data. Tests, rules, rendering and docs read them from here.

Sources (Microsoft Learn; docs/azure-model.md quotes the tables): "About gateway SKUs", "About VPN
devices and IPsec/IKE parameters for S2S VPN Gateway connections" (section "Default IPsec/IKE
parameters"), "Configure custom IPsec/IKE connection policies" (algorithm, requirement and
Diffie-Hellman tables). A value the documentation does not state is marked ASSUMPTION where it is
defined, and docs/azure-model.md lists every assumption.
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
    s2s_tunnels: int  # "S2S/VNet-to-VNet tunnels" of a RouteBased gateway
    p2s_ikev2: int  # 0: P2S IKEv2 not supported
    p2s_sstp: int
    aggregate_mbps: int
    bgp: bool
    active_active: bool
    custom_policy: bool
    route_based_ikev1: bool  # IKEv1 S2S connections on a RouteBased gateway


# Throughput: Generation1 for Basic and VpnGw1, Generation2 for VpnGw2-5 (Gen1 VpnGw2/3: 1 / 1.25 Gbps).
SKUS: dict[str, Sku] = {
    s.name: s
    for s in (
        Sku("Basic", 10, 0, 128, 100, bgp=False, active_active=False, custom_policy=False,
            route_based_ikev1=False),
        Sku("VpnGw1", 30, 250, 128, 650, bgp=True, active_active=True, custom_policy=True, route_based_ikev1=True),
        Sku("VpnGw2", 30, 500, 128, 1250, bgp=True, active_active=True, custom_policy=True, route_based_ikev1=True),
        Sku("VpnGw3", 30, 1000, 128, 2500, bgp=True, active_active=True, custom_policy=True, route_based_ikev1=True),
        Sku("VpnGw4", 100, 5000, 128, 5000, bgp=True, active_active=True, custom_policy=True,
            route_based_ikev1=True),
        Sku("VpnGw5", 100, 10000, 128, 10000, bgp=True, active_active=True, custom_policy=True,
            route_based_ikev1=True),
    )
}

# PolicyBased VPN: Basic SKU only, IKEv1 only, one S2S connection, no P2S, no VNet-to-VNet, no BGP,
# no active-active ("About gateway SKUs", feature table). VNet-to-VNet needs RouteBased on both ends.
POLICY_BASED_SKUS = ("Basic",)
POLICY_BASED_IKE_VERSIONS = ("IKEv1",)
POLICY_BASED_MAX_S2S = 1
VNET_TO_VNET_VPN_TYPES = ("RouteBased",)
# ASSUMPTION: each connection counts one tunnel against its gateway's limit (an active-active
# gateway's two instance tunnels of one connection count once); a VNet-to-VNet connection counts
# on both gateways, as Azure creates one connection resource on each.
TUNNELS_PER_CONNECTION = 1
# "Number of Quick Mode SA: 100" (IKE phase 1 table): prefix pairs of one policy-based connection.
MAX_QUICK_MODE_SAS = 100

# Connection shared key (PSK): 1-128 characters. Sources: "az network vpn-connection shared-key reset
# --key-length: should between 1 and 128" (https://learn.microsoft.com/en-us/cli/azure/network/vpn-connection/shared-key)
# and "The SharedKey value is an alphanumeric string of 1-128 letters" (Set-AzureVNetGatewayKey,
# https://learn.microsoft.com/en-us/previous-versions/azure/dn769125(v=azure.100)).
# ASSUMPTION on the characters: printable ASCII (U+0020-U+007E), the rule Azure's network provider states for
# the gateway's other shared secret ("a combination of printable ascii characters ... between 1 to 128 in
# length", error VpnClientConfigurationRadiusServerSecretIsInvalid, github.com/Azure/azure-powershell/issues/11605);
# the documented "alphanumeric" is its subset. Control characters (newline, tab) and non-ASCII are refused.
SHARED_KEY_LENGTH = (1, 128)
SHARED_KEY_CHARS = (0x20, 0x7E)  # inclusive code point range
SHARED_KEY_SOURCES = (
    "https://learn.microsoft.com/en-us/cli/azure/network/vpn-connection/shared-key",
    "https://learn.microsoft.com/en-us/previous-versions/azure/dn769125(v=azure.100)",
)


def shared_key_problem(key: str) -> str | None:
    """Why Azure would refuse this shared key (None: accepted). Never echoes the key itself."""
    low, high = SHARED_KEY_LENGTH
    if not low <= len(key) <= high:
        return f"is {len(key)} characters long; Azure accepts {low}-{high}"
    for i, ch in enumerate(key):
        if not SHARED_KEY_CHARS[0] <= ord(ch) <= SHARED_KEY_CHARS[1]:
            what = "a control character" if ord(ch) < 0x20 or ord(ch) == 0x7F else "a non-ASCII character"
            return f"has {what} (U+{ord(ch):04X}) at position {i + 1}; Azure accepts printable ASCII only"
    return None


# BGP (checked 2026-11-30 against BGP_SOURCES below; docs/azure-model.md quotes them).
BGP_SOURCES = {
    "faq": "https://learn.microsoft.com/en-us/azure/vpn-gateway/vpn-gateway-vpn-faq#bgp",
    "howto": "https://learn.microsoft.com/en-us/azure/vpn-gateway/bgp-howto",
    "overview": "https://learn.microsoft.com/en-us/azure/vpn-gateway/vpn-gateway-bgp-overview",
}
BGP_ASN = 65515  # "Azure VPN gateways have a default ASN of 65515 assigned" (faq)
ASN_MAX = 4_294_967_295  # "VPN Gateway now supports 32-bit (4-byte) ASNs" (faq)
# "ASNs reserved by Azure: Public ASNs: 8074, 8075, 12076; Private ASNs: 65515, 65517, 65518, 65519, 65520"
# and "reserved by IANA: 23456, 64496-64511, 65535-65551": "You can't specify these ASNs for your
# on-premises VPN devices" (faq). (The FAQ also lists "429496729", a digit short of 4294967295, the
# 32-bit reserved ASN: the lab refuses both.)
AZURE_RESERVED_ASNS = (8074, 8075, 12076, 65515, 65517, 65518, 65519, 65520)
IANA_RESERVED_ASN_RANGES = ((23456, 23456), (64496, 64511), (65535, 65551), (429_496_729, 429_496_729),
                            (ASN_MAX, ASN_MAX))
# "you must select an address from the Azure-reserved APIPA address range for VPN, which is from
# 169.254.21.0 to 169.254.22.255"; the second instance's "must be different than the first" (howto).
APIPA_RANGE = ("169.254.21.0", "169.254.22.255")
APIPA_NETWORK = "169.254.0.0/16"  # an on-prem peer IP here makes Azure use its APIPA address (howto)
# "When APIPA addresses are used on Azure VPN gateways, the gateways do not initiate BGP peering sessions
# ... The on-premises VPN device must initiate BGP peering connections." (howto)
APIPA_AZURE_INITIATES = False
# "Azure VPN Gateway supports up to 4000 prefixes. The BGP session is dropped if the number of prefixes
# exceeds the limit." (faq)
BGP_MAX_PREFIXES = 4_000
# "the default, 60-second keepalive interval, and the 180-second hold timer"; no BFD (faq).
BGP_KEEPALIVE_S = 60
BGP_HOLD_S = 180
# Not emulating Azure: `bgp_timers: fast` (lab-only, for failover labs): FRR's smallest hold time.
BGP_FAST_TIMERS_S = (1, 3)
IKE_SA_LIFETIME_S = 28_800  # "IKE Main Mode SA lifetime is fixed at 28,800 seconds"
ROUTE_BASED_CHILD_LIFETIME_S = 27_000
ROUTE_BASED_CHILD_LIFETIME_KB = 102_400_000
POLICY_BASED_CHILD_LIFETIME_S = 3_600
POLICY_BASED_CHILD_LIFETIME_KB = 102_400_000
POLICY_BASED_DPD = False  # "Dead Peer Detection: Not supported" for PolicyBased
DPD_TIMEOUT_DEFAULT_S = 45
DPD_TIMEOUT_RANGE_S = (9, 3_600)
# Custom policy QM SA lifetime: the docs give the minimums (300 s, 1,024 KB); the maximums are the
# API's (ASSUMPTION: 172,799 s as New-AzIpsecPolicy validates, and the int32 maximum in KB).
SA_LIFETIME_RANGE_S = (300, 172_799)
SA_DATA_SIZE_RANGE_KB = (1_024, 2_147_483_647)

# Every Azure algorithm name the lab knows, mapped to strongSwan's proposal keyword ("" = none).
IKE_ENCRYPTION_ALGORITHMS = {
    "GCMAES256": "aes256gcm16", "GCMAES128": "aes128gcm16", "AES256": "aes256", "AES192": "aes192",
    "AES128": "aes128", "DES3": "3des", "DES": "des",
}
IKE_INTEGRITY_ALGORITHMS = {"SHA384": "sha384", "SHA256": "sha256", "SHA1": "sha1", "MD5": "md5"}
DH_GROUPS = {
    "DHGroup24": "modp2048s256", "ECP384": "ecp384", "ECP256": "ecp256", "DHGroup14": "modp2048",
    "DHGroup2048": "modp2048", "DHGroup2": "modp1024", "DHGroup1": "modp768",
}
IPSEC_ENCRYPTION_ALGORITHMS = {
    "GCMAES256": "aes256gcm16", "GCMAES192": "aes192gcm16", "GCMAES128": "aes128gcm16",
    "AES256": "aes256", "AES192": "aes192", "AES128": "aes128", "DES3": "3des", "DES": "des",
    "None": "null",
}
IPSEC_INTEGRITY_ALGORITHMS = {
    "GCMAES256": "", "GCMAES192": "", "GCMAES128": "", "SHA256": "sha256", "SHA1": "sha1", "MD5": "md5",
}
PFS_GROUPS = {
    "PFS24": "modp2048s256", "ECP384": "ecp384", "ECP256": "ecp256", "PFS2048": "modp2048",
    "PFS2": "modp1024", "PFS1": "modp768", "None": "",
}

# Custom policy: the values the "Algorithms and keys" table allows, in its order.
# IKE encryption no longer lists DES3/DES (older API versions accepted them). The DH group row also
# lists "None", which cannot set up an IKE SA: the lab leaves it out.
IKE_ENCRYPTION = ("GCMAES256", "GCMAES128", "AES256", "AES192", "AES128")
IKE_INTEGRITY = ("SHA384", "SHA256", "SHA1", "MD5")
DH_GROUP = ("DHGroup24", "ECP384", "ECP256", "DHGroup14", "DHGroup2048", "DHGroup2", "DHGroup1")
IPSEC_ENCRYPTION = ("GCMAES256", "GCMAES192", "GCMAES128", "AES256", "AES192", "AES128", "DES3", "DES", "None")
IPSEC_INTEGRITY = ("GCMAES256", "GCMAES192", "GCMAES128", "SHA256", "SHA1", "MD5")
PFS_GROUP = ("PFS24", "ECP384", "ECP256", "PFS2048", "PFS2", "PFS1", "None")


@dataclass(frozen=True)
class PolicyOffer:
    """One default offer: Azure's names, as they appear in the documentation tables."""

    encryption: str
    integrity: str
    dh_or_pfs: str = "None"
    documented: bool = True  # False: an ASSUMPTION of the lab, not in Azure's tables


# IKE phase 1 (main mode / IKE_SA) with no custom policy: DH group 2 (1024 bit) only, per the docs.
ROUTE_BASED_IKE_OFFERS: tuple[PolicyOffer, ...] = (
    PolicyOffer("AES256", "SHA1", "DHGroup2"),
    PolicyOffer("AES256", "SHA256", "DHGroup2"),
    PolicyOffer("AES128", "SHA1", "DHGroup2"),
    PolicyOffer("AES128", "SHA256", "DHGroup2"),
    PolicyOffer("DES3", "SHA1", "DHGroup2"),
    PolicyOffer("DES3", "SHA256", "DHGroup2"),
)
# ASSUMPTION: a RouteBased gateway also accepts these stronger IKE offers with its default policy
# (field reports; the documentation lists DH group 2 only). `lab validate` says when a site relies on one.
ROUTE_BASED_IKE_ASSUMED: tuple[PolicyOffer, ...] = (
    PolicyOffer("AES256", "SHA256", "DHGroup14", documented=False),
    PolicyOffer("AES256", "SHA384", "DHGroup24", documented=False),
    PolicyOffer("GCMAES256", "SHA384", "ECP384", documented=False),
    PolicyOffer("GCMAES256", "SHA256", "ECP256", documented=False),
)
POLICY_BASED_IKE_OFFERS: tuple[PolicyOffer, ...] = (
    PolicyOffer("AES256", "SHA256", "DHGroup2"),
    PolicyOffer("AES256", "SHA1", "DHGroup2"),
    PolicyOffer("AES128", "SHA1", "DHGroup2"),
    PolicyOffer("DES3", "SHA1", "DHGroup2"),
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

# Route-based IPsec offers Azure accepts as responder (initiator list plus DES and PFS variants);
# the table's PFS column says 1, 2, 14, 24: PFS1, PFS2, PFS2048, PFS24.
ROUTE_BASED_RESPONDER_OFFERS: tuple[PolicyOffer, ...] = ROUTE_BASED_INITIATOR_OFFERS + (
    PolicyOffer("DES", "SHA1"),
    PolicyOffer("AES256", "SHA1", "PFS1"),
    PolicyOffer("AES256", "SHA1", "PFS2"),
    PolicyOffer("AES256", "SHA1", "PFS2048"),
    PolicyOffer("AES128", "SHA1", "PFS1"),
    PolicyOffer("AES128", "SHA1", "PFS2"),
    PolicyOffer("AES128", "SHA1", "PFS2048"),
    PolicyOffer("DES3", "SHA1", "PFS1"),
    PolicyOffer("DES3", "SHA1", "PFS2"),
    PolicyOffer("DES3", "SHA256", "PFS2"),
    PolicyOffer("AES256", "SHA256", "PFS1"),
    PolicyOffer("AES256", "SHA256", "PFS2"),
    PolicyOffer("AES256", "SHA256", "PFS2048"),
    PolicyOffer("AES256", "SHA1", "PFS24"),
    PolicyOffer("AES256", "SHA256", "PFS24"),
    PolicyOffer("AES128", "SHA256", "None"),
    PolicyOffer("AES128", "SHA256", "PFS1"),
    PolicyOffer("AES128", "SHA256", "PFS2"),
    PolicyOffer("AES128", "SHA256", "PFS2048"),
    PolicyOffer("DES3", "SHA1", "PFS2048"),
)

# Policy-based (IKEv1 quick mode) offers, no PFS.
POLICY_BASED_OFFERS: tuple[PolicyOffer, ...] = (
    PolicyOffer("AES256", "SHA256"),
    PolicyOffer("AES256", "SHA1"),
    PolicyOffer("AES128", "SHA1"),
    PolicyOffer("DES3", "SHA1"),
)

# Where each fact is documented (Microsoft Learn), cited by the fact table in docs/azure-model.md.
LEARN = "https://learn.microsoft.com/en-us/azure/vpn-gateway/"
SOURCES = {
    "skus": LEARN + "about-gateway-skus",
    "ipsec_defaults": LEARN + "vpn-gateway-about-vpn-devices#ipsec",
    "custom_policy": LEARN + "ipsec-ike-policy-howto",
    "settings": LEARN + "vpn-gateway-about-vpn-gateway-settings",
    "gateway_subnet": LEARN + "vpn-gateway-about-vpn-gateway-settings#gwsub",
    "connection_mode": LEARN + "vpn-gateway-about-vpn-gateway-settings#connectionmode",
    "faq": LEARN + "vpn-gateway-vpn-faq",
    "high_availability": LEARN + "vpn-gateway-highlyavailable",
    # "the current active instance of the Azure VPN gateway is rebooted immediately ... failover from the active
    # instance (being rebooted), to the standby instance ... The gateway keeps the public IP address it already
    # has ... issue the same command again to reboot the second VM instance (the new active gateway)"
    "reset": LEARN + "reset-gateway",
    # NAT rules (checked 2026-11-30): "NAT is supported on the following SKUs: VpnGw2~5, VpnGw2AZ~5AZ";
    # "NAT is supported on IPsec cross-premises connections only. VNet-to-VNet connections or P2S connections
    # are not supported"; IngressSNAT maps an on-premises address space, EgressSNAT the VNet address space;
    # "each NAT rule can only include one address prefix"; Static is a fixed 1:1 mapping, Dynamic traffic
    # "must be initiated from the site that is represented in the Internal Mapping field". Overlap (checked
    # 2026-11-30): NAT exists "to connect on-premises networks or branch offices to an Azure virtual network with
    # overlapping IP addresses"; "the address spaces for all External Mappings must not overlap with each other
    # and with the networks connected without NAT"; FAQ: "You need both ingress and egress rules on the same
    # connection when the on-premises network address space overlaps with the VNet address space", "You can't
    # use the same ingress rule if the connections are for different on-premises networks", "NAT is applied to
    # the connections that have NAT rules".
    # Active-active (checked 2026-12-01, nat-overview FAQ "Does NAT work on active-active VPN gateways?"): "Each
    # NAT rule is applied to a single instance of the VPN gateway. In active-active gateways, create a separate
    # NAT rule for each gateway instance through the IP configuration ID field" (lab: ip_configuration_id).
    "nat": LEARN + "nat-overview",
    "nat_howto": LEARN + "nat-howto",
    # NAT and BGP (checked 2026-11-30, nat-overview "NAT and routing" and its FAQ "Does NAT work with BGP
    # connections?"): with "Enable BGP Route Translation" (enableBgpRouteTranslationForNat) "The destination
    # prefixes of the routes learned over a connection with the IngressSNAT rules will be translated from the
    # Internal Mapping prefixes (pre-NAT) to the External Mapping prefixes (post-NAT)"; "Azure VPN gateway will
    # advertise the External Mapping (post-NAT) prefixes of the EgressSNAT rules for the VNet address space, and
    # the learned routes with post-NAT address prefixes from other connections"; "The learned routes on
    # connections without IngressSNAT rules will not be converted. The VNet routes advertised to connections
    # without EgressSNAT rules will also not be converted"; "The on-premises BGP routers must advertise the exact
    # prefixes as defined in the IngressSNAT rules"; a non-APIPA BGP peer: "Specify the translated or post-NAT
    # IP address on the Local Network Gateway. Use the translated or post-NAT Azure BGP IP address(es) to
    # configure the on-premises VPN routers"; the FAQ: "NAT isn't supported with BGP APIPA addresses".
    "nat_bgp": LEARN + "nat-overview#routing",
    # NAT rules are added to an existing gateway (checked 2026-11-30): "The third command updates the virtual
    # network gateway gw1 with the newly added natRule" (Set-AzVirtualNetworkGateway -NatRule).
    "nat_update": "https://learn.microsoft.com/en-us/powershell/module/az.network/new-azvirtualnetworkgatewaynatrule",
    # Custom traffic selectors (checked 2026-12-01): "The custom-configured traffic selectors are proposed only
    # when a VPN gateway initiates the connection. A VPN gateway accepts any traffic selectors proposed by a
    # remote gateway"; addresses on separate lines: "When the tunnel comes up, it creates a QMSA for only the 1st
    # line. The rest of the local range and remote range pairs aren't created until traffic is attempted";
    # "the first few packets are unsuccessful until there's a QMSA for the traffic"; one line with several
    # ranges is one QMSA "for the entire range of addresses specified".
    "custom_traffic_selectors": LEARN + "custom-traffic-selectors",
}

# Custom traffic selectors (SOURCES["custom_traffic_selectors"]): one CHILD_SA per line; only the first comes up
# with the tunnel, the others on their first packet (which may be lost).
CUSTOM_TS_LATER_LINES_ON_TRAFFIC = True

# NAT rules (SOURCES["nat"]): the lab models no AZ SKUs, so VpnGw2-5.
NAT_SKUS = ("VpnGw2", "VpnGw3", "VpnGw4", "VpnGw5")
NatType = Literal["Static", "Dynamic"]
NatMode = Literal["IngressSnat", "EgressSnat"]
NAT_PREFIXES_PER_MAPPING = 1
# BGP route translation (SOURCES["nat_bgp"]) translates a learned prefix only when it is exactly an IngressSnat
# rule's internal mapping ("must advertise the exact prefixes"); ASSUMPTION: any other prefix learned on such a
# connection is used untranslated, as on a connection without IngressSnat rules (Azure does not document it).
NAT_BGP_EXACT_PREFIXES = True

# GatewaySubnet: "you can create a gateway subnet as small as /29, we recommend that you create a gateway
# subnet of /27 or larger" and no VMs may be deployed into it (SOURCES["gateway_subnet"], SOURCES["faq"]).
GATEWAY_SUBNET_MIN_PREFIXLEN = 29
GATEWAY_SUBNET_RECOMMENDED_PREFIXLEN = 27

# "The Connection Mode property only applies to route-based VPN gateways that use IKEv2 connections"
# (SOURCES["connection_mode"]).
CONNECTION_MODE_VPN_TYPES = ("RouteBased",)
CONNECTION_MODE_IKE_VERSIONS = ("IKEv2",)

# Active-standby failover (SOURCES["high_availability"]): "For planned maintenance, the connectivity should
# be restored within 10 to 15 seconds. For unplanned issues, the connection recovery will be longer, about
# 1 minute to 1 and a half minutes in the worst case."
PLANNED_FAILOVER_S = (10, 15)
UNPLANNED_FAILOVER_S = (60, 90)

# ASSUMPTION (Azure documents the outcome above, not how its platform gets there): the platform probes the
# active instance every HEALTH_PROBE_INTERVAL_S; the standby takes over after M probes in a row went
# unanswered, i.e. M to M+1 probe intervals after the active stopped answering. Unplanned (the active died):
# HEALTH_MISSES_UNPLANNED, 61-62 s; planned maintenance (the active drains: DELETE to its peers, addresses
# withdrawn) HEALTH_MISSES_PLANNED, 11-12 s. The new active then re-establishes IKE (it initiates; with
# ResponderOnly the peer does). Chosen so the measured outage falls inside the documented windows.
HEALTH_PROBE_INTERVAL_S = 1.0
HEALTH_MISSES_PLANNED = 11
HEALTH_MISSES_UNPLANNED = 61
