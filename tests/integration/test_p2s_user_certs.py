"""Point-to-site with the user's own PKI: a client whose certificate and key come from a root the lab did not
make (written here with lab.p2s.pki) connects and reaches the VNet host; the same client with its certificate's
thumbprint in `revoked` is refused by the gateway (the lab has no key of that root, so no CRL), and
`lab inspect` says why."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from lab.p2s import pki
from tests.integration.helpers import lab_name, lab_up, run_lab

pytestmark = pytest.mark.integration
REFUSAL_WAIT_S = 20


def _user_pki(tmp: Path) -> str:
    """A user root and a client certificate CN=alice under it, as PEM files; returns the client's thumbprint."""
    root = pki.make_ca("UserRoot-test")
    alice = pki.issue(root, "alice")
    (tmp / "user-root.pem").write_bytes(pki.pem_cert(root.cert))
    (tmp / "alice.pem").write_bytes(pki.pem_cert(alice.cert))
    (tmp / "alice.key").write_bytes(pki.pem_key(alice.key))
    return pki.thumbprint(alice.cert)


def _topology(tmp: Path, name: str, revoked: list[str]) -> Path:
    p2s = {"address_pool": "172.16.201.0/24", "root_certificates": ["user-root.pem"], "revoked": revoked,
           "clients": [{"name": "alice", "certificate": "alice.pem", "key": "alice.key"}]}
    data = {"name": name, "gateways": {"azgw": {
        "vpn_type": "RouteBased", "sku": "VpnGw1", "public_ips": ["203.0.113.10"], "active_active": False,
        "vnet": {"address_space": ["10.1.0.0/16"], "hosts": {"vm1": "10.1.0.10"}}, "p2s": p2s}}}
    path = tmp / f"{name}.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def _alice(name: str, home: Path) -> dict[str, str]:
    res = run_lab("inspect", name, "--json", home=home)
    assert res.returncode == 0, res.stderr
    return next(c for c in json.loads(res.stdout)["p2s_clients"] if c["name"] == "alice")


def test_user_root_client_connects_and_is_refused_when_revoked(lab_home: Path, image: str, tmp_path: Path) -> None:
    tp = _user_pki(tmp_path)
    good = lab_name("p2su")
    with lab_up(_topology(tmp_path, good, []), good, lab_home, "--timeout", "90"):
        alice = _alice(good, lab_home)
        assert alice["state"] == "connected", alice
        res = run_lab("exec", "--lab", good, "alice", "--", "ping", "-c", "2", "-W", "2", "10.1.0.10",
                      home=lab_home)
        assert res.returncode == 0, res.stdout

    bad = lab_name("p2sr")
    with lab_up(_topology(tmp_path, bad, [tp.lower()]), bad, lab_home, "--timeout", "90"):
        deadline = time.monotonic() + REFUSAL_WAIT_S
        alice = _alice(bad, lab_home)
        while "gateway log:" not in alice.get("reason", "") and time.monotonic() < deadline:
            time.sleep(1)
            alice = _alice(bad, lab_home)
        print(f"\nrevoked user-root client: {alice}")
        assert alice["state"] == "refused", alice
        assert f"revoked (thumbprint {tp})" in alice["reason"] and "p2s-revoked-alice" in alice["reason"]
        assert "gateway log: loading EAP_MD5 method failed" in alice["reason"], alice
        res = run_lab("exec", "--lab", bad, "alice", "--", "ping", "-c", "2", "-W", "1", "10.1.0.10",
                      home=lab_home)
        assert res.returncode != 0, res.stdout
