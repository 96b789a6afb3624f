"""`lab diagnose` for BGP (lab/routing/diagnose.py): each class from a device config and the gateway's view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.routing.diagnose import Evidence, diagnose_bgp
from lab.routing.frr_parse import parse_frr
from lab.routing.nodes import render_frr_files
from lab.routing.peers import sessions
from lab.topology.load import load_file

ROOT = Path(__file__).resolve().parents[2]
TOPO = load_file(ROOT / "topologies" / "bgp-active-active.yml")[0]
GOOD = render_frr_files(TOPO)["onprem"]
NEIGHBORS = json.loads((Path(__file__).parent / "data" / "frr" / "azgw-neighbors.json").read_text())["10.2.255.254"]


def run(device: str | None, state: str = "Active", reason: str = "", route: str = "") -> list[tuple[str, str]]:
    azure = [s for s in sessions(TOPO) if s.azure and s.node == "azgw-0"]
    neighbor = {**NEIGHBORS, "bgpState": state, "lastNotificationReason": reason}
    ev = Evidence(parse_frr(device) if device is not None else None, neighbor, route, "ipsec0")
    return [(d.kind, d.severity) for d in diagnose_bgp(TOPO, azure, {("azgw-0", "169.254.21.2"): ev})]


def test_the_lab_rendered_device_has_nothing_to_report() -> None:
    assert run(GOOD, state="Established", route="169.254.21.1 dev ipsec0 src 169.254.21.2") == []


def test_asn_mismatch_on_either_side() -> None:
    assert ("bgp-asn-mismatch", "error") in run(GOOD.replace("router bgp 65010", "router bgp 65011"))
    assert ("bgp-asn-mismatch", "error") in run(GOOD.replace("remote-as 65515", "remote-as 65000"))


def test_peer_address_mismatch_names_azures_address() -> None:
    assert ("bgp-peer-address-mismatch", "error") in run(GOOD.replace("169.254.21.1", "169.254.21.5"))
    wrong_source = GOOD.replace("update-source 169.254.21.2", "update-source 169.254.21.9")
    assert ("bgp-peer-address-mismatch", "error") in run(wrong_source)


def test_apipa_session_nobody_initiates() -> None:
    passive = GOOD.replace(" neighbor 169.254.21.1 ebgp-multihop 255",
                           " neighbor 169.254.21.1 ebgp-multihop 255\n neighbor 169.254.21.1 passive")
    assert ("bgp-apipa-not-initiated", "error") in run(passive)


def test_no_route_to_azures_peer_ip_through_the_tunnel() -> None:
    found = run(GOOD, route="169.254.21.1 dev eth0 src 198.51.100.10 uid 0")
    assert ("bgp-no-route-to-peer", "error") in found


@pytest.mark.parametrize("reason", ["Cease/Maximum Number of Prefixes Reached"])
def test_prefix_limit_from_the_gateways_notification(reason: str) -> None:
    assert ("bgp-prefix-limit", "error") in run(None, state="Idle", reason=reason)


def test_device_advertising_the_vnets_own_prefix() -> None:
    own = GOOD.replace("  network 10.2.0.0/16", "  network 10.2.0.0/16\n  network 10.1.0.0/16")
    assert ("bgp-advertises-vnet", "warning") in run(own, state="Established")
    assert ("bgp-advertises-vnet", "error") in run(own, state="Active")
