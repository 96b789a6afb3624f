"""The seam between the pipeline and a running charon: one narrow protocol and typed SA snapshots.

Raw vici replies (nested dicts of bytes) are converted in `lab.control.vici` and never leave
`lab/control/`; everything above sees only these models, so a fake control can stand in for charon.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from lab.render.swanctl import SwanctlConfig

IKE_ESTABLISHED = "ESTABLISHED"
CHILD_INSTALLED = "INSTALLED"


class _Status(BaseModel):
    """Snapshots are closed and immutable: a field charon does not send stays at its default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ChildSaStatus(_Status):
    """One CHILD_SA as charon reports it; counters and SPIs are zero/empty until it is INSTALLED."""

    name: str
    uniqueid: int
    reqid: int = 0
    state: str  # CREATED, ROUTED, INSTALLING, INSTALLED, UPDATING, REKEYING, REKEYED, DELETING, ...
    mode: str = ""  # TUNNEL, TRANSPORT, BEET
    protocol: str = ""  # ESP, AH
    encap: bool = False  # UDP-encapsulated (always true with libipsec)
    spi_in: str = ""  # hex without 0x, as charon prints it: 'c1a2b3c4'
    spi_out: str = ""
    encr_alg: str | None = None
    encr_keysize: int | None = None
    integ_alg: str | None = None  # None for AEAD ciphers (AES-GCM)
    dh_group: str | None = None  # PFS group; None without PFS
    bytes_in: int = 0
    bytes_out: int = 0
    packets_in: int = 0
    packets_out: int = 0
    local_ts: list[str] = Field(default_factory=list)
    remote_ts: list[str] = Field(default_factory=list)
    install_time_s: int | None = None  # seconds since installed; None while not installed


class IkeSaStatus(_Status):
    """One IKE_SA (named after its connection) with its CHILD_SAs."""

    name: str
    uniqueid: int
    state: str  # CREATED, CONNECTING, ESTABLISHED, PASSIVE, REKEYING, REKEYED, DELETING, DESTROYING
    version: int
    local_host: str
    remote_host: str
    local_id: str = ""
    remote_id: str = ""
    encr_alg: str | None = None
    encr_keysize: int | None = None
    integ_alg: str | None = None
    prf_alg: str | None = None
    dh_group: str | None = None
    established_s: int | None = None  # seconds since established; None while connecting
    children: list[ChildSaStatus] = Field(default_factory=list)

    def child(self, name: str) -> ChildSaStatus | None:
        """The INSTALLED CHILD_SA of that name, else any of that name (rekeying leaves two for a while)."""
        named = [c for c in self.children if c.name == name]
        installed = [c for c in named if c.state == CHILD_INSTALLED]
        candidates = installed or named
        return candidates[0] if candidates else None


@dataclass(frozen=True)
class VpnEvent:
    """One IKE/CHILD_SA event, stamped on arrival with time.monotonic() for outage measurements.

    `up` is True/False for ike-updown and child-updown, None for rekey events (the SA stays up).
    """

    time: float
    name: str  # ike-updown, child-updown, ike-rekey, child-rekey
    ike: str
    ike_uniqueid: int
    children: tuple[str, ...]
    up: bool | None


@dataclass(frozen=True)
class Creds:
    """What one charon needs for P2S (PEM bytes): trusted CAs, own certificate and key, CRLs, pools, and the
    connections that refuse revoked identities a CRL cannot cover (they depend on the certificates)."""

    cacerts: tuple[bytes, ...] = ()
    certs: tuple[bytes, ...] = ()
    keys: tuple[bytes, ...] = ()
    crls: tuple[bytes, ...] = ()
    pools: dict[str, str] = field(default_factory=dict)  # name -> CIDR
    conns: Mapping[str, Mapping[str, object]] = field(default_factory=dict)  # name -> swanctl tree (refusals)


@dataclass(frozen=True)
class P2sSa:
    """One P2S IKE_SA as charon lists it, with the virtual IPs a plain IkeSaStatus does not carry."""

    conn: str
    uniqueid: int
    state: str
    remote_host: str
    remote_id: str
    local_vips: tuple[str, ...]
    remote_vips: tuple[str, ...]
    child_installed: bool


class VpnControl(Protocol):
    """Controls ONE charon. `ViciControl` in production; a fake in unit tests."""

    def load(self, config: SwanctlConfig) -> None:
        """Load shared keys, then connections (a connection can only authenticate once its key is there).

        Raises ControlError naming the connection and charon's errmsg if charon refuses one.
        """
        ...

    def unload_conn(self, name: str) -> None:
        """Remove a connection. charon undoes its start action: SAs it initiated (start_action = start)
        are terminated, SAs of a responder-only connection stay up until terminated.
        """
        ...

    def initiate(self, child: str, ike: str, timeout: float) -> None:
        """Start a CHILD_SA (and its IKE_SA if needed) and wait until it is installed or `timeout` s pass."""
        ...

    def terminate_ike(self, ike: str) -> None:
        """Delete every IKE_SA of a connection (the peer is told with a DELETE)."""
        ...

    def sas(self) -> list[IkeSaStatus]:
        """Every IKE_SA charon knows now, in any state."""
        ...

    def conns(self) -> list[str]:
        """Names of the loaded connections."""
        ...

    def load_creds(self, creds: Creds) -> None:
        """Load P2S certificates, keys, CRLs, address pools and refusal connections, in that order.

        Raises ControlError naming the item charon refused."""
        ...

    def p2s_sas(self, conn: str) -> list[P2sSa]:
        """Every IKE_SA of connection `conn`, with the virtual IPs it leased or was given."""
        ...

    def close(self) -> None:
        """Release the control connection (charon keeps running)."""
        ...
