"""What `lab up` and `lab inspect` report, as data (reports render it; --json dumps it)."""

from __future__ import annotations

from pydantic import BaseModel


class NodeStatus(BaseModel):
    name: str
    role: str
    group: str
    container: str
    state: str
    addresses: list[str]


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


class LabStatus(BaseModel):
    name: str
    state_dir: str
    dataplane: str
    nodes: list[NodeStatus]
    tunnels: list[TunnelStatus]
    problems: list[str] = []
