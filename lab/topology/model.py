"""The topology model: a closed, typed description of one lab, validated by pydantic.

Only shape and per-field ranges live here; cross-references and Azure rules are checked in
`checks.py` and `lab.azure.rules`, which report every problem at once with its dotted path.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints

from lab.azure import facts

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,22}$")]
LabName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,15}$")]


class Strict(BaseModel):
    """Every model forbids unknown keys (a typo fails loudly) and is immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Vnet(Strict):
    """The Azure virtual network behind a gateway; `hosts` are test VMs on its first subnet."""

    address_space: list[IPv4Network] = Field(min_length=1)
    hosts: dict[Name, IPv4Address] = Field(default_factory=dict)


class Gateway(Strict):
    """An Azure virtual network gateway (type Vpn)."""

    vpn_type: facts.VpnType = "RouteBased"
    sku: facts.SkuName = "VpnGw1"
    public_ips: list[IPv4Address] = Field(min_length=1, max_length=2)
    active_active: bool = False
    vnet: Vnet


class Device(Strict):
    """The on-prem VPN device: rendered by the lab, or the user's own config (`config`)."""

    kind: Literal["strongswan"] = "strongswan"
    config: str | None = None


class Site(Strict):
    """An on-prem site (Azure: local network gateway) with its VPN device and LAN."""

    public_ip: IPv4Address
    address_space: list[IPv4Network] = Field(min_length=1)
    hosts: dict[Name, IPv4Address] = Field(default_factory=dict)
    device: Device = Field(default_factory=Device)


class IpsecPolicy(Strict):
    """A custom IPsec/IKE policy: replaces Azure's default offers on one connection."""

    ike_encryption: Literal[tuple(facts.IKE_ENCRYPTION)]  # type: ignore[valid-type]
    ike_integrity: Literal[tuple(facts.IKE_INTEGRITY)]  # type: ignore[valid-type]
    dh_group: Literal[tuple(facts.DH_GROUP)]  # type: ignore[valid-type]
    ipsec_encryption: Literal[tuple(facts.IPSEC_ENCRYPTION)]  # type: ignore[valid-type]
    ipsec_integrity: Literal[tuple(facts.IPSEC_INTEGRITY)]  # type: ignore[valid-type]
    pfs_group: Literal[tuple(facts.PFS_GROUP)]  # type: ignore[valid-type]
    sa_lifetime_seconds: int = Field(
        facts.ROUTE_BASED_CHILD_LIFETIME_S, ge=facts.SA_LIFETIME_RANGE_S[0], le=facts.SA_LIFETIME_RANGE_S[1]
    )
    sa_data_size_kilobytes: int = Field(
        facts.ROUTE_BASED_CHILD_LIFETIME_KB,
        ge=facts.SA_DATA_SIZE_RANGE_KB[0],
        le=facts.SA_DATA_SIZE_RANGE_KB[1],
    )


class Connection(Strict):
    """A site-to-site connection between a gateway and a site (Azure: connection type IPsec)."""

    gateway: Name
    site: Name
    shared_key: SecretStr | None = None
    ike_version: facts.IkeVersion = "IKEv2"
    use_policy_based_traffic_selectors: bool = False
    ipsec_policy: IpsecPolicy | None = None
    connection_mode: facts.ConnectionMode = "Default"
    dpd_timeout_seconds: int = Field(
        facts.DPD_TIMEOUT_DEFAULT_S, ge=facts.DPD_TIMEOUT_RANGE_S[0], le=facts.DPD_TIMEOUT_RANGE_S[1]
    )


class Topology(Strict):
    """One lab: Azure gateways with their VNets, on-prem sites, and the connections between them."""

    name: LabName
    gateways: dict[Name, Gateway] = Field(min_length=1)
    sites: dict[Name, Site] = Field(default_factory=dict)
    connections: dict[Name, Connection] = Field(default_factory=dict)
