"""ViciControl against two real charons (libipsec) in containers joined by one veth pair.

Needs root, a running dockerd and the `lab-node` image. The veth is created inside the first
container's network namespace and its peer moved into the second: nothing touches the host namespace.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import docker
import pytest
from pyroute2 import NetNS

from lab.control.base import CHILD_INSTALLED, ChildSaStatus, IkeSaStatus, VpnEvent
from lab.control.vici import ViciControl, watch_events
from lab.control.wait import wait_established
from lab.errors import ControlError
from lab.render.connections import render_swanctl
from lab.render.strongswan_conf import render_strongswan_conf
from lab.render.swanctl import SwanctlConfig
from lab.topology.load import load_text
from tests.integration.helpers import lab_name

pytestmark = pytest.mark.integration

GW, SITE, CONN = "azgw-0", "onprem", "azgw-onprem"
TOPOLOGY = f"""
name: vicitest
gateways:
  azgw:
    public_ips: [203.0.113.1]
    vnet: {{address_space: [10.1.0.0/16]}}
sites:
  {SITE}:
    public_ip: 198.51.100.1
    address_space: [10.2.0.0/16]
    # one bare charon per container, no tunnel interfaces (the lab's route-based machinery is not used
    # here): a policy-style device that narrows Azure's 0/0 offer to its LAN
    device: {{traffic_selectors: prefixes}}
connections:
  {CONN}: {{gateway: azgw, site: {SITE}}}
"""
# Each node: (public address on the veth end, LAN address on lo, veth end name).
WIRING = {GW: ("203.0.113.1/24", "10.1.0.1/32", "e0"), SITE: ("198.51.100.1/24", "10.2.0.1/32", "e1")}
# Not among the gateway's (Azure default) offers: IKE_SA_INIT must fail with NO_PROPOSAL_CHOSEN.
FOREIGN_IKE_PROPOSAL = "aes192-sha512-curve25519"


@dataclass(frozen=True)
class Node:
    container: object  # docker.models.containers.Container
    state: Path  # bind-mounted at /lab

    @property
    def socket(self) -> Path:
        return self.state / "run" / "charon.vici"

    def log(self) -> list[str]:
        path = self.state / "charon.log"
        return path.read_text(errors="replace").splitlines()[-300:] if path.exists() else []

    def sh(self, *argv: str) -> str:
        code, out = self.container.exec_run(list(argv))  # type: ignore[attr-defined]
        assert code == 0, f"{argv}: {out.decode(errors='replace')}"
        return out.decode(errors="replace")


def _node_image(client: docker.DockerClient) -> str:
    images = sorted(client.images.list(name="lab-node"), key=lambda i: i.attrs["Created"], reverse=True)
    tagged = [t for image in images for t in image.tags]
    if not tagged:
        pytest.skip("no lab-node image (build it first: lab/runtime/image.py)")
    return tagged[0]


def _start(client: docker.DockerClient, image: str, lab_id: str, node: str, state: Path) -> Node:
    (state / "run").mkdir(parents=True)
    (state / "strongswan.conf").write_text(render_strongswan_conf("libipsec"))
    container = client.containers.run(
        image,
        ["sleep", "infinity"],
        name=f"lab-{lab_id}-{node}",
        detach=True,
        labels={"lab.topology": lab_id, "lab.node": node},
        network_mode="none",
        cap_add=["NET_ADMIN"],
        devices=["/dev/net/tun:/dev/net/tun:rwm"],
        sysctls={"net.ipv4.ip_forward": "1"},
        volumes={str(state): {"bind": "/lab", "mode": "rw"}},
    )
    return Node(container, state)


def _wire(gw: Node, site: Node) -> None:
    """veth created in the gateway's netns, one end moved into the site's; addresses via `ip` inside."""
    pids = {n: n.container.attrs["State"]["Pid"] for n in (gw, site)}  # type: ignore[attr-defined]
    with NetNS(f"/proc/{pids[gw]}/ns/net", flags=0) as ns:
        ns.link("add", ifname="e0", kind="veth", peer="e1")
        ns.link("set", index=ns.link_lookup(ifname="e1")[0], net_ns_pid=pids[site])
    for name, node in ((GW, gw), (SITE, site)):
        public, lan, dev = WIRING[name]
        node.sh("ip", "link", "set", "lo", "up")
        node.sh("ip", "addr", "add", lan, "dev", "lo")
        node.sh("ip", "addr", "add", public, "dev", dev)
        node.sh("ip", "link", "set", dev, "up")
        node.sh("ip", "route", "add", "default", "dev", dev)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[dict[str, Node]]:
    """Two running charons, wired; containers removed even when a step or the test fails."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"docker not available: {exc}")
    image, lab_id = _node_image(client), lab_name("vicitest")
    started: dict[str, Node] = {}
    try:
        for name in (GW, SITE):
            started[name] = _start(client, image, lab_id, name, tmp_path / name)
        for node in started.values():
            node.container.reload()  # type: ignore[attr-defined]
        _wire(started[GW], started[SITE])
        for node in started.values():
            node.container.exec_run(  # type: ignore[attr-defined]
                ["/usr/lib/ipsec/charon"], detach=True, environment={"STRONGSWAN_CONF": "/lab/strongswan.conf"}
            )
        yield started
    finally:
        for container in client.containers.list(all=True, filters={"label": f"lab.topology={lab_id}"}):
            container.remove(force=True)
        client.close()


