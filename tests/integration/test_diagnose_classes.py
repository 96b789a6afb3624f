"""Each diagnosis class, provoked by a broken BYO device config, must be named by `lab test-device`
(tunnel down: first error; tunnel up but unlike Azure: a warning). One lab at a time, unique names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.helpers import lab_name, run_lab

pytestmark = pytest.mark.integration
DATA = Path(__file__).parent / "data" / "byo"
GOOD = (DATA / "hand.swanctl.conf").read_text()
PB_TOPOLOGY = Path(__file__).resolve().parents[2] / "topologies" / "policy-based-basic.yml"


def _drop_child(text: str, child: str) -> str:
    """Remove one `children { NAME { ... } }` block from a rendered swanctl.conf."""
    return re.sub(rf"\n      {re.escape(child)} {{\n(?:        .*\n)*?      }}", "", text)


CASES = {  # class: (how the good config is broken, severity)
    "auth-failed": (lambda t: t.replace('"hand-written-psk-0123"', '"wrong-psk"'), "error"),
    "no-proposal-chosen": (lambda t: t.replace("aes256-sha256-modp1024", "aes128-sha512-modp4096"), "error"),
    "ts-unacceptable": (lambda t: t.replace("local_ts = 10.2.0.0/16", "local_ts = 10.3.0.0/16"), "error"),
    "ike-version-mismatch": (lambda t: t.replace("version = 2", "version = 1"), "error"),
    "peer-unreachable": (lambda t: t.replace("remote_addrs = 203.0.113.10", "remote_addrs = 203.0.113.99"), "error"),
    "peer-id-mismatch": (lambda t: t.replace("id = 203.0.113.10\n    }", "id = vpn.azure.example\n    }"), "error"),
    "lifetime-mismatch": (lambda t: t.replace("life_time = 27000s", "life_time = 3600s"), "warning"),
    "dpd-rejected": (lambda t: t.replace("dpd_delay = 30s", "dpd_delay = 3s"), "warning"),
}


def _run(tmp: Path, home: Path, topo_text: str, config: str) -> dict:
    (tmp / "site.swanctl.conf").write_text(config)
    path = tmp / "topology.yml"
    path.write_text(topo_text)
    res = run_lab("test-device", str(path), "--json", "--timeout", "8", home=home, timeout=180)
    report = json.loads(res.stdout)
    report["_code"] = res.returncode
    return report


@pytest.mark.parametrize("kind", sorted(CASES))
def test_diagnosis_class_is_named(tmp_path: Path, lab_home: Path, cleanup_lab: list[str], kind: str) -> None:
    name = lab_name(f"dg-{kind[:8].rstrip('-')}")
    cleanup_lab.append(name)
    breaker, severity = CASES[kind]
    topo = (DATA / "topology.yml").read_text().replace("name: byo-hand", f"name: {name}").replace(
        "config: CONFIG", "config: site.swanctl.conf")
    report = _run(tmp_path, lab_home, topo, breaker(GOOD))
    found = [(d["kind"], d["severity"]) for d in report["diagnosis"]["diagnoses"]]
    if severity == "error":
        assert report["_code"] == 1 and not report["passed"]
        assert found[0] == (kind, "error"), found
        assert report["diagnosis"]["diagnoses"][0]["evidence"]
    else:
        assert report["established"], report.get("error")
        assert (kind, "warning") in found, found


def test_missing_prefix_pairs_named(tmp_path: Path, lab_home: Path, cleanup_lab: list[str]) -> None:
    """Policy-based gateway, 2 x 2 pairs; the device configured only 3 of them."""
    name = lab_name("dg-pairs")
    cleanup_lab.append(name)
    topo = PB_TOPOLOGY.read_text().replace("name: pb-basic", f"name: {name}").replace(
        "    hosts: {pc1: 10.21.0.10, pc2: 10.22.0.10}",
        "    hosts: {pc1: 10.21.0.10, pc2: 10.22.0.10}\n    device: {config: site.swanctl.conf}").replace(
        "    ike_version: IKEv1", '    ike_version: IKEv1\n    shared_key: "pairs-test-key"')
    (tmp_path / "topology.yml").write_text(topo)
    res = run_lab("device-config", "azgw", "--site", "branch", "--topology", str(tmp_path / "topology.yml"),
                  home=lab_home)
    assert res.returncode == 0, res.stderr
    broken = _drop_child(res.stdout, "azgw-branch-1-1")
    assert broken.count("local_ts") == 3
    report = _run(tmp_path, lab_home, topo, broken)
    kinds = [d["kind"] for d in report["diagnosis"]["diagnoses"]]
    assert report["_code"] == 1
    assert kinds[0] == "missing-prefix-pairs", kinds
