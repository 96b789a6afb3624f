"""The shipped Azure topologies for real: each comes up, and hosts ping each other through every tunnel.

Pings run inside the host containers (`lab exec`), never from the host namespace.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.helpers import (
    ROOT,
    charon_log,
    conn_control,
    lab_leftovers,
    lab_name,
    renamed,
    run_lab,
    with_name,
)

pytestmark = pytest.mark.integration
TOPOLOGIES = ROOT / "topologies"
# Each test's lab, under a name of this test run (helpers.lab_name)
PB, MULTI, V2V, CUSTOM, MISMATCH = (lab_name(b) for b in ("pb-basic", "multi-site", "v2v", "custom-pol", "pol-mis"))
RESP, INIT, WHY = (lab_name(b) for b in ("az-resp", "az-init", "az-why"))


def up(path: Path, name: str, home: Path, cleanup: list[str], dataplane: str | None = None) -> dict[str, Any]:
    """Bring `path` up under lab `name` (a copy of the file named so)."""
    cleanup.append(name)
    copy = Path(tempfile.mkdtemp(prefix="lab-topology-")) / f"{name}.yml"
    copy.write_text(with_name(path.read_text(), name))
    res = run_lab("up", str(copy), "--json", *(["--dataplane", dataplane] if dataplane else []), home=home)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def ping(lab: str, src: str, *dsts: str, home: Path) -> None:
    """2 pings from host `src` to each destination, in one `lab exec` (each costs a process start)."""
    loop = "for d in " + " ".join(dsts) + "; do ping -c 2 -i 0.2 -W 2 $d || exit 1; done"
    res = run_lab("exec", src, "--lab", lab, "--", "sh", "-c", loop, home=home)
    assert res.returncode == 0 and res.stdout.count(" 2 received") == len(dsts), f"{src} -> {dsts}: {res.stdout}"


def inspect(lab: str, home: Path) -> dict[str, Any]:
    st: dict[str, Any] = json.loads(run_lab("inspect", lab, "--json", home=home, check=True).stdout)
    assert st["problems"] == [], st["problems"]
    return st


def children(lab: str, home: Path, st: dict[str, Any] | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """(node, child name) -> child status, from `lab inspect --json` (every charon of each node)."""
    out = {}
    for t in (st or inspect(lab, home))["tunnels"]:
        assert t["state"] == "ESTABLISHED", t
        for c in t["children"]:
            assert c["state"] == "INSTALLED", (t["node"], c)
            out[(t["node"], c["name"])] = c
    return out


def interfaces(st: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(node, connection) -> its route-based tunnel interface (state, routes through it now)."""
    return {(i["node"], i["connection"]): i for i in st["interfaces"]}


ANY = (["0.0.0.0/0"], ["0.0.0.0/0"])  # a route-based tunnel's selectors on the wire, as Azure negotiates


def down(lab: str, home: Path) -> None:
    assert run_lab("down", lab, home=home).returncode == 0
    assert lab_leftovers(lab) == []


def test_policy_based_basic_has_four_child_sas_each_carrying_its_prefix_pair(
        lab_home: Path, image: str, cleanup_lab: list[str], dataplane: str) -> None:
    up(TOPOLOGIES / "policy-based-basic.yml", PB, lab_home, cleanup_lab, dataplane)
    for src in ("vm1", "vm2"):
        ping(PB, src, "10.21.0.10", "10.22.0.10", home=lab_home)
    for src in ("pc1", "pc2"):
        ping(PB, src, "10.11.0.10", "10.12.0.10", home=lab_home)
    kids = children(PB, lab_home)
    pairs = {"0-0": ("10.11.0.0/16", "10.21.0.0/16"), "0-1": ("10.11.0.0/16", "10.22.0.0/16"),
             "1-0": ("10.12.0.0/16", "10.21.0.0/16"), "1-1": ("10.12.0.0/16", "10.22.0.0/16")}
    assert len(kids) == 8
    for suffix, (vnet, lan) in pairs.items():
        gw, site = kids[("azgw-0", f"azgw-branch-{suffix}")], kids[("branch", f"azgw-branch-{suffix}")]
        assert (gw["local_ts"], gw["remote_ts"]) == ([vnet], [lan])
        assert (site["local_ts"], site["remote_ts"]) == ([lan], [vnet])
        assert gw["spi_out"] == site["spi_in"]
        # 2 pings each way per pair: 4 echo requests + 4 replies cross each CHILD_SA in each direction
        assert gw["packets_in"] >= 4 and gw["packets_out"] >= 4, (suffix, gw)
    down(PB, lab_home)


