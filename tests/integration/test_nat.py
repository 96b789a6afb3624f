"""NAT rules for real: the shipped topologies/nat.yml comes up, hosts reach each other at their translated
addresses, and inside ESP (decrypted from the capture with the logged keys) only translated VNet addresses
appear: the site's device never sees the VNet's own prefix. Unique lab name; cleaned up even on failure."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import yaml

from tests.integration.helpers import ROOT, lab_name, run_lab

pytestmark = pytest.mark.integration
TOPOLOGY = ROOT / "topologies" / "nat.yml"


def test_nat_lab_pings_with_translated_addresses_inside_esp(
        lab_home: Path, image: str, cleanup_lab: list[str], tmp_path: Path) -> None:
    data = yaml.safe_load(TOPOLOGY.read_text())
    name = lab_name("nat")
    data["name"] = name
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    cleanup_lab.append(name)
    res = run_lab("up", str(path), home=lab_home, timeout=240)
    assert res.returncode == 0, res.stderr

    for src, dst in (("vm1", "100.64.2.10"), ("pc1", "100.64.1.10")):
        ping = run_lab("exec", "--lab", name, src, "--", "ping", "-c", "3", "-W", "2", dst, home=lab_home)
        assert ping.returncode == 0, f"{src} -> {dst}: {ping.stdout}{ping.stderr}"
    # The VNet's real address is not reachable from the site: only the translated prefix is routed.
    real = run_lab("exec", "--lab", name, "pc1", "--", "ping", "-c", "2", "-W", "1", "10.1.0.10", home=lab_home)
    assert real.returncode != 0

    res = run_lab("verify", name, "--json", home=lab_home, timeout=240)
    report = json.loads(res.stdout)
    assert res.returncode == 0, res.stderr + json.dumps(report, indent=1)
    checks = {c["name"]: c for c in report["checks"]}
    dsts = {p["dst"] for p in checks["reachability"]["data"]["probes"]}
    assert dsts == {"100.64.2.10", "100.64.1.10"}
    inner = checks["decryption"]["data"]["inner"]
    assert inner == ["10.2.0.10 -> 100.64.1.10", "100.64.1.10 -> 10.2.0.10"]
    seen = {IPv4Address(a) for pair in inner for a in pair.split(" -> ")}
    assert not any(a in IPv4Network("10.1.0.0/24") for a in seen), "the VNet's own prefix appeared inside ESP"
