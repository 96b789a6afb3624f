"""Golden files: every topology under topologies/ and tests/golden/inputs renders to the committed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.plan import build_plan
from lab.render.lab_files import render_files
from lab.render.strongswan_conf import Dataplane
from lab.secrets import resolve_keys
from lab.topology.load import load_file

ROOT = Path(__file__).resolve().parents[2]
INPUTS = sorted([*ROOT.glob("topologies/*.yml"), *ROOT.glob("tests/golden/inputs/*.yml")])
EXPECTED = ROOT / "tests" / "golden" / "expected"
# Also rendered for the kernel data plane (expected/kernel-<name>): where it differs beyond the plugin list
# (tunnels sharing selectors get XFRM interfaces, lab/render/xfrm_ifaces.py).
KERNEL = [ROOT / "topologies" / f"{n}.yml" for n in ("active-active", "active-active-full-mesh")]
CASES = [(p, "libipsec") for p in INPUTS] + [(p, "kernel") for p in KERNEL]


def rendered(path: Path, dataplane: Dataplane = "libipsec") -> dict[str, str]:
    topo, _ = load_file(path)
    keys = resolve_keys(topo, {}, generate=lambda: "golden-key")
    files, _ = render_files(topo, build_plan(topo), keys, dataplane)
    return {str(k): v for k, v in files.items()}


@pytest.mark.parametrize(("path", "dataplane"), CASES,
                         ids=[p.stem if d == "libipsec" else f"kernel-{p.stem}" for p, d in CASES])
def test_render_matches_golden(path: Path, dataplane: Dataplane, update_golden: bool) -> None:
    out = rendered(path, dataplane)
    case = EXPECTED / (path.stem if dataplane == "libipsec" else f"kernel-{path.stem}")
    if update_golden:
        for rel, text in out.items():
            (case / rel).parent.mkdir(parents=True, exist_ok=True)
            (case / rel).write_text(text)
    expected = {str(p.relative_to(case)): p.read_text() for p in case.rglob("*") if p.is_file()}
    assert sorted(out) == sorted(expected), "rendered file set differs; run pytest --update-golden"
    for rel, text in out.items():
        assert text == expected[rel], f"{path.stem}/{rel} differs from golden; run pytest --update-golden"


@pytest.mark.parametrize("path", INPUTS, ids=[p.stem for p in INPUTS])
def test_render_is_deterministic(path: Path) -> None:
    assert rendered(path) == rendered(path)
