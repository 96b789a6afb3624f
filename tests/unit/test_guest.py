"""The kernel-test guest runner's pure parts: pinned requirements, the image cache key, QEMU's command line."""

from __future__ import annotations

from pathlib import Path

from lab.guest.__main__ import SMOKE_PYTEST, stale_runs
from lab.guest.image import PACKAGES, cache_key, requirements
from lab.guest.vm import VmSpec, qemu_argv

ROOT = Path(__file__).resolve().parents[2]


def test_requirements_pin_what_this_host_runs_and_add_pytest() -> None:
    pins = {"pydantic": "2.13.4", "pytest": "9.0.3"}
    reqs = requirements(ROOT / "pyproject.toml", pins.get)
    assert "pydantic==2.13.4" in reqs and "pytest==9.0.3" in reqs
    assert "scapy>=2.5" in reqs  # not installed here: as pyproject states it
    assert reqs == sorted(reqs, key=str.lower)


def test_cache_key_changes_with_every_input_and_only_then() -> None:
    scripts = {"init": b"#!/bin/sh\n", "build-image.sh": b"set -e\n"}
    base = cache_key(scripts, PACKAGES, ["a==1"], "http://deb.debian.org/debian")
    assert base == cache_key(dict(reversed(scripts.items())), PACKAGES, ["a==1"], "http://deb.debian.org/debian/")
    assert base != cache_key({**scripts, "init": b"#!/bin/sh -e\n"}, PACKAGES, ["a==1"], "http://deb.debian.org/debian")
    assert base != cache_key(scripts, (*PACKAGES, "vim"), ["a==1"], "http://deb.debian.org/debian")
    assert base != cache_key(scripts, PACKAGES, ["a==2"], "http://deb.debian.org/debian")
    assert base != cache_key(scripts, PACKAGES, ["a==1"], "http://mirror.example/debian")


def test_qemu_runs_tcg_without_network_and_shares_src_read_only(tmp_path: Path) -> None:
    argv = qemu_argv(VmSpec(tmp_path / "img", tmp_path / "o.qcow2", tmp_path / "d.img", tmp_path / "src",
                            tmp_path / "io"))
    joined = " ".join(argv)
    assert argv[argv.index("-accel") + 1] == "tcg,thread=multi" and "-enable-kvm" not in argv
    assert argv[argv.index("-nic") + 1] == "none" and "-netdev" not in argv  # no network device at all
    assert f"path={tmp_path / 'src'},mount_tag=src,security_model=none,id=src,readonly=on" in joined
    assert f"path={tmp_path / 'io'},mount_tag=io,security_model=none,id=io " in joined + " "
    assert "init=/sbin/lab-guest-init" in joined and f"file={tmp_path / 'o.qcow2'},if=virtio,format=qcow2" in joined
    assert f"file={tmp_path / 'd.img'},if=virtio,format=raw" in joined  # Docker's disk while it is being filled


def test_smoke_subset_is_the_reference_lab_verify_on_the_kernel_plane() -> None:
    assert SMOKE_PYTEST.startswith("-v -rs -m kernel ")
    (target,) = SMOKE_PYTEST.split()[4:]
    module, test = target.split("::")
    assert (ROOT / module).is_file() and f"def {test}(" in (ROOT / module).read_text()


def test_stale_runs_are_the_dead_runners_directories(tmp_path: Path) -> None:
    for name in ("run-11", "run-22", "run-x", "last-run", "image-abc"):
        (tmp_path / name).mkdir()
    (tmp_path / "run-33").write_text("")  # not a directory: left alone
    assert stale_runs(tmp_path, lambda pid: pid == 22) == [tmp_path / "run-11", tmp_path / "run-x"]
