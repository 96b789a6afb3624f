"""Route-based gateways for real: one interface per connection, 0/0 on the wire, ECMP over both tunnels of
an active-active gateway from one site device, and the site dropping a dead instance's tunnel route.

One lab for the module (topologies/active-active.yml under a unique name). The site's route into a tunnel
interface follows its CHILD_SA (updown): with `dpd: fast` a killed instance is declared dead in about 2 s,
bound here at 30 s (2 shared cores, other labs running).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.helpers import ROOT, TIME_SCALE, lab_name, lab_up, run_lab

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rb_lab(lab_home: Path, image: str, tmp_path_factory: pytest.TempPathFactory,
           module_dataplane: str) -> Iterator[str]:
    """topologies/active-active.yml (one site device, two instances) up for the whole module (per data plane),
    down afterwards."""
    name = lab_name(f"tun-rb-{module_dataplane[0]}")
    data = yaml.safe_load((ROOT / "topologies" / "active-active.yml").read_text())
    data["name"] = name
    path = tmp_path_factory.mktemp("rb") / f"{name}.yml"
    path.write_text(yaml.safe_dump(data))
    with lab_up(path, name, lab_home, "--timeout", "90", "--dataplane", module_dataplane, timeout=300) as up:
        yield up


def _sh(name: str, node: str, cmd: str) -> str:
    return subprocess.run(["docker", "exec", f"lab-{name}-{node}", "sh", "-c", cmd], capture_output=True,
                          text=True, check=True, timeout=30).stdout


def _status(name: str, home: Path) -> dict:
    return json.loads(run_lab("inspect", name, "--json", home=home, check=True).stdout)


def _until(what: str, ok: object, timeout: float) -> None:
    """Poll `ok()` until true or the (load-scaled) deadline; then fail naming `what`."""
    deadline = time.monotonic() + timeout * TIME_SCALE
    while not ok():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.3)


def _site_packets_out(name: str, home: Path) -> dict[str, int]:
    return {t["interface"]: sum(c["packets_out"] for c in t["children"])
            for t in _status(name, home)["tunnels"] if t["node"] == "onprem"}


def _flows(name: str, count: int) -> None:
    """UDP from pc1 to vm1 on `count` source ports: L4 hashing spreads them over the ECMP route."""
    _sh(name, "pc1", f"python3 -c \"import socket\nfor p in range({count}):\n s=socket.socket(2,2); "
        "s.bind(('',40000+p))\n [s.sendto(b'x'*64,('10.1.0.10',9)) for _ in range(5)]\"")


def test_one_interface_per_connection_any_to_any_and_verified(rb_lab: str, lab_home: Path) -> None:
    name = rb_lab
    links = _sh(name, "azgw-0", "ip -d link show vti-azgw-onprem")
    assert "alias azgw-onprem to 198.51.100.10" in links and "veth" in links
    assert "tun-azgw-onprem" in _sh(name, "azgw-0", "ip netns list")
    assert _sh(name, "onprem", "ip -o link show type veth").count("vti-azgw-") == 2  # one per tunnel
    status = _status(name, lab_home)
    rb = [t for t in status["tunnels"] if t["interface"]]
    assert {t["node"] for t in rb} == {"azgw-0", "azgw-1", "onprem"}
    for t in rb:  # what charon negotiated on the wire, both ends
        assert [(c["local_ts"], c["remote_ts"]) for c in t["children"]] == [(["0.0.0.0/0"], ["0.0.0.0/0"])]
    routes = {(i["node"], i["interface"]): tuple(i["routes"]) for i in status["interfaces"]}
    assert {k: v for k, v in routes.items() if k[0] != "onprem"} == {
        ("azgw-0", "vti-azgw-onprem"): ("10.2.0.0/16",), ("azgw-1", "vti-azgw-onprem"): ("10.2.0.0/16",)}
    assert [v for k, v in routes.items() if k[0] == "onprem"] == [("10.1.0.0/16",)] * 2  # ECMP over both
    # IKE/ESP leave from the public IP unchanged: the peer's SA has the real addresses on both sides
    site = sorted((t["local"], t["remote"]) for t in rb if t["node"] == "onprem")
    assert site == [("198.51.100.10", "203.0.113.10"), ("198.51.100.10", "203.0.113.11")]
    res = run_lab("verify", name, "--json", home=lab_home, timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads(res.stdout)
    assert all(c["passed"] for c in report["checks"]), report


def test_active_active_one_device_uses_both_tunnels_and_drops_a_dead_one(rb_lab: str, lab_home: Path) -> None:
    name = rb_lab
    route = _sh(name, "onprem", "ip route show 10.1.0.0/16")
    assert route.count("nexthop via") == 2, route
    before = _site_packets_out(name, lab_home)
    assert len(before) == 2
    _flows(name, 32)
    after = _site_packets_out(name, lab_home)
    grew = {i: after[i] - before[i] for i in before}
    assert all(g > 0 for g in grew.values()), grew  # ECMP: both tunnels carried some of the 32 flows
    assert sum(grew.values()) >= 32 * 5
    dead = next(i for i in before if i.endswith("-1"))  # the tunnel to azgw-1
    run_lab("fault", "kill", "azgw-1", "--lab", name, home=lab_home, check=True)
    _until(f"{dead} leaves the site's route", lambda: dead not in _sh(name, "onprem", "ip route show 10.1.0.0/16"),
           30)
    route = _sh(name, "onprem", "ip route show 10.1.0.0/16")
    assert "vti-" in route, route
    mid = _site_packets_out(name, lab_home)
    _flows(name, 32)
    end = _site_packets_out(name, lab_home)
    live = next(i for i in end if i != dead)
    assert end.get(dead, 0) == mid.get(dead, 0) and end[live] - mid[live] >= 32 * 5  # all flows on the live one
    assert "0% packet loss" in _sh(name, "pc1", "ping -c 3 -i 0.2 10.1.0.10")
    res = run_lab("restore", "--lab", name, home=lab_home, timeout=240)
    assert res.returncode == 0, res.stderr
    _until("both tunnels back in the site's route",
           lambda: _sh(name, "onprem", "ip route show 10.1.0.0/16").count("nexthop via") == 2, 60)
