"""The one node image (gateways, sites, hosts), built without a registry: debootstrap → import → build.

No container registry is reachable, so the base is a debootstrapped Debian imported as ``lab-base:<h>``;
``containers/node/Dockerfile`` builds ``lab-node:<h>`` from it. Tags carry a hash of their inputs, so an
unchanged tree costs one image lookup and any edit under ``containers/`` yields a new tag.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

import docker
import docker.errors
import requests

from lab.errors import LabError, RuntimeBackendError
from lab.runtime.base import default_containers_dir as default_containers_dir  # re-exported

SUITE = "bookworm"
VARIANT = "minbase"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
WORK_ROOT = Path("/var/tmp")  # rootfs needs real disk (device nodes, ~200 MB), not a small tmpfs
# Downloaded .debs and package lists are dead weight in the base (~80 MB): the node build runs apt-get update.
TAR_EXCLUDES = ("./var/cache/apt/archives/*.deb", "./var/lib/apt/lists/*_*", "./var/cache/apt/*.bin")
TAIL_LINES = 20
SETUP_HINT = "run `make setup` (installs debootstrap and docker.io, starts dockerd)"

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")  # the legacy builder colours a step's stderr red

Progress = Callable[[str], None]


def image_inputs_hash(containers_dir: Path, mirror: str = DEFAULT_MIRROR) -> str:
    """First 12 hex chars of sha256 over the debootstrap parameters and every file under containers_dir."""
    digest = hashlib.sha256(_debootstrap_key(mirror))
    files = {p.relative_to(containers_dir).as_posix(): p for p in containers_dir.rglob("*") if p.is_file()}
    for rel in sorted(files):
        data = files[rel].read_bytes()
        # Length-prefixed framing: bytes moved between a path and a file body cannot collide.
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:12]


def base_hash(mirror: str = DEFAULT_MIRROR) -> str:
    """Hash of the debootstrap parameters alone, so Dockerfile edits reuse the slow base."""
    return hashlib.sha256(_debootstrap_key(mirror)).hexdigest()[:12]


def _debootstrap_key(mirror: str) -> bytes:
    return "\0".join(["debootstrap", SUITE, VARIANT, mirror.rstrip("/"), *TAR_EXCLUDES, ""]).encode()


def apt_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The host's Debian mirror (deb822 or one-line sources), so debootstrap uses what apt already uses."""
    deb822 = apt_dir / "sources.list.d" / "debian.sources"
    if deb822.is_file():
        for stanza in deb822.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith("#")
            )
            if SUITE in fields.get("Suites", "").split() and fields.get("URIs", "").split():
                return fields["URIs"].split()[0]
    one_line = apt_dir / "sources.list"
    if one_line.is_file():
        for line in one_line.read_text().splitlines():
            words = _drop_options(line.partition("#")[0])
            if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                return words[1]
    return DEFAULT_MIRROR


def _drop_options(line: str) -> list[str]:
    """`deb [arch=amd64 signed-by=…] URI suite …` → words without the bracketed options."""
    head, _, rest = line.partition("[")
    return head.split() + rest.partition("]")[2].split()


def ensure_image(client: docker.DockerClient, containers_dir: Path, on_progress: Progress) -> str:
    """Return the node image tag, building base and node images only when their tag is missing."""
    node_dir = containers_dir / "node"
    if not (node_dir / "Dockerfile").is_file():
        raise RuntimeBackendError(f"{node_dir / 'Dockerfile'}: not found", hint="run from the lab checkout")
    mirror = apt_mirror()
    tag = f"lab-node:{image_inputs_hash(containers_dir, mirror)}"
    if image_exists(client, tag):
        return tag
    base = f"lab-base:{base_hash(mirror)}"
    if not image_exists(client, base):
        on_progress(f"building {base}: debootstrap {SUITE} from {mirror} (about a minute)")
        _build_base(client, base, mirror, on_progress)
    on_progress(f"building {tag} from {base}")
    _build_node(client, node_dir, tag, base, on_progress)
    return tag


def image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise RuntimeBackendError(f"docker: cannot look up image {tag}: {exc}", hint=SETUP_HINT) from exc
    return True


