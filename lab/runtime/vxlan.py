"""Per-link VXLAN: a node on another host joins its segment bridge on the hub host, as clabernetes and Megalos
carry links.

Each (node, interface) gets its own VNI and a point-to-point VXLAN pair: the hub-side device is born in the
lab namespace on the hub (enslaved to the segment bridge, named like the veth it replaces), the node-side
device is born directly in the node's namespace under the interface's name. Both are created from their host's
network namespace, so their UDP sockets (port 4789) and the encapsulated packets live in that host's
underlay while the devices themselves never exist in a host namespace. Every frame of every segment crosses
the hub's bridges, so a capture there sees the whole segment, as on one machine.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address

from pyroute2 import IPRoute
from pyroute2.ethtool.ioctl import IoctlEthtool
from pyroute2.netlink.exceptions import NetlinkError

from lab.plan_types import Iface, NodePlan
from lab.runtime.links import add_veth, index_of, tx_checksum_off

VXLAN_PORT = 4789
VNI_BASE = 1 << 20  # far above Docker's overlay VNIs (4097 up)
VNI_SPAN = (1 << 24) - VNI_BASE
LINK_MTU = 1500  # as a veth; the underlay must carry 1550-byte packets (or fragment the outer UDP)
ATTEMPTS = 8  # a VNI already used on either host: try the next candidate


@dataclass(frozen=True)
class Host:
    """A host as VXLAN needs it: a handle on its network namespace (a path) and its underlay address."""

    name: str
    netns: str  # e.g. /proc/<pid of a host-network process>/ns/net
    addr: IPv4Address


def vni_for(lab: str, node: str, iface: str, attempt: int = 0) -> int:
    """A stable VNI per link (the same lab, node and interface give the same VNI), in [2^20, 2^24)."""
    digest = hashlib.sha256(f"{lab}/{node}/{iface}/{attempt}".encode()).digest()
    return VNI_BASE + int.from_bytes(digest[:4], "big") % VNI_SPAN


@dataclass(frozen=True)
class PortMaker:
    """links.PortMaker for a swarm: a veth for nodes on the hub host, a VXLAN pair for the others."""

    lab: str
    lab_netns: str  # the lab namespace's path on the hub (/run/netns/lab-<lab>)
    hub: Host
    placement: dict[str, Host]  # node -> its host

    def __call__(self, ipr: IPRoute, eth: IoctlEthtool, name: str, node: NodePlan, iface: Iface, pid: int) -> None:
        host = self.placement[node.name]
        if host.name == self.hub.name:
            add_veth(ipr, eth, name, node, iface, pid)
            return
        for attempt in range(ATTEMPTS):
            vni = vni_for(self.lab, node.name, iface.name, attempt)
            if self._pair(name, iface.name, vni, host, pid):
                break
        else:
            raise OSError(errno.EEXIST, f"no free VNI for {node.name}/{iface.name} after {ATTEMPTS} tries")
        index = index_of(ipr, name)
        ipr.link("set", index=index, master=index_of(ipr, iface.segment), state="up")
        tx_checksum_off(eth, name)

    def _pair(self, name: str, ifname: str, vni: int, host: Host, pid: int) -> bool:
        """Both ends with `vni`; False (nothing left behind) when either host already uses it."""
        with _fd(self.lab_netns) as lab_fd:
            if not _vxlan(self.hub, host, vni, name, {"net_ns_fd": lab_fd}):
                return False
        if _vxlan(host, self.hub, vni, ifname, {"net_ns_pid": pid}):
            return True
        with IPRoute(netns=self.lab_netns, flags=0) as lab_ipr:
            lab_ipr.link("del", index=index_of(lab_ipr, name))
        return False


def _vxlan(local: Host, remote: Host, vni: int, ifname: str, target: dict[str, int]) -> bool:
    """Create a VXLAN device from `local`'s namespace (its socket stays there), born where `target` says."""
    with IPRoute(netns=local.netns, flags=0) as ipr:
        try:
            ipr.link("add", ifname=ifname, kind="vxlan", vxlan_id=vni, vxlan_local=str(local.addr),
                     vxlan_group=str(remote.addr), vxlan_port=VXLAN_PORT, vxlan_learning=0, mtu=LINK_MTU,
                     **target)
        except NetlinkError as exc:
            if exc.code == errno.EEXIST:
                return False
            raise
    return True


@contextmanager
def _fd(path: str) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY)
    try:
        yield fd
    finally:
        os.close(fd)
