"""BGP with real containers: FRR's bgpd in the gateway instance and the rendered site, over the IPsec tunnel.

Each session rides its tunnel's own interface (vti-<conn>, docs/route-based.md): routes learned by bgpd
point into it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lab.azure import facts
from tests.integration.helpers import ROOT, lab_name, run_lab

pytestmark = pytest.mark.integration
BASIC = ROOT / "tests" / "integration" / "data" / "bgp-basic.yml"


def _topology(tmp_path: Path, name: str, **site_bgp: object) -> Path:
    data = yaml.safe_load(BASIC.read_text())
    data["name"] = name
    data["sites"]["onprem"]["bgp"].update(site_bgp)
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def _inspect(name: str, home: Path) -> dict:
    res = run_lab("inspect", name, "--json", home=home)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_bgp_session_exchanges_routes_over_the_tunnel(tmp_path: Path, lab_home: Path, cleanup_lab: list[str]) -> None:
    name = lab_name("bgp1")
    cleanup_lab.append(name)
    res = run_lab("up", str(_topology(tmp_path, name)), home=lab_home)
    assert res.returncode == 0, res.stderr
    peers = {(p["node"], p["peer"]): p for p in _inspect(name, lab_home)["bgp_peers"]}
    assert peers[("azgw-0", "10.2.255.254")]["state"] == "Established"
    assert peers[("onprem", "10.1.0.4")]["state"] == "Established"
    assert peers[("azgw-0", "10.2.255.254")]["prefixes_in"] == 2  # 10.2.0.0/16 and 10.20.0.0/16
    res = run_lab("routes", "azgw", "--lab", name, "--json", home=lab_home)
    assert res.returncode == 0, res.stderr
    views = json.loads(res.stdout)
    learned = {(r["network"], r["origin"], r["as_path"]) for r in views["learned"]}
    assert {("10.1.0.0/16", "Network", ""), ("10.20.0.0/16", "EBgp", "65010")} <= learned
    advertised = {r["network"]: r for r in views["advertised"]}
    assert advertised["10.1.0.0/16"]["as_path"] == "65515" and advertised["10.1.0.0/16"]["next_hop"] == "10.1.0.4"
    assert "0.0.0.0/0" not in advertised
    # The site's kernel routes the VNet prefix by BGP into the tunnel, and the VNet host reaches the site.
    route = run_lab("exec", "onprem", "--lab", name, "--", "ip", "route", "show", "10.1.0.0/16", home=lab_home)
    assert "proto bgp" in route.stdout and "dev vti-azgw-onprem" in route.stdout, route.stdout
    ping = run_lab("exec", "vm1", "--lab", name, "--", "ping", "-c", "2", "-W", "2", "10.2.0.10", home=lab_home)
    assert ping.returncode == 0, ping.stdout
    # lab verify's routes check: each learned prefix with a host is reachable, and the tunnel that carried it
    res = run_lab("verify", name, "--json", home=lab_home, timeout=180)
    routes = next(c for c in json.loads(res.stdout)["checks"] if c["name"] == "routes")
    assert routes["passed"], routes
    probed = {(r["node"], r["network"]): r for r in routes["data"]["routes"]}
    assert probed[("azgw-0", "10.2.0.0/16")]["reachable"] and probed[("onprem", "10.1.0.0/16")]["reachable"]
    assert probed[("azgw-0", "10.2.0.0/16")]["carried"]["vti-azgw-onprem"] >= 16  # the 16 flows and the ping
    # Killing the gateway's bgpd withdraws its routes from the site at once; lab restore brings them back.
    assert run_lab("fault", "bgpd-kill", "azgw-0", "--lab", name, home=lab_home).returncode == 0
    gone = run_lab("exec", "onprem", "--lab", name, "--", "ip", "route", "show", "proto", "bgp", home=lab_home)
    assert "10.1.0.0/16" not in gone.stdout, gone.stdout
    res = run_lab("restore", "--lab", name, home=lab_home)
    assert res.returncode == 0, res.stderr
    for _ in range(20):  # the warm standby azgw-1 runs its active's FRR, idle ("Active") until a failover
        peers = {(p["node"], p["peer"]): p["state"] for p in _inspect(name, lab_home)["bgp_peers"]
                 if p["node"] != "azgw-1"}
        if set(peers.values()) == {"Established"}:
            break
    assert set(peers.values()) == {"Established"}, peers


def test_more_than_4000_prefixes_drop_the_session(tmp_path: Path, lab_home: Path, cleanup_lab: list[str]) -> None:
    name = lab_name("bgp4k")
    cleanup_lab.append(name)
    many = [f"10.{20 + i // 256}.{i % 256}.0/24" for i in range(facts.BGP_MAX_PREFIXES)]
    path = _topology(tmp_path, name, advertise=["10.2.0.0/16", *many[:-1]])  # 4,000 prefixes: allowed
    res = run_lab("up", str(path), home=lab_home)
    assert res.returncode == 0, res.stderr
    peer = next(p for p in _inspect(name, lab_home)["bgp_peers"] if p["node"] == "azgw-0")
    assert peer["state"] == "Established" and peer["prefixes_in"] == facts.BGP_MAX_PREFIXES
    more = "router bgp 65010\n address-family ipv4 unicast\n" + f"  network {many[-1]}\n"  # the 4,001st
    conf = lab_home / name / "nodes" / "onprem" / "more.conf"
    conf.write_text(more)
    res = run_lab("exec", "onprem", "--lab", name, "--", "vtysh", "-f", "/lab/more.conf", home=lab_home)
    assert res.returncode == 0, res.stdout
    for _ in range(40):
        peer = next(p for p in _inspect(name, lab_home)["bgp_peers"] if p["node"] == "azgw-0")
        if peer["state"] != "Established":
            break
    assert peer["state"] != "Established"
    assert "Maximum Number of Prefixes" in peer["last_error"], peer


BYO = ROOT / "tests" / "integration" / "data" / "byo-bgp"


def _byo_copy(tmp_path: Path, name: str, frr_edit: tuple[str, str] = ("", "")) -> Path:
    for f in ("site.swanctl.conf", "site.frr.conf"):
        (tmp_path / f).write_text((BYO / f).read_text().replace(*frr_edit) if f.endswith("frr.conf") else
                                  (BYO / f).read_text())
    topo = tmp_path / "topology.yml"
    topo.write_text((BYO / "topology.yml").read_text().replace("name: routing-byobgp", f"name: {name}"))
    return topo


def test_vendor_style_frr_config_passes_test_device(tmp_path: Path, lab_home: Path, cleanup_lab: list[str]) -> None:
    """A swanctl.conf and an FRR config written by hand, in the style of the vendors' Azure BGP samples."""
    name = lab_name("bgp-byo1")
    cleanup_lab.append(name)
    res = run_lab("test-device", str(_byo_copy(tmp_path, name)), "--json", home=lab_home, timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads(res.stdout)
    routes = next(c for c in report["verify"]["checks"] if c["name"] == "routes")
    assert report["passed"] and routes["passed"], routes


def test_device_expecting_the_wrong_azure_asn_fails_with_the_cause(tmp_path: Path, lab_home: Path,
                                                                  cleanup_lab: list[str]) -> None:
    name = lab_name("bgp-byo2")
    cleanup_lab.append(name)
    topo = _byo_copy(tmp_path, name, ("remote-as 65515", "remote-as 65000"))
    res = run_lab("test-device", str(topo), "--json", home=lab_home, timeout=240)
    assert res.returncode == 1, res.stdout + res.stderr
    kinds = {d["kind"] for d in json.loads(res.stdout)["diagnosis"]["diagnoses"] if d["severity"] == "error"}
    assert "bgp-asn-mismatch" in kinds, kinds
