"""The SKU shaping's IFB is created inside the node's namespace and nothing appears in the host's: the `ifb`
module, autoloaded with its defaults, would add ifb0/ifb1 to the host namespace (lab.runtime.ifb_module).

Cheap (no containers): a namespace of the test's own with a veth pair inside it. Marked `kernel` so the
kernel-test guest runs it too: there `ifb` is a module that is not loaded yet (here it may be built in)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from lab.runtime.shaping import htb_params, ifb_name, shape_link
from tests.integration.helpers import host_network, lab_name

pytestmark = [pytest.mark.integration, pytest.mark.kernel]


def ip(*argv: str, tool: str = "ip") -> str:
    return subprocess.run([tool, *argv], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def netns() -> Iterator[str]:
    """A namespace of this test's own holding a veth pair (both ends inside it); deleted afterwards."""
    name = "lab-" + lab_name("ifbtest")
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def links_in(ns: str) -> list[str]:
    return sorted(link["ifname"] for link in json.loads(ip("-n", ns, "-j", "link")))


def test_shaping_makes_its_ifb_in_the_node_namespace_and_nothing_in_the_host(netns: str) -> None:
    before, own = host_network(), links_in(netns)  # own: eth0, peer0, lo (and what modules add, e.g. ip_vti0)
    path = f"/run/netns/{netns}"
    shape_link(path, "test", "eth0", htb_params(100))
    assert ifb_name("eth0") in links_in(netns)
    assert "qdisc htb 1:" in ip("-n", netns, "qdisc", "show", "dev", "eth0", tool="tc")
    assert host_network() == before
    shape_link(path, "test", "eth0", None)  # unshaped again: the IFB goes with its qdiscs
    assert links_in(netns) == own
    assert host_network() == before
