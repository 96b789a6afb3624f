"""The topology model: a closed, typed description of one lab, validated by pydantic.

Only shape and per-field ranges live here; cross-references and Azure rules are checked in
`checks.py` and `lab.azure.rules`, which report every problem at once with its dotted path.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator

from lab.azure import facts
from lab.azure.algorithms import parse_proposal

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,22}$")]
LabName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,15}$")]
DEVICE_LIFETIME_RANGE_S = (60, 604_800)


def _ike_proposal(text: str) -> str:
    parse_proposal(text, "ike")
    return text


def _esp_proposal(text: str) -> str:
    parse_proposal(text, "esp")
    return text


IkeProposal = Annotated[str, AfterValidator(_ike_proposal)]
EspProposal = Annotated[str, AfterValidator(_esp_proposal)]
DeviceLifetime = Annotated[int, Field(ge=DEVICE_LIFETIME_RANGE_S[0], le=DEVICE_LIFETIME_RANGE_S[1])]


class Strict(BaseModel):
    """Every model forbids unknown keys (a typo fails loudly) and is immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


DEFAULT_GATEWAY_SUBNET_PREFIXLEN = 29  # the first /29 of the first prefix: the addresses the lab always used


class Vnet(Strict):
    """The Azure virtual network behind a gateway; `hosts` are test VMs, each in one of its prefixes.

    `gateway_subnet` is Azure's GatewaySubnet: the gateway instances' inside addresses (and BGP peer
    addresses) come from it, and no VM may sit in it. Omitted, it is the first /29 of the first prefix
    (10.1.0.0/29 for 10.1.0.0/16), which holds the addresses the lab's instances always had (.4-.6).
    `subnets` are other named subnets (checked for overlap; hosts may sit in any prefix)."""

    address_space: list[IPv4Network] = Field(min_length=1)
    gateway_subnet: IPv4Network | None = None
    subnets: dict[Name, IPv4Network] = Field(default_factory=dict)
    hosts: dict[Name, IPv4Address] = Field(default_factory=dict)

    @property
    def gateway_prefix(self) -> IPv4Network:
        """The GatewaySubnet in effect: the declared one, or the default described above."""
        if self.gateway_subnet is not None:
            return self.gateway_subnet
        first = self.address_space[0]
        return next(first.subnets(new_prefix=max(first.prefixlen, DEFAULT_GATEWAY_SUBNET_PREFIXLEN)))


class P2sClient(Strict):
    """A point-to-site client the lab runs as a container. `issuer: untrusted` gives it a certificate from a
    CA the gateway does not trust (lab-only: to show that such a client is refused)."""

    name: Name
    issuer: Literal["root", "untrusted"] = "root"
    # The user's own client certificate and RSA key (PEM, relative to the topology file) instead of a generated
    # one: subject CN=<name>, issued by a root_certificates root or the lab root (`lab validate`, `lab up` check).
    certificate: str | None = None
    key: str | None = None


class P2s(Strict):
    """Azure's point-to-site configuration (VpnClientConfiguration): IKEv2 with certificate auth. The gateway
    authenticates with its certificate, clients with EAP-TLS and a certificate chained to an uploaded root."""

    address_pool: IPv4Network  # VpnClientAddressPool
    tunnel_type: Literal["IKEv2", "SSTP", "OpenVPN"] = "IKEv2"
    auth: Literal["certificate"] = "certificate"
    # Extra trusted roots (PEM files, relative to the topology file); the lab's generated root is always trusted.
    root_certificates: list[str] = Field(default_factory=list)
    # Revoked client certificates: SHA-1 thumbprints (40 hex digits) or, for lab-generated ones, client names.
    revoked: list[str] = Field(default_factory=list)
    # A count (clients <gw>-client1..N) or the clients by name.
    clients: Annotated[int, Field(ge=0, le=max(s.p2s_ikev2 for s in facts.SKUS.values()))] \
        | list[Name | P2sClient] = 0


Asn = Annotated[int, Field(ge=1, le=facts.ASN_MAX)]


class GatewayBgp(Strict):
    """The gateway's BgpSettings: its ASN and, optionally, a custom Azure APIPA BGP address per instance
    (used only towards a site whose BGP peer IP is APIPA). Its default BGP peer IP per instance comes from
    the GatewaySubnet (`lab.routing.peers.gateway_bgp_ip`)."""

    asn: Asn = facts.BGP_ASN
    apipa: list[IPv4Address] = Field(default_factory=list, max_length=2)  # [instance 0, instance 1]


class SiteBgp(Strict):
    """The local network gateway's BgpSettings: the device's ASN and BGP peer address (one per device
    instance for a device pair: `peer_ips`). `advertise`: what a rendered device announces (default: the
    site's address space)."""

    asn: Asn
    peer_ip: IPv4Address | None = None
    peer_ips: list[IPv4Address] | None = Field(default=None, min_length=2, max_length=2)
    advertise: list[IPv4Network] | None = None

    @property
    def peers(self) -> list[IPv4Address]:
        if self.peer_ips:
            return list(self.peer_ips)
        return [self.peer_ip] if self.peer_ip is not None else []


