"""`lab bench` on real labs: the SKU's aggregate cap holds in both directions (Basic binds: the raw tunnel is
faster than 100 Mbps here), VpnGw1's cap is in place on both links, and the host namespace stays untouched.

The machine's 2 cores are shared with other tests, so caps are asserted with 10 % slack and iperf3 runs 3 s."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.helpers import ROOT, host_network, lab_up, renamed, run_lab

pytestmark = pytest.mark.integration
DATA = ROOT / "tests" / "integration" / "data"
SLACK = 1.10


def unique(tmp_path: Path, file: str, prefix: str) -> tuple[Path, str]:
    """A copy of a data file under a lab name of its own: other test runs on this machine may use the file too."""
    return renamed(DATA / file, tmp_path, prefix)


def bench(home: Path, lab: str, *extra: str) -> dict[str, object]:
    res = run_lab("bench", lab, "--json", "-t", "3", "--cc", "cubic", *extra, home=home, timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def figures(result: dict[str, object], kind: str) -> list[float]:
    return [m["mbps"] for m in result["measurements"] if m["kind"] == kind]  # type: ignore[index,union-attr]


def classes(home: Path, lab: str, dev: str) -> str:
    return run_lab("exec", "azgw-0", "--lab", lab, "--", "tc", "class", "show", "dev", dev, home=home).stdout


def host_qdiscs() -> str:
    return subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True, check=True).stdout


def test_basic_caps_both_directions_at_100_mbps(lab_home: Path, image: str, tmp_path: Path) -> None:
    before, qdiscs = host_network(), host_qdiscs()
    with lab_up(*unique(tmp_path, "basic-rb.yml", "bb"), lab_home) as lab:
        _assert_basic_caps(lab_home, lab)
        assert host_network() == before and host_qdiscs() == qdiscs  # nothing leaked into the host namespace
    assert host_qdiscs() == qdiscs


def _assert_basic_caps(lab_home: Path, lab: str) -> None:
    for extra in ((), ("--reverse",)):
        result = bench(lab_home, lab, *extra)
        (tunnel,), (aggregate,) = figures(result, "tunnel"), figures(result, "aggregate")
        (uncapped,), (veth,) = figures(result, "uncapped"), figures(result, "veth")
        assert 0 < tunnel <= 100 * SLACK and 0 < aggregate <= 100 * SLACK, (extra, result)
        # The cap is what binds: the same tunnel without it is faster, and a plain veth faster still.
        assert uncapped > 100 * SLACK, (extra, result)
        assert veth > uncapped, (extra, result)
        assert result["ratios"]["cubic"] == pytest.approx(uncapped / veth, rel=0.01)  # type: ignore[index]

    # The cap is back after the uncapped run, on egress and on the IFB carrying ingress.
    assert "rate 100Mbit ceil 100Mbit" in classes(lab_home, lab, "eth0")
    assert "rate 100Mbit ceil 100Mbit" in classes(lab_home, lab, "eth0-ifb")


def test_vpngw1_aggregate_of_two_tunnels(lab_home: Path, image: str, tmp_path: Path) -> None:
    with lab_up(*unique(tmp_path, "vpngw1.yml", "bg"), lab_home) as lab:
        _assert_vpngw1_aggregate(lab_home, lab)


def _assert_vpngw1_aggregate(lab_home: Path, lab: str) -> None:
    assert "rate 650Mbit ceil 650Mbit" in classes(lab_home, lab, "eth0")
    assert "rate 650Mbit ceil 650Mbit" in classes(lab_home, lab, "eth0-ifb")

    result = bench(lab_home, lab)
    (aggregate,) = [m for m in result["measurements"] if m["kind"] == "aggregate"]  # type: ignore[union-attr]
    assert aggregate["cap_mbps"] == 650
    assert sorted(f["server"] for f in aggregate["flows"]) == ["pc1", "pc2"]  # both tunnels at once
    assert all(f["mbps"] > 0 for f in aggregate["flows"])
    assert aggregate["mbps"] <= 650 * SLACK
    assert len(figures(result, "tunnel")) == 2