def _configs() -> dict[str, SwanctlConfig]:
    topo, _ = load_text(TOPOLOGY, "vicitest")
    return render_swanctl(topo, {CONN: "vicitest-psk"})


def _child(sas: list[IkeSaStatus], name: str) -> ChildSaStatus:
    installed = [c for sa in sas for c in sa.children if c.name == name and c.state == CHILD_INSTALLED]
    assert len(installed) == 1, sas
    return installed[0]


def test_tunnel_comes_up_and_carries_traffic(nodes: dict[str, Node]) -> None:
    controls = {name: ViciControl(node.socket) for name, node in nodes.items()}
    events: list[VpnEvent] = []
    stop = threading.Event()
    try:
        watcher = watch_events(nodes[GW].socket, ["ike-updown", "child-updown"], events.append, stop)
        configs = _configs()
        controls[SITE].load(configs[SITE])  # responder first: the gateway initiates on load
        started = time.monotonic()
        controls[GW].load(configs[GW])
        sas = wait_established(controls, {n: [(CONN, [CONN])] for n in controls}, 10.0, lambda n: nodes[n].log())
        took = time.monotonic() - started
        print(f"load -> INSTALLED on both ends: {took * 1000:.0f} ms")
        assert took < 5.0
        assert controls[GW].conns() == [CONN]

        nodes[GW].sh("ping", "-c", "3", "-W", "2", "-I", "10.1.0.1", "10.2.0.1")

        gw_sa, site_sa = controls[GW].sas(), controls[SITE].sas()
        gw_child, site_child = _child(gw_sa, CONN), _child(site_sa, CONN)
        assert gw_sa[0].state == "ESTABLISHED" and gw_sa[0].version == 2
        assert gw_child.spi_out == site_child.spi_in and gw_child.spi_in == site_child.spi_out
        for child in (gw_child, site_child):
            assert child.bytes_in > 0 and child.bytes_out > 0 and child.packets_in >= 3
            assert child.encap and child.mode == "TUNNEL" and child.protocol == "ESP"
            assert child.encr_alg == "AES_GCM_16" and child.encr_keysize == 256
        assert site_child.local_ts == ["10.2.0.0/16"] and site_child.remote_ts == ["10.1.0.0/16"]
        assert sas[GW][0].children[0].spi_in == gw_child.spi_in

        controls[GW].terminate_ike(CONN)
        assert [sa.name for sa in controls[SITE].sas()] == []  # the DELETE reached the responder
        controls[GW].initiate(CONN, CONN, 5.0)  # blocks until installed
        assert _child(controls[GW].sas(), CONN).spi_in != gw_child.spi_in
    finally:
        stop.set()
        for control in controls.values():
            control.close()
    watcher.join(2)
    seen = [(e.name, e.ike, e.children, e.up) for e in events]
    assert ("ike-updown", CONN, (), True) in seen
    assert ("child-updown", CONN, (CONN,), True) in seen
    assert ("ike-updown", CONN, (), False) in seen
    assert seen.count(("child-updown", CONN, (CONN,), True)) == 2
    assert not watcher.is_alive()


def test_proposal_mismatch_is_diagnosed(nodes: dict[str, Node]) -> None:
    configs = _configs()
    site_conn = dict(configs[SITE].connections[CONN], proposals=[FOREIGN_IKE_PROPOSAL])
    site_config = replace(configs[SITE], connections={CONN: site_conn})
    controls = {name: ViciControl(node.socket) for name, node in nodes.items()}
    try:
        controls[SITE].load(site_config)
        controls[GW].load(configs[GW])
        started = time.monotonic()
        with pytest.raises(ControlError, match=r"node 'azgw-0': connection 'azgw-onprem' .*no proposal chosen"):
            wait_established(controls, {n: [(CONN, [CONN])] for n in controls}, 4.0, lambda n: nodes[n].log())
        assert time.monotonic() - started < 6.0
    finally:
        for control in controls.values():
            control.close()


def test_refused_connection_is_named_and_unload_works(nodes: dict[str, Node]) -> None:
    control = ViciControl(nodes[GW].socket)
    try:
        bad = SwanctlConfig(connections={"broken": {"version": "2", "proposals": ["no-such-cipher"]}})
        with pytest.raises(ControlError, match=r"charon refused connection 'broken': invalid value for: proposals"):
            control.load(bad)
        assert control.conns() == []
        control.load(_configs()[SITE])  # a responder: nothing starts
        assert control.conns() == [CONN]
        control.unload_conn(CONN)
        assert control.conns() == []
    finally:
        control.close()
