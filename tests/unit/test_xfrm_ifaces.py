"""XFRM interfaces on the kernel data plane: tunnels of one node that share negotiated selectors (devices that
narrow: lab/render/xfrm_ifaces.py) get one each on the node, a route-based tunnel gets one in its own namespace
(lab/render/tunnel_scripts.py); what each data plane renders, and what the updown script does (run with a fake
`ip`)."""

from __future__ import annotations

import os
import subprocess
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from lab.plan import build_plan
from lab.render.lab_files import render_files
from lab.render.tunnel_ifaces import narrowing_devices
from lab.render.tunnels import tunnels
from lab.render.xfrm_ifaces import UPDOWN_SCRIPT, if_ids, narrow
from lab.secrets import resolve_keys
from lab.topology.load import load_file

ROOT = Path(__file__).resolve().parents[2]
N = IPv4Network


def ids_of(name: str) -> dict[tuple[str, str], int]:
    topo, _ = load_file(ROOT / "topologies" / f"{name}.yml")
    return if_ids(tunnels(narrowing_devices(topo)))


def files_of(name: str, dataplane: str, narrow_devices: bool = True) -> dict[str, str]:
    topo, _ = load_file(ROOT / "topologies" / f"{name}.yml")
    topo = narrowing_devices(topo) if narrow_devices else topo
    keys = resolve_keys(topo, {}, generate=lambda: "k")
    files, _ = render_files(topo, build_plan(topo), keys, dataplane)  # type: ignore[arg-type]
    return {str(k): v for k, v in files.items()}


def test_narrowing_keeps_each_overlap_at_its_smaller_net() -> None:
    assert narrow((N("0.0.0.0/0"),), (N("10.1.0.0/16"),)) == (N("10.1.0.0/16"),)
    assert narrow((N("10.1.0.0/16"), N("10.9.0.0/16")), (N("10.1.2.0/24"),)) == (N("10.1.2.0/24"),)
    assert narrow((N("10.1.0.0/16"),), (N("10.2.0.0/16"),)) == ()


def test_active_active_device_gets_an_interface_per_instance_tunnel() -> None:
    # both device CHILD_SAs negotiate 10.2.0.0/16 === 10.1.0.0/16; each gateway instance has one tunnel
    assert ids_of("active-active") == {("onprem", "azgw-onprem-0"): 1, ("onprem", "azgw-onprem-1"): 2}


def test_full_mesh_gives_every_node_two_interfaces() -> None:
    ids = ids_of("active-active-full-mesh")
    assert sorted({node for node, _ in ids}) == ["azgw-0", "azgw-1", "onprem-0", "onprem-1"]
    assert sorted(ids.values()) == [1] * 4 + [2] * 4


@pytest.mark.parametrize("name", ["s2s-route-based", "multi-site", "active-standby", "bgp-active-active",
                                  "vnet-to-vnet", "policy-based-basic"])
def test_distinct_or_any_to_any_selectors_get_none(name: str) -> None:
    # multi-site: each site narrows to its own prefixes; BGP devices keep 0/0 (routing decides, not policies)
    assert ids_of(name) == {}


def test_kernel_plane_renders_the_script_and_leaves_routes_to_it() -> None:
    files = files_of("active-active", "kernel")
    assert files["onprem/xfrm-updown.sh"] == UPDOWN_SCRIPT
    assert "install_routes = no" in files["onprem/strongswan.conf"]
    assert "install_routes" not in files["azgw-0/strongswan.conf"]
    assert "azgw-0/xfrm-updown.sh" not in files
    assert "if_id_in = 2" in files["onprem/swanctl.conf"] and "updown = /bin/sh /lab/xfrm-updown.sh" in files[
        "onprem/swanctl.conf"]