def test_multi_site_gateway_keeps_three_tunnels_apart(lab_home: Path, image: str, cleanup_lab: list[str],
                                                      dataplane: str) -> None:
    up(TOPOLOGIES / "multi-site.yml", MULTI, lab_home, cleanup_lab, dataplane)
    lans = {"a": "10.31", "b": "10.32", "c": "10.33"}
    ping(MULTI, "hubvm", *(f"{net}.0.10" for net in lans.values()), home=lab_home)
    for s in lans:
        ping(MULTI, f"pc{s}", "10.30.0.10", home=lab_home)
    st = inspect(MULTI, lab_home)
    kids, ifaces = children(MULTI, lab_home, st), interfaces(st)
    for s, net in lans.items():
        hub = kids[("hub-0", f"hub-{s}")]
        assert hub["spi_out"] == kids[(f"site-{s}", f"hub-{s}")]["spi_in"]
        assert hub["packets_in"] >= 4 and hub["packets_out"] >= 4, (s, hub)
        # Route-based on both data planes: each tunnel negotiates any-to-any; what keeps them apart is the hub's
        # route for each site's prefix into that site's own tunnel interface (and only there).
        assert (hub["local_ts"], hub["remote_ts"]) == ANY
        iface = ifaces[("hub-0", f"hub-{s}")]
        assert iface["state"] == "UP" and iface["routes"] == [f"{net}.0.0/16"], iface
        assert ifaces[(f"site-{s}", f"hub-{s}")]["routes"] == ["10.30.0.0/16"]
    down(MULTI, lab_home)


def test_vnet_to_vnet_connects_two_gateways(lab_home: Path, image: str, cleanup_lab: list[str], dataplane: str) -> None:
    up(TOPOLOGIES / "vnet-to-vnet.yml", V2V, lab_home, cleanup_lab, dataplane)
    ping(V2V, "eastvm", "10.42.0.10", "10.43.0.10", home=lab_home)
    for src in ("westvm", "westvm2"):
        ping(V2V, src, "10.41.0.10", home=lab_home)
    st = inspect(V2V, lab_home)
    kids, ifaces = children(V2V, lab_home, st), interfaces(st)
    east, west = kids[("east-0", "east-west")], kids[("west-0", "east-west")]
    assert east["packets_out"] >= 8 and west["packets_out"] >= 8
    assert (east["local_ts"], east["remote_ts"]) == (west["local_ts"], west["remote_ts"]) == ANY
    # each gateway routes the other VNet's address space into its tunnel interface for the connection
    assert sorted(ifaces[("east-0", "east-west")]["routes"]) == ["10.42.0.0/16", "10.43.0.0/16"]
    assert ifaces[("west-0", "east-west")]["routes"] == ["10.41.0.0/16"]
    down(V2V, lab_home)


def test_custom_policy_is_what_both_ends_negotiate(lab_home: Path, image: str, cleanup_lab: list[str],
                                                   dataplane: str) -> None:
    st = up(TOPOLOGIES / "custom-policy.yml", CUSTOM, lab_home, cleanup_lab, dataplane)
    ping(CUSTOM, "vm1", "10.51.0.10", home=lab_home)
    ping(CUSTOM, "pc1", "10.50.0.10", home=lab_home)
    for t in st["tunnels"]:
        assert t["ike_proposal"].startswith("AES_GCM_16-256/PRF_HMAC_SHA2_384/ECP_384"), t
        assert [c["encryption"] for c in t["children"]] == ["AES_GCM_16-256"]
    down(CUSTOM, lab_home)


def test_site_offering_no_matching_proposal_fails_up_with_the_reason(lab_home: Path, image: str,
                                                                      cleanup_lab: list[str], tmp_path: Path) -> None:
    path, _ = renamed(ROOT / "tests" / "golden" / "inputs" / "custom-policy-mismatch.yml", tmp_path, "pol-mis")
    check = run_lab("validate", str(path), home=lab_home)
    assert check.returncode == 0 and "no IKE proposal in common" in check.stdout, check.stdout + check.stderr
    cleanup_lab.append(MISMATCH)
    res = run_lab("up", str(path), "--timeout", "6", home=lab_home)
    assert res.returncode == 4, res.stderr
    assert "connection 'azgw-onprem'" in res.stderr and "no proposal chosen" in res.stderr, res.stderr
    assert lab_leftovers(MISMATCH) == []


