"""Point-to-site end to end: three clients connect with distinct pool addresses and reach the VNet host; a
revoked client and a client from another CA are refused, with the reason in `lab inspect`; `lab verify`
covers P2S; a client profile is written; after a planned failover and a charon restart every client is back
(the test prints the times)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import DATAPLANES, usable_dataplane
from tests.integration.helpers import ROOT, TIME_SCALE, first_event, lab_name, lab_up, run_lab

pytestmark = pytest.mark.integration
POOL = IPv4Network("172.16.201.0/24")


@pytest.fixture(scope="module", params=DATAPLANES)
def p2s_lab(lab_home: Path, image: str, tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> Iterator[str]:
    """The reference P2S topology under a unique name, up for the whole module (per data plane), down afterwards."""
    plane = usable_dataplane(request.param)
    name = lab_name(f"p2s-{plane[0]}")
    data = yaml.safe_load((ROOT / "topologies" / "p2s.yml").read_text())
    data["name"] = name
    path = tmp_path_factory.mktemp("p2s") / "p2s.yml"
    path.write_text(yaml.safe_dump(data))
    with lab_up(path, name, lab_home, "--timeout", "90", "--dataplane", plane, timeout=300) as up:
        yield up


def _clients(name: str, home: Path) -> dict[str, dict[str, str]]:
    res = run_lab("inspect", name, "--json", home=home)
    assert res.returncode == 0, res.stderr
    return {c["name"]: c for c in json.loads(res.stdout)["p2s_clients"]}


def test_three_clients_connect_with_pool_addresses_and_reach_the_vnet(p2s_lab: str, lab_home: Path) -> None:
    clients = _clients(p2s_lab, lab_home)
    good = [clients[f"azgw-client{i}"] for i in (1, 2, 3)]
    assert all(c["state"] == "connected" for c in good), good
    vips = [IPv4Address(c["virtual_ip"]) for c in good]
    assert len(set(vips)) == 3 and all(v in POOL for v in vips)
    for c in good:  # each client's own public address: from 198.18.0.0/15, room for VpnGw5's 10,000 (#14 item 7)
        res = run_lab("exec", "--lab", p2s_lab, c["name"], "--", "ip", "-4", "-j", "addr", "show", "dev", "eth0",
                      home=lab_home)
        assert res.returncode == 0, res.stderr
        # kernel ESP: charon puts the client's virtual IP on the interface towards the gateway (eth0); libipsec on
        # its TUN. Every other address of eth0 is the client's public one.
        public = [IPv4Address(a["local"]) for link in json.loads(res.stdout) for a in link["addr_info"]
                  if a["local"] != c["virtual_ip"]]
        assert public and all(a in IPv4Network("198.18.0.0/15") for a in public), (c["name"], public)
    for c in good:
        res = run_lab("exec", "--lab", p2s_lab, c["name"], "--", "ping", "-c", "2", "-W", "2", "10.1.0.10",
                      home=lab_home)
        assert res.returncode == 0, res.stdout


def test_revoked_and_untrusted_clients_are_refused_with_the_reason(p2s_lab: str, lab_home: Path) -> None:
    clients = _clients(p2s_lab, lab_home)
    revoked, rogue = clients["azgw-client4"], clients["azgw-rogue"]
    assert revoked["state"] == "refused" and "gateways.azgw.p2s.revoked" in revoked["reason"]
    assert "certificate was revoked" in revoked["reason"]
    assert rogue["state"] == "refused" and "no issuer certificate found" in rogue["reason"]


def test_verify_covers_p2s(p2s_lab: str, lab_home: Path) -> None:
    res = run_lab("verify", p2s_lab, "--json", home=lab_home, timeout=180)
    report = json.loads(res.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    for name in ("p2s-encrypted", "p2s-virtual-ips", "p2s-refused"):
        assert checks[name]["passed"], checks[name]
    assert res.returncode == 0, res.stderr


def test_client_config_writes_a_profile(p2s_lab: str, lab_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "profile"
    res = run_lab("p2s", "client-config", "azgw", "azgw-client1", "--lab", p2s_lab, "--out", str(out), home=lab_home)
    assert res.returncode == 0, res.stderr
    assert 'id = "CN=azgw-client1"' in (out / "swanctl.conf").read_text()
    assert (out / "private" / "client.key").stat().st_mode & 0o777 == 0o600
    assert (out / "x509ca" / "gateway-ca.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_lab_ui_shows_the_clients_and_no_private_key(p2s_lab: str, lab_home: Path) -> None:
    """`lab ui` on a lab full of private keys (gateway, CA, every client's): its state and its event stream show
    the clients as inspect does and hold no line of any of those keys (docs/ui.md, #16 item 4)."""
    import re
    import subprocess
    import urllib.request

    from tests.integration.helpers import lab_argv

    keys = [p.read_text(errors="replace") for p in (lab_home / p2s_lab).rglob("*") if p.is_file()
            and p.stat().st_size < 1 << 20 and "PRIVATE KEY-----" in p.read_text(errors="replace")]
    bodies = {ln for k in keys for ln in k.splitlines() if re.fullmatch(r"[A-Za-z0-9+/=]{40,}", ln)}
    assert len(keys) >= 5 and bodies, keys[:1]
    argv, env = lab_argv("ui", p2s_lab, home=lab_home)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().removeprefix("lab ui: ").strip()
        base, token = url.split("/lab/")[0], url.split("token=")[1]
        with urllib.request.urlopen(f"{base}/api/events?token={token}", timeout=60) as r:
            first = first_event(r)  # the whole state, once collected
        with urllib.request.urlopen(f"{base}/api/state?token={token}", timeout=30) as r:
            state = json.loads(r.read())
    finally:
        proc.terminate()
        proc.wait(10)
    assert '"p2s": [{' in first, first[:300]
    shown = {c["name"]: c["state"] for c in state["p2s"]}
    assert shown == {c["name"]: c["state"] for c in _clients(p2s_lab, lab_home).values()}, shown
    for text in (first, json.dumps(state)):
        assert "PRIVATE KEY" not in text
        assert not [b for b in bodies if b in text]


@pytest.mark.parametrize("event", ["charon-restart", "planned"])  # restart first: it needs -0 active
def test_clients_reconnect_after_gateway_event(p2s_lab: str, lab_home: Path, event: str) -> None:
    res = run_lab("p2s", "reconnect", "azgw", "--lab", p2s_lab, "--event", event, "--json", home=lab_home,
                  timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads(res.stdout)
    print(f"\nP2S {data['event']}: every client back after {data['all_back_s']} s ({data['clients']})")
    assert data["all_back_s"] is not None and data["all_back_s"] < 60 * TIME_SCALE  # the agent waits scaled too
    assert os.environ.get("LAB_HOME") != str(lab_home)  # the suite's home, never the user's
