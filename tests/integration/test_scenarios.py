"""Every training scenario: `start` breaks it, `check` fails, the known fix (`solve`) repairs it, `check`
passes. One scenario at a time, each under a lab name of this run's own (`--lab sc-<random>`), so two test
runs on one machine never share a container or namespace."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.scenarios.catalog import load_scenario, scenario_names
from tests.integration.helpers import lab_leftovers, lab_name, run_lab

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", scenario_names())
def test_scenario_fails_then_fix_passes(tmp_path: Path, name: str) -> None:
    home = tmp_path / "home"  # its own LAB_HOME: scenario.json is per home
    sc_lab = ""
    try:
        sc_lab = lab_name(f"sc-{name[:8].rstrip('-')}")
        start = run_lab("scenario", "start", name, "--lab", sc_lab, home=home, timeout=180)
        assert start.returncode == 0, start.stderr
        assert (home / "scenario.json").read_text().split('"lab":"')[1].split('"')[0] == sc_lab
        before = run_lab("scenario", "check", home=home, timeout=180)
        assert before.returncode == 1, before.stdout + before.stderr
        assert "FAIL" in before.stdout
        hint = run_lab("scenario", "hint", home=home)
        assert hint.returncode == 0 and hint.stdout.startswith("hint 1/"), hint.stderr
        solve = run_lab("scenario", "solve", home=home, timeout=120)
        assert solve.returncode == 0, solve.stderr
        after = run_lab("scenario", "check", home=home, timeout=180)
        assert after.returncode == 0, after.stdout + after.stderr
        checks = load_scenario(name).checks
        passed = [ln.split()[1].rstrip(":") for ln in after.stdout.splitlines() if ln.startswith("PASS")]
        assert sorted(passed) == sorted(checks)
    finally:
        run_lab("scenario", "stop", home=home)
        if sc_lab:
            assert lab_leftovers(sc_lab) == []
