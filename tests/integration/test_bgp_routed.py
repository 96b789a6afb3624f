"""BGP over per-connection tunnel interfaces (issue #12 item 1), with real containers, strongSwan and FRR:
the shipped topologies, ECMP over both tunnels of an active-active gateway, transit, and an instance failing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.helpers import ROOT, run_lab

pytestmark = pytest.mark.integration


def _up(tmp_path: Path, home: Path, shipped: str, name: str, extra: str = "") -> None:
    text = (ROOT / "topologies" / f"{shipped}.yml").read_text()
    old = next(line for line in text.splitlines() if line.startswith("name: "))
    path = tmp_path / f"{name}.yml"
    path.write_text(text.replace(old, f"name: {name}").replace("    enable_bgp: true\n",
                                                                f"    enable_bgp: true\n{extra}"))
    res = run_lab("up", str(path), home=home, timeout=240)
    assert res.returncode == 0, res.stderr


def _json(home: Path, *args: str) -> dict:
    res = run_lab(*args, "--json", home=home, timeout=240)
    assert res.stdout, res.stderr
    return json.loads(res.stdout)


def _site_tunnel_packets(home: Path, name: str) -> dict[str, int]:
    """The site's CHILD_SAs (one per tunnel interface): packets out, by connection."""
    st = _json(home, "inspect", name)
    return {t["connection"]: sum(c["packets_out"] for c in t["children"]) for t in st["tunnels"]
            if t["node"].startswith("onprem")}


def test_apipa_active_active_learns_the_vnet_over_both_tunnels(tmp_path: Path, lab_home: Path,
                                                                cleanup_lab: list[str]) -> None:
    name = "routing-aa"
    cleanup_lab.append(name)
    _up(tmp_path, lab_home, "bgp-active-active", name)
    peers = {(p["node"], p["peer"]): p for p in _json(lab_home, "inspect", name)["bgp_peers"]}
    assert {k: p["state"] for k, p in peers.items()} == {
        ("azgw-0", "169.254.21.2"): "Established", ("azgw-1", "169.254.21.2"): "Established",
        ("onprem", "169.254.21.1"): "Established", ("onprem", "169.254.22.1"): "Established"}
    route = run_lab("exec", "onprem", "--lab", name, "--", "ip", "route", "show", "10.1.0.0/16", home=lab_home)
    hops = [ln.split()[2] for ln in route.stdout.splitlines() if "nexthop via" in ln]
    assert sorted(hops) == ["169.254.21.1", "169.254.22.1"], route.stdout  # ECMP, one per tunnel interface
    before = _site_tunnel_packets(lab_home, name)
    report = _json(lab_home, "verify", name)  # its routes check sends 16 UDP flows and a ping each way
    after = _site_tunnel_packets(lab_home, name)
    routes = next(c for c in report["checks"] if c["name"] == "routes")
    assert routes["passed"], routes
    site = next(r for r in routes["data"]["routes"] if r["node"] == "onprem")
    assert len(site["carried"]) == 2, site  # the multi-flow probe left through both tunnel interfaces
    assert len(after) == 2 and all(after[c] > before.get(c, 0) for c in after), (before, after)


def test_transit_between_sites_and_over_vnet_to_vnet(tmp_path: Path, lab_home: Path, cleanup_lab: list[str]) -> None:
    name = "routing-tr"
    cleanup_lab.append(name)
    _up(tmp_path, lab_home, "bgp-transit", name)
    learned = _json(lab_home, "routes", "hub", "--lab", name, "--learned")["learned"]
    assert {(r["network"], r["as_path"]) for r in learned if r["origin"] == "EBgp"} >= {
        ("10.2.0.0/16", "65010"), ("10.3.0.0/16", "65020"), ("10.5.0.0/16", "65050")}
    table = run_lab("exec", "branch1", "--lab", name, "--", "vtysh", "-c", "show bgp ipv4 unicast json", home=lab_home)
    paths = {net: p[0]["path"] for net, p in json.loads(table.stdout)["routes"].items()}
    assert paths["10.3.0.0/16"] == "65515 65020" and paths["10.5.0.0/16"] == "65515 65050", paths
    for src, dst in (("pc1", "10.3.0.10"), ("pc2", "10.2.0.10"), ("pc1", "10.5.0.10"), ("vm5", "10.3.0.10")):
        ping = run_lab("exec", src, "--lab", name, "--", "ping", "-c", "2", "-W", "2", dst, home=lab_home)
        assert ping.returncode == 0, f"{src} -> {dst}: {ping.stdout}"


def test_instance_kill_withdraws_its_routes_and_traffic_recovers(tmp_path: Path, lab_home: Path,
                                                                  cleanup_lab: list[str]) -> None:
    name = "routing-aak"
    cleanup_lab.append(name)
    _up(tmp_path, lab_home, "bgp-active-active", name, "    bgp_timers: fast\n    dpd: fast\n")
    res = _json(lab_home, "failover", "azgw", "--unplanned", "--lab", name, "--duration", "12")
    route = run_lab("exec", "onprem", "--lab", name, "--", "ip", "route", "show", "10.1.0.0/16", home=lab_home)
    assert "169.254.21.1" not in route.stdout and "169.254.22.1" in route.stdout, route.stdout
    for udp in (res["udp"], res["udp_reverse"]):  # VNet -> site (HA agents), site -> VNet (BGP withdrawal)
        assert udp["flow_outage_to"] > res["fault_at"] or not udp["lost"], udp  # recovered within the stream
        assert udp["flow_outage_ms"] < 6000, udp
    ping = run_lab("exec", "pc1", "--lab", name, "--", "ping", "-c", "3", "-W", "2", "10.1.0.10", home=lab_home)
    assert ping.returncode == 0, ping.stdout
