"""NAT rules for real: the shipped topologies/nat.yml comes up, hosts reach each other at their translated
addresses, and inside ESP (decrypted from the capture with the logged keys) only translated VNet addresses
appear: the site's device never sees the VNet's own prefix. Then `lab apply` takes every NAT rule away on the
running lab: hosts reach each other at their own addresses and no NAT table, route or address of the old rules
is left on the gateway. Before that, the site's rule becomes Dynamic (applied live): the site's host reaches the
VNet from the rule's pool, and the VNet can no longer initiate towards the site (Azure: a Dynamic rule lets only
the internal side initiate). On both data planes (`dataplane`: the kernel one runs in the QEMU guest, `make
test-kernel`). Unique lab name; cleaned up even on failure."""

from __future__ import annotations

import json
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.helpers import ROOT, lab_name, run_lab

pytestmark = pytest.mark.integration
TOPOLOGY = ROOT / "topologies" / "nat.yml"


def test_nat_lab_pings_with_translated_addresses_inside_esp(
        lab_home: Path, image: str, cleanup_lab: list[str], tmp_path: Path, dataplane: str) -> None:
    data = yaml.safe_load(TOPOLOGY.read_text())
    name = lab_name(f"nat-{dataplane[0]}")
    data["name"] = name
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    cleanup_lab.append(name)
    res = run_lab("up", str(path), "--dataplane", dataplane, home=lab_home, timeout=240)
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

    _apply_dynamic_ingress(name, data, tmp_path, lab_home)
    _apply_without_nat(name, data, tmp_path, lab_home)


LISTEN = ("import socket; s = socket.socket(2, 2); s.bind(('0.0.0.0', 9999)); d, a = s.recvfrom(99); "
          "open('/tmp/nat-src', 'w').write(a[0])")
SEND = "import socket; socket.socket(2, 2).sendto(b'x', ('100.64.1.10', 9999))"


def _apply_dynamic_ingress(name: str, data: dict[str, Any], tmp_path: Path, lab_home: Path) -> None:
    data["gateways"]["azgw"]["nat_rules"]["site-in"].update(type="Dynamic", external_mappings=["100.64.2.0/30"])
    path = tmp_path / f"{name}-dynamic.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    res = run_lab("apply", str(path), home=lab_home, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    # vm1 records the source of the first UDP datagram it gets; pc1 sends until one arrives (deadline, no sleep)
    run_lab("exec", "--lab", name, "vm1", "--", "sh", "-c",
            f'rm -f /tmp/nat-src; timeout 60 python3 -c "{LISTEN}" >/dev/null 2>&1 &', home=lab_home)
    source, deadline = "", time.monotonic() + 45
    while not source and time.monotonic() < deadline:
        run_lab("exec", "--lab", name, "pc1", "--", "python3", "-c", SEND, home=lab_home)
        got = run_lab("exec", "--lab", name, "vm1", "--", "cat", "/tmp/nat-src", home=lab_home)
        source = got.stdout.strip() if got.returncode == 0 else ""
    assert source and IPv4Address(source) in IPv4Network("100.64.2.0/30"), f"vm1 saw pc1 as {source!r}"
    # ... and vm1 cannot initiate to the address pc1 appeared from (nor to pc1's static external address)
    for dst in (source, "100.64.2.10"):
        back = run_lab("exec", "--lab", name, "vm1", "--", "ping", "-c", "2", "-W", "1", dst, home=lab_home)
        assert back.returncode != 0, f"a Dynamic rule let the VNet initiate towards the site ({dst})"


def _apply_without_nat(name: str, data: dict[str, Any], tmp_path: Path, lab_home: Path) -> None:
    data["gateways"]["azgw"].pop("nat_rules")
    for key in ("ingress_nat_rules", "egress_nat_rules"):
        data["connections"]["azgw-onprem"].pop(key)
    path = tmp_path / f"{name}-nonat.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    res = run_lab("apply", str(path), home=lab_home, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    for src, dst in (("vm1", "10.2.0.10"), ("pc1", "10.1.0.10")):
        ping = run_lab("exec", "--lab", name, src, "--", "ping", "-c", "2", "-W", "2", dst, home=lab_home)
        assert ping.returncode == 0, f"{src} -> {dst} after NAT was removed: {ping.stdout}{ping.stderr}"
    for node in ("azgw-0", "azgw-1"):  # the active and its warm standby
        left = run_lab("exec", "--lab", name, node, "--", "sh", "-c",
                       "nft list tables; ip netns exec tun-azgw-onprem nft list tables; ip route; "
                       "ip addr show lo; ip -n tun-azgw-onprem addr show lo", home=lab_home)
        assert left.returncode == 0, left.stderr
        assert "labnat" not in left.stdout and "100.64." not in left.stdout, f"{node} kept NAT state:\n{left.stdout}"
