"""Which runtime backend a lab runs on: `lab up`'s order (--runtime, the file's runtime:, LAB_RUNTIME, docker),
the record in the lab's state, and every later command connecting to the recorded backend with its settings."""

from __future__ import annotations

import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest

from lab.errors import RuntimeBackendError
from lab.runtime import registry
from lab.runtime.registry import Choice
from lab.topology.model import Topology

ROOT = Path(__file__).resolve().parents[2]
SWARM_ENV = {"LAB_SWARM_MANAGER": "unix:///run/m.sock", "LAB_SWARM_PLACE": "azgw-0=h1"}


def test_the_topology_key_allows_exactly_the_registered_backends() -> None:
    allowed = typing.get_args(typing.get_args(Topology.model_fields["runtime"].annotation)[0])
    assert set(allowed) == set(registry.BACKENDS)


@pytest.mark.parametrize(("flag", "key", "env", "expected"), [
    ("swarm", "docker", {"LAB_RUNTIME": "docker"}, "swarm"),  # the flag wins
    (None, "swarm", {"LAB_RUNTIME": "docker"}, "swarm"),  # then the file's key
    (None, None, {"LAB_RUNTIME": "swarm"}, "swarm"),  # then the variable
    (None, None, {}, "docker"),  # then the default
])
def test_up_chooses_flag_then_key_then_env_then_docker(flag: str | None, key: str | None, env: dict[str, str],
                                                      expected: str) -> None:
    assert registry.choose(flag, key, env).backend == expected


def test_the_swarm_choice_carries_its_settings_and_docker_none() -> None:
    assert registry.choose("swarm", None, {**SWARM_ENV, "OTHER": "x"}) == Choice("swarm", SWARM_ENV)
    assert registry.choose("docker", None, {**SWARM_ENV, "OTHER": "x"}) == Choice("docker", {})


@pytest.mark.parametrize(("flag", "env", "where"), [("k8s", {}, "--runtime=k8s"),
                                                    (None, {"LAB_RUNTIME": "k8s"}, "LAB_RUNTIME=k8s")])
def test_an_unknown_backend_is_named_with_where_it_came_from(flag: str | None, env: dict[str, str],
                                                            where: str) -> None:
    with pytest.raises(RuntimeBackendError, match=where) as info:
        registry.choose(flag, None, env)
    assert info.value.hint == "one of: docker, swarm"


def test_a_record_reads_back_and_junk_reads_as_none(tmp_path: Path) -> None:
    registry.record(tmp_path / "a", Choice("swarm", SWARM_ENV))
    assert registry.recorded(tmp_path / "a") == Choice("swarm", SWARM_ENV)
    assert registry.recorded(tmp_path / "missing") is None
    for junk in ("not json", '{"settings": {}}', '{"backend": "k8s"}', "[1]"):
        (tmp_path / "a" / registry.RECORD_FILE).write_text(junk)
        assert registry.recorded(tmp_path / "a") is None, junk


def test_a_record_alone_is_forgotten_one_beside_state_kept(tmp_path: Path) -> None:
    registry.record(tmp_path / "a", Choice("docker"))
    registry.forget_if_alone(tmp_path / "a")
    assert not (tmp_path / "a").exists()
    registry.record(tmp_path / "b", Choice("docker"))
    (tmp_path / "b" / "topology.yml").write_text("name: b\n")
    registry.forget_if_alone(tmp_path / "b")
    registry.forget_if_alone(tmp_path / "missing")
    assert registry.recorded(tmp_path / "b") == Choice("docker")


def _lab(home: Path, name: str, choice: Choice | None) -> None:
    (home / name).mkdir(parents=True)
    (home / name / "topology.yml").write_text(f"name: {name}\n")
    if choice is not None:
        registry.record(home / name, choice)


def test_without_a_name_the_record_all_labs_share_else_none(tmp_path: Path) -> None:
    swarm = Choice("swarm", SWARM_ENV)
    assert registry.recorded_for(tmp_path / "nothing", None) is None
    _lab(tmp_path, "a", swarm)
    _lab(tmp_path, "b", swarm)
    assert registry.recorded_for(tmp_path, None) == swarm
    assert registry.recorded_for(tmp_path, "a") == swarm
    _lab(tmp_path, "c", None)  # a lab with no record (brought up before records, or by test-device)
    assert registry.recorded_for(tmp_path, None) is None
    assert registry.recorded_for(tmp_path, "c") is None


def test_connect_uses_the_recorded_backend_and_its_settings_over_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, str]] = []
    fake = types.ModuleType("fake_backend")
    fake.SETTINGS_ENV = ("FAKE_URL",)  # type: ignore[attr-defined]
    fake.connect_runtime = lambda env: seen.append(dict(env)) or "runtime"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_backend", fake)
    monkeypatch.setitem(registry.BACKENDS, "fake", "fake_backend")
    env = {"LAB_RUNTIME": "docker", "FAKE_URL": "now"}
    assert registry.connect_runtime(env, Choice("fake", {"FAKE_URL": "at-up"})) == "runtime"
    assert seen[-1]["LAB_RUNTIME"] == "fake" and seen[-1]["FAKE_URL"] == "at-up"
    registry.connect_runtime({"LAB_RUNTIME": "fake", "FAKE_URL": "now"})  # no record: the environment
    assert seen[-1]["FAKE_URL"] == "now"


def test_every_later_command_connects_to_the_labs_recorded_backend(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from lab.cli import common

    chosen: list[Choice | None] = []
    monkeypatch.setattr(registry, "connect_runtime", lambda env=None, choice=None: chosen.append(choice))
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    _lab(tmp_path, "sw1", Choice("swarm", SWARM_ENV))
    topo = tmp_path / "sw1.yml"
    topo.write_text("name: sw1\n")
    common.make_runtime("sw1")
    common.make_runtime(str(topo))  # `lab down FILE`, `lab apply FILE`
    common.make_runtime(None)  # the only lab
    assert chosen == [Choice("swarm", SWARM_ENV)] * 3
    common.make_runtime("other")
    assert chosen[-1] is None  # nothing recorded: LAB_RUNTIME, else docker


def _lab_cli(*argv: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *argv], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "LAB_HOME": str(home)})


def test_validate_names_a_bad_runtime_key_and_its_fix(tmp_path: Path) -> None:
    res = _lab_cli("validate", "tests/topology/errors/bad-runtime.yml", home=tmp_path)
    assert res.returncode == 2
    assert "runtime: Input should be 'docker' or 'swarm', found 'kubernetes'" in res.stderr
    assert "lab up --runtime" in res.stderr


def test_up_refuses_a_runtime_other_than_the_one_the_lab_was_brought_up_on(tmp_path: Path) -> None:
    topo = tmp_path / "t.yml"
    topo.write_text((ROOT / "topologies" / "s2s-route-based.yml").read_text().replace("name: s2s-rb", "name: swrt1"))
    registry.record(tmp_path / "home" / "swrt1", Choice("docker"))
    res = _lab_cli("up", str(topo), "--runtime", "swarm", home=tmp_path / "home")
    assert res.returncode == 2
    assert "was brought up on the docker runtime" in res.stderr and "lab down swrt1" in res.stderr
    assert registry.recorded(tmp_path / "home" / "swrt1") == Choice("docker")  # untouched
    bad = _lab_cli("up", str(topo), "--runtime", "k8s", home=tmp_path / "home")
    assert bad.returncode == 2 and "k8s" in bad.stderr
