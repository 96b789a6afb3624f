"""Hostile input against real containers and strongSwan: two `lab up` of one name at once (one wins, the
other exits 2 and touches nothing), and shared keys that need escaping, carried byte for byte through
`lab device-config` files parsed by strongSwan itself (swanctl.conf and ipsec.secrets) and `lab apply`."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from tests.integration.helpers import ROOT, lab_argv, lab_leftovers, lab_name, run_lab, swanctl_text
from tests.integration.test_byo import byo_topology, device_test

pytestmark = pytest.mark.integration
REFERENCE = (ROOT / "topologies" / "s2s-route-based.yml").read_text()
# quote, backslash, hash, spaces, `0x` prefix: each breaks a naively quoted swanctl.conf or ipsec.secrets
NASTY_KEY = '0x "quoted" \\back\\ #not-a-comment ;{}=,\'$ end '


def _reference(tmp: Path, name: str, key: str | None = None) -> Path:
    text = REFERENCE.replace("name: s2s-rb", f"name: {name}")
    if key is not None:
        text = text.replace("ike_version: IKEv2", f"ike_version: IKEv2\n    shared_key: {json.dumps(key)}")
    path = tmp / f"{name}.yml"
    path.write_text(text)
    return path


def test_two_ups_of_one_name_one_wins(tmp_path: Path, lab_home: Path, cleanup_lab: list[str]) -> None:
    name = lab_name("rel-lock")
    cleanup_lab.append(name)
    path = _reference(tmp_path, name)
    argv, env = lab_argv("up", str(path), home=lab_home)
    procs = [subprocess.Popen(argv, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    results = [(p.wait(timeout=180), p.stderr.read() if p.stderr else "") for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "busy" in loser or "already running" in loser, loser
    assert "Traceback" not in loser
    inspect = run_lab("inspect", name, "--json", home=lab_home)  # the winner's lab is whole
    assert inspect.returncode == 0, inspect.stderr
    tunnels = json.loads(inspect.stdout)["tunnels"]
    assert tunnels and all(t["state"] == "ESTABLISHED" for t in tunnels)
    assert run_lab("down", name, home=lab_home).returncode == 0
    assert lab_leftovers(name) == []


@pytest.mark.parametrize("fmt", ["swanctl", "ipsec.conf"])
def test_escaped_key_survives_strongswans_own_parsers(tmp_path: Path, lab_home: Path, cleanup_lab: list[str],
                                                      fmt: str) -> None:
    """The gateway gets the key over vici (raw bytes); the BYO site reads it from the file `lab device-config`
    wrote, with swanctl's or starter's parser: the tunnel comes up only if both hold the same bytes."""
    name = lab_name("rel-key-" + ("s" if fmt == "swanctl" else "l"))
    cleanup_lab.append(name)
    out = tmp_path / ("site.swanctl.conf" if fmt == "swanctl" else "ipsec.conf")
    path = byo_topology(tmp_path, name, out.name, {})
    path.write_text(path.read_text().replace('"hand-written-psk-0123"', json.dumps(NASTY_KEY)))
    res = run_lab("device-config", "azgw", "--site", "onprem", "--format", fmt, "--topology", str(path),
                  "-o", str(out), home=lab_home)
    assert res.returncode == 0, res.stderr
    written = [out] if fmt == "swanctl" else [out, out.with_name("ipsec.secrets")]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in written)
    assert "0x" + NASTY_KEY.encode().hex() in written[-1].read_text()
    report = device_test(path, lab_home)
    assert report["_code"] == 0, report
    assert report["passed"] and report["established"]


def test_apply_changes_to_an_escaped_key_and_reestablishes(tmp_path: Path, lab_home: Path,
                                                            cleanup_lab: list[str]) -> None:
    name = lab_name("rel-key-ap")
    cleanup_lab.append(name)
    assert run_lab("up", str(_reference(tmp_path, name, "plain-key-1")), home=lab_home, timeout=180).returncode == 0
    res = run_lab("apply", str(_reference(tmp_path, name, NASTY_KEY)), home=lab_home, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "shared-key" in res.stdout and NASTY_KEY not in res.stdout + res.stderr
    state = lab_home / name
    assert stat.S_IMODE((state / "keys.yml").stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "topology.yml").stat().st_mode) == 0o600
    assert "0x" + NASTY_KEY.encode().hex() in swanctl_text(lab_home, name, "azgw-0")  # its tunnel's charon too
    ping = run_lab("exec", "vm1", "--lab", name, "--", "ping", "-c", "3", "-W", "2", "10.2.0.10", home=lab_home)
    assert ping.returncode == 0, ping.stdout + ping.stderr
