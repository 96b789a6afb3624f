"""High availability for real: a probe stream across A/A and A/S failovers, then `lab restore`.

The topologies set `ha_timing: fast` (Azure's timing is tested in test_fidelity.py). Bounds are generous (2
shared cores): A/A unplanned with `dpd: fast` <= 2 s for the worst flow (measured ~0.45 s), A/S planned <= 5 s
(measured ~0.4-0.7 s), A/S unplanned <= 5 s (measured ~0.7-0.8 s); `lab verify` passes after the planned move. They are
multiplied by LAB_TIME_SCALE, which only the emulated kernel-test guest sets: its HA agents wait that much
longer before acting (docs/kernel-dataplane.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.helpers import ROOT, TIME_SCALE, lab_name, run_lab

pytestmark = pytest.mark.integration


@pytest.fixture
def ha_lab(tmp_path: Path, lab_home: Path, image: str, cleanup_lab: list[str], dataplane: str) -> Callable[[str], str]:
    def up(kind: str) -> str:
        name = lab_name(f"ha{kind[:2]}-{dataplane[0]}")
        src = (ROOT / "topologies" / f"active-{kind}.yml").read_text()
        topo = tmp_path / f"{name}.yml"
        topo.write_text(src.replace("name: aa\n", f"name: {name}\n").replace("name: as\n", f"name: {name}\n"))
        cleanup_lab.append(name)
        res = run_lab("up", str(topo), "--dataplane", dataplane, home=lab_home)
        assert res.returncode == 0, res.stderr
        return name

    return up


# 8 s of stream: the fault 3 s in, the outage bound (a few seconds, times TIME_SCALE) and normal flow after it
STREAM_S = str(8 * TIME_SCALE)


def failover(name: str, home: Path, *args: str) -> dict:
    res = run_lab("failover", "azgw", *args, "--lab", name, "--duration", STREAM_S, "--json", home=home, timeout=180)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def restore_and_check(name: str, home: Path, gateways: set[str], sites: frozenset[str] = frozenset({"onprem"})) -> None:
    """`gateways` {"active"}: an active-standby gateway, whose tunnels are on whichever instance is active now
    (`lab restore` never moves the role back: the instance that came back is the standby)."""
    res = run_lab("restore", "--lab", name, home=home, timeout=180)
    assert res.returncode == 0, res.stderr
    status = json.loads(run_lab("inspect", name, "--json", home=home, check=True).stdout)
    assert {n["name"]: n["state"] for n in status["nodes"]}["azgw-1"] == "running"
    if gateways == {"active"}:
        roles = {n: (home / name / "nodes" / n / "ha-role").read_text().strip() for n in ("azgw-0", "azgw-1")}
        assert sorted(roles.values()) == ["active", "standby"], roles
        gateways = {n for n, r in roles.items() if r == "active"}
    up = {t["node"] for t in status["tunnels"] if t["state"] == "ESTABLISHED"
          and all(c["state"] == "INSTALLED" for c in t["children"])}
    assert gateways | sites <= up, status["tunnels"]
    probe = json.loads(run_lab("probe", "--lab", name, "--duration", "3", "--json", home=home, check=True).stdout)
    assert probe["udp"]["lost"] <= 2


def test_active_active_unplanned_keeps_delivering_on_the_other_instance(ha_lab, lab_home: Path,
                                                                         tmp_path: Path) -> None:
    name = ha_lab("active")
    plot = tmp_path / "aa.png"
    res_proc = run_lab("failover", "azgw", "--unplanned", "--lab", name, "--duration", STREAM_S, "--json",
                       "--plot", str(plot), home=lab_home, timeout=180)
    assert res_proc.returncode == 0, res_proc.stderr
    res = json.loads(res_proc.stdout)
    assert plot.stat().st_size > 10_000
    assert {c.split()[0] for c in res["carriers_before"]} == {"azgw-0", "azgw-1"}  # ECMP used both
    assert [c.split()[0] for c in res["carriers_after"]] == ["azgw-1"]
    grew = {b["node"] for b in res["before"] for a in res["after"]
            if a["spi_out"] == b["spi_out"] and a["packets_out"] > b["packets_out"]}
    assert grew == {"azgw-1"}
    assert res["udp"]["flow_outage_ms"] <= 2000 * TIME_SCALE, res["udp"]
    # site -> VNet too: if the site was sending into the dead instance's SA it waits for its DPD (fast: ~2 s)
    assert res["udp_reverse"]["flow_outage_ms"] <= 4000 * TIME_SCALE, res["udp_reverse"]
    assert [c.split()[0] for c in res["site_carriers_after"]] == ["onprem"]
    assert any("route" in m["what"] for m in res["marks"])  # the VNet agent dropped the dead hop
    restore_and_check(name, lab_home, {"azgw-0", "azgw-1"})


def test_active_standby_planned_then_unplanned(ha_lab, lab_home: Path) -> None:
    name = ha_lab("standby")
    planned = failover(name, lab_home, "--planned")
    assert planned["carriers_before"][0].startswith("azgw-0") and planned["carriers_after"][0].startswith("azgw-1")
    assert planned["udp"]["flow_outage_ms"] <= 5000 * TIME_SCALE, planned["udp"]
    restore_and_check(name, lab_home, {"active"})  # azgw-1 stays active: restore moves no role back
    # verify checks the instance that holds the public IP now (before: azgw-0's SAs, spis failed on every SPI)
    ver = run_lab("verify", name, "--json", home=lab_home, timeout=240)
    spis = {c["name"]: c for c in json.loads(ver.stdout)["checks"]}["spis"]
    assert ver.returncode == 0, ver.stderr + json.dumps(spis["evidence"])
    assert {s["src_node"] for s in spis["data"]["sas"]} == {"azgw-1", "onprem"}, spis["data"]
    unplanned = failover(name, lab_home, "--unplanned")
    assert unplanned["fault"] == "kill azgw-1"
    assert any(m["what"] == "agent: peer-dead" for m in unplanned["marks"])
    assert unplanned["carriers_after"][0].startswith("azgw-0")
    assert unplanned["udp"]["flow_outage_ms"] <= 5000 * TIME_SCALE, unplanned["udp"]
    restore_and_check(name, lab_home, {"active"})


def test_full_mesh_four_tunnels_survive_a_gateway_instance(tmp_path: Path, lab_home: Path, image: str,
                                                           cleanup_lab: list[str], dataplane: str) -> None:
    """A/A gateway x device pair: 4 tunnels, 2 CHILD_SAs per node; azgw-0 killed, the stream keeps flowing
    (measured: worst flow 0.44 s, 44 of 1600 UDP probes lost). Both data planes: every node's two tunnels
    negotiate 0/0, each in a namespace of its own (kernel: with an XFRM interface xfrm0 there)."""
    name = lab_name(f"hafm-{dataplane[0]}")
    src = (ROOT / "topologies" / "active-active-full-mesh.yml").read_text()
    topo = tmp_path / f"{name}.yml"
    topo.write_text(src.replace("name: aafm\n", f"name: {name}\n"))
    cleanup_lab.append(name)
    res = run_lab("up", str(topo), "--dataplane", dataplane, home=lab_home, timeout=180)
    assert res.returncode == 0, res.stderr
    status = json.loads(run_lab("inspect", name, "--json", home=lab_home, check=True).stdout)
    up = [t["node"] for t in status["tunnels"] if t["state"] == "ESTABLISHED"
          and [c["state"] for c in t["children"]] == ["INSTALLED"]]
    assert sorted(up) == ["azgw-0", "azgw-0", "azgw-1", "azgw-1", "onprem-0", "onprem-0", "onprem-1", "onprem-1"]
    ping = run_lab("exec", "vm1", "--lab", name, "--", "ping", "-c", "3", "-W", "2", "10.2.0.10", home=lab_home)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    res = failover(name, lab_home, "--unplanned")
    assert res["fault"] == "kill azgw-0"
    # azgw-1 routes the site over both its tunnel interfaces (ECMP), so both its SAs may carry the stream
    assert {c.split()[0] for c in res["carriers_after"]} == {"azgw-1"}
    assert res["udp"]["delivered"] >= 0.9 * res["udp"]["sent"], res["udp"]
    assert res["udp"]["flow_outage_ms"] <= 2000 * TIME_SCALE, res["udp"]
    restore_and_check(name, lab_home, {"azgw-0", "azgw-1"}, frozenset({"onprem-0", "onprem-1"}))
