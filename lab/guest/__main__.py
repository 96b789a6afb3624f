"""`python -m lab.guest` (`make test-kernel`): run the kernel data-plane tests in a QEMU guest.

Steps: QEMU present (apt) -> guest image (cached by input hash) -> the lab's node image saved from this host's
Docker (not rebuilt in the guest) -> boot -> the guest's pytest result (exit status, junit XML) -> exit with it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from lab.errors import LabError
from lab.guest import image, vm

DEFAULT_CACHE = Path(os.environ.get("LAB_GUEST_CACHE", "/var/cache/lab-guest"))
# What proves the kernel path: the kernel-data-plane variants of the integration tests.
DEFAULT_PYTEST = "-q -rs -m kernel tests/integration"
SRC = Path(__file__).resolve().parents[2]


def say(msg: str) -> None:
    print(f"lab.guest: {msg}", file=sys.stderr, flush=True)


def node_image_tar(dest: Path) -> str:
    """Build (if needed) the lab's node image on this host and `docker save` it for the guest's `docker load`."""
    from lab.runtime.docker import connect_runtime
    from lab.runtime.image import default_containers_dir, ensure_image

    tag = ensure_image(connect_runtime().client, default_containers_dir(), say)
    subprocess.run(["docker", "save", "-o", str(dest), tag], check=True)
    return tag


def prepare_io(io: Path, pytest_args: str) -> None:
    io.mkdir(parents=True, exist_ok=True)
    for stale in ("rc", "junit.xml", "guest.log", "dockerd.log"):
        (io / stale).unlink(missing_ok=True)
    (io / "env").write_text(f"GUEST_PYTEST_ARGS='{pytest_args}'\n")


def result(io: Path) -> int:
    """pytest's exit status as the guest wrote it; 3 (internal error) when the guest wrote none."""
    rc = io / "rc"
    text = rc.read_text().strip() if rc.is_file() else ""
    return int(text) if text.isdigit() else 3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.guest", description=__doc__.splitlines()[0])
    ap.add_argument("--pytest-args", default=DEFAULT_PYTEST, help=f"pytest arguments in the guest ({DEFAULT_PYTEST!r})")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="guest image cache (outside the checkout)")
    ap.add_argument("--results", type=Path, default=None, help="junit.xml and logs (default: CACHE/last-run)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds before the guest is killed")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        say("must run as root (debootstrap, chroot, Docker)")
        return 2
    started = time.monotonic()
    io = args.results or args.cache / "last-run"
    try:
        vm.ensure_qemu(say)
        from lab.runtime.image import apt_mirror

        img = image.ensure_image(args.cache, SRC, apt_mirror(), say)
        for old in image.prune(args.cache, img):
            say(f"removed old guest image {old}")
        prepare_io(io, args.pytest_args)
        say(f"saving the node image {node_image_tar(io / 'node-image.tar')} for the guest")
        say("booting the guest (QEMU TCG, no network)")
        vm.boot(vm.VmSpec(img, args.cache / f"overlay-{os.getpid()}.qcow2", SRC, io), args.timeout,
                io / "console.log")
    except (LabError, subprocess.CalledProcessError) as exc:
        say(f"error: {exc}")
        return 3
    finally:
        (io / "node-image.tar").unlink(missing_ok=True)
    code = result(io)
    say(f"guest tests exit status {code} after {time.monotonic() - started:.0f} s; junit: {io / 'junit.xml'}, "
        f"logs: {io}")
    return code


if __name__ == "__main__":
    sys.exit(main())
