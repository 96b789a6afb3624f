"""The ifb module is loaded with numifbs=0 exactly when the kernel would otherwise autoload it with its
default two host devices (ifb0, ifb1); a failed load stops shaping. Fake /sys and /lib/modules trees."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lab.errors import RuntimeBackendError
from lab.runtime.ifb_module import ensure_ifb_without_host_devices, ifb_state

RELEASE = "6.1.0-50-amd64"


def tree(tmp_path: Path, *, loaded: bool = False, builtin: bool = False, module: bool = False) -> Path:
    moddir = tmp_path / "lib/modules" / RELEASE
    moddir.mkdir(parents=True)
    (moddir / "modules.builtin").write_text(
        "kernel/net/sched/sch_htb.ko\n" + ("kernel/drivers/net/ifb.ko\n" if builtin else ""))
    if module:
        (moddir / "kernel/drivers/net").mkdir(parents=True)
        (moddir / "kernel/drivers/net/ifb.ko.xz").write_bytes(b"")
    if loaded:
        (tmp_path / "sys/module/ifb").mkdir(parents=True)
    return tmp_path


class Recorder:
    def __init__(self, rc: int = 0, stderr: str = "") -> None:
        self.calls: list[list[str]] = []
        self.rc, self.stderr = rc, stderr

    def __call__(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        return subprocess.CompletedProcess(argv, self.rc, "", self.stderr)


@pytest.mark.parametrize("kw, state", [({"loaded": True, "module": True}, "loaded"), ({"builtin": True}, "builtin"),
                                       ({"module": True}, "module"), ({}, "absent")])
def test_state(tmp_path: Path, kw: dict[str, bool], state: str) -> None:
    assert ifb_state(tree(tmp_path, **kw), RELEASE) == state


def test_a_module_not_loaded_yet_is_loaded_with_no_devices(tmp_path: Path) -> None:
    run = Recorder()
    assert ensure_ifb_without_host_devices(tree(tmp_path, module=True), RELEASE, run) == "module"
    assert run.calls == [["modprobe", "ifb", "numifbs=0"]]


@pytest.mark.parametrize("kw", [{"loaded": True, "module": True}, {"builtin": True}, {}])
def test_nothing_is_loaded_when_the_kernel_cannot_autoload_it(tmp_path: Path, kw: dict[str, bool]) -> None:
    run = Recorder()
    ensure_ifb_without_host_devices(tree(tmp_path, **kw), RELEASE, run)
    assert run.calls == []


def test_a_failed_load_stops_shaping_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(RuntimeBackendError, match="numifbs=0.*FATAL: no modprobe") as exc:
        ensure_ifb_without_host_devices(tree(tmp_path, module=True), RELEASE, Recorder(1, "FATAL: no modprobe"))
    assert "modprobe ifb numifbs=0" in (exc.value.hint or "")


def test_modprobe_missing_is_an_error_too(tmp_path: Path) -> None:
    def missing(argv: list[str]) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError(2, "No such file or directory", "modprobe")

    with pytest.raises(RuntimeBackendError, match="cannot load the ifb module"):
        ensure_ifb_without_host_devices(tree(tmp_path, module=True), RELEASE, missing)
