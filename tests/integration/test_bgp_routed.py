"""BGP over per-connection tunnel interfaces (issue #12), with real containers, strongSwan and FRR: the shipped
bgp-active-active topology (APIPA, one device, ECMP over both tunnels, an instance failing) and bgp-transit
(two sites and a VNet-to-VNet peer learning each other through the hub).

One lab per topology, shared by the module; the destructive test (instance kill) runs last on its lab.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.helpers import ROOT, TIME_SCALE, lab_leftovers, lab_name, run_lab

pytestmark = pytest.mark.integration


def _lab(shipped: str, home: Path, factory: pytest.TempPathFactory, fast: bool, dataplane: str) -> Iterator[str]:
    name = lab_name(f"tun-{shipped[4:6]}-{dataplane[0]}")
    data = yaml.safe_load((ROOT / "topologies" / f"{shipped}.yml").read_text())
    data["name"] = name
    if fast:  # lab-only presets: seconds instead of Azure's 60/180 s BGP timers and 45 s DPD
        for conn in data["connections"].values():
            conn.update(bgp_timers="fast", dpd="fast")
    path = factory.mktemp("bgp") / f"{name}.yml"
    path.write_text(yaml.safe_dump(data))
    res = run_lab("up", str(path), "--timeout", "120", "--dataplane", dataplane, home=home, timeout=360)
    try:
        assert res.returncode == 0, res.stdout + res.stderr
        yield name
    finally:
        run_lab("down", name, home=home, timeout=120)
        assert not lab_leftovers(name)


@pytest.fixture(scope="module")
def aa_lab(lab_home: Path, image: str, tmp_path_factory: pytest.TempPathFactory,
           module_dataplane: str) -> Iterator[str]:
    yield from _lab("bgp-active-active", lab_home, tmp_path_factory, True, module_dataplane)


@pytest.fixture(scope="module")
def pair_lab(lab_home: Path, image: str, tmp_path_factory: pytest.TempPathFactory,
             module_dataplane: str) -> Iterator[str]:
    yield from _lab("bgp-full-mesh", lab_home, tmp_path_factory, True, module_dataplane)


@pytest.fixture(scope="module")
def transit_lab(lab_home: Path, image: str, tmp_path_factory: pytest.TempPathFactory,
                module_dataplane: str) -> Iterator[str]:
    yield from _lab("bgp-transit", lab_home, tmp_path_factory, False, module_dataplane)


def _json(home: Path, *args: str) -> dict:
    res = run_lab(*args, "--json", home=home, timeout=240)
    assert res.stdout, res.stderr
    return json.loads(res.stdout)


def _exec(home: Path, name: str, node: str, *argv: str) -> str:
    return run_lab("exec", node, "--lab", name, "--", *argv, home=home).stdout


def _site_tunnel_packets(home: Path, name: str) -> dict[str, int]:
    """The site's CHILD_SAs (one per tunnel interface): packets out, by interface."""
    st = _json(home, "inspect", name)
    return {t["interface"]: sum(c["packets_out"] for c in t["children"]) for t in st["tunnels"]
            if t["node"] == "onprem"}


def _until(what: str, ok: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout * TIME_SCALE
    while not ok():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.5)


def test_apipa_active_active_learns_the_vnet_over_both_tunnels(aa_lab: str, lab_home: Path) -> None:
    name = aa_lab
    wanted = {("azgw-0", "169.254.21.2"): "Established", ("azgw-1", "169.254.21.2"): "Established",
              ("onprem", "169.254.21.1"): "Established", ("onprem", "169.254.22.1"): "Established"}

    def established() -> bool:
        peers = {(p["node"], p["peer"]): p["state"] for p in _json(lab_home, "inspect", name)["bgp_peers"]}
        return peers == wanted

    _until("all four APIPA sessions Established", established, 60)
    _until("the VNet learned over both tunnels",
           lambda: _exec(lab_home, name, "onprem", "ip", "route", "show", "10.1.0.0/16").count("nexthop via") == 2,
           60)
    route = _exec(lab_home, name, "onprem", "ip", "route", "show", "10.1.0.0/16")
    hops = sorted(ln.split()[2] for ln in route.splitlines() if "nexthop via" in ln)
    assert hops == ["169.254.21.1", "169.254.22.1"], route  # ECMP, one BGP next hop per tunnel interface
    assert "proto bgp" in route and route.count("dev vti-") == 2, route
    before = _site_tunnel_packets(lab_home, name)
    report = _json(lab_home, "verify", name)  # its routes check sends 16 UDP flows and a ping each way
    after = _site_tunnel_packets(lab_home, name)
    routes = next(c for c in report["checks"] if c["name"] == "routes")
    assert routes["passed"], routes
    site = next(r for r in routes["data"]["routes"] if r["node"] == "onprem")
    assert len(site["carried"]) == 2, site  # the multi-flow probe left through both tunnel interfaces
    assert len(after) == 2 and all(after[i] > before.get(i, 0) for i in after), (before, after)


