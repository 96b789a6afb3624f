"""Every scenario directory is complete and consistent, without Docker: topology valid, checks known, hints
present, and the known fix's edits find their text in the file the scenario ships."""

from __future__ import annotations

import pytest

from lab.errors import LabError
from lab.scenarios.catalog import SCENARIOS_DIR, hints, load_scenario, scenario_names, task
from lab.topology.load import load_file

NAMES = scenario_names()


def test_at_least_six_scenarios() -> None:
    assert len(NAMES) >= 6


@pytest.mark.parametrize("name", NAMES)
def test_scenario_is_complete(name: str) -> None:
    sc = load_scenario(name)
    d = SCENARIOS_DIR / name
    topo, _ = load_file(d / sc.topology)
    assert topo.name.startswith("sc-")
    assert task(name).startswith("# ") and len(hints(name)) >= 2
    assert sc.fix, "a known fix is what the integration test applies"
    for site in topo.sites.values():
        for own in (site.device.config, site.device.frr_config):
            assert own is None or (d / own).is_file()
    for step in sc.fix:
        if step.edit:
            shipped = (d / f"site.{step.edit['file']}").read_text()  # site.swanctl.conf or site.frr.conf
            assert step.edit["old"] in shipped


def test_unknown_scenario_names_the_list() -> None:
    with pytest.raises(LabError, match="no scenario 'nope'"):
        load_scenario("nope")
