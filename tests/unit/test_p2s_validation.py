"""Azure's point-to-site rules: each broken file exits 2 from `lab validate` and names the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lab.plan import build_plan
from lab.render.lab_files import render_files
from lab.topology.load import load_text

ROOT = Path(__file__).resolve().parents[2]
BASE = (ROOT / "topologies" / "p2s.yml").read_text()


def _topo(**p2s: object) -> dict:
    data = yaml.safe_load(BASE)
    data["gateways"]["azgw"]["p2s"].update(p2s)
    return data


CASES = {
    "policy-based": (lambda d: d["gateways"]["azgw"].update(vpn_type="PolicyBased", sku="Basic"),
                     "gateways.azgw.p2s: a PolicyBased gateway does not support point-to-site"),
    "basic-ikev2": (lambda d: d["gateways"]["azgw"].update(sku="Basic"),
                    "gateways.azgw.p2s.tunnel_type: the Basic SKU does not support IKEv2"),
    "too-many-clients": (lambda d: d["gateways"]["azgw"]["p2s"].update(clients=251, revoked=[]),
                         "gateways.azgw.p2s.clients: 251 clients: the VpnGw1 SKU allows 250"),
    "pool-overlaps-vnet": (lambda d: d["gateways"]["azgw"]["p2s"].update(address_pool="10.1.128.0/24"),
                           "gateways.azgw.p2s.address_pool: address pool 10.1.128.0/24 overlaps 10.1.0.0/16"),
    "pool-overlaps-site": (lambda d: d.update(sites={"onprem": {"public_ip": "198.51.100.10",
                                                                "address_space": ["172.16.0.0/16"]}}),
                           "gateways.azgw.p2s.address_pool: address pool 172.16.201.0/24 overlaps 172.16.0.0/16"),
    "pool-too-small": (lambda d: d["gateways"]["azgw"]["p2s"].update(address_pool="172.16.201.0/30"),
                       "gateways.azgw.p2s.address_pool: 172.16.201.0/30 has room for fewer than 5 clients"),
    "bad-revoked": (lambda d: d["gateways"]["azgw"]["p2s"].update(revoked=["nobody"]),
                    "gateways.azgw.p2s.revoked[0]: 'nobody' is neither a client"),
    "user-cert-without-key": (lambda d: d["gateways"]["azgw"]["p2s"]["clients"].append(
        {"name": "alice", "certificate": "alice.pem"}),
        "gateways.azgw.p2s.clients[5].key: client 'alice' has a certificate but no key"),
    "user-cert-untrusted": (lambda d: d["gateways"]["azgw"]["p2s"]["clients"].append(
        {"name": "alice", "certificate": "alice.pem", "key": "alice.key", "issuer": "untrusted"}),
        "gateways.azgw.p2s.clients[5].issuer: client 'alice' brings its own certificate"),
    "sstp": (lambda d: d["gateways"]["azgw"]["p2s"].update(tunnel_type="SSTP"),
             "gateways.azgw.p2s.tunnel_type: SSTP is not emulated"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rule_exits_2_naming_the_field(case: str, tmp_path: Path) -> None:
    data = yaml.safe_load(BASE)
    CASES[case][0](data)
    path = tmp_path / f"{case}.yml"
    path.write_text(yaml.safe_dump(data))
    res = subprocess.run([sys.executable, "-m", "lab", "validate", str(path)], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    assert CASES[case][1] in res.stdout + res.stderr


def test_pool_overlapping_another_pool() -> None:
    data = yaml.safe_load(BASE)
    other = yaml.safe_load(yaml.safe_dump(data["gateways"]["azgw"]))
    other["public_ips"] = ["203.0.113.20"]
    other["vnet"] = {"address_space": ["10.3.0.0/16"]}
    other["p2s"] = {"address_pool": "172.16.201.128/25", "clients": 1}
    data["gateways"]["azgw2"] = other
    topo_errors = _errors(data)
    assert any("gateways.azgw2.p2s.address_pool: address pool 172.16.201.128/25 overlaps" in e for e in topo_errors)


def _errors(data: dict) -> list[str]:
    from lab.errors import TopologyError

    try:
        load_text(yaml.safe_dump(data), "t.yml")
    except TopologyError as exc:
        return exc.message.splitlines()
    return []


def test_plan_and_render() -> None:
    topo, _ = load_text(BASE, "p2s.yml")
    plan = build_plan(topo)
    clients = [n for n in plan.nodes if n.role == "client"]
    assert [n.name for n in clients] == ["azgw-client1", "azgw-client2", "azgw-client3", "azgw-client4", "azgw-rogue"]
    assert str(clients[0].ifaces[0].addresses[0]) == "198.18.0.10/15"
    files, swan = render_files(topo, plan, {}, "libipsec")
    gw = swan["azgw-0"].connections["p2s"]
    assert gw["pools"] == ["p2s-azgw"] and gw["remote"] == {"auth": "eap-tls", "eap_id": "%any"}
    assert gw["children"]["p2s"]["local_ts"] == ["10.1.0.0/16"]  # type: ignore[index]
    cl = swan["azgw-client1"].connections["p2s"]
    assert cl["vips"] == ["0.0.0.0"] and cl["keyingtries"] == "0"
    assert cl["children"]["p2s"]["dpd_action"] == "restart"  # type: ignore[index]
    for node in ("azgw-0", "azgw-1", "azgw-client1"):
        assert "eap-identity eap-tls" in files[Path(node) / "strongswan.conf"]  # type: ignore[operator]
    assert render_files(topo, plan, {}, "libipsec")[0] == files  # deterministic


@pytest.mark.parametrize(("sku", "limit"), [("VpnGw1", 250), ("VpnGw2", 500), ("VpnGw3", 1000), ("VpnGw4", 5000),
                                            ("VpnGw5", 10000)])
def test_p2s_client_limits_are_azures_per_sku(sku: str, limit: int) -> None:
    """Azure's IKEv2 P2S limit is accepted (public addresses from 198.18.0.0/15 suffice); one more is refused."""
    from lab.azure import facts
    from lab.p2s.model import clients

    assert facts.SKUS[sku].p2s_ikev2 == limit
    data = _topo(clients=limit, revoked=[], address_pool="172.16.0.0/16" if limit < 60000 else "172.16.0.0/12")
    data["gateways"]["azgw"]["sku"] = sku
    assert _errors(data) == []
    topo, _ = load_text(yaml.safe_dump(data), "t.yml")
    assert len(clients(topo)) == limit
    data["gateways"]["azgw"]["p2s"]["clients"] = limit + 1
    errs = _errors(data)
    assert any(f"{limit + 1} clients: the {sku} SKU allows {limit}" in e for e in errs) or (
        limit == 10000 and any("less than or equal to 10000" in e for e in errs)), errs


def test_what_this_machine_cannot_hold_is_refused_as_its_own_limit() -> None:
    from lab.p2s.rules import machine_limit

    data = _topo(clients=250, revoked=[], address_pool="172.16.0.0/16")
    topo, _ = load_text(yaml.safe_dump(data), "t.yml")
    assert machine_limit(topo, 4 * 2**30) is None  # 4 GiB: 830 clients fit
    found = machine_limit(topo, 1 * 2**30)  # 1 GiB: 207 clients fit
    assert found is not None
    assert "this machine's limit is 207 (not Azure's)" in found.message
    assert "3.7 MiB measured per client" in found.message
