"""A client's own certificate and key: checked by `lab up` (each failure names the field), copied into the lab's
PKI, and, when its thumbprint is revoked, refused by a gateway connection (no CRL for a user root)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lab.errors import TopologyError
from lab.p2s import pki
from lab.p2s.creds import ensure_pki, node_creds, refusals, revoked_names
from lab.topology.load import load_text
from lab.topology.model import Topology


@pytest.fixture(scope="module")
def user_root() -> pki.Issued:
    return pki.make_ca("UserRoot-unit")


def _files(d: Path, root: pki.Issued, client: pki.Issued, key: pki.Issued | None = None) -> None:
    (d / "root.pem").write_bytes(pki.pem_cert(root.cert))
    (d / "alice.pem").write_bytes(pki.pem_cert(client.cert))
    (d / "alice.key").write_bytes(pki.pem_key((key or client).key))


def _topo(revoked: list[str] | None = None) -> Topology:
    p2s = {"address_pool": "172.16.201.0/24", "root_certificates": ["root.pem"], "revoked": revoked or [],
           "clients": ["bob", {"name": "alice", "certificate": "alice.pem", "key": "alice.key"}]}
    data = {"name": "u", "gateways": {"azgw": {"public_ips": ["203.0.113.10"], "active_active": False,
                                                "vnet": {"address_space": ["10.1.0.0/16"]}, "p2s": p2s}}}
    return load_text(yaml.safe_dump(data), "u.yml")[0]


def test_user_pair_is_copied_and_used(tmp_path: Path, user_root: pki.Issued) -> None:
    alice = pki.issue(user_root, "alice")
    _files(tmp_path, user_root, alice)
    gp = ensure_pki(tmp_path / "state", _topo(), tmp_path)["azgw"]
    assert pki.thumbprint(gp.clients["alice"].cert) == pki.thumbprint(alice.cert)
    assert (tmp_path / "state" / "pki" / "azgw" / "clients" / "alice.key").stat().st_mode & 0o777 == 0o600
    creds = node_creds(tmp_path / "state", _topo())
    assert creds["alice"].certs == (pki.pem_cert(alice.cert),)
    assert creds["azgw-0"].conns == {}


def test_revoked_user_cert_gets_a_refusal_not_a_crl_entry(tmp_path: Path, user_root: pki.Issued) -> None:
    alice = pki.issue(user_root, "alice")
    _files(tmp_path, user_root, alice)
    tp = pki.thumbprint(alice.cert)
    topo = _topo([tp.lower(), "bob"])
    gp = ensure_pki(tmp_path / "state", topo, tmp_path)["azgw"]
    why = revoked_names(topo, "azgw", gp)
    assert why["alice"].startswith(f"revoked (thumbprint {tp})") and "p2s-revoked-alice" in why["alice"]
    assert "CRL" in why["bob"] and "p2s-revoked-bob" not in why["bob"]  # the lab's own: CRL
    conn = refusals(topo, "azgw", gp)
    assert list(conn) == ["p2s-revoked-alice"]
    assert conn["p2s-revoked-alice"]["remote"] == {"auth": "eap-md5", "id": "CN=alice"}
    assert node_creds(tmp_path / "state", topo)["azgw-1"].conns == conn  # the standby refuses it too


CASES = {
    "wrong-key": ("gateways.azgw.p2s.clients[1].key: the key does not belong", "key"),
    "wrong-subject": ("gateways.azgw.p2s.clients[1].certificate: subject 'CN=carol' is not CN=alice", "subject"),
    "unchained": ("gateways.azgw.p2s.clients[1].certificate: issued by 'CN=Elsewhere'", "root"),
    "not-pem": ("gateways.azgw.p2s.clients[1].certificate: cannot read a PEM certificate", "pem"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_user_pair_names_the_field(case: str, tmp_path: Path, user_root: pki.Issued) -> None:
    alice = pki.issue(user_root, "alice")
    kind = CASES[case][1]
    if kind == "key":
        _files(tmp_path, user_root, alice, key=pki.issue(user_root, "alice"))
    elif kind == "subject":
        _files(tmp_path, user_root, pki.issue(user_root, "carol"))
    elif kind == "root":
        _files(tmp_path, user_root, pki.issue(pki.make_ca("Elsewhere"), "alice"))
    else:
        _files(tmp_path, user_root, alice)
        (tmp_path / "alice.pem").write_text("not a certificate")
    with pytest.raises(TopologyError) as err:
        ensure_pki(tmp_path / "state", _topo(), tmp_path)
    assert err.value.message.startswith(CASES[case][0]), err.value.message
    assert err.value.exit_code == 2 and err.value.hint


def test_validate_checks_the_files(tmp_path: Path, user_root: pki.Issued) -> None:
    """`lab validate` reads the user's files too: exit 2 naming the field, before any `lab up`."""
    _files(tmp_path, user_root, pki.issue(pki.make_ca("Elsewhere"), "alice"))
    path = tmp_path / "u.yml"
    path.write_text(yaml.safe_dump(_topo().model_dump(mode="json", exclude_none=True)))
    env = {**os.environ, "LAB_HOME": str(tmp_path / "home")}
    res = subprocess.run([sys.executable, "-m", "lab", "validate", str(path)], capture_output=True, text=True,
                         env=env, timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "gateways.azgw.p2s.clients[1].certificate: issued by 'CN=Elsewhere'" in res.stdout + res.stderr