def variant(tmp_path: Path, name: str, **conn: Any) -> Path:
    """The reference topology under another lab name, its connection changed."""
    data = yaml.safe_load((TOPOLOGIES / "s2s-route-based.yml").read_text())
    data["name"] = name
    data["connections"]["azgw-onprem"].update(conn)
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_responder_only_gateway_waits_for_the_site(lab_home: Path, image: str, cleanup_lab: list[str],
                                                   tmp_path: Path) -> None:
    up(variant(tmp_path, RESP, connection_mode="ResponderOnly"), RESP, lab_home, cleanup_lab)
    ping(RESP, "vm1", "10.2.0.10", home=lab_home)
    gw_log, site_log = (charon_log(lab_home, RESP, n) for n in ("azgw-0", "onprem"))
    assert "198.51.100.10 is initiating an IKE_SA" in gw_log
    assert "initiating IKE_SA" not in gw_log.replace("is initiating an IKE_SA", "")
    assert "initiating IKE_SA azgw-onprem" in site_log
    down(RESP, lab_home)


FORGE = """
import os, socket, sys
flags = int(sys.argv[1], 16)
hdr = os.urandom(8) + bytes(8) + bytes([33, 0x20, 34, flags]) + bytes(4) + (28).to_bytes(4, "big")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.51.100.10", 0))
s.sendto(hdr, ("203.0.113.10", 500))
"""


def refused(home: Path) -> int:
    res = run_lab("exec", "azgw-0", "--lab", INIT, "--", "nft", "-j", "list", "chain", "inet", "lab", "prerouting",
                  home=home, check=True)
    rules = [e["rule"] for e in json.loads(res.stdout)["nftables"] if "rule" in e]
    return sum(int(x["counter"]["packets"]) for r in rules for x in r["expr"] if "counter" in x)  # UDP 500 + 4500


def test_initiator_only_gateway_drops_ike_sas_the_site_initiates(lab_home: Path, image: str, cleanup_lab: list[str],
                                                                 tmp_path: Path) -> None:
    up(variant(tmp_path, INIT, connection_mode="InitiatorOnly"), INIT, lab_home, cleanup_lab)
    ping(INIT, "vm1", "10.2.0.10", home=lab_home)
    before = refused(lab_home)
    for flags, counted in (("08", 1), ("20", 0)):  # an IKE_SA_INIT request (I), then a response (R)
        res = run_lab("exec", "onprem", "--lab", INIT, "--", "python3", "-c", FORGE, flags, home=lab_home)
        assert res.returncode == 0, res.stdout
        assert refused(lab_home) == before + counted, flags
        before += counted
    gw_log = charon_log(lab_home, INIT, "azgw-0")
    assert "is initiating an IKE_SA" not in gw_log
    down(INIT, lab_home)


def test_inspect_says_why_a_tunnel_went_down(lab_home: Path, image: str, cleanup_lab: list[str],
                                             tmp_path: Path) -> None:
    """The device is re-configured with proposals the gateway refuses; the gateway then re-initiates."""
    from lab.errors import ControlError
    from lab.render.connections import render_swanctl
    from lab.topology.load import load_file

    up(variant(tmp_path, WHY), WHY, lab_home, cleanup_lab)
    changed = yaml.safe_load(variant(tmp_path, WHY).read_text())
    changed["sites"]["onprem"]["device"] = {"ike_proposals": ["aes128-sha512-modp3072"]}  # not in Azure's list
    (tmp_path / "changed.yml").write_text(yaml.safe_dump(changed))
    topo, _ = load_file(tmp_path / "changed.yml")
    key = yaml.safe_load((lab_home / WHY / "keys.yml").read_text())
    site, gw = (conn_control(lab_home, WHY, n, "azgw-onprem") for n in ("onprem", "azgw-0"))
    try:
        site.load(render_swanctl(topo, key)["onprem"])
        gw.terminate_ike("azgw-onprem")
        with pytest.raises(ControlError, match="no proposal chosen"):
            gw.initiate("azgw-onprem", "azgw-onprem", timeout=3)
    finally:
        site.close()
        gw.close()
    st = json.loads(run_lab("inspect", WHY, "--json", home=lab_home, check=True).stdout)
    (problem,) = [p for p in st["problems"] if p.startswith("node 'azgw-0'")]
    assert "connection 'azgw-onprem' has no IKE_SA" in problem and "no proposal chosen" in problem, st["problems"]
    down(WHY, lab_home)
