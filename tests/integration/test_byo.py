"""Bring your own device config: hand-written and generated configs, swanctl and legacy ipsec.conf, must pass
`lab test-device` against the emulated gateway (one lab at a time, unique names), on both ESP data planes
(`dataplane`: the kernel variants run in the QEMU guest, `make test-kernel`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.integration.helpers import lab_leftovers, lab_name, run_lab

pytestmark = pytest.mark.integration
DATA = Path(__file__).parent / "data" / "byo"


def byo_topology(tmp: Path, name: str, config: str, files: dict[str, str]) -> Path:
    """The BYO test topology named `name`, its site's device config `config`, with `files` beside it."""
    for fname, text in files.items():
        (tmp / fname).write_text(text)
    text = (DATA / "topology.yml").read_text().replace("name: byo-hand", f"name: {name}")
    path = tmp / "topology.yml"
    path.write_text(text.replace("config: CONFIG", f"config: {config}"))
    return path


def device_test(path: Path, home: Path, *extra: str, dataplane: str | None = None) -> dict:
    """`lab test-device --json` (`dataplane`: its --dataplane; test_byo_errors.py uses this too)."""
    plane = ["--dataplane", dataplane] if dataplane else []
    res = run_lab("test-device", str(path), "--json", "--timeout", "15", *plane, *extra, home=home, timeout=180)
    report = json.loads(res.stdout)
    report["_code"] = res.returncode
    return report


def why(report: dict) -> str:
    """What failed in a device test report (its error, failed verify checks, error diagnoses), for a message."""
    checks = (report.get("verify") or {}).get("checks", [])
    failed = {c["name"]: {k: c.get(k) for k in ("summary", "evidence")} for c in checks if not c.get("passed")}
    errors = [d for d in (report.get("diagnosis") or {}).get("diagnoses", []) if d.get("severity") == "error"]
    return json.dumps({"code": report["_code"], "error": report.get("error"), "failed_checks": failed,
                       "error_diagnoses": errors}, indent=1)[:8000]


@pytest.mark.parametrize("config,files", [
    ("hand.swanctl.conf", ["hand.swanctl.conf"]),
    ("ipsec.conf", ["ipsec.conf", "ipsec.secrets"]),
], ids=["swanctl", "ipsec.conf"])
def test_hand_written_config_passes(tmp_path: Path, lab_home: Path, cleanup_lab: list[str], config: str,
                                    files: list[str], dataplane: str) -> None:
    name = lab_name("byo-" + ("sw" if config.endswith("swanctl.conf") else "leg") + f"-{dataplane[0]}")
    cleanup_lab.append(name)
    path = byo_topology(tmp_path, name, config, {f: (DATA / f).read_text() for f in files})
    report = device_test(path, lab_home, "--report", str(tmp_path / "report.md"), dataplane=dataplane)
    assert report["_code"] == 0, why(report)
    assert report["passed"] and report["established"]
    checks = {c["name"]: c for c in report["verify"]["checks"]}
    assert all(c["passed"] for c in checks.values())
    assert checks["dataplane"]["data"]["dataplane"] == dataplane  # the data plane asked for, evidence read for it
    assert "**PASS**" in (tmp_path / "report.md").read_text()
    assert lab_leftovers(name) == []  # brought down without --keep


@pytest.mark.parametrize("fmt", ["swanctl", "ipsec.conf"])
def test_generated_device_config_establishes(tmp_path: Path, lab_home: Path, cleanup_lab: list[str], fmt: str,
                                             dataplane: str) -> None:
    name = lab_name("byo-g" + ("sw" if fmt == "swanctl" else "leg") + f"-{dataplane[0]}")
    cleanup_lab.append(name)
    out = tmp_path / ("site.swanctl.conf" if fmt == "swanctl" else "ipsec.conf")
    path = byo_topology(tmp_path, name, out.name, {})
    res = run_lab("device-config", "azgw", "--site", "onprem", "--format", fmt, "--topology", str(path),
                  "-o", str(out), home=lab_home)
    assert res.returncode == 0, res.stderr
    report = device_test(path, lab_home, dataplane=dataplane)
    assert report["_code"] == 0, why(report)
    assert report["passed"] and not [d for d in report["diagnosis"]["diagnoses"] if d["severity"] == "error"]


def test_keep_leaves_lab_for_diagnose(tmp_path: Path, lab_home: Path, cleanup_lab: list[str],
                                      dataplane: str) -> None:
    """A broken device with --keep: test-device fails (exit 1), the lab stays, `lab diagnose` names the cause."""
    name = lab_name(f"byo-keep-{dataplane[0]}")
    cleanup_lab.append(name)
    bad = (DATA / "hand.swanctl.conf").read_text().replace("hand-written-psk-0123", "not-the-key")
    path = byo_topology(tmp_path, name, "bad.swanctl.conf", {"bad.swanctl.conf": bad})
    res = run_lab("test-device", str(path), "--keep", "--timeout", "8", "--dataplane", dataplane, home=lab_home,
                  timeout=180)
    assert res.returncode == 1
    assert "auth-failed" in res.stdout
    diag = run_lab("diagnose", name, "--json", home=lab_home)
    assert diag.returncode == 1, diag.stderr  # it reports an error
    kinds = [d["kind"] for d in json.loads(diag.stdout)["diagnoses"]]
    assert kinds[0] == "auth-failed"
    shutil.rmtree(tmp_path, ignore_errors=True)
