"""BGP route translation for NAT, for real (topologies/nat-bgp.yml; Azure's enableBgpRouteTranslationForNat):
the VNet and branch1 both use 10.0.1.0/24, branch1's connection translates it to 100.0.2.0/24 and shows it the
VNet as 100.0.1.0/24; branch2 has no NAT rules. FRR's bgpd runs in the gateway and both branch devices, its
sessions cross the tunnel's NAT (post-NAT peer addresses). What each peer learns is read from its own bgpd and
kernel; traffic to a learned external mapping lands on the host behind it (its ICMP counter says so).
One lab for the module, unique name, down even when a test fails."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import ROOT, TIME_SCALE, lab_up, renamed, run_lab

pytestmark = pytest.mark.integration
PINGS = 3
DEADLINE_S = 40 * TIME_SCALE  # the conditional advertisement is re-checked every 5 s (lab/routing/nat_routes.py)


@pytest.fixture(scope="module")
def nat_bgp_lab(lab_home: Path, image: str, tmp_path_factory: pytest.TempPathFactory,
                module_dataplane: str) -> Iterator[str]:
    """One lab per data plane (the kernel one runs in the QEMU guest, `make test-kernel`)."""
    path, name = renamed(ROOT / "topologies" / "nat-bgp.yml", tmp_path_factory.mktemp("natbgp"),
                         f"natbgp-{module_dataplane[0]}")
    with lab_up(path, name, lab_home, "--timeout", "120", "--dataplane", module_dataplane, timeout=400) as up:
        yield up


def _exec(lab: str, node: str, home: Path, *argv: str) -> str:
    res = run_lab("exec", "--lab", lab, node, "--", *argv, home=home)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def _bgp(lab: str, node: str, home: Path) -> dict[str, list[dict]]:
    """prefix -> its paths in the node's BGP table."""
    table = json.loads(_exec(lab, node, home, "vtysh", "-c", "show bgp ipv4 unicast json"))
    return table.get("routes", {})


def _learned(lab: str, node: str, home: Path) -> dict[str, str]:
    """prefix -> AS path of the best path learned from a peer (the node's own networks left out)."""
    return {prefix: best["path"] for prefix, paths in _bgp(lab, node, home).items()
            for best in paths if best.get("bestpath") and best.get("path")}


def _wait_learned(lab: str, node: str, home: Path, present: set[str], absent: set[str]) -> dict[str, str]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        learned = _learned(lab, node, home)
        if present <= set(learned) and not absent & set(learned) or time.monotonic() > deadline:
            return learned
        time.sleep(0.5)


def _echoes_in(lab: str, host: str, home: Path) -> int:
    """ICMP echo requests the host has received (its kernel's counter, /proc/net/snmp)."""
    head, values = [line.split() for line in _exec(lab, host, home, "cat", "/proc/net/snmp").splitlines()
                    if line.startswith("Icmp:")][:2]
    return int(values[head.index("InEchos")])


def test_branch_learns_the_vnets_external_mapping_not_its_internal_prefix(nat_bgp_lab: str, lab_home: Path) -> None:
    learned = _wait_learned(nat_bgp_lab, "branch1", lab_home, {"100.0.1.0/24"}, set())
    assert learned.get("100.0.1.0/24") == "65515", learned  # the EgressSnat rule's external mapping
    assert "10.0.1.0/24" not in learned, learned  # never the VNet's own prefix (its own LAN's stays local)
    route = _exec(nat_bgp_lab, "branch1", lab_home, "ip", "route", "show", "100.0.1.0/24")
    assert "proto bgp" in route and "dev vti-" in route, route
    # branch2 has no EgressSnat rule: it learns the VNet untranslated, and branch1 only as its external mapping,
    # with the AS path of Azure's transit
    learned2 = _wait_learned(nat_bgp_lab, "branch2", lab_home, {"10.0.1.0/24", "100.0.2.0/24"}, set())
    assert learned2.get("10.0.1.0/24") == "65515" and learned2.get("100.0.2.0/24") == "65515 65010", learned2
    assert "100.0.1.0/24" not in learned2, learned2


def test_gateway_uses_the_learned_internal_prefix_only_at_its_external_mapping(nat_bgp_lab: str,
                                                                              lab_home: Path) -> None:
    paths = _bgp(nat_bgp_lab, "azgw-0", lab_home)["10.0.1.0/24"]
    from_branch = [p for p in paths if p.get("path") == "65010"]
    assert from_branch, paths  # learned from branch1 (tagged), though it is the VNet's own prefix
    rib = json.loads(_exec(nat_bgp_lab, "azgw-0", lab_home, "vtysh", "-c", "show ip route 10.0.1.0/24 json"))
    assert {r["protocol"] for r in rib["10.0.1.0/24"]} == {"connected"}, rib  # table-map: never in the kernel


@pytest.mark.parametrize(("src", "dst", "reached"), [("pc1", "100.0.1.10", "vm1"), ("vm1", "100.0.2.10", "pc1"),
                                                     ("pc2", "100.0.2.10", "pc1")])
def test_traffic_to_a_translated_prefix_passes_natted(nat_bgp_lab: str, lab_home: Path, src: str, dst: str,
                                                      reached: str) -> None:
    """pc1 reaches vm1 by the BGP route to 100.0.1.0/24; vm1 reaches pc1 at 100.0.2.10; branch2 reaches branch1
    there by the translated route it learned through the gateway (transit)."""
    before = _echoes_in(nat_bgp_lab, reached, lab_home)
    ping = run_lab("exec", "--lab", nat_bgp_lab, src, "--", "ping", "-c", str(PINGS), "-W", "2", dst, home=lab_home)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert _echoes_in(nat_bgp_lab, reached, lab_home) - before >= PINGS, f"{dst} did not land on {reached}"


def test_external_mapping_follows_the_learned_route(nat_bgp_lab: str, lab_home: Path) -> None:
    """Azure advertises branch1's external mapping because it learned the internal one: when branch1 stops
    advertising 10.0.1.0/24, branch2 loses 100.0.2.0/24; when it advertises it again, the route comes back."""
    def network(verb: str) -> None:
        _exec(nat_bgp_lab, "branch1", lab_home, "vtysh", "-c", "conf t", "-c", "router bgp 65010", "-c",
              "address-family ipv4 unicast", "-c", f"{verb}network 10.0.1.0/24", "-c", "end")

    network("no ")
    try:
        gone = _wait_learned(nat_bgp_lab, "branch2", lab_home, {"10.0.1.0/24"}, {"100.0.2.0/24"})
        assert "100.0.2.0/24" not in gone, gone
    finally:
        network("")
    back = _wait_learned(nat_bgp_lab, "branch2", lab_home, {"100.0.2.0/24"}, set())
    assert back.get("100.0.2.0/24") == "65515 65010", back
