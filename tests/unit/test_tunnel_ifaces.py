"""Route-based tunnels as interfaces: which ends get one, names, link addresses, routes (docs/route-based.md)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from lab.plan import build_plan
from lab.render.lab_files import render_files
from lab.render.tunnel_ifaces import IFNAME_MAX, container_of, ifname, tunnel_ifaces
from lab.render.tunnel_scripts import routes_script, setup_script
from lab.topology.load import load_file
from tests.topology.builders import base, model

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):  # noqa: ANN202
    topo = load_file(ROOT / "topologies" / f"{name}.yml")[0]
    return topo, build_plan(topo)


def test_names_fit_ifnamsiz_and_keep_the_instance_suffix() -> None:
    assert ifname("azgw-onprem") == "vti-azgw-onprem"
    for conn in ("azgw-onprem-0", "a-very-long-connection-name-1", "x" * 40):
        assert len(ifname(conn)) <= IFNAME_MAX
    assert ifname("azgw-onprem-0").endswith("-0") and ifname("azgw-onprem-1").endswith("-1")
    assert ifname("azgw-onprem-0") != ifname("azgw-onprem-1")
    assert container_of("azgw-0/tunnels/c1") == "azgw-0" and container_of("azgw-0") == "azgw-0"


def test_active_active_site_has_one_interface_per_instance_and_ecmp_routes() -> None:
    topo, plan = _load("active-active")
    ifaces = tunnel_ifaces(topo, plan)
    assert sorted(ifaces) == ["azgw-0", "azgw-1", "onprem"]
    a, b = ifaces["onprem"]
    assert (a.conn, b.conn) == ("azgw-onprem-0", "azgw-onprem-1")
    assert (a.peer_ip, b.peer_ip) == (IPv4Address("203.0.113.10"), IPv4Address("203.0.113.11"))
    assert (str(a.main_addr), str(a.tunnel_addr), str(b.main_addr)) == ("169.254.128.0", "169.254.128.1",
                                                                        "169.254.128.2")
    assert a.routes == (IPv4Network("10.1.0.0/16"),) and a.src == IPv4Address("10.2.0.1")
    (gw,) = ifaces["azgw-0"]
    assert gw.routes == (IPv4Network("10.2.0.0/16"),) and gw.anchors == (IPv4Address("10.1.0.1"),)
    routes = routes_script("onprem", ifaces["onprem"])
    assert routes.count("nexthop via") == 2
    assert 'echo "route replace 10.1.0.0/16 src 10.2.0.1 proto static $h"' in routes
    setup = setup_script("onprem", ifaces["onprem"])
    assert "rule add pref 100 from 203.0.113.11 ipproto udp dport 4500 table 1001" in setup
    assert setup.index("ip rule add pref 110 lookup local") < setup.index("ip rule del pref 0 lookup local")


def test_policy_based_and_policy_based_selectors_keep_the_main_charon() -> None:
    data = base()
    data["connections"]["c1"]["use_policy_based_traffic_selectors"] = True
    topo = model(data)
    assert tunnel_ifaces(topo, build_plan(topo)) == {}
    topo, plan = _load("policy-based-basic")
    assert tunnel_ifaces(topo, plan) == {}


def test_a_narrowing_device_keeps_its_main_charon_while_the_gateway_gets_an_interface() -> None:
    data = base()
    data["sites"]["onprem"]["device"] = {"traffic_selectors": "prefixes"}
    topo = model(data)
    plan = build_plan(topo)
    ifaces = tunnel_ifaces(topo, plan)
    assert "onprem" not in ifaces and "azgw-0" in ifaces
    files, swan = render_files(topo, plan, {"c1": "k"}, "libipsec")
    assert "c1" in swan["onprem"].connections and "c1" in swan["azgw-0/tunnels/c1"].connections
    assert "azgw-0" not in swan  # nothing left for its main charon (no P2S, no narrowed connection)
    # the gateway's selector becomes its VNet: libipsec needs a local address inside it (VNet .1, reserved)
    assert "addr add 10.1.0.1/32 dev lo" in files[Path("azgw-0/tunnels/setup.sh")]  # type: ignore[index]


def test_each_tunnel_charon_has_its_own_paths_and_updown() -> None:
    topo, plan = _load("s2s-route-based")
    files, swan = render_files(topo, plan, {"azgw-onprem": "k"}, "libipsec")
    conf = files[Path("azgw-0/tunnels/azgw-onprem/strongswan.conf")]  # type: ignore[index]
    assert "socket = unix:///lab/tunnels/azgw-onprem/run/charon.vici" in conf
    assert "path = /lab/tunnels/azgw-onprem/keys.log" in conf
    tree = swan["azgw-0/tunnels/azgw-onprem"].connections["azgw-onprem"]
    assert tree["children"]["azgw-onprem"]["updown"] == "/bin/sh /lab/tunnels/updown.sh azgw-onprem"  # type: ignore[index]
    assert [k.name for k in swan["azgw-0/tunnels/azgw-onprem"].secrets] == ["ike-azgw-onprem"]
    assert "azgw-0" not in swan


def test_every_rendered_tunnel_script_parses() -> None:
    """`sh -n` on each golden tunnel script (routes.sh of a BGP device has no prefix: an empty `{ }` once failed
    in updown with 'Syntax error: "}" unexpected')."""
    import subprocess

    scripts = sorted((ROOT / "tests" / "golden" / "expected").glob("*/*/tunnels/**/*.sh"))
    assert any(p.parent.parent.parent.name == "bgp-active-active" for p in scripts)
    for path in scripts:
        res = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
        assert res.returncode == 0, f"{path}: {res.stderr}"
