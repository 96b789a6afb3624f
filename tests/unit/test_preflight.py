"""Preflight's file-reading checks against fake trees: the dataplane choice must not need a real kernel."""

from __future__ import annotations

from pathlib import Path

import docker.errors
import pytest
import requests

from lab.errors import LabError, OptionError, RuntimeBackendError
from lab.runtime.preflight import (
    PreflightReport,
    check_dataplane,
    check_docker,
    check_root,
    check_tun,
    choose_dataplane,
    enforce,
    kernel_has_esp,
)

ROOT = Path(__file__).resolve().parents[2]
RELEASE = "6.1.0-test-amd64"


def _touch(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_empty_tree_means_libipsec(tmp_path: Path) -> None:
    assert not kernel_has_esp(tmp_path, RELEASE)
    assert choose_dataplane(tmp_path, RELEASE) == "libipsec"


def test_loaded_module_means_kernel(tmp_path: Path) -> None:
    (tmp_path / "sys/module/esp4").mkdir(parents=True)
    assert choose_dataplane(tmp_path, RELEASE) == "kernel"


def test_builtin_listed_means_kernel(tmp_path: Path) -> None:
    builtin = "kernel/net/ipv4/ah4.ko\nkernel/net/ipv4/esp4.ko\n"
    _touch(tmp_path / f"lib/modules/{RELEASE}/modules.builtin", builtin)
    assert choose_dataplane(tmp_path, RELEASE) == "kernel"


def test_builtin_without_esp4_means_libipsec(tmp_path: Path) -> None:
    # esp4_offload.ko and esp6.ko are not esp4: only the exact module counts.
    builtin = "kernel/net/ipv4/esp4_offload.ko\nkernel/net/ipv6/esp6.ko\n"
    _touch(tmp_path / f"lib/modules/{RELEASE}/modules.builtin", builtin)
    assert choose_dataplane(tmp_path, RELEASE) == "libipsec"


@pytest.mark.parametrize("filename", ["esp4.ko", "esp4.ko.xz", "esp4.ko.zst"])
def test_loadable_module_means_kernel(tmp_path: Path, filename: str) -> None:
    _touch(tmp_path / f"lib/modules/{RELEASE}/kernel/net/ipv4/{filename}")
    assert choose_dataplane(tmp_path, RELEASE) == "kernel"


def test_module_of_another_release_does_not_count(tmp_path: Path) -> None:
    _touch(tmp_path / "lib/modules/5.10.0-old/kernel/net/ipv4/esp4.ko")
    assert choose_dataplane(tmp_path, RELEASE) == "libipsec"


def test_dataplane_check_is_informational(tmp_path: Path) -> None:
    check = check_dataplane(tmp_path, RELEASE)
    assert check.ok
    assert check.detail.startswith("libipsec")


def test_tun(tmp_path: Path) -> None:
    missing = check_tun(tmp_path)
    assert not missing.ok
    assert missing.fix and "mknod" in missing.fix
    _touch(tmp_path / "dev/net/tun")
    assert check_tun(tmp_path).ok


def test_root() -> None:
    assert check_root(0).ok
    not_root = check_root(1000)
    assert not not_root.ok
    assert not_root.fix


class _FakeClient:
    def ping(self) -> bool:
        return True

    def version(self) -> dict[str, str]:
        return {"Version": "20.10.24"}


def _unreachable() -> _FakeClient:
    raise docker.errors.DockerException("Error while fetching server API version")


class _RefusingClient(_FakeClient):
    def ping(self) -> bool:
        raise requests.ConnectionError("connection refused")


def test_docker_reachable() -> None:
    check = check_docker(_FakeClient)  # type: ignore[arg-type]
    assert check.ok
    assert "20.10.24" in check.detail


@pytest.mark.parametrize("factory", [_unreachable, _RefusingClient])
def test_docker_unreachable_suggests_setup(factory: object) -> None:
    check = check_docker(factory)  # type: ignore[arg-type]
    assert not check.ok
    assert check.fix and "make setup" in check.fix and "dockerd" in check.fix


def test_report_ok_only_when_every_check_passes(tmp_path: Path) -> None:
    good = PreflightReport((check_root(0), check_dataplane(tmp_path, RELEASE)), "libipsec")
    bad = PreflightReport((check_root(1000), check_tun(tmp_path)), "libipsec")
    assert good.ok
    assert not good.failed
    assert not bad.ok
    assert [c.name for c in bad.failed] == ["root", "tun"]


def test_enforce_reports_every_failure_then_raises(tmp_path: Path) -> None:
    said: list[str] = []
    report = PreflightReport((check_root(1000), check_tun(tmp_path), check_dataplane(tmp_path, RELEASE)), "libipsec")
    with pytest.raises(RuntimeBackendError, match="preflight failed: root, tun") as info:
        enforce(report, said.append)
    assert [line.split(":")[0] for line in said] == ["preflight root", "preflight tun"]
    assert info.value.hint and "sudo" in info.value.hint and "mknod" in info.value.hint


def test_enforce_returns_the_dataplane(tmp_path: Path) -> None:
    said: list[str] = []
    assert enforce(PreflightReport((check_root(0),), "kernel"), said.append) == "kernel"
    assert said == ["data plane: kernel"]


def _esp_tree(root: Path) -> Path:
    _touch(root / "lib/modules" / RELEASE / "kernel/net/ipv4/esp4.ko.xz")
    return root


def test_enforce_says_which_dataplane_and_why(tmp_path: Path) -> None:
    said: list[str] = []
    report = PreflightReport((check_root(0), check_dataplane(_esp_tree(tmp_path), RELEASE)), "kernel")
    assert enforce(report, said.append) == "kernel"
    assert said == [f"data plane: kernel (esp4 found in kernel {RELEASE}: kernel ESP and XFRM; "
                    "--dataplane libipsec overrides)"]
    said.clear()
    enforce(PreflightReport((check_dataplane(tmp_path / "none", RELEASE),), "libipsec"), said.append)
    assert said == [f"data plane: libipsec (no esp4 in kernel {RELEASE}: userspace ESP over /dev/net/tun)"]


def test_requested_dataplane_overrides_or_fails_with_the_fix(tmp_path: Path) -> None:
    esp = _esp_tree(tmp_path / "esp")
    forced = check_dataplane(esp, RELEASE, "libipsec")
    assert forced.ok and forced.detail.startswith("libipsec (requested with --dataplane")
    impossible = check_dataplane(tmp_path / "none", RELEASE, "kernel")
    assert not impossible.ok and "has no esp4" in impossible.detail and "cannot encrypt ESP" in impossible.detail
    assert impossible.fix and "make test-kernel" in impossible.fix
    with pytest.raises(OptionError, match="preflight failed: --dataplane kernel: kernel .* has no esp4") as info:
        enforce(PreflightReport((impossible,), "kernel"), lambda _line: None)
    assert info.value.exit_code == 2  # the option asks the impossible: bad input
    with pytest.raises(RuntimeBackendError, match="preflight failed: root, dataplane"):  # and a broken host: 3
        enforce(PreflightReport((check_root(1000), impossible), "kernel"), lambda _line: None)


def test_running_lab_keeps_the_dataplane_it_was_brought_up_with(tmp_path: Path) -> None:
    from lab import core
    from lab.runtime.preflight import host_dataplane

    topo = ROOT / "topologies" / "s2s-route-based.yml"
    lab = core.load(topo, tmp_path / "home")
    lab.dir.write(topo.read_text(), {}, {}, [], "kernel")
    assert host_dataplane(tmp_path / "no-esp") == "libipsec"  # this "kernel" has no esp4 ...
    assert core.load_running(lab.topo.name, tmp_path / "home").dataplane == "kernel"  # ... the lab keeps its own
    lab.dir.dataplane_file.unlink()
    with pytest.raises(LabError, match="has no data plane recorded in .*dataplane: it is not up here"):
        _ = core.load_running(lab.topo.name, tmp_path / "home").dataplane


def test_commands_on_a_running_lab_never_probe_the_host_kernel() -> None:
    """Only preflight (`lab up`, test-device, scenario start) chooses a data plane; every other command reads
    the one `lab up` recorded (Lab.dataplane)."""
    probing = [str(p.relative_to(ROOT)) for p in (ROOT / "lab").rglob("*.py") if p.parent.name != "runtime"
               and any(f in p.read_text() for f in ("host_dataplane", "choose_dataplane", "kernel_has_esp"))]
    assert probing == []