class NatRule(Strict):
    """A VirtualNetworkGatewayNatRule (docs/azure-model.md "NAT rules"). IngressSnat: an on-prem prefix
    (internal) as the VNet sees it (external); EgressSnat: a VNet prefix as on-prem sees it. Static maps 1:1
    (same prefix length, both directions may initiate); Dynamic only lets the internal side initiate.
    `ip_configuration_id`: the gateway instance (0 or 1) the rule applies on; unset, on every instance."""

    type: facts.NatType = "Static"
    mode: facts.NatMode
    internal_mappings: list[IPv4Network] = Field(min_length=1)
    external_mappings: list[IPv4Network] = Field(min_length=1)
    ip_configuration_id: int | None = Field(default=None, ge=0, le=1)

    @property
    def internal(self) -> IPv4Network:
        return self.internal_mappings[0]

    @property
    def external(self) -> IPv4Network:
        return self.external_mappings[0]


class Gateway(Strict):
    """An Azure virtual network gateway (type Vpn)."""

    vpn_type: facts.VpnType = "RouteBased"
    sku: facts.SkuName = "VpnGw1"
    public_ips: list[IPv4Address] = Field(min_length=1, max_length=2)
    # None: resolved by `resolve_active_active` (active-active where the gateway allows it).
    active_active: bool | None = None
    bgp: GatewayBgp | None = None  # BgpSettings; BGP runs on the connections with enable_bgp (docs/routing.md)
    vnet: Vnet
    p2s: P2s | None = None  # point-to-site (docs/p2s.md)
    # azure: an active-standby failover takes as long as Azure documents (planned 10-15 s, unplanned 60-90 s):
    # the standby probes the active like Azure's platform and takes over after its misses (docs/ha.md).
    # fast (lab-only, for quick labs and tests): probes every 200 ms, takeover at once (< 1 s).
    ha_timing: Literal["azure", "fast"] = "azure"
    nat_rules: dict[Name, NatRule] = Field(default_factory=dict)  # VpnGw2 and up; connections pick theirs
    # Azure's enableBgpRouteTranslationForNat ("Enable BGP Route Translation"): BGP routes learned over a
    # connection's IngressSnat rules and the VNet advertised over its EgressSnat rules are their external
    # (post-NAT) prefixes (docs/azure-model.md "NAT and BGP"). Needs NAT rules and a BGP connection.
    enable_bgp_route_translation_for_nat: bool = False

    @property
    def is_active_active(self) -> bool:
        return resolve_active_active(self)


def resolve_active_active(gw: Gateway) -> bool:
    """Azure makes new gateways active-active where allowed (RouteBased, not Basic); A/A needs two public
    IPs, so an unset value means A/A when the file lists two and the gateway allows it, else active-standby."""
    if gw.active_active is not None:
        return gw.active_active
    allowed = gw.vpn_type == "RouteBased" and facts.SKUS[gw.sku].active_active
    return allowed and len(gw.public_ips) == 2


class Device(Strict):
    """The on-prem VPN device: rendered by the lab, or the user's own config (`config`).

    The overrides model a device that does not match Azure (proposals, lifetimes, DPD) without
    writing its config; unset, the rendered device mirrors the gateway.
    """

    kind: Literal["strongswan"] = "strongswan"
    config: str | None = None
    # The device's own FRR config (frr.conf, relative to the topology file), beside `config`: a BYO BGP device.
    frr_config: str | None = None
    ike_proposals: list[IkeProposal] | None = Field(default=None, min_length=1)
    esp_proposals: list[EspProposal] | None = Field(default=None, min_length=1)
    ike_lifetime_seconds: DeviceLifetime | None = None
    child_lifetime_seconds: DeviceLifetime | None = None
    dpd_delay_seconds: int | None = Field(default=None, ge=0, le=3_600)  # 0: no DPD
    # any: it keeps 0.0.0.0/0 <-> 0.0.0.0/0 like a route-based (VTI) device, with a tunnel interface per
    # tunnel (docs/route-based.md); prefixes: it narrows Azure's any-to-any offer to its LAN (policy-style).
    traffic_selectors: Literal["prefixes", "any"] = "any"


class Site(Strict):
    """An on-prem site (Azure: local network gateway) with its VPN device and LAN.

    `public_ips: [a, b]` instead of `public_ip`: the device is a pair of instances (<site>-0, <site>-1) on one
    LAN. Azure models that as two local network gateways, one per device IP, with one connection each; the
    lab keeps one site so both instances share the LAN, hosts and device settings (docs/ha.md).
    """

    public_ip: IPv4Address | None = None
    public_ips: list[IPv4Address] | None = Field(default=None, min_length=2, max_length=2)
    address_space: list[IPv4Network] = Field(min_length=1)
    hosts: dict[Name, IPv4Address] = Field(default_factory=dict)
    device: Device = Field(default_factory=lambda: Device())
    bgp: SiteBgp | None = None  # the local network gateway's BGP settings (docs/routing.md)

    @property
    def device_ips(self) -> list[IPv4Address]:
        """The public IP of each device instance (checks report a site with neither or both keys)."""
        if self.public_ips:
            return list(self.public_ips)
        return [self.public_ip] if self.public_ip is not None else []


