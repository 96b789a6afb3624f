"""The lab's P2S certificates in the state directory, and what each charon must load.

<state>/pki/<gw>/: root.{crt,key} (the uploaded root, Azure-style), gateway-ca.{crt,key}, gateway.{crt,key},
untrusted-root.{crt,key} (the "other CA"), clients/<name>.{crt,key}, user-roots/*.crt, root.crl. Keys are
0600. Existing files are reused, so thumbprints stay stable for the lab's lifetime (`lab down` removes them).

Revocation: Azure revokes by thumbprint without the root's key. Where the revoked certificate is one the lab
issued, the lab holds the root's key and signs a CRL that the gateway loads: charon then refuses the client
during EAP-TLS ("certificate was revoked"). Thumbprints of certificates the lab did not issue cannot be
expressed in a CRL; `revocation_gaps` names them so `lab inspect` says they are not enforced.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from cryptography import x509

from lab import pki
from lab.control.p2s import Creds
from lab.errors import TopologyError
from lab.p2s import ClientSpec, clients, gateway_id, p2s_gateways, pool_name
from lab.topology.model import Topology


@dataclass(frozen=True)
class GatewayPki:
    root: pki.Issued
    gateway_ca: pki.Issued
    gateway: pki.Issued
    untrusted: pki.Issued
    clients: dict[str, pki.Issued]
    user_roots: tuple[bytes, ...]


def _write(path: Path, data: bytes, secret: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _pair(base: Path, make: Callable[[], pki.Issued]) -> pki.Issued:
    """Reuse <base>.crt/.key if both exist, else make and store a new pair."""
    crt, key = base.with_suffix(".crt"), base.with_suffix(".key")
    if crt.exists() and key.exists():
        return pki.load_issued(crt.read_bytes(), key.read_bytes())
    issued = make()
    _write(key, pki.pem_key(issued.key), secret=True)
    _write(crt, pki.pem_cert(issued.cert))
    return issued


def pki_dir(state_root: Path, gw: str) -> Path:
    return state_root / "pki" / gw


def ensure_pki(state_root: Path, topo: Topology, topo_dir: Path | None) -> dict[str, GatewayPki]:
    """Create (or reuse) every P2S gateway's certificates; copy user roots in from beside the topology file."""
    out = {}
    for g in p2s_gateways(topo):
        d = pki_dir(state_root, g)
        roots = topo.gateways[g].p2s.root_certificates  # type: ignore[union-attr]
        if topo_dir is not None:
            _copy_user_roots(d, topo_dir, g, roots)
        out[g] = _gateway_pki(d, g, topo)
        _write(d / "root.crl", pki.pem_crl(pki.make_crl(out[g].root, _revoked(topo, g, out[g]))))
    return out


def _gateway_pki(d: Path, g: str, topo: Topology) -> GatewayPki:
    gw, dns = topo.gateways[g], gateway_id(g, topo.name)
    root = _pair(d / "root", partial(pki.make_ca, f"P2SRootCert-{g}"))
    gca = _pair(d / "gateway-ca", partial(pki.make_ca, f"GatewayCA-{g}"))
    gwc = _pair(d / "gateway", partial(pki.issue, gca, dns, dns=dns, ip=gw.public_ips[0], server=True))
    other = _pair(d / "untrusted-root", partial(pki.make_ca, f"OtherRoot-{g}"))
    mine = {c.name: _pair(d / "clients" / c.name, _client_maker(c, root, other))
            for c in clients(topo) if c.gateway == g}
    users = tuple(p.read_bytes() for p in sorted((d / "user-roots").glob("*.crt")))
    return GatewayPki(root, gca, gwc, other, mine, users)


def _client_maker(c: ClientSpec, root: pki.Issued, other: pki.Issued) -> Callable[[], pki.Issued]:
    return partial(pki.issue, root if c.trusted else other, c.name)


def _copy_user_roots(d: Path, topo_dir: Path, g: str, paths: list[str]) -> None:
    for i, rel in enumerate(paths):
        src = (topo_dir / rel).resolve()
        try:
            pki.load_pem_cert(src.read_bytes())
        except (OSError, ValueError) as exc:
            raise TopologyError(f"gateways.{g}.p2s.root_certificates[{i}]: cannot read a PEM certificate from "
                                f"{src}: {exc}", hint="give the path of a PEM root certificate") from exc
        _write(d / "user-roots" / f"{i}.crt", src.read_bytes())


def revoked_names(topo: Topology, g: str, gp: GatewayPki) -> dict[str, str]:
    """client name -> why it is revoked (by name or by its certificate's thumbprint)."""
    p2s = topo.gateways[g].p2s
    listed = {item.upper() for item in (p2s.revoked if p2s else [])}
    out = {}
    for name, issued in gp.clients.items():
        tp = pki.thumbprint(issued.cert)
        if name.upper() in listed or tp in listed:
            out[name] = f"certificate thumbprint {tp} is on gateways.{g}.p2s.revoked"
    return out


def _revoked(topo: Topology, g: str, gp: GatewayPki) -> list[x509.Certificate]:
    return [gp.clients[n].cert for n in revoked_names(topo, g, gp) if gp.clients[n].cert.issuer == gp.root.cert.subject]


def revocation_gaps(topo: Topology, g: str, gp: GatewayPki) -> list[str]:
    """Listed thumbprints that match no certificate the lab issued: not enforceable by the lab's CRL."""
    p2s = topo.gateways[g].p2s
    known = {pki.thumbprint(i.cert) for i in gp.clients.values()} | set(gp.clients)
    return [t for t in (p2s.revoked if p2s else []) if t.upper() not in {k.upper() for k in known}]


def node_creds(state_root: Path, topo: Topology) -> dict[str, Creds]:
    """node -> credentials to load: every instance of a P2S gateway, and every client."""
    all_pki = ensure_pki(state_root, topo, None)
    out: dict[str, Creds] = {}
    for g, gp in all_pki.items():
        gw = topo.gateways[g]
        assert gw.p2s is not None
        crl = (pki_dir(state_root, g) / "root.crl").read_bytes()
        gw_creds = Creds(cacerts=(pki.pem_cert(gp.root.cert), *gp.user_roots), certs=(pki.pem_cert(gp.gateway.cert),),
                         keys=(pki.pem_key(gp.gateway.key),), crls=(crl,),
                         pools={pool_name(g): str(gw.p2s.address_pool)})
        for i in range(2):
            out[f"{g}-{i}"] = gw_creds
        for name, issued in gp.clients.items():
            out[name] = Creds(cacerts=(pki.pem_cert(gp.gateway_ca.cert),), certs=(pki.pem_cert(issued.cert),),
                              keys=(pki.pem_key(issued.key),))
    return out
