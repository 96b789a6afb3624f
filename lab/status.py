"""What `lab up` and `lab inspect` report, as data (reports render it; --json dumps it)."""

from __future__ import annotations

from pydantic import BaseModel

from lab.render.sa_settings import SaSettings
from lab.routing.views import BgpPeerStatus


class NodeStatus(BaseModel):
    name: str
    role: str
    group: str
    container: str
    state: str
    addresses: list[str]
    host: str = ""  # where the runtime placed it (swarm: the host's name); "": this machine's engine


class ChildStatus(BaseModel):
    name: str
    state: str
    spi_in: str
    spi_out: str
    encryption: str
    local_ts: list[str]
    remote_ts: list[str]
    bytes_in: int
    bytes_out: int
    packets_in: int
    packets_out: int


class TunnelStatus(BaseModel):
    node: str
    connection: str
    state: str
    local: str
    remote: str
    version: int
    ike_proposal: str
    children: list[ChildStatus]
    settings: SaSettings | None = None  # configured lifetimes, DPD, proposals; Azure's value where they differ
    interface: str = ""  # the tunnel interface (route-based: its own charon), "" for the node's main charon


class TunnelIfaceStatus(BaseModel):
    """A route-based tunnel's interface in a node's main namespace (docs/route-based.md)."""

    node: str
    interface: str
    connection: str
    peer: str
    state: str  # the link's operational state, or "missing"
    routes: list[str]  # the node's routes through it now (they go while its CHILD_SA is down)


class P2sClientStatus(BaseModel):
    """A point-to-site client as its gateway sees it (docs/p2s.md)."""

    name: str
    gateway: str
    public_ip: str
    state: str  # connected, refused, down
    virtual_ip: str = ""
    reason: str = ""


class LabStatus(BaseModel):
    name: str
    state_dir: str
    dataplane: str
    nodes: list[NodeStatus]
    tunnels: list[TunnelStatus]
    problems: list[str] = []
    p2s_clients: list[P2sClientStatus] = []
    bgp_peers: list[BgpPeerStatus] = []  # BGP sessions as each node's bgpd sees them (lab/routing)
    interfaces: list[TunnelIfaceStatus] = []
