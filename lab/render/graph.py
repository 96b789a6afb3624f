"""`lab graph`: the topology as a Mermaid or Graphviz (dot) diagram: gateways with their instances and public
IPs, sites, and one edge per tunnel, colored by state when the lab runs. Pure: model (+ states) -> text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from lab.plan import device_names, instance_names, standby_name
from lab.render.tunnels import tunnels
from lab.topology.model import Topology

GraphFormat = Literal["mermaid", "dot"]
COLORS = {"up": "green", "down": "red", None: "gray"}


def _id(name: str) -> str:
    return name.replace("-", "_")


def _instances(topo: Topology) -> list[tuple[str, str, str, bool]]:
    """(gateway, instance node, public IP or '', is standby) for every instance container."""
    out = []
    for gname, gw in sorted(topo.gateways.items()):
        for i, node in enumerate(instance_names(gname, gw)):
            out.append((gname, node, str(gw.public_ips[i]), False))
        standby = standby_name(gname, gw)
        if standby:
            out.append((gname, standby, "", True))
    return out


def _devices(topo: Topology) -> list[tuple[str, str, str]]:
    """(site, device node, public IP) for every device container: one per site, two for a device pair."""
    return [(s, node, str(ip)) for s, site in sorted(topo.sites.items())
            for node, ip in zip(device_names(s, site), site.device_ips, strict=True)]


def _edges(topo: Topology) -> list[tuple[str, str, str]]:
    return [(t.azure.node, t.peer.node, t.azure.conn) for t in tunnels(topo)]


def render_mermaid(topo: Topology, states: Mapping[tuple[str, str], str]) -> str:
    lines = ["flowchart LR"]
    for gname, gw in sorted(topo.gateways.items()):
        spaces = ", ".join(map(str, gw.vnet.address_space))
        lines.append(f'  subgraph {_id(gname)}["gateway {gname} ({gw.vpn_type} {gw.sku}) VNet {spaces}"]')
        for g, node, ip, _standby in _instances(topo):
            if g == gname:
                lines.append(f'    {_id(node)}["{node}<br/>{ip or "standby (no public IP)"}"]')
        lines.append("  end")
    for sname, node, ip in _devices(topo):
        site = topo.sites[sname]
        lan = ", ".join(map(str, site.address_space))
        own = " (own config)" if site.device.config else ""
        lines.append(f'  {_id(node)}(["site {sname}<br/>{ip}<br/>{lan}{own}"])')
    styles = []
    for i, (a, b, conn) in enumerate(_edges(topo)):
        state = states.get((a, conn))
        lines.append(f"  {_id(a)} <-->|{conn}{': ' + state if state else ''}| {_id(b)}")
        styles.append(f"  linkStyle {i} stroke:{COLORS.get(state, 'gray')}")
    return "\n".join(lines + (styles if states else [])) + "\n"


def render_dot(topo: Topology, states: Mapping[tuple[str, str], str]) -> str:
    lines = [f'graph "{topo.name}" {{', "  rankdir=LR;", "  node [shape=box];"]
    for gname, gw in sorted(topo.gateways.items()):
        spaces = ", ".join(map(str, gw.vnet.address_space))
        lines.append(f'  subgraph cluster_{_id(gname)} {{ label="gateway {gname} ({gw.vpn_type} {gw.sku}) '
                     f'VNet {spaces}";')
        for g, node, ip, standby in _instances(topo):
            if g == gname:
                style = ' style="dashed"' if standby else ""
                lines.append(f'    "{node}" [label="{node}\\n{ip or "standby"}"{style}];')
        lines.append("  }")
    for sname, node, ip in _devices(topo):
        lan = ", ".join(map(str, topo.sites[sname].address_space))
        lines.append(f'  "{node}" [shape=ellipse label="site {sname}\\n{ip}\\n{lan}"];')
    for a, b, conn in _edges(topo):
        state = states.get((a, conn))
        label = f"{conn}: {state}" if state else conn
        lines.append(f'  "{a}" -- "{b}" [label="{label}" color="{COLORS.get(state, "gray")}"];')
    return "\n".join(lines + ["}"]) + "\n"


def render_graph(topo: Topology, fmt: GraphFormat, states: Mapping[tuple[str, str], str] | None = None) -> str:
    """`states`: (gateway instance node, connection) -> 'up'/'down' of a running lab; none: uncolored."""
    return (render_mermaid if fmt == "mermaid" else render_dot)(topo, states or {})
