"""Boot the guest with QEMU: software emulation (TCG), no network device, two 9p shares, a throw-away qcow2
overlay over the cached root image (so a run never changes the cache). Nothing touches the host's network."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError

QEMU = "qemu-system-x86_64"
QEMU_PACKAGES = ("qemu-system-x86", "qemu-utils")


@dataclass(frozen=True)
class VmSpec:
    image: Path  # directory with vmlinuz and initrd.img
    root: Path  # qcow2 overlay over the image's root.img, written by this run only
    docker: Path  # Docker's data disk (/dev/vdb): a qcow2 overlay, or the raw disk being filled
    src: Path  # project tree, shared read-only as tag "src"
    io: Path  # this run's inputs and results, shared as tag "io"
    memory_mib: int = 4096
    cpus: int = 2


def _disk(path: Path) -> list[str]:
    fmt = "qcow2" if path.suffix == ".qcow2" else "raw"
    return ["-drive", f"file={path},if=virtio,format={fmt},cache=unsafe"]


def _share(path: Path, tag: str, readonly: bool) -> list[str]:
    opts = f"local,path={path},mount_tag={tag},security_model=none,id={tag}"
    return ["-virtfs", opts + (",readonly=on" if readonly else "")]


def qemu_argv(spec: VmSpec) -> list[str]:
    """TCG (multi-threaded), `-cpu max` (AES-NI for the guest's ESP), `-nic none`: the guest has no network."""
    return [
        QEMU, "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", str(spec.cpus), "-m", str(spec.memory_mib),
        "-nographic", "-no-reboot", "-nic", "none",
        "-kernel", str(spec.image / "vmlinuz"), "-initrd", str(spec.image / "initrd.img"),
        "-append", "root=/dev/vda rw console=ttyS0 init=/sbin/lab-guest-init quiet panic=-1",
        *_disk(spec.root), *_disk(spec.docker), "-device", "virtio-rng-pci",
        *_share(spec.src, "src", True), *_share(spec.io, "io", False),
    ]


def overlay_argv(base: Path, overlay: Path) -> list[str]:
    """A qcow2 file recording this run's writes over a raw base that stays as it is."""
    return ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base), str(overlay)]


class Overlay:
    """Context manager: a qcow2 overlay over `base` for one boot, deleted afterwards."""

    def __init__(self, base: Path, path: Path) -> None:
        self.base, self.path = base, path

    def __enter__(self) -> Path:
        subprocess.run(overlay_argv(self.base, self.path), check=True)
        return self.path

    def __exit__(self, *_exc: object) -> None:
        self.path.unlink(missing_ok=True)


def ensure_qemu(say: Callable[[str], None]) -> None:
    """Install QEMU through apt when it is missing (the only host change the guest runner makes)."""
    if shutil.which(QEMU) and shutil.which("qemu-img"):
        return
    say(f"installing {' '.join(QEMU_PACKAGES)} (apt)")
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    for argv in (["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *QEMU_PACKAGES]):
        if subprocess.run(argv, env=env, check=False).returncode != 0:
            raise LabError(f"{' '.join(argv)} failed", hint="install qemu-system-x86 and qemu-utils by hand")


def boot(spec: VmSpec, timeout_s: float, console_log: Path) -> int:
    """Run the guest to its power-off; its serial console goes to stdout and `console_log`. QEMU's exit code."""
    with open(console_log, "ab") as log:
        proc = subprocess.Popen(qemu_argv(spec), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        fired = threading.Event()
        def fire() -> None:
            fired.set()
            proc.kill()

        watchdog = threading.Timer(timeout_s, fire)
        watchdog.start()
        try:
            assert proc.stdout is not None
            for line in iter(proc.stdout.readline, b""):
                log.write(line)
                print(line.decode(errors="replace").rstrip("\r\n"), flush=True)
            code = proc.wait()
        finally:
            watchdog.cancel()
            if proc.poll() is None:  # the runner itself is stopping (SIGTERM, Ctrl-C): no guest left behind
                proc.kill()
                proc.wait()
        if fired.is_set():
            raise LabError(f"guest did not power off within {timeout_s:g} s", hint=f"see {console_log}")
        return code