class IpsecPolicy(Strict):
    """A custom IPsec/IKE policy: replaces Azure's default offers on one connection."""

    ike_encryption: Literal[facts.IKE_ENCRYPTION]  # type: ignore[valid-type]
    ike_integrity: Literal[facts.IKE_INTEGRITY]  # type: ignore[valid-type]
    dh_group: Literal[facts.DH_GROUP]  # type: ignore[valid-type]
    ipsec_encryption: Literal[facts.IPSEC_ENCRYPTION]  # type: ignore[valid-type]
    ipsec_integrity: Literal[facts.IPSEC_INTEGRITY]  # type: ignore[valid-type]
    pfs_group: Literal[facts.PFS_GROUP]  # type: ignore[valid-type]
    sa_lifetime_seconds: int = Field(
        facts.ROUTE_BASED_CHILD_LIFETIME_S, ge=facts.SA_LIFETIME_RANGE_S[0], le=facts.SA_LIFETIME_RANGE_S[1]
    )
    sa_data_size_kilobytes: int = Field(
        facts.ROUTE_BASED_CHILD_LIFETIME_KB,
        ge=facts.SA_DATA_SIZE_RANGE_KB[0],
        le=facts.SA_DATA_SIZE_RANGE_KB[1],
    )


class TrafficSelectorPolicy(Strict):
    """One line of Azure's trafficSelectorPolicies: the VNet-side and on-prem-side ranges of one CHILD_SA."""

    local_address_ranges: list[IPv4Network] = Field(min_length=1)
    remote_address_ranges: list[IPv4Network] = Field(min_length=1)


class Connection(Strict):
    """A connection of `gateway`: to an on-prem `site` (Azure: type IPsec) or to another gateway of the
    lab, `peer_gateway` (Azure: type Vnet2Vnet; the lab's one connection stands for Azure's pair of
    connection resources, one on each gateway, sharing the key and policy). Exactly one of the two.
    """

    gateway: Name
    site: Name | None = None
    peer_gateway: Name | None = None
    shared_key: SecretStr | None = None
    ike_version: facts.IkeVersion = "IKEv2"
    use_policy_based_traffic_selectors: bool = False
    ipsec_policy: IpsecPolicy | None = None
    # Custom traffic selectors (needs use_policy_based_traffic_selectors): the gateway proposes one CHILD_SA per
    # line when it initiates and accepts whatever the peer proposes (docs/azure-model.md).
    traffic_selector_policies: list[TrafficSelectorPolicy] = Field(default_factory=list)
    connection_mode: facts.ConnectionMode = "Default"
    dpd_timeout_seconds: int = Field(
        facts.DPD_TIMEOUT_DEFAULT_S, ge=facts.DPD_TIMEOUT_RANGE_S[0], le=facts.DPD_TIMEOUT_RANGE_S[1]
    )
    # azure: DPD from dpd_timeout_seconds, default retransmits. fast (lab-only, for failover tests): DPD every
    # second and fast retransmits on both ends, so a dead peer is noticed in about 2 s (docs/ha.md).
    dpd: Literal["azure", "fast"] = "azure"
    enable_bgp: bool = False  # BGP on this connection (both ends need bgp settings)
    # azure: keepalive 60 s / hold 180 s, as Azure. fast (lab-only): 1 s / 3 s, for failover labs.
    bgp_timers: Literal["azure", "fast"] = "azure"
    # Names of the gateway's nat_rules this connection uses, by mode (site-to-site only, as Azure).
    ingress_nat_rules: list[Name] = Field(default_factory=list)
    egress_nat_rules: list[Name] = Field(default_factory=list)

    @field_validator("shared_key", mode="before")
    @classmethod
    def _azure_shared_key(cls, value: object) -> object:
        """Refuse what Azure refuses (lab.azure.facts.shared_key_problem), naming the fix, never the key."""
        if isinstance(value, str) and (problem := facts.shared_key_problem(value)):
            raise ValueError(f"shared key {problem}: use 1-{facts.SHARED_KEY_LENGTH[1]} letters, digits, "
                             "punctuation or spaces (or omit shared_key and the lab generates one)")
        return value

    @property
    def vnet_to_vnet(self) -> bool:
        return self.peer_gateway is not None


class Topology(Strict):
    """One lab: Azure gateways with their VNets, on-prem sites, and the connections between them."""

    name: LabName
    gateways: dict[Name, Gateway] = Field(min_length=1)
    sites: dict[Name, Site] = Field(default_factory=dict)
    connections: dict[Name, Connection] = Field(default_factory=dict)
    # Where the nodes run: docker (this machine's engine) or swarm (a Docker Swarm's hosts, docs/distributed.md).
    # `lab up --runtime` overrides it; unset: LAB_RUNTIME, then docker. Kept equal to lab/runtime/registry.py's
    # BACKENDS by tests/unit/test_runtime_choice.py.
    runtime: Literal["docker", "swarm"] | None = None
