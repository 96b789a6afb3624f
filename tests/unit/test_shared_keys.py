"""Shared keys: every key Azure accepts (1-128 printable ASCII, lab.azure.facts) round-trips byte for byte
through the topology file, the lab's swanctl.conf and vici secret, `lab device-config` (swanctl.conf and
ipsec.secrets) and `lab apply`; every key Azure refuses is a TopologyError (exit 2) naming the field, never
the key. Key files are 0600."""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path, PurePosixPath

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.azure import facts
from lab.core import Lab
from lab.device.parse import parse_device
from lab.errors import TopologyError
from lab.ops import apply
from lab.plan import build_plan
from lab.render.device_config import render_ipsec_conf_device, render_swanctl_device
from lab.render.lab_files import render_files
from lab.render.swanctl import psk_literal
from lab.state import LabDir, write_private
from lab.topology.load import load_text
from tests.topology.builders import base

PRINTABLE = st.characters(min_codepoint=facts.SHARED_KEY_CHARS[0], max_codepoint=facts.SHARED_KEY_CHARS[1])
AZURE_KEYS = st.text(PRINTABLE, min_size=1, max_size=facts.SHARED_KEY_LENGTH[1])
NASTY = ['"', "\\", "#", " lead and trail ", "0x41", "0sQUJD", "a\"b\\c#d'e$f{g}h=i;j,k", "x" * 128]


def _topology_text(key: str, name: str = "t") -> str:
    data = base(name=name)
    data["connections"]["c1"]["shared_key"] = key
    return yaml.safe_dump(data)


def _lab(text: str, root: Path) -> Lab:
    topo, found = load_text(text)
    return Lab(topo, build_plan(topo), LabDir.of(root, topo.name), tuple(found))


def _check_round_trip(key: str) -> None:
    topo, _ = load_text(_topology_text(key))
    assert topo.connections["c1"].shared_key.get_secret_value() == key
    keys = {"c1": key}
    (conn,) = parse_device(render_swanctl_device(topo, "azgw", "onprem", keys))
    assert conn.psks == (key,)
    conf, secrets = render_ipsec_conf_device(topo, "azgw", "onprem", keys)
    assert {c.psks for c in parse_device(conf, secrets)} == {(key,)}
    files, swan = render_files(topo, build_plan(topo), keys, "libipsec")
    for unit in ("azgw-0/tunnels/c1", "onprem/tunnels/c1"):  # route-based: each tunnel's own charon
        assert parse_device(files[PurePosixPath(unit) / "swanctl.conf"])[0].psks == (key,)
        assert [s.vici()["data"] for s in swan[unit].secrets] == [key]


@settings(max_examples=300, deadline=None)
@given(AZURE_KEYS)
def test_every_azure_key_round_trips(key: str) -> None:
    _check_round_trip(key)


@pytest.mark.parametrize("key", NASTY)
def test_keys_that_need_escaping_round_trip(key: str) -> None:
    _check_round_trip(key)
    assert psk_literal(key).startswith("0x") == (key != "x" * 128)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(AZURE_KEYS)
def test_lab_apply_carries_a_new_key_exactly(key: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        old, new = _lab(_topology_text("old-key"), Path(tmp)), _lab(_topology_text(key), Path(tmp))
        changes = apply.plan_changes(old.topo, new.topo)
        assert [c.kind for c in changes] == (["shared-key"] if key != "old-key" else [])
        prep = apply.prepare(old, new, Path(tmp) / "t.yml", "libipsec")
        assert prep.keys["c1"] == key
        assert [s.vici()["data"] for s in prep.swan["azgw-0/tunnels/c1"].secrets] == [key]
        assert parse_device(prep.files[PurePosixPath("azgw-0/tunnels/c1") / "swanctl.conf"])[0].psks == (key,)


REFUSED = [("", "0 characters"), ("x" * 129, "129 characters"), ("ab\ncd", "control character (U+000A)"),
           ("tab\there", "U+0009"), ("caf\u00e9", "non-ASCII character (U+00E9)"), ("del\x7f", "U+007F"),
           ("emoji\U0001f511", "non-ASCII")]


@pytest.mark.parametrize(("key", "why"), REFUSED)
def test_keys_azure_refuses_are_exit_2_naming_the_field(key: str, why: str) -> None:
    with pytest.raises(TopologyError) as info:
        load_text(_topology_text(key), "t.yml")
    assert info.value.exit_code == 2
    (line,) = info.value.findings
    assert line.startswith("t.yml: connections.c1.shared_key: shared key ") and why in line
    assert "Azure accepts" in line and "use 1-128" in line
    if len(key) > 3:
        assert key not in line


@given(st.text(min_size=1, max_size=200).filter(lambda k: facts.shared_key_problem(k) is not None))
def test_refusal_matches_the_rule(key: str) -> None:
    bad = len(key) > 128 or any(not 0x20 <= ord(c) <= 0x7E for c in key)
    assert bad


def test_key_files_are_0600_even_when_they_existed(tmp_path: Path) -> None:
    path = tmp_path / "swanctl.conf"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "secret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "secret"
    d = LabDir.of(tmp_path, "t")
    d.write(_topology_text("k"), {"c1": "k"},
            {PurePosixPath("onprem/swanctl.conf"): "s", PurePosixPath("onprem/ipsec.secrets"): "s",
             PurePosixPath("onprem/strongswan.conf"): "c"}, ["onprem"])
    for p in (d.topology, d.keys, d.node("onprem") / "swanctl.conf", d.node("onprem") / "ipsec.secrets"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