@pytest.mark.parametrize("narrow_devices", [True, False])
@pytest.mark.parametrize("name", ["active-active", "active-active-full-mesh"])
def test_libipsec_renders_no_xfrm_interface(name: str, narrow_devices: bool) -> None:
    # libipsec ignores if_id: its route-based tunnels have a namespace and charon each, ipsec0 in it
    files = files_of(name, "libipsec", narrow_devices)
    assert not any(f.endswith("xfrm-updown.sh") for f in files)
    assert not any("if_id" in text or "install_routes" in text or "xfrm0" in text for text in files.values())


def test_kernel_route_based_tunnel_has_an_xfrm_interface_in_its_namespace() -> None:
    files = files_of("active-active", "kernel", narrow_devices=False)  # the device keeps 0/0: a tunnel each
    assert not any(f.endswith("xfrm-updown.sh") for f in files)
    for unit in ("onprem/tunnels/azgw-onprem-0", "onprem/tunnels/azgw-onprem-1", "azgw-0/tunnels/azgw-onprem"):
        assert "if_id_in = 1" in files[f"{unit}/swanctl.conf"] and "if_id_out = 1" in files[f"{unit}/swanctl.conf"]
        assert "install_routes = no" in files[f"{unit}/strongswan.conf"]
    setup = files["onprem/tunnels/setup.sh"]
    assert setup.count("link add xfrm0 type xfrm dev ext if_id 1") == 2
    assert "rule add pref 221 iif ext table 221" in setup and "route add default dev xfrm0 table 221" in setup
    assert "rule add pref 100 from 203.0.113.11 ipproto esp table 1001" in setup  # raw ESP into the namespace


FAKE_IP = """#!/bin/sh
echo "ip $*" >> "$CALLS"
[ "$1 $2" = "xfrm state" ] && cat "$STATES"
[ "$1 $2" = "link show" ] && exit 1
exit 0
"""


def run_updown(tmp_path: Path, verb: str, states: str = "") -> list[str]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "ip").write_text(FAKE_IP)
    (bindir / "ip").chmod(0o755)
    (tmp_path / "states").write_text(states)
    calls = tmp_path / "calls"
    calls.write_text("")
    script = tmp_path / "xfrm-updown.sh"
    script.write_text(UPDOWN_SCRIPT)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "CALLS": str(calls),
           "STATES": str(tmp_path / "states"), "PLUTO_VERB": verb, "PLUTO_IF_ID_OUT": "2",
           "PLUTO_PEER_CLIENT": "10.1.0.0/16"}
    res = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    return calls.read_text().splitlines()


def test_up_creates_the_interface_and_routes_the_peer_prefix_through_it(tmp_path: Path) -> None:
    assert run_updown(tmp_path, "up-client") == [
        "ip link show xfrm2", "ip link add xfrm2 type xfrm dev eth0 if_id 2", "ip link set xfrm2 up",
        "ip route replace 10.1.0.0/16 dev xfrm2 metric 2"]


def sa(spi: str, if_id: str) -> str:
    return f"src 198.51.100.10 dst 203.0.113.11\n\tproto esp spi {spi} reqid 1 mode tunnel\n\tif_id {if_id}\n"


def test_down_removes_the_route_when_its_last_sa_pair_goes(tmp_path: Path) -> None:
    states = sa("0x1", "0x2") + sa("0x2", "0x2") + sa("0x3", "0x1") + sa("0x4", "0x1")
    assert run_updown(tmp_path, "down-client", states)[-1] == "ip route del 10.1.0.0/16 dev xfrm2 metric 2"


def test_down_keeps_the_route_while_a_successor_sa_pair_is_installed(tmp_path: Path) -> None:
    states = "".join(sa(f"0x{i}", "0x2") for i in range(4))  # reauthenticated: old and new pairs
    assert run_updown(tmp_path, "down-client", states) == ["ip xfrm state"]


def test_no_if_id_no_action(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    res = subprocess.run(["sh", "-c", UPDOWN_SCRIPT], env={"PATH": os.environ["PATH"], "PLUTO_VERB": "up-client"},
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0 and res.stdout == "" and res.stderr == ""
