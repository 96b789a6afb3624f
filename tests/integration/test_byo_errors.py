"""Bring-your-own configs that are broken: strongSwan's own parse error with the user's file and line at once
(exit 1, nothing left), a wrong key ends the wait at the first AUTH failure, and `lab inspect` shows a BYO
connection under the name the user gave it, with the lifetimes, DPD and proposals its config declares and Azure's
value beside each difference."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.integration.helpers import lab_leftovers, lab_name, run_lab
from tests.integration.test_byo import DATA, byo_topology, device_test

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("config", "files", "old", "new", "line"), [
    ("hand.swanctl.conf", ["hand.swanctl.conf"], "proposals = ", "proposals ", 7),
    ("ipsec.conf", ["ipsec.conf", "ipsec.secrets"], "  ike=", "  ike ", 16),
], ids=["swanctl", "ipsec.conf"])
def test_parse_error_names_file_and_line_at_once(tmp_path: Path, lab_home: Path, cleanup_lab: list[str],
                                                 config: str, files: list[str], old: str, new: str, line: int) -> None:
    name = lab_name("rel-parse-" + ("s" if config.endswith("swanctl.conf") else "l"))
    cleanup_lab.append(name)
    texts = {f: (DATA / f).read_text() for f in files}
    assert old in texts[config]
    texts[config] = texts[config].replace(old, new, 1)
    path = byo_topology(tmp_path, name, config, texts)
    t0 = time.monotonic()
    res = run_lab("test-device", str(path), "--timeout", "20", home=lab_home, timeout=180)
    elapsed = time.monotonic() - t0
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"error: {tmp_path / config}: line {line}: " in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert elapsed < 20, elapsed  # strongSwan's parser ran before any wait
    assert lab_leftovers(name) == []


def test_wrong_key_ends_the_wait_at_the_first_auth_failure(tmp_path: Path, lab_home: Path,
                                                            cleanup_lab: list[str]) -> None:
    name = lab_name("rel-authf")
    cleanup_lab.append(name)
    bad = (DATA / "hand.swanctl.conf").read_text().replace("hand-written-psk-0123", "not-the-key")
    path = byo_topology(tmp_path, name, "bad.swanctl.conf", {"bad.swanctl.conf": bad})
    report = device_test(path, lab_home, "--timeout", "25")
    assert report["_code"] == 1 and not report["established"]
    waited = [float(s) for s in re.findall(r"after ([\d.]+) s", report["error"])]
    assert waited and max(waited) < 10, report["error"]  # not the 25 s timeout
    assert report["error"].startswith("diagnosis: ") and "auth-failed" in report["error"]
    assert lab_leftovers(name) == []


def test_inspect_shows_byo_connection_under_its_own_name(tmp_path: Path, lab_home: Path,
                                                         cleanup_lab: list[str]) -> None:
    name = lab_name("rel-byonm")
    cleanup_lab.append(name)
    path = byo_topology(tmp_path, name, "hand.swanctl.conf",
                        {"hand.swanctl.conf": (DATA / "hand.swanctl.conf").read_text()})
    report = device_test(path, lab_home, "--keep")
    assert report["_code"] == 0, report
    status = json.loads(run_lab("inspect", name, "--json", home=lab_home, check=True).stdout)
    mine = [t for t in status["tunnels"] if t["node"] == "onprem"]
    assert [t["connection"] for t in mine] == ["to-azure"] and mine[0]["state"] == "ESTABLISHED"
    # what the user's config declares (rekey_time 8h, dpd_delay 30s, its proposals), Azure's value beside
    site = mine[0]["settings"]
    assert (site["ike_lifetime_s"], site["child_lifetime_s"], site["dpd"]) == (28800, 27000, "delay 30 s")
    assert (site["ike_proposals"], site["esp_proposals"]) == (["aes256-sha256-modp1024"], ["aes256-sha1"])
    # no life_bytes in the config: strongSwan's no volume limit, Azure's 102400000 KB beside it
    assert site["child_lifetime_kb"] == 0
    assert site["azure"] == {"dpd": "delay 31 s", "child_lifetime_kb": "102400000 KB"}
    gw = next(t for t in status["tunnels"] if t["node"] == "azgw-0")["settings"]
    assert gw["azure"] == {} and gw["dpd"] == "delay 31 s"
    text = run_lab("inspect", name, home=lab_home, check=True).stdout
    assert "DPD delay 30 s (Azure: delay 31 s)" in text and "child KB 0 KB (no limit) (Azure: 102400000 KB)" in text
    assert status["problems"] == [], status["problems"]
    diag = run_lab("diagnose", name, home=lab_home)
    assert diag.returncode == 0, diag.stdout + diag.stderr
