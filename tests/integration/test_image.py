"""The node image builds (or is reused) and really runs charon with kernel-libipsec under lab's options."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.models.containers import Container

from lab.runtime.image import apt_mirror, ensure_image, image_inputs_hash
from tests.integration.helpers import RUN_ID

pytestmark = pytest.mark.integration

CONTAINERS = Path(__file__).resolve().parents[2] / "containers"
# The libipsec plugin list from the platform notes; charon must start with it and create ipsec0.
PLUGINS = (
    "random nonce aesni openssl pem pkcs1 x509 revocation constraints pubkey curve25519 sha1 sha2 aes hmac"
    " gcm kdf kernel-libipsec kernel-netlink socket-default vici updown"
)
STRONGSWAN_CONF = f"charon {{\n  load_modular = no\n  load = {PLUGINS}\n}}\n"
ENV = {"STRONGSWAN_CONF": "/tmp/strongswan.conf"}


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    docker_client = docker.from_env()
    try:
        yield docker_client
    finally:
        docker_client.close()


@pytest.fixture(scope="module")
def tag(client: docker.DockerClient) -> str:
    return ensure_image(client, CONTAINERS, lambda _line: None)


def test_ensure_image_returns_an_existing_hashed_tag(client: docker.DockerClient, tag: str) -> None:
    assert tag == f"lab-node:{image_inputs_hash(CONTAINERS, apt_mirror())}"
    assert client.images.get(tag).tags


def test_second_call_is_fast_and_does_not_rebuild(client: docker.DockerClient, tag: str) -> None:
    image_id = client.images.get(tag).id
    progress: list[str] = []
    start = time.monotonic()
    assert ensure_image(client, CONTAINERS, progress.append) == tag
    assert time.monotonic() - start < 0.5
    assert progress == []
    assert client.images.get(tag).id == image_id


def _run(container: Container, *argv: str) -> str:
    code, output = container.exec_run(list(argv), environment=ENV)
    text = output.decode(errors="replace")
    assert code == 0, f"{argv}: exit {code}: {text}"
    return text


def test_charon_starts_with_kernel_libipsec(client: docker.DockerClient, tag: str) -> None:
    container = None
    try:
        container = client.containers.run(
            tag,
            detach=True,
            name=f"lab-test-image-{RUN_ID}",
            network_mode="none",
            cap_add=["NET_ADMIN"],
            devices=["/dev/net/tun:/dev/net/tun:rwm"],
            labels={"lab.test": "image"},
        )
        _run(container, "test", "-x", "/usr/lib/ipsec/charon")
        _run(container, "sh", "-c", f"printf '%s' '{STRONGSWAN_CONF}' > /tmp/strongswan.conf")
        container.exec_run(["/usr/lib/ipsec/charon"], environment=ENV, detach=True)
        deadline = time.monotonic() + 10
        while container.exec_run(["test", "-S", "/var/run/charon.vici"]).exit_code != 0:
            assert time.monotonic() < deadline, "charon did not open its vici socket within 10 s"
            time.sleep(0.2)
        assert "strongSwan swanctl 5.9" in _run(container, "swanctl", "--version")
        _run(container, "ip", "link", "show", "ipsec0")  # kernel-libipsec's TUN device
    finally:
        if container is not None:
            container.remove(force=True)
