"""Can this machine run a lab, and which ESP data plane will it use? Checked before anything is created.

The checks that only read files take a `root` so unit tests run them against a fake tree.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors
import requests

from lab.runtime import links
from lab.runtime.base import Check, Dataplane, PreflightReport
from lab.runtime.base import enforce as enforce  # re-exported: callers that predate Runtime.preflight
from lab.runtime.base import require_preflight as require_preflight

DOCKER_FIX = "run `make setup`, or start the daemon with `dockerd &`"


def kernel_has_esp(root: Path, release: str) -> bool:
    """ESP (esp4) loaded, built in, or available as a module for kernel `release` under `root`."""
    if (root / "sys/module/esp4").exists():
        return True
    moddir = root / "lib/modules" / release
    builtin = moddir / "modules.builtin"
    if builtin.is_file() and "esp4.ko" in {Path(line).name for line in builtin.read_text().split()}:
        return True
    return moddir.is_dir() and any(moddir.rglob("esp4.ko*"))


def choose_dataplane(root: Path, release: str) -> Dataplane:
    """Kernel ESP when the kernel has it; otherwise strongSwan's userspace kernel-libipsec (TUN)."""
    return "kernel" if kernel_has_esp(root, release) else "libipsec"


def check_dataplane(root: Path, release: str, requested: Dataplane | None = None) -> Check:
    """Which data plane and why: the one asked for (`lab up --dataplane`) if this kernel can run it, else
    the kernel's own ESP when it has esp4, else userspace ESP (libipsec)."""
    esp = kernel_has_esp(root, release)
    if requested == "kernel" and not esp:
        return Check("dataplane", False, f"--dataplane kernel: kernel {release} has no esp4 (not loaded, not "
                     "built in, no module under /lib/modules), so it cannot encrypt ESP itself",
                     "drop --dataplane kernel (libipsec is used), or run on a kernel with ESP "
                     "(`make test-kernel` runs the kernel data plane in a QEMU guest)")
    if requested:
        return Check("dataplane", True, f"{requested} (requested with --dataplane; kernel {release}"
                     f"{' has' if esp else ' has no'} esp4)")
    if esp:
        return Check("dataplane", True, f"kernel (esp4 found in kernel {release}: kernel ESP and XFRM; "
                     "--dataplane libipsec overrides)")
    return Check("dataplane", True, f"libipsec (no esp4 in kernel {release}: userspace ESP over /dev/net/tun)")


def check_tun(root: Path) -> Check:
    ok = (root / "dev/net/tun").exists()
    detail = "/dev/net/tun present" if ok else "/dev/net/tun missing (libipsec and the containers need it)"
    fix = "modprobe tun, or: mkdir -p /dev/net && mknod /dev/net/tun c 10 200"
    return Check("tun", ok, detail, None if ok else fix)


def check_root(euid: int) -> Check:
    ok = euid == 0
    detail = "running as root" if ok else f"running as uid {euid}; network namespaces need root"
    return Check("root", ok, detail, None if ok else "run as root (sudo)")


def check_docker(client_factory: Callable[[], docker.DockerClient]) -> Check:
    """The daemon answers a ping (building the client may itself fail when the socket is absent)."""
    try:
        client = client_factory()
        client.ping()
        version = client.version().get("Version", "?")
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        return Check("docker", False, f"daemon not reachable: {exc}", DOCKER_FIX)
    return Check("docker", True, f"daemon {version} reachable")


def check_netns(scratch: str) -> Check:
    """pyroute2 can create, use and remove a namespace (fails without root or in a locked-down sandbox)."""
    try:
        links.probe_namespace(scratch)
    except Exception as exc:  # noqa: BLE001 - any failure here means "cannot wire labs"
        fix = "run as root, on a host (or privileged VM) that allows network namespaces"
        return Check("netns", False, f"cannot create a network namespace: {exc}", fix)
    return Check("netns", True, "network namespaces work")


def preflight(client_factory: Callable[[], docker.DockerClient], root: Path = Path("/"),
              requested: Dataplane | None = None) -> PreflightReport:
    """Run every check; never raises, so the CLI can show all problems at once."""
    release = os.uname().release
    checks = (
        check_docker(client_factory),
        check_tun(root),
        check_root(os.geteuid()),
        check_netns(f"lab-preflight-{os.getpid()}"),
        check_dataplane(root, release, requested),
    )
    return PreflightReport(checks, requested or choose_dataplane(root, release))


def host_dataplane(root: Path = Path("/")) -> Dataplane:
    """The data plane this kernel would give a new lab. A running lab's is not this: it is what its `lab up`
    recorded (lab.core.Lab.dataplane), whatever the kernel has loaded since."""
    return choose_dataplane(root, os.uname().release)


def mem_available_bytes(root: Path = Path("/")) -> int:
    """MemAvailable from /proc/meminfo (0 if unreadable: then nothing fits, and the message says so)."""
    try:
        text = (root / "proc/meminfo").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0