def _build_base(client: docker.DockerClient, tag: str, mirror: str, on_progress: Progress) -> None:
    """debootstrap into a scratch dir, tar it, import it; the scratch dir goes away even on failure."""
    work = Path(tempfile.mkdtemp(prefix="lab-base-", dir=WORK_ROOT))
    try:
        rootfs, tarball = work / "rootfs", work / "rootfs.tar"
        _run(["debootstrap", f"--variant={VARIANT}", SUITE, str(rootfs), mirror], on_progress)
        excludes = [f"--exclude={pattern}" for pattern in TAR_EXCLUDES]
        _run(["tar", "--numeric-owner", *excludes, "-C", str(rootfs), "-cf", str(tarball), "."], on_progress)
        on_progress(f"importing {tag}")
        repository, _, version = tag.partition(":")
        try:
            reply = client.api.import_image(src=str(tarball), repository=repository, tag=version)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise RuntimeBackendError(f"docker import of {tag} failed: {exc}", hint=SETUP_HINT) from exc
        if "errorDetail" in str(reply):  # the daemon may report failure inside a 200 reply
            raise RuntimeBackendError(f"docker import of {tag} failed: {reply}", hint=SETUP_HINT)
    finally:
        _remove_scratch(work, on_progress)


def _build_node(
    client: docker.DockerClient, node_dir: Path, tag: str, base: str, on_progress: Progress
) -> None:
    """Legacy-builder build with streamed output; an "error" item becomes a RuntimeBackendError."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    hint = f"fix {node_dir / 'Dockerfile'} or the apt mirror, then rerun `make image`"
    try:
        stream = client.api.build(
            path=str(node_dir),
            tag=tag,
            buildargs={"BASE_IMAGE": base},
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        for item in stream:
            if "error" in item:
                tail.append(str(item["error"]).rstrip())
                raise RuntimeBackendError(f"docker build of {tag} failed:\n" + "\n".join(tail), hint=hint)
            _emit(str(item.get("stream") or item.get("status") or ""), tail, on_progress)
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise RuntimeBackendError(f"docker build of {tag} failed: {exc}", hint=SETUP_HINT) from exc


def _run(argv: list[str], on_progress: Progress) -> None:
    """Run a helper program (no library does debootstrap), streaming its output; fail with its last lines."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        with subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        ) as proc:
            assert proc.stdout is not None
            _emit_lines(proc.stdout, tail, on_progress)
            code = proc.wait()
    except FileNotFoundError as exc:
        raise RuntimeBackendError(f"{argv[0]}: not installed", hint=SETUP_HINT) from exc
    if code != 0:
        raise RuntimeBackendError(
            f"{argv[0]} failed (exit {code}):\n" + "\n".join(tail),
            hint="check the apt mirror and disk space under /var/tmp; the run must be as root",
        )


def _emit(text: str, tail: deque[str], on_progress: Progress) -> None:
    _emit_lines(text.splitlines(), tail, on_progress)


def _emit_lines(lines: Iterable[str], tail: deque[str], on_progress: Progress) -> None:
    for raw in lines:
        line = ANSI_ESCAPE.sub("", raw).rstrip()
        if line:
            tail.append(line)
            on_progress(line)


def _remove_scratch(work: Path, on_progress: Progress) -> None:
    """Remove the scratch dir, never recursing into a mount (/proc, /dev) a killed debootstrap left."""
    for mount in sorted(_mounts_under(work), reverse=True):
        subprocess.run(["umount", "--lazy", mount], check=False, capture_output=True)
    if left := _mounts_under(work):
        on_progress(f"warning: kept {work}: still mounted: {', '.join(left)}")
        return
    shutil.rmtree(work, ignore_errors=True)


def _mounts_under(work: Path) -> list[str]:
    prefix = f"{work}/"
    with open("/proc/self/mountinfo") as mountinfo:
        points = [line.split()[4] for line in mountinfo]
    return [p for p in points if p.startswith(prefix)]


def main() -> int:
    """`python -m lab.runtime.image`: build if needed, print the tag on stdout, progress on stderr."""
    containers_dir = default_containers_dir()
    try:
        try:
            client = docker.from_env()
        except docker.errors.DockerException as exc:
            raise RuntimeBackendError(f"docker: cannot connect: {exc}", hint=SETUP_HINT) from exc
        tag = ensure_image(client, containers_dir, lambda line: print(line, file=sys.stderr, flush=True))
    except LabError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    print(tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
