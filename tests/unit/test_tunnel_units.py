"""Charon units of route-based tunnels (lab/tunnel_units.py): which run, and an active-standby gateway whose
warm standby would mirror more than MIRROR_MAX tunnel charons starting them at takeover instead."""

from __future__ import annotations

from pathlib import Path

import yaml

from lab import core, tunnel_units
from lab.daemons import CHARON
from lab.ha.standby import ROLE_FILE
from lab.hooks import Stage
from lab.render.tunnel_ifaces import MIRROR_MAX
from tests.fakes import FakeRuntime


def _lab(tmp_path: Path, sites: int) -> core.Lab:
    """One active-standby gateway (one public IP) and `sites` route-based sites."""
    topo = {"name": "tu", "gateways": {"azgw": {"sku": "VpnGw4", "public_ips": ["203.0.113.10"],
                                                "vnet": {"address_space": ["10.1.0.0/16"]}}},
            "sites": {f"s{i}": {"public_ip": f"198.51.100.{i + 1}", "address_space": [f"10.2.{i}.0/24"]}
                      for i in range(sites)},
            "connections": {f"c{i}": {"gateway": "azgw", "site": f"s{i}"} for i in range(sites)}}
    path = tmp_path / "tu.yml"
    path.write_text(yaml.safe_dump(topo))
    return core.load(path, tmp_path / "home")


def test_a_warm_standby_runs_its_tunnel_charons_up_to_the_mirror_limit(tmp_path: Path) -> None:
    lab = _lab(tmp_path, MIRROR_MAX)
    ifaces = tunnel_units.ifaces_of(lab)
    assert len(ifaces["azgw-1"]) == MIRROR_MAX and tunnel_units.cold(lab, ifaces) == set()
    found = tunnel_units.units(lab, {"azgw-1"}, ifaces)
    assert found[0] == "azgw-1" and len(found) == 1 + MIRROR_MAX
    assert tunnel_units.cold_start(lab, "azgw-1", ifaces) == []


def test_above_the_limit_the_standby_starts_its_tunnel_charons_at_takeover(tmp_path: Path) -> None:
    lab = _lab(tmp_path, MIRROR_MAX + 1)
    ifaces = tunnel_units.ifaces_of(lab)
    assert tunnel_units.cold(lab, ifaces) == {"azgw-1"}  # before any role file: the second instance
    assert tunnel_units.units(lab, {"azgw-1"}, ifaces) == ["azgw-1"]  # its main charon only
    assert len(tunnel_units.units(lab, {"azgw-0"}, ifaces)) == 1 + MIRROR_MAX + 1
    start = tunnel_units.cold_start(lab, "azgw-1", ifaces)
    assert start[0] == ["sh", "/lab/tunnels/start.sh"] and len(start) == 1 + MIRROR_MAX + 1
    assert start[1] == ["swanctl", "--load-all", "--file", "/lab/tunnels/c0/swanctl.conf", "--uri",
                        "unix:///lab/tunnels/c0/run/charon.vici"]
    rt = FakeRuntime()
    feature = tunnel_units.TunnelsFeature()
    st = Stage(lab, rt, lambda s: None)  # type: ignore[arg-type, return-value]
    assert feature.start_daemon(st, lab.plan.node("azgw-1"), CHARON) is False
    assert rt.execs("azgw-1") == [("sh", "/lab/tunnels/setup.sh")]  # interfaces, no charons
    for node, role in (("azgw-0", "standby"), ("azgw-1", "active")):  # after a failover
        lab.dir.node(node).mkdir(parents=True, exist_ok=True)
        (lab.dir.node(node) / ROLE_FILE).write_text(role + "\n")
    assert tunnel_units.cold(lab, ifaces) == {"azgw-0"}
    assert len(tunnel_units.units(lab, {"azgw-1"}, ifaces)) == 1 + MIRROR_MAX + 1
