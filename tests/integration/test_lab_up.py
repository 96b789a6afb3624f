"""The reference lab for real: containers, veths, strongSwan, a tunnel, a ping through it, a clean down."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from lab.verify.xfrm import XFRM_ARGV
from tests.integration.helpers import ROOT, host_network, lab_argv, lab_leftovers, lab_name, renamed, run_lab

pytestmark = pytest.mark.integration
REFERENCE = ROOT / "topologies" / "s2s-route-based.yml"
REF, KILLED = lab_name("up-ref"), lab_name("up-killed")  # names of this test run (helpers.lab_name)


def renamed_reference(tmp: Path, name: str) -> Path:
    """The reference topology under a lab name of the test's own (s2s-rb is the demo's and any user's)."""
    path = tmp / f"{name}.yml"
    path.write_text(REFERENCE.read_text().replace("name: s2s-rb", f"name: {name}"))
    return path


def xfrm_spis(home: Path, lab: str, node: str) -> set[str]:
    """SPIs of the node's kernel ESP states (`ip xfrm state` in its own and every tunnel namespace, as lab
    verify reads them), as vici prints them (hex, no 0x)."""
    res = run_lab("exec", node, "--lab", lab, "--", *XFRM_ARGV, home=home, check=True)
    return {m.group(1) for m in re.finditer(r"proto esp spi 0x([0-9a-f]{8})", res.stdout)}


def test_reference_lab_tunnel_carries_ping(lab_home: Path, image: str, cleanup_lab: list[str],
                                           tmp_path: Path, dataplane: str) -> None:
    before = host_network()
    cleanup_lab.append(REF)
    up = run_lab("up", str(renamed_reference(tmp_path, REF)), "--json", "--dataplane", dataplane,
                 home=lab_home)
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout)["dataplane"] == dataplane
    ping = run_lab("exec", "vm1", "--lab", REF, "--", "ping", "-c", "5", "-i", "0.2", "-W", "2", "10.2.0.10",
                   home=lab_home)
    assert ping.returncode == 0, ping.stdout
    assert "5 received" in ping.stdout

    status = json.loads(run_lab("inspect", REF, "--json", home=lab_home, check=True).stdout)
    by_node = {t["node"]: t for t in status["tunnels"]}
    assert set(by_node) == {"azgw-0", "onprem"}
    for node, tunnel in by_node.items():
        assert tunnel["state"] == "ESTABLISHED", node
        (child,) = tunnel["children"]
        assert child["state"] == "INSTALLED", node
        assert child["bytes_in"] > 0 and child["bytes_out"] > 0, (node, child)
        assert child["packets_in"] >= 5 and child["packets_out"] >= 5, (node, child)
    gw, site = by_node["azgw-0"]["children"][0], by_node["onprem"]["children"][0]
    assert gw["spi_out"] == site["spi_in"] and gw["spi_in"] == site["spi_out"]
    # route-based on both data planes: any-to-any on the wire, each end on its own interface
    assert gw["local_ts"] == ["0.0.0.0/0"] and gw["remote_ts"] == ["0.0.0.0/0"]
    assert by_node["azgw-0"]["interface"] == "vti-azgw-onprem" == by_node["onprem"]["interface"]
    # The kernel data plane: vici's SPIs are the kernel's own SAs; libipsec: the kernel holds none.
    for node, child in (("azgw-0", gw), ("onprem", site)):
        want = {child["spi_in"], child["spi_out"]} if dataplane == "kernel" else set()
        assert xfrm_spis(lab_home, REF, node) == want, node
    inspected = json.loads(run_lab("inspect", REF, "--json", home=lab_home, check=True).stdout)
    assert inspected["dataplane"] == dataplane  # recorded at `up`, not re-detected

    psk = (lab_home / REF / "keys.yml").read_text().split(":")[1].strip()
    logs = "".join(p.read_text() for p in (lab_home / REF / "nodes").rglob("*.log"))  # tunnels' too
    assert "IKE_SA azgw-onprem[1] established" in logs  # the logs are there, and say something
    assert psk not in up.stdout + up.stderr + json.dumps(status) + logs

    down = run_lab("down", REF, home=lab_home)
    assert down.returncode == 0, down.stderr
    assert lab_leftovers(REF) == []
    assert not (lab_home / REF).exists()
    assert host_network() == before


def test_down_cleans_up_after_up_is_killed(lab_home: Path, image: str, cleanup_lab: list[str],
                                           tmp_path: Path) -> None:
    cleanup_lab.append(KILLED)
    argv, env = lab_argv("up", str(renamed_reference(tmp_path, KILLED)), home=lab_home)
    proc = subprocess.Popen(argv, cwd=ROOT, text=True, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    for line in proc.stderr:  # kill it once links are being wired: containers exist, namespace exists
        if "wiring links" in line or time.monotonic() > deadline:
            break
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert lab_leftovers(KILLED), "lab up was killed before it created anything: the test proves nothing"
    down = run_lab("down", KILLED, home=lab_home)
    assert down.returncode == 0, down.stderr
    assert lab_leftovers(KILLED) == []


@pytest.mark.parametrize("case", ["unknown-key", "bad-prefix", "overlapping-address-space",
                                  "duplicate-node-name", "public-ip-reused"])
def test_bad_topology_exits_2_and_creates_nothing(case: str, lab_home: Path, tmp_path: Path) -> None:
    source = ROOT / "tests" / "topology" / "errors" / f"{case}.yml"
    path, name = renamed(source, tmp_path, "err")
    res = run_lab("up", str(path), home=lab_home)
    assert res.returncode == 2, res.stderr
    expected_first_line = source.with_suffix(".err").read_text().splitlines()[0].split(": ", 1)[1]
    assert expected_first_line in res.stderr
    assert lab_leftovers(name) == []
    assert not (lab_home / name).exists()


def test_p2s_clients_beyond_this_machine_are_refused_as_its_own_limit(lab_home: Path, tmp_path: Path) -> None:
    """More P2S clients than this machine's memory holds (but within Azure's VpnGw5 limit): `lab up` exits 2 with
    the machine's limit, the measured memory per client and the hint, and creates nothing (#14 item 7)."""
    from lab.azure import facts
    from lab.p2s.model import MEMORY_SHARE, MIB_PER_CLIENT
    from lab.runtime.preflight import mem_available_bytes

    limit = int(mem_available_bytes() / 2**20 * MEMORY_SHARE / MIB_PER_CLIENT)
    asked = limit + max(50, limit // 10)  # margin: available memory moves between here and lab up
    if asked > facts.SKUS["VpnGw5"].p2s_ikev2:
        pytest.skip(f"this machine holds {limit} clients: Azure's VpnGw5 limit is reached first")
    data = yaml.safe_load((ROOT / "topologies" / "p2s.yml").read_text())
    data["name"] = name = lab_name("p2s-mem")
    gw = data["gateways"]["azgw"]
    gw["sku"] = "VpnGw5"
    gw["p2s"] |= {"clients": asked, "revoked": [], "address_pool": "172.16.0.0/16"}
    path = tmp_path / "p2s-mem.yml"
    path.write_text(yaml.safe_dump(data))
    res = run_lab("up", str(path), home=lab_home, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    assert f"{asked} P2S clients: this machine's limit is" in res.stderr and "(not Azure's)" in res.stderr
    assert f"{MIB_PER_CLIENT} MiB measured per client" in res.stderr
    assert "use fewer clients, or a machine with more memory" in res.stderr
    assert lab_leftovers(name) == []
    assert not (lab_home / name).exists()
