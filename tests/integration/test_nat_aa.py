"""Per-instance NAT rules on an active-active gateway, for real (tests/integration/data/fid-nat-aa.yml): instance 0
shows the VNet to the site as 100.64.1.0/24, instance 1 as 100.64.11.0/24 (Azure's FAQ: one EgressSnat rule per
instance through the IP configuration ID), both show the site to the VNet as 100.64.2.0/24.

What works: each instance translates with its own rule (with vm1's return pinned to one instance, the site sees
vm1 from that instance's prefix, and reaches vm1 at it). The documented limit (docs/azure-model.md, "Measured
limit"): a site-initiated flow through one instance fails when vm1's answer returns through the other, which
translates it with its own rule; the lab keeps no flow affinity, so with vm1's ECMP route exactly one of the two
external addresses answers. One lab for the module, unique name, down even when a test fails."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import ROOT, lab_leftovers, renamed, run_lab

pytestmark = pytest.mark.integration
EXTERNAL = {0: "100.64.1.10", 1: "100.64.11.10"}  # vm1 as the site sees it through instance 0 / 1
SITE = "100.64.2.10"  # pc1 as the VNet sees it (IngressSnat, both instances)
LISTEN = ("import socket; s = socket.socket(2, 2); s.bind(('0.0.0.0', 9999)); d, a = s.recvfrom(99); "
          "open('/tmp/naa-src', 'w').write(a[0])")
SEND = f"import socket; socket.socket(2, 2).sendto(b'x', ('{SITE}', 9999))"


@pytest.fixture(scope="module")
def naa_lab(lab_home: Path, image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path, name = renamed(ROOT / "tests" / "integration" / "data" / "fid-nat-aa.yml", tmp_path_factory.mktemp("naa"),
                         "fid-naa")
    res = run_lab("up", str(path), "--timeout", "90", home=lab_home, timeout=300)
    try:
        assert res.returncode == 0, res.stdout + res.stderr
        yield name
    finally:
        run_lab("down", name, home=lab_home, timeout=120)
        assert not lab_leftovers(name)


def _exec(lab: str, node: str, *argv: str, home: Path) -> str:
    res = run_lab("exec", "--lab", lab, node, "--", *argv, home=home, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def _inside(lab: str, instance: int, home: Path) -> str:
    """The instance's own VNet-side address (the next hop vm1's ECMP route names)."""
    addrs = json.loads(_exec(lab, f"azgw-{instance}", "ip", "-j", "-4", "addr", "show", "eth1", home=home))
    return str(addrs[0]["addr_info"][0]["local"])


def _answers(lab: str, dst: str, home: Path) -> int:
    """Echo replies pc1 gets from `dst` out of 3."""
    res = run_lab("exec", "--lab", lab, "pc1", "--", "ping", "-c", "3", "-i", "0.3", "-W", "2", dst, home=home,
                  timeout=60)
    found = re.search(r"(\d+) received", res.stdout)
    return int(found.group(1)) if found else 0


def _source_seen_by_site(lab: str, home: Path) -> str:
    """vm1 sends UDP to pc1 until pc1 has recorded the source it arrived from (deadline, no fixed sleep)."""
    _exec(lab, "pc1", "sh", "-c", f'rm -f /tmp/naa-src; timeout 60 python3 -c "{LISTEN}" >/dev/null 2>&1 &',
          home=home)
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        _exec(lab, "vm1", "python3", "-c", SEND, home=home)
        got = run_lab("exec", "--lab", lab, "pc1", "--", "cat", "/tmp/naa-src", home=home)
        if got.returncode == 0 and got.stdout.strip():
            return got.stdout.strip()
    raise AssertionError("pc1 never got vm1's datagram")


@pytest.mark.parametrize("instance", [0, 1])
def test_each_instance_translates_with_its_own_rule(naa_lab: str, lab_home: Path, instance: int) -> None:
    other = 1 - instance
    _exec(naa_lab, "vm1", "ip", "route", "replace", "100.64.2.0/24", "via", _inside(naa_lab, instance, lab_home),
          home=lab_home)  # vm1's traffic to the site leaves through this instance only
    try:
        assert _source_seen_by_site(naa_lab, lab_home) == EXTERNAL[instance]  # this instance's EgressSnat rule
        assert _answers(naa_lab, EXTERNAL[instance], lab_home) >= 2  # in and back through the same instance
        # in through the other instance, back through this one, translated by this one's rule: the site drops it
        assert _answers(naa_lab, EXTERNAL[other], lab_home) == 0
    finally:
        _exec(naa_lab, "vm1", "ip", "route", "del", "100.64.2.0/24", home=lab_home)


def test_with_the_vnets_ecmp_route_only_the_instance_the_answer_returns_by_answers(naa_lab: str,
                                                                                   lab_home: Path) -> None:
    route = _exec(naa_lab, "vm1", "ip", "route", "show", "default", home=lab_home)
    assert all(f"nexthop via {_inside(naa_lab, i, lab_home)}" in route for i in (0, 1)), route  # ECMP, both live
    # pc1 -> 100.64.1.10 and pc1 -> 100.64.11.10 are answered by one and the same flow (10.1.0.10 -> 100.64.2.10),
    # which vm1's ECMP route hashes to one instance: the flow through the other instance fails
    answered = {i: _answers(naa_lab, EXTERNAL[i], lab_home) for i in (0, 1)}
    assert sorted(n > 0 for n in answered.values()) == [False, True], answered
