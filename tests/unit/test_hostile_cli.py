"""Hostile input at the CLI, before Docker is touched: binary and non-UTF-8 topology files, a bad lab name
and a refused shared key exit 2 with one error line (and a hint) on stderr, no traceback, nothing created."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "topologies" / "s2s-route-based.yml").read_text()


def _lab(*argv: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "lab", *argv], capture_output=True, text=True, timeout=60,
                          env=env, cwd=ROOT)


def _assert_exit_2_one_error(res: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr
    for needle in needles:
        assert needle in res.stderr, res.stderr


@pytest.mark.parametrize(("content", "needle"), [
    (bytes(range(256)) * 4, "NUL byte: this is a binary file"),
    (b"name: caf\xe9\n", "line 1: byte 0xe9 is not UTF-8"),
    (b"\x89PNG\r\n\x1a\n" + b"\xff" * 40, "byte 0x89 is not UTF-8"),
], ids=["binary", "latin-1", "png"])
@pytest.mark.parametrize("command", ["up", "validate", "down", "test-device"])
def test_binary_or_non_utf8_topology_exits_2(tmp_path: Path, content: bytes, needle: str, command: str) -> None:
    path = tmp_path / "bad.yml"
    path.write_bytes(content)
    home = tmp_path / "home"
    _assert_exit_2_one_error(_lab(command, str(path), home=home), str(path), needle, "hint: ")
    assert not home.exists()


def test_name_pattern_error_is_not_eaten_by_markup(tmp_path: Path) -> None:
    path = tmp_path / "t.yml"
    path.write_text(GOOD.replace("name: s2s-rb", "name: Bad_Name"))
    res = _lab("up", str(path), home=tmp_path / "home")
    _assert_exit_2_one_error(res, "name: String should match pattern '^[a-z][a-z0-9-]{0,15}$', found 'Bad_Name'")


def test_refused_shared_key_exits_2_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "t.yml"
    path.write_text(GOOD.replace("ike_version: IKEv2", 'ike_version: IKEv2\n    shared_key: "s3cr\\u00e9t-[b]"'))
    res = _lab("up", str(path), home=tmp_path / "home")
    _assert_exit_2_one_error(res, "connections.azgw-onprem.shared_key: shared key has a non-ASCII character (U+00E9)")
    assert "s3cr" not in res.stderr + res.stdout
    assert not (tmp_path / "home").exists()


def test_validate_prints_field_errors_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "t.yml"
    path.write_text(GOOD.replace("sku: VpnGw1", "sku: VpnGw9"))
    res = _lab("validate", str(path), home=tmp_path / "home")
    assert res.returncode == 2
    assert "gateways.azgw.sku" in res.stderr and "gateways.azgw.sku" not in res.stdout


@pytest.mark.parametrize("host", ["example.com", "0.0.0.0.0", "127.0.0.1; rm -rf /"])
def test_lab_ui_refuses_a_host_that_is_not_an_ip_address(tmp_path: Path, host: str) -> None:
    res = _lab("ui", "nolab", "--host", host, home=tmp_path)
    _assert_exit_2_one_error(res, f"--host {host!r}: not an IP address", "--host 127.0.0.1")
    assert not any(tmp_path.iterdir())  # nothing started, nothing written
