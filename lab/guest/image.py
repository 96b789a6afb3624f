"""The guest image: Debian bookworm with linux-image-amd64, docker.io and the project's Python deps, built by
scripts/guest/build-image.sh into a cache directory named by a hash of everything that goes into it.

An unchanged input set costs one directory lookup; any change (packages, pins, build script, init) builds a
new image beside the old one. Builds take a lock so two runs on one machine never build at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lab.errors import LabError

# What the guest needs besides Python deps: its kernel, Docker, and the host tools the lab itself runs
# (nsenter, tcpdump for captures, tshark for --wireshark-keys checks, nft, ip, ethtool).
PACKAGES = (
    "linux-image-amd64", "kmod", "docker.io", "iptables", "python3", "python3-pip", "iproute2", "nftables",
    "tcpdump", "tshark", "ethtool", "util-linux", "procps", "ca-certificates",
)
TEST_DEPS = ("pytest", "hypothesis")
IMAGE_FILES = ("vmlinuz", "initrd.img", "root.img")
Progress = Callable[[str], None]


def requirements(pyproject: Path, installed: Callable[[str], str | None]) -> list[str]:
    """The project's runtime deps plus pytest, pinned to the versions installed on this host when it has
    them (so the guest runs what the host runs), else as pyproject states them."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    out = []
    for spec in [*deps, *TEST_DEPS]:
        name = re.split(r"[<>=!~ \[;]", spec, maxsplit=1)[0]
        version = installed(name)
        out.append(f"{name}=={version}" if version else spec)
    return sorted(out, key=str.lower)


def host_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def cache_key(scripts: dict[str, bytes], packages: tuple[str, ...], reqs: list[str], mirror: str) -> str:
    """First 16 hex chars of sha256 over every input of the image (length-framed, order-fixed)."""
    digest = hashlib.sha256()
    parts = [("mirror", mirror.rstrip("/").encode()), ("packages", ",".join(packages).encode()),
             ("requirements", "\n".join(reqs).encode()), *sorted(scripts.items())]
    for name, data in parts:
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:16]


def image_scripts(guest_dir: Path) -> dict[str, bytes]:
    """The scripts baked into the image (the build script and the init); inside.sh is read from the share."""
    return {name: (guest_dir / name).read_bytes() for name in ("build-image.sh", "init")}


@contextmanager
def locked(cache: Path) -> Iterator[None]:
    """One builder at a time per cache (two runs on one machine wait for each other's build)."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_image(cache: Path, src: Path, mirror: str, progress: Progress) -> Path:
    """The cached image directory for the current inputs, built first if missing."""
    guest_dir = src / "scripts" / "guest"
    reqs = requirements(src / "pyproject.toml", host_version)
    key = cache_key(image_scripts(guest_dir), PACKAGES, reqs, mirror)
    target = cache / f"image-{key}"
    with locked(cache):
        if all((target / f).is_file() for f in IMAGE_FILES):
            progress(f"guest image cached: {target}")
            return target
        shutil.rmtree(target, ignore_errors=True)
        reqs_file = cache / f"requirements-{key}.txt"
        reqs_file.write_text("\n".join(reqs) + "\n")
        progress(f"building guest image {target.name} (debootstrap + pip: a few minutes)")
        res = subprocess.run([str(guest_dir / "build-image.sh"), str(target), mirror, str(reqs_file),
                              ",".join(PACKAGES)], check=False, env={**os.environ, "PYTHON": sys.executable})
        reqs_file.unlink(missing_ok=True)
        if res.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            raise LabError(f"guest image build failed (exit {res.returncode})", hint="see the lines above")
    return target


def prune(cache: Path, keep: Path) -> list[Path]:
    """Remove cached images other than `keep` (old input sets); returns what was removed."""
    gone = [p for p in cache.glob("image-*") if p.is_dir() and p != keep]
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
    return gone
