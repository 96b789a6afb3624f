"""`lab apply` on real labs: a new key re-establishes only its tunnel; a resize re-shapes and moves no SA;
a VPN type change is refused (exit 2) and nothing moves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.helpers import ROOT, node_sas, run_lab, swanctl_text
from tests.integration.test_bench import unique

pytestmark = pytest.mark.integration
DATA = ROOT / "tests" / "integration" / "data"

# node -> connection -> (IKE uniqueid, CHILD uniqueid, SPI in, SPI out) of each installed CHILD_SA
Sas = dict[str, dict[str, list[tuple[int, int, str, str]]]]


def sas(home: Path, lab: str, nodes: list[str]) -> Sas:
    """Every charon of each node (its main one and its route-based tunnels' own: helpers.node_sas)."""
    out: Sas = {}
    for node in nodes:
        out[node] = {}
        for sa in node_sas(home, lab, node):
            out[node].setdefault(sa.name, []).extend(
                (sa.uniqueid, c.uniqueid, c.spi_in, c.spi_out) for c in sa.children if c.state == "INSTALLED")
    return out


def ping(home: Path, lab: str, node: str, dst: str) -> bool:
    res = run_lab("exec", node, "--lab", lab, "--", "ping", "-c", "2", "-i", "0.2", "-W", "2", dst, home=home)
    return res.returncode == 0


def tc_rate(home: Path, lab: str, node: str, dev: str) -> str:
    res = run_lab("exec", node, "--lab", lab, "--", "tc", "class", "show", "dev", dev, home=home, check=True)
    return res.stdout


def test_new_key_reestablishes_one_tunnel_and_leaves_the_other(lab_home: Path, image: str, tmp_path: Path,
                                                                cleanup_lab: list[str]) -> None:
    new, lab = unique(tmp_path, "two-sites.yml", "a2s")
    cleanup_lab.append(lab)
    up = run_lab("up", str(new), home=lab_home)
    assert up.returncode == 0, up.stderr
    nodes = ["azgw-0", "branch1", "branch2"]
    before = sas(lab_home, lab, nodes)
    assert len(before["azgw-0"]["azgw-branch1"]) == len(before["azgw-0"]["azgw-branch2"]) == 1

    new.write_text(new.read_text().replace("first-key-for-branch1", "second-key-for-branch1"))
    res = run_lab("apply", str(new), "--json", home=lab_home)
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    assert [c["kind"] for c in result["changes"]] == ["shared-key"]
    assert result["loaded"] == {"azgw-0": ["azgw-branch1"], "branch1": ["azgw-branch1"]}
    assert result["problems"] == []
    assert "second-key-for-branch1" not in res.stdout + res.stderr

    after = sas(lab_home, lab, nodes)
    # The untouched tunnel: same IKE_SA, same CHILD_SA (uniqueid) with the same SPIs, on both ends.
    assert after["azgw-0"]["azgw-branch2"] == before["azgw-0"]["azgw-branch2"]
    assert after["branch2"] == before["branch2"]
    # The re-keyed one is new: other uniqueids, other SPIs, and it carries traffic.
    (old_ike, old_child, old_in, old_out), = before["azgw-0"]["azgw-branch1"]
    (new_ike, new_child, new_in, new_out), = after["azgw-0"]["azgw-branch1"]
    assert new_ike != old_ike and new_child != old_child and {new_in, new_out}.isdisjoint({old_in, old_out})
    assert ping(lab_home, lab, "pc1", "10.41.0.10") and ping(lab_home, lab, "pc2", "10.41.0.10")

    state = lab_home / lab
    assert "second-key-for-branch1" in (state / "topology.yml").read_text()
    assert "second-key-for-branch1" in (state / "keys.yml").read_text()
    assert '"second-key-for-branch1"' in swanctl_text(lab_home, lab, "branch1")
    standby = swanctl_text(lab_home, lab, "azgw-1")  # an active-standby gateway's warm standby
    assert not standby or '"second-key-for-branch1"' in standby

    # Resize within the VpnGw family: the cap follows, no SA moves.
    assert "rate 650Mbit" in tc_rate(lab_home, lab, "azgw-0", "eth0")
    new.write_text(new.read_text().replace("sku: VpnGw1", "sku: VpnGw2"))
    res = run_lab("apply", str(new), home=lab_home)
    assert res.returncode == 0, res.stderr
    assert "rate 1250Mbit" in tc_rate(lab_home, lab, "azgw-0", "eth0")
    assert "rate 1250Mbit" in tc_rate(lab_home, lab, "azgw-0", "eth0-ifb")
    assert sas(lab_home, lab, nodes) == after


def test_vpn_type_change_is_refused_and_nothing_moves(lab_home: Path, image: str, tmp_path: Path,
                                                      cleanup_lab: list[str]) -> None:
    first, lab = unique(tmp_path, "basic-rb.yml", "avt")
    cleanup_lab.append(lab)
    original = first.read_text()
    up = run_lab("up", str(first), home=lab_home)
    assert up.returncode == 0, up.stderr
    before = sas(lab_home, lab, ["azgw-0", "onprem"])

    policy_based = tmp_path / "policy-based.yml"
    policy_based.write_text(original.replace("vpn_type: RouteBased", "vpn_type: PolicyBased")
                            .replace("ike_version: IKEv2", "ike_version: IKEv1"))
    res = run_lab("apply", str(policy_based), home=lab_home)
    assert res.returncode == 2, res.stderr
    assert "gateways.azgw.vpn_type: Azure cannot change a gateway's VPN type (RouteBased -> PolicyBased)" \
        in res.stderr
    assert "nothing was changed" in res.stderr and f"lab down {lab}" in res.stderr

    assert sas(lab_home, lab, ["azgw-0", "onprem"]) == before
    assert (lab_home / lab / "topology.yml").read_text() == original
    assert ping(lab_home, lab, "vm1", "10.12.0.10")
