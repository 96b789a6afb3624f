"""The deployment plan: what the runtime must create, derived purely from a validated topology.

The runtime reads only these types (never the topology), so it stays ignorant of Azure concepts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Literal

Role = Literal["gateway", "site", "host", "client"]


@dataclass(frozen=True)
class Iface:
    """One container interface: a veth whose peer sits on `segment`'s bridge in the lab namespace."""

    name: str  # inside the container, e.g. "eth0"
    segment: str  # bridge name in the lab namespace, e.g. "internet", "vnet-azgw"
    addresses: tuple[IPv4Interface, ...]


@dataclass(frozen=True)
class Route:
    dst: IPv4Network
    via: tuple[IPv4Address, ...] = ()  # empty: on-link via `dev`; several: ECMP
    dev: str | None = None


@dataclass(frozen=True)
class NodePlan:
    name: str  # unique in the lab; container is lab-<lab>-<name>
    role: Role
    ifaces: tuple[Iface, ...]
    routes: tuple[Route, ...] = ()
    loopbacks: tuple[IPv4Interface, ...] = ()  # extra addresses on lo (libipsec needs one per local_ts)
    daemons: tuple[str, ...] = ()  # what runs in it, in start order (lab/daemons.py): ("charon",) on VPN ends
    group: str = ""  # the topology object it belongs to (gateway/site name), for labels and inspect

    def runs(self, daemon: str) -> bool:
        return daemon in self.daemons


@dataclass(frozen=True)
class Plan:
    lab: str
    nodes: tuple[NodePlan, ...]
    segments: tuple[str, ...] = field(default=())

    def node(self, name: str) -> NodePlan:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)
