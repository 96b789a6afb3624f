"""`python -m lab.guest` (`make test-kernel`): run the kernel data-plane tests in a QEMU guest.

Steps: QEMU present (apt) -> guest image (cached by input hash) -> Docker's data disk holding the lab's node
image (cached by image tag: `docker save` here, `docker load` in a first boot; never rebuilt in the guest)
-> a test boot over throw-away overlays -> the guest's pytest result (exit status, junit XML) -> exit with it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lab.errors import LabError
from lab.guest import image, vm

DEFAULT_CACHE = Path(os.environ.get("LAB_GUEST_CACHE", "/var/cache/lab-guest"))
# What proves the kernel path, within CI's time (each lab test takes minutes under emulation): the reference lab
# passes every `lab verify` check (raw ESP, SPIs in `ip xfrm state`, independent decryption, Wireshark keys)
# and an active-active gateway keeps delivering when an instance is killed; shaping leaves the guest's own
# namespace alone (its `ifb` is a module, autoloaded on first use). `--all`: every kernel variant.
CORE = ("tests/integration/test_shaping_host.py",
        "tests/integration/test_verify.py::test_reference_lab_passes_and_saved_capture_decrypts_in_tshark",
        "tests/integration/test_ha.py::test_active_active_unplanned_keeps_delivering_on_the_other_instance")
DEFAULT_PYTEST = "-v -rs -m kernel " + " ".join(CORE)  # -v: one line per test on the console
# CI's subset (`make test-kernel-smoke`, .ci/run): the reference lab's `lab verify` on the kernel data plane, the
# one test that reads every piece of kernel-ESP evidence (raw ESP, XFRM SPIs and counters, decryption, keys).
SMOKE = ("tests/integration/test_verify.py::test_reference_lab_passes_and_saved_capture_decrypts_in_tshark",)
SMOKE_PYTEST = "-v -rs -m kernel " + " ".join(SMOKE)
ALL_PYTEST = "-v -rs -m kernel tests/integration"
DOCKER_DISK_SIZE = "8G"  # sparse: only what Docker writes takes space
SRC = Path(__file__).resolve().parents[2]


def say(msg: str) -> None:
    print(f"lab.guest: {msg}", file=sys.stderr, flush=True)


def node_image() -> str:
    """The lab's node image tag on this host, built if its inputs changed (lab.runtime.image)."""
    from lab.runtime.docker import connect_runtime
    from lab.runtime.image import default_containers_dir, ensure_image

    return ensure_image(connect_runtime().client, default_containers_dir(), say)


def write_env(io: Path, mode: str, tag: str, pytest_args: str = "", run: str = "") -> None:
    for stale in ("rc", "loaded", "junit.xml", "guest.log", "dockerd.log"):
        (io / stale).unlink(missing_ok=True)
    values = {"GUEST_MODE": mode, "GUEST_IMAGE": tag, "GUEST_PYTEST_ARGS": pytest_args, "GUEST_RUN": run}
    (io / "env").write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items()))


def docker_disk(cache: Path, img: Path, tag: str, io: Path, timeout: float) -> Path:
    """Docker's data disk with `tag` loaded, from the cache or made by one boot in load mode."""
    disk = cache / f"docker-{tag.replace(':', '-')}.img"
    if disk.is_file():
        say(f"node image {tag} already loaded: {disk}")
        return disk
    tmp = disk.with_suffix(".img.tmp")
    subprocess.run(["truncate", "-s", DOCKER_DISK_SIZE, str(tmp)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "labdocker", str(tmp)], check=True)
    try:
        say(f"docker save {tag} for the guest")
        subprocess.run(["docker", "save", "-o", str(io / "node-image.tar"), tag], check=True)
        write_env(io, "load", tag)
        say("booting the guest to load it (QEMU TCG, no network)")
        with vm.Overlay(img / "root.img", io / "root.qcow2") as root:
            vm.boot(vm.VmSpec(img, root, tmp, SRC, io), timeout, io / "console.log")
        loaded = (io / "loaded").read_text().strip() if (io / "loaded").is_file() else ""
        if loaded != tag:
            raise LabError(f"the guest did not load {tag}", hint=f"see {io / 'guest.log'}")
        tmp.rename(disk)
    finally:
        tmp.unlink(missing_ok=True)
        (io / "node-image.tar").unlink(missing_ok=True)
    for old in cache.glob("docker-*.img"):
        if old != disk:
            old.unlink()
    return disk


