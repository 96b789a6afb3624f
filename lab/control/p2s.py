"""Point-to-site over vici: load certificates, keys, CRLs and address pools; list SAs with virtual IPs.

Kept apart from `ViciControl` so the VpnControl protocol (and its fakes) stay as they are; only lab/control/
imports vici, so this is where these requests live.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vici.exception import CommandException, SessionException

from lab.control.vici import _strings, _text, open_session, vici_tree
from lab.errors import ControlError


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


def load_creds(socket: Path, creds: Creds, timeout: float = 10.0) -> None:
    """Load everything; charon refusing an item becomes a ControlError naming it."""
    session = open_session(socket, timeout, 30.0)
    items: list[tuple[str, str, Mapping[str, object]]] = (
        [("load_cert", "CA certificate", {"type": "X509", "flag": "CA", "data": c}) for c in creds.cacerts]
        + [("load_cert", "certificate", {"type": "X509", "flag": "NONE", "data": c}) for c in creds.certs]
        + [("load_cert", "CRL", {"type": "X509_CRL", "data": c}) for c in creds.crls]
        + [("load_key", "private key", {"type": "rsa", "data": k}) for k in creds.keys]
        + [("load_pool", f"pool {n}", {n: {"addrs": cidr}}) for n, cidr in creds.pools.items()]
        + [("load_conn", f"connection {n}", {n: vici_tree(t)}) for n, t in creds.conns.items()])
    try:
        for method, what, msg in items:
            try:
                getattr(session, method)(msg)
            except CommandException as exc:
                raise ControlError(f"vici socket {socket}: charon refused the P2S {what}: {exc}",
                                   hint="`lab logs <node>` shows charon's log") from exc
    except (OSError, SessionException) as exc:
        raise ControlError(f"vici socket {socket}: loading P2S credentials failed: {exc}") from exc
    finally:
        session.transport.close()


def p2s_sas(socket: Path, conn: str, timeout: float = 5.0) -> list[P2sSa]:
    """Every IKE_SA of connection `conn` on one charon."""
    session = open_session(socket, timeout, 30.0)
    try:
        out = []
        for message in session.list_sas({"ike": conn}):
            for name, raw in message.items():
                if isinstance(raw, Mapping):
                    out.append(_sa(name, raw))
        return out
    except (OSError, SessionException, CommandException) as exc:
        raise ControlError(f"vici socket {socket}: listing P2S SAs failed: {exc}") from exc
    finally:
        session.transport.close()


def _sa(name: str, raw: Mapping[str, object]) -> P2sSa:
    kids = raw.get("child-sas")
    children = kids.values() if isinstance(kids, Mapping) else []
    installed = any(isinstance(c, Mapping) and _text(c, "state") == "INSTALLED" for c in children)
    uid = _text(raw, "uniqueid")
    return P2sSa(conn=name, uniqueid=int(uid) if uid.isdigit() else 0, state=_text(raw, "state"),
                 remote_host=_text(raw, "remote-host"), remote_id=_text(raw, "remote-id"),
                 local_vips=tuple(_strings(raw, "local-vips")), remote_vips=tuple(_strings(raw, "remote-vips")),
                 child_installed=installed)
