"""The lab's P2S certificates in the state directory, and what each charon must load.

<state>/pki/<gw>/: root.{crt,key} (the uploaded root, Azure-style), gateway-ca.{crt,key}, gateway.{crt,key},
untrusted-root.{crt,key} (the "other CA"), clients/<name>.{crt,key}, user-roots/*.crt, root.crl. Keys are
0600. Existing files are reused, so thumbprints stay stable for the lab's lifetime (`lab down` removes them).
A client with its own certificate and key (`p2s.clients[i].certificate`/`key`) has them checked and copied to
clients/<name>.{crt,key} by `lab up`, in place of a generated pair.

Revocation: Azure revokes by thumbprint without the root's key. Where the revoked certificate is one the lab
issued, the lab holds the root's key and signs a CRL that the gateway loads: charon then refuses the client
during EAP-TLS ("certificate was revoked"). Thumbprints of certificates the lab did not issue cannot be
expressed in a CRL. For a revoked user certificate of a declared client the gateway gets a connection that
matches only that identity and fails its EAP (`lab.p2s.render.refusal_tree`); thumbprints matching no client's
certificate are `revocation_gaps`, which `lab inspect` reports as not enforced.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from cryptography import x509

from lab.control.base import Creds
from lab.errors import LabError, TopologyError
from lab.p2s import pki
from lab.p2s.model import ClientSpec, clients, declared, gateway_id, p2s_gateways, pool_name
from lab.p2s.render import refusal_name, refusal_tree
from lab.render.swanctl import Tree
from lab.topology.model import P2sClient, Topology


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
            _copy_user_clients(d, topo_dir, g, topo)
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
    return partial(_missing_user_cert, c) if c.user_cert else partial(pki.issue, root if c.trusted else other, c.name)


def _missing_user_cert(c: ClientSpec) -> pki.Issued:
    """A user certificate is copied in by `lab up`: generating one in its place would silently change identity."""
    raise LabError(f"P2S client {c.name!r}: its certificate was not copied into the lab",
                   hint="run `lab up` with the topology file again")


def _copy_user_clients(d: Path, topo_dir: Path, g: str, topo: Topology) -> None:
    """Check each user client pair and store it where a generated one would be: a broken pair must stop
    `lab up` naming its field, not show up later as a client that never connects."""
    roots = [pki.load_pem_cert(p.read_bytes()) for p in sorted((d / "user-roots").glob("*.crt"))]
    roots.append(_pair(d / "root", partial(pki.make_ca, f"P2SRootCert-{g}")).cert)
    for name, issued in _user_pairs(roots, topo_dir, g, topo).items():
        _write(d / "clients" / f"{name}.key", pki.pem_key(issued.key), secret=True)
        _write(d / "clients" / f"{name}.crt", pki.pem_cert(issued.cert))


def _user_pairs(roots: list[x509.Certificate], topo_dir: Path, g: str, topo: Topology) -> dict[str, pki.Issued]:
    """client name -> its checked user certificate and key (TopologyError naming the field otherwise)."""
    out = {}
    for i, c in enumerate(declared(g, topo.gateways[g])):
        if c.certificate is not None and c.key is not None:
            where = f"gateways.{g}.p2s.clients[{i}]"
            out[c.name] = _read_user_pair(topo_dir, where, c)
            _check_user_pair(where, c.name, out[c.name], roots)
    return out


def check_user_files(state_root: Path, topo: Topology, topo_dir: Path) -> None:
    """`lab validate`: the user's root and client files, without writing anything. The lab root counts only
    if this lab already made it (a certificate chained to it needs its key, which only the lab holds)."""
    for g in p2s_gateways(topo):
        p2s = topo.gateways[g].p2s
        assert p2s is not None
        roots = [_read_user_root(topo_dir, g, i, rel)[0] for i, rel in enumerate(p2s.root_certificates)]
        lab_root = pki_dir(state_root, g) / "root.crt"
        roots += [pki.load_pem_cert(lab_root.read_bytes())] if lab_root.exists() else []
        _user_pairs(roots, topo_dir, g, topo)


def _read_user_pair(topo_dir: Path, where: str, c: P2sClient) -> pki.Issued:
    assert c.certificate is not None and c.key is not None
    crt, key = (topo_dir / c.certificate).resolve(), (topo_dir / c.key).resolve()
    try:
        cert = pki.load_pem_cert(crt.read_bytes())
    except (OSError, ValueError) as exc:
        raise TopologyError(f"{where}.certificate: cannot read a PEM certificate from {crt}: {exc}",
                            hint="give the client's PEM certificate (path relative to the topology file)") from exc
    try:
        return pki.Issued(pki.load_rsa_key(key.read_bytes()), cert)
    except (OSError, ValueError, TypeError) as exc:
        raise TopologyError(f"{where}.key: cannot read an unencrypted PEM RSA key from {key}: {exc}",
                            hint="give the client's unencrypted RSA private key (PEM, relative to the topology "
                                 "file)") from exc


def _check_user_pair(where: str, name: str, issued: pki.Issued, roots: list[x509.Certificate]) -> None:
    """Key, identity and chain: each would otherwise fail only inside EAP-TLS, with a vaguer log line."""
    if not pki.key_matches(issued):
        raise TopologyError(f"{where}.key: the key does not belong to the client's certificate",
                            hint="give the private key the certificate was issued for")
    if not pki.subject_is(issued.cert, name):
        raise TopologyError(f"{where}.certificate: subject {issued.cert.subject.rfc4514_string()!r} is not "
                            f"CN={name} (the client's IKE and EAP identity)",
                            hint=f"issue the certificate with subject CN={name}, or name the client after its CN")
    if not any(pki.issued_by(issued.cert, r) for r in roots):
        raise TopologyError(f"{where}.certificate: issued by {issued.cert.issuer.rfc4514_string()!r}, which is "
                            "neither a root in root_certificates nor the lab root",
                            hint="add the PEM of its (directly issuing) root to p2s.root_certificates")


def _copy_user_roots(d: Path, topo_dir: Path, g: str, paths: list[str]) -> None:
    for i, rel in enumerate(paths):
        _write(d / "user-roots" / f"{i}.crt", _read_user_root(topo_dir, g, i, rel)[1])


def _read_user_root(topo_dir: Path, g: str, i: int, rel: str) -> tuple[x509.Certificate, bytes]:
    src = (topo_dir / rel).resolve()
    try:
        data = src.read_bytes()
        return pki.load_pem_cert(data), data
    except (OSError, ValueError) as exc:
        raise TopologyError(f"gateways.{g}.p2s.root_certificates[{i}]: cannot read a PEM certificate from "
                            f"{src}: {exc}", hint="give the path of a PEM root certificate") from exc


def revoked_names(topo: Topology, g: str, gp: GatewayPki) -> dict[str, str]:
    """client name -> why it is revoked (by name or by its certificate's thumbprint)."""
    p2s = topo.gateways[g].p2s
    listed = {item.upper() for item in (p2s.revoked if p2s else [])}
    out = {}
    for name, issued in gp.clients.items():
        tp = pki.thumbprint(issued.cert)
        if name.upper() in listed or tp in listed:
            how = ("the lab root's CRL" if pki.issued_by(issued.cert, gp.root.cert) else
                   f"the gateway connection {refusal_name(name)} (no CRL: the lab has no key of its root)")
            out[name] = f"revoked (thumbprint {tp}): on gateways.{g}.p2s.revoked, enforced by {how}"
    return out


def _revoked(topo: Topology, g: str, gp: GatewayPki) -> list[x509.Certificate]:
    return [gp.clients[n].cert for n in revoked_names(topo, g, gp) if pki.issued_by(gp.clients[n].cert, gp.root.cert)]


def refusals(topo: Topology, g: str, gp: GatewayPki) -> dict[str, Tree]:
    """Connections refusing revoked clients the CRL cannot cover (certificates from a root the lab has no key of)."""
    gw = topo.gateways[g]
    return {refusal_name(n): refusal_tree(g, gw, topo.name, f"CN={n}") for n in revoked_names(topo, g, gp)
            if not pki.issued_by(gp.clients[n].cert, gp.root.cert)}


def revocation_gaps(topo: Topology, g: str, gp: GatewayPki) -> list[str]:
    """Listed thumbprints that match no certificate the lab issued: not enforceable by the lab's CRL."""
    p2s = topo.gateways[g].p2s
    known = {pki.thumbprint(i.cert) for i in gp.clients.values()} | set(gp.clients)
    return [t for t in (p2s.revoked if p2s else []) if t.upper() not in {k.upper() for k in known}]


def node_creds(state_root: Path, topo: Topology, all_pki: dict[str, GatewayPki] | None = None) -> dict[str, Creds]:
    """node -> credentials to load: every instance of a P2S gateway, and every client (`all_pki`: as
    `ensure_pki` returned it, when the caller has it already)."""
    all_pki = ensure_pki(state_root, topo, None) if all_pki is None else all_pki
    out: dict[str, Creds] = {}
    for g, gp in all_pki.items():
        gw = topo.gateways[g]
        assert gw.p2s is not None
        crl = (pki_dir(state_root, g) / "root.crl").read_bytes()
        gw_creds = Creds(cacerts=(pki.pem_cert(gp.root.cert), *gp.user_roots), certs=(pki.pem_cert(gp.gateway.cert),),
                         keys=(pki.pem_key(gp.gateway.key),), crls=(crl,),
                         pools={pool_name(g): str(gw.p2s.address_pool)}, conns=refusals(topo, g, gp))
        for i in range(2):
            out[f"{g}-{i}"] = gw_creds
        for name, issued in gp.clients.items():
            out[name] = Creds(cacerts=(pki.pem_cert(gp.gateway_ca.cert),), certs=(pki.pem_cert(issued.cert),),
                              keys=(pki.pem_key(issued.key),))
    return out