def snapshot_tree(io: Path) -> Path:
    """A copy of the project tree for the guest: the run tests what was there when it started, whatever
    happens to the checkout meanwhile (a rebase, an edit)."""
    dest = io / "src"
    shutil.copytree(SRC, dest, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.pcap", "*.egg-info"),
                    symlinks=True)
    return dest


def run_tests(img: Path, disk: Path, io: Path, tag: str, pytest_args: str, timeout: float, run: str = "") -> int:
    write_env(io, "test", tag, pytest_args, run)
    src = snapshot_tree(io)
    say(f"booting the guest to test (QEMU TCG, no network): {run or 'pytest ' + pytest_args}")
    try:
        with vm.Overlay(img / "root.img", io / "root.qcow2") as root, vm.Overlay(disk, io / "docker.qcow2") as dock:
            vm.boot(vm.VmSpec(img, root, dock, src, io), timeout, io / "console.log")
    finally:
        shutil.rmtree(src, ignore_errors=True)
    rc = io / "rc"
    text = rc.read_text().strip() if rc.is_file() else ""
    return int(text) if text.isdigit() else 3  # no status written: the guest broke before pytest ended


def stale_runs(cache: Path, alive: Callable[[int], bool]) -> list[Path]:
    """Run directories (`run-<pid>`) whose runner is gone: killed before it could tidy up."""
    def live(p: Path) -> bool:
        return p.name[4:].isdigit() and alive(int(p.name[4:]))
    return sorted(p for p in cache.glob("run-*") if p.is_dir() and not live(p))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exit_on_sigterm() -> None:
    """SIGTERM (a CI job cancelled or timed out) unwinds like an exception: QEMU is killed, overlays removed."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.guest", description=__doc__.splitlines()[0])
    ap.add_argument("--pytest-args", default=DEFAULT_PYTEST, help="pytest arguments in the guest (default: the core)")
    ap.add_argument("--all", action="store_true", help=f"every kernel variant: pytest {ALL_PYTEST}")
    ap.add_argument("--smoke", action="store_true", help=f"CI's subset: pytest {SMOKE_PYTEST}")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="guest image cache (outside the checkout)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds before a guest boot is killed")
    ap.add_argument("--run", default="", help="a shell command to run in the guest instead of pytest (debugging)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        say("must run as root (debootstrap, chroot, Docker)")
        return 2
    _exit_on_sigterm()
    started = time.monotonic()
    args.cache.mkdir(parents=True, exist_ok=True)
    for stale in stale_runs(args.cache, _alive):
        say(f"removed {stale} (its runner is gone)")
        shutil.rmtree(stale, ignore_errors=True)
    io = args.cache / f"run-{os.getpid()}"
    io.mkdir(parents=True, exist_ok=True)
    try:
        from lab.runtime.image import apt_mirror

        vm.ensure_qemu(say)
        img = image.ensure_image(args.cache, SRC, apt_mirror(), say)
        for old in image.prune(args.cache, img):
            say(f"removed old guest image {old}")
        tag = node_image()
        with image.locked(args.cache):
            disk = docker_disk(args.cache, img, tag, io, args.timeout)
        pytest_args = ALL_PYTEST if args.all else SMOKE_PYTEST if args.smoke else args.pytest_args
        code = run_tests(img, disk, io, tag, pytest_args, args.timeout, args.run)
    except (LabError, subprocess.CalledProcessError, OSError) as exc:
        say(f"error: {exc}")
        code = 3
    last = args.cache / "last-run"
    shutil.rmtree(last, ignore_errors=True)
    io.rename(last)
    say(f"guest tests exit status {code} after {time.monotonic() - started:.0f} s; junit and logs in {last}")
    return code


if __name__ == "__main__":
    sys.exit(main())