def test_instance_kill_withdraws_its_routes_and_traffic_recovers(aa_lab: str, lab_home: Path) -> None:
    name = aa_lab
    res = _json(lab_home, "failover", "azgw", "--unplanned", "--lab", name, "--duration", "12")
    route = _exec(lab_home, name, "onprem", "ip", "route", "show", "10.1.0.0/16")
    assert "169.254.21.1" not in route and "169.254.22.1" in route, route
    for udp in (res["udp"], res["udp_reverse"]):  # VNet -> site (HA agents), site -> VNet (BGP withdrawal)
        assert udp["flow_outage_to"] > res["fault_at"] or not udp["lost"], udp  # recovered within the stream
        assert udp["flow_outage_ms"] < 6000 * TIME_SCALE, udp
    ping = run_lab("exec", "pc1", "--lab", name, "--", "ping", "-c", "3", "-W", "2", "10.1.0.10", home=lab_home)
    assert ping.returncode == 0, ping.stdout


def test_device_pair_full_mesh_peers_over_four_tunnels(pair_lab: str, lab_home: Path) -> None:
    """bgp-full-mesh: two devices x two instances = four tunnels, eight sessions (each end sees four); each
    device learns the VNet over both of its tunnel interfaces, and `lab verify` reaches every learned route."""
    name = pair_lab
    wanted = {(n, p): "Established" for n, peers in (
        ("azgw-0", ("169.254.21.2", "169.254.22.2")), ("azgw-1", ("169.254.21.2", "169.254.22.2")),
        ("onprem-0", ("169.254.21.1", "169.254.22.1")), ("onprem-1", ("169.254.21.1", "169.254.22.1")))
        for p in peers}

    def established() -> bool:
        peers = {(p["node"], p["peer"]): p["state"] for p in _json(lab_home, "inspect", name)["bgp_peers"]}
        return peers == wanted

    _until("all eight sessions Established", established, 60)
    for device in ("onprem-0", "onprem-1"):
        _until(f"{device} learns the VNet over both tunnels", lambda d=device: _exec(  # type: ignore[misc]
            lab_home, name, d, "ip", "route", "show", "10.1.0.0/16").count("nexthop via") == 2, 60)
        route = _exec(lab_home, name, device, "ip", "route", "show", "10.1.0.0/16")
        hops = sorted(ln.split()[2] for ln in route.splitlines() if "nexthop via" in ln)
        assert hops == ["169.254.21.1", "169.254.22.1"] and route.count("dev vti-") == 2, route
    report = _json(lab_home, "verify", name)
    assert report["passed"], [c for c in report["checks"] if not c["passed"]]
    routes = next(c for c in report["checks"] if c["name"] == "routes")
    assert {r["node"] for r in routes["data"]["routes"]} >= {"onprem-0", "onprem-1"}, routes


def test_transit_between_sites_and_over_vnet_to_vnet(transit_lab: str, lab_home: Path) -> None:
    name = transit_lab
    wanted = {("10.2.0.0/16", "65010"), ("10.3.0.0/16", "65020"), ("10.5.0.0/16", "65050")}

    def learned() -> bool:
        rows = _json(lab_home, "routes", "hub", "--lab", name, "--learned")["learned"]
        return {(r["network"], r["as_path"]) for r in rows if r["origin"] == "EBgp"} >= wanted

    _until("the hub learns both sites and the spoke VNet", learned, 90)

    def paths() -> dict[str, str]:
        table = json.loads(_exec(lab_home, name, "branch1", "vtysh", "-c", "show bgp ipv4 unicast json"))
        return {net: p[0]["path"] for net, p in table.get("routes", {}).items()}

    _until("branch1 learns branch2 and the spoke through the hub",
           lambda: {"10.3.0.0/16", "10.5.0.0/16"} <= set(paths()), 60)
    got = paths()
    assert got["10.3.0.0/16"] == "65515 65020" and got["10.5.0.0/16"] == "65515 65050", got
    for src, dst in (("pc1", "10.3.0.10"), ("pc2", "10.2.0.10"), ("pc1", "10.5.0.10"), ("vm5", "10.3.0.10")):
        ping = run_lab("exec", src, "--lab", name, "--", "ping", "-c", "2", "-W", "2", dst, home=lab_home)
        assert ping.returncode == 0, f"{src} -> {dst}: {ping.stdout}"
