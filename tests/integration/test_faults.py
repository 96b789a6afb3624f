"""Faults for real: kill/stop/pause a node, restart charon, cut or degrade a link, then `lab restore`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.helpers import ROOT, charon_log, lab_name, run_lab

pytestmark = pytest.mark.integration
REFERENCE = ROOT / "topologies" / "s2s-route-based.yml"
PC1 = "10.2.0.10"


@pytest.fixture
def fault_lab(tmp_path: Path, lab_home: Path, image: str, cleanup_lab: list[str],
              dataplane: str) -> Callable[[str], str]:
    """Bring up the reference lab under a unique name (other tests and people may run s2s-rb)."""

    def up(tag: str) -> str:
        name = lab_name(f"flt-{tag}-{dataplane[0]}")
        topo = tmp_path / f"{name}.yml"
        topo.write_text(REFERENCE.read_text().replace("name: s2s-rb", f"name: {name}"))
        cleanup_lab.append(name)
        res = run_lab("up", str(topo), "--dataplane", dataplane, home=lab_home)
        assert res.returncode == 0, res.stderr
        return name

    return up


def lab(name: str, home: Path, *args: str) -> str:
    res = run_lab(*args, "--lab", name, home=home, timeout=180)
    assert res.returncode == 0, res.stderr
    return res.stderr


def ping_loss(name: str, home: Path, count: int = 5, interval: str = "0.2") -> int:
    """Percent of pings vm1 -> pc1 (through the tunnel) that got no reply."""
    res = run_lab("exec", "vm1", "--lab", name, "--", "ping", "-c", str(count), "-i", interval, "-W", "1", PC1,
                  home=home, timeout=120)
    found = re.search(r"(\d+)% packet loss", res.stdout)
    assert found, res.stdout + res.stderr
    return int(found.group(1))


def node_states(name: str, home: Path) -> dict[str, str]:
    status = json.loads(run_lab("inspect", name, "--json", home=home, check=True).stdout)
    return {n["name"]: n["state"] for n in status["nodes"]}


def assert_tunnels_installed(name: str, home: Path) -> None:
    status = json.loads(run_lab("inspect", name, "--json", home=home, check=True).stdout)
    by_node = {t["node"]: t for t in status["tunnels"]}
    # the reference gateway is active-standby: after azgw-0 stopped, azgw-1 took over and keeps the role
    # (`lab restore` brings azgw-0 back as the standby, it moves nothing back)
    roles = {n: (home / name / "nodes" / n / "ha-role").read_text().strip() for n in ("azgw-0", "azgw-1")}
    active = next(n for n, r in roles.items() if r == "active")
    assert set(by_node) == {active, "onprem"}, status["tunnels"]
    for node, tunnel in by_node.items():
        assert tunnel["state"] == "ESTABLISHED", node
        assert [c["state"] for c in tunnel["children"]] == ["INSTALLED"], node


def test_kill_site_then_restore(fault_lab: Callable[[str], str], lab_home: Path) -> None:
    name = fault_lab("kill")
    lab(name, lab_home, "fault", "kill", "onprem")
    assert node_states(name, lab_home)["onprem"] == "exited"
    assert ping_loss(name, lab_home) == 100
    assert json.loads((lab_home / name / "faults.json").read_text())["faults"][0]["kind"] == "kill"
    lab(name, lab_home, "restore")
    assert node_states(name, lab_home)["onprem"] == "running"
    assert ping_loss(name, lab_home) == 0
    assert_tunnels_installed(name, lab_home)
    assert not (lab_home / name / "faults.json").exists()


def test_loss_on_site_internet_link(fault_lab: Callable[[str], str], lab_home: Path) -> None:
    name = fault_lab("loss")
    lab(name, lab_home, "fault", "loss", "onprem:eth0", "50")
    assert 25 <= ping_loss(name, lab_home, count=100, interval="0.02") <= 75
    lab(name, lab_home, "restore", "onprem:eth0")
    assert ping_loss(name, lab_home, count=100, interval="0.02") <= 5
    tables = run_lab("exec", "onprem", "--lab", name, "--", "nft", "list", "tables", home=lab_home).stdout
    assert "lab_fault" not in tables and "table inet lab" in tables


def test_pause_then_unpause(fault_lab: Callable[[str], str], lab_home: Path) -> None:
    name = fault_lab("pause")
    lab(name, lab_home, "fault", "pause", "onprem")
    assert node_states(name, lab_home)["onprem"] == "paused"
    assert ping_loss(name, lab_home) == 100  # libipsec's ESP runs in the frozen charon
    lab(name, lab_home, "restore", "--all")
    assert ping_loss(name, lab_home) == 0
    assert_tunnels_installed(name, lab_home)


def test_link_down_then_restore(fault_lab: Callable[[str], str], lab_home: Path) -> None:
    name = fault_lab("link")
    lab(name, lab_home, "fault", "link-down", "azgw-0:eth0")
    assert ping_loss(name, lab_home) == 100
    lab(name, lab_home, "restore", "azgw-0")
    # Known: about one run in five loses the first ping after the link comes back (cause not found yet).
    assert ping_loss(name, lab_home, count=10) <= 10
    assert_tunnels_installed(name, lab_home)


def test_stop_gateway_and_charon_restart(fault_lab: Callable[[str], str], lab_home: Path) -> None:
    name = fault_lab("stop")
    lab(name, lab_home, "fault", "stop", "azgw-0")
    assert node_states(name, lab_home)["azgw-0"] == "exited"
    # graceful: the site's charon for that tunnel (route-based: its own, docs/route-based.md) got a DELETE
    assert "DELETE" in charon_log(lab_home, name, "onprem")
    lab(name, lab_home, "restore")
    assert ping_loss(name, lab_home) == 0
    lab(name, lab_home, "fault", "charon-restart", "onprem")
    assert not (lab_home / name / "faults.json").exists()  # nothing left to restore
    assert_tunnels_installed(name, lab_home)
    assert ping_loss(name, lab_home) == 0


def test_second_node_fault_is_refused(fault_lab: Callable[[str], str], lab_home: Path) -> None:
    name = fault_lab("twice")
    lab(name, lab_home, "fault", "pause", "vm1")
    res = run_lab("fault", "kill", "vm1", "--lab", name, home=lab_home)
    assert res.returncode == 1 and "already has fault 'pause vm1'" in res.stderr
    lab(name, lab_home, "restore", "vm1")
    assert ping_loss(name, lab_home) == 0
