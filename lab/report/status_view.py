"""`lab inspect` as tables: nodes with addresses, tunnels with state, SPIs and byte counters."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from lab.render.sa_settings import UNKNOWN_KB, SaSettings
from lab.status import LabStatus, TunnelStatus

STATE_STYLE = {"ESTABLISHED": "green", "INSTALLED": "green", "running": "green", "Established": "green",
               "UP": "green"}


def _styled(value: str) -> str:
    style = STATE_STYLE.get(value, "yellow")
    return f"[{style}]{value}[/{style}]"


LABELS = {"ike_lifetime_s": "IKE life", "child_lifetime_s": "child life", "child_lifetime_kb": "child KB",
          "dpd": "DPD", "ike_proposals": "IKE", "esp_proposals": "ESP"}


def _settings(t: TunnelStatus) -> str:
    """Configured lifetimes, DPD and proposals; each value that differs from Azure's with Azure's beside it."""
    return "" if t.settings is None else "\n" + "\n".join(settings_lines(t.settings))


def settings_lines(s: SaSettings, azure_style: str = "red") -> list[str]:
    """One line per field, "IKE life 3600 s (Azure: 28800 s)": the end's value, and Azure's beside it where they
    differ (`azure_style`: its rich style; "" for plain text). Long proposal lists are cut."""
    values = {"ike_lifetime_s": f"{s.ike_lifetime_s} s", "child_lifetime_s": f"{s.child_lifetime_s} s",
              "child_lifetime_kb": _kb(s.child_lifetime_kb), "dpd": s.dpd,
              "ike_proposals": _short(", ".join(s.ike_proposals[:2]) + (" ..." if len(s.ike_proposals) > 2 else "")),
              "esp_proposals": _short(", ".join(s.esp_proposals[:2]) + (" ..." if len(s.esp_proposals) > 2 else ""))}
    lines = []
    for key, label in LABELS.items():
        azure = s.azure.get(key)
        beside = f" (Azure: {_short(azure)})" if azure else ""
        if beside and azure_style:
            beside = f" [{azure_style}]{beside.strip()}[/{azure_style}]"
        lines.append(f"{label} {values[key]}{beside}")
    return lines


def _kb(kb: int) -> str:
    """A CHILD_SA's byte limit; a device config's may be none (0) or not read (ipsec.conf)."""
    return {0: "0 KB (no limit)", UNKNOWN_KB: "not read from its config"}.get(kb, f"{kb} KB")


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + " ..."


def placed(st: LabStatus) -> bool:
    """Whether the runtime spread the nodes over hosts (swarm): then every node's host is shown."""
    return any(n.host for n in st.nodes)


def node_columns(st: LabStatus) -> tuple[str, ...]:
    return ("node", "role", "group", "container", "state") + (("host",) if placed(st) else ()) + ("addresses",)


def node_rows(st: LabStatus) -> list[tuple[str, ...]]:
    """One row per node under node_columns(st); "-" for a node no reachable host holds (as its container)."""
    return [(n.name, n.role, n.group, n.container, n.state) + ((n.host or "-",) if placed(st) else ())
            + ("\n".join(n.addresses),) for n in st.nodes]


def show_status(st: LabStatus, console: Console) -> None:
    nodes = Table(title=f"lab {st.name}  (data plane: {st.dataplane}, state: {st.state_dir})")
    for col in node_columns(st):
        nodes.add_column(col)
    for row in node_rows(st):
        nodes.add_row(*row[:4], _styled(row[4]), *row[5:])
    console.print(nodes)
    tunnels = Table(title="tunnels")
    for col in ("node", "connection", "IKE", "child", "state", "SPI in/out", "selectors", "bytes in/out"):
        tunnels.add_column(col)
    for t in st.tunnels:
        ike = f"{_styled(t.state)} IKEv{t.version}\n{t.ike_proposal}\n{t.local} -> {t.remote}" + _settings(t)
        node = f"{t.node}\n{t.interface}" if t.interface else t.node
        if not t.children:
            tunnels.add_row(node, t.connection, ike, "-", "-", "-", "-", "-")
        for c in t.children:
            tunnels.add_row(
                node, t.connection, ike, f"{c.name}\n{c.encryption}", _styled(c.state),
                f"{c.spi_in}\n{c.spi_out}", f"{','.join(c.local_ts)}\n<-> {','.join(c.remote_ts)}",
                f"{c.bytes_in}\n{c.bytes_out}",
            )
    console.print(tunnels)
    if st.interfaces:
        _show_interfaces(st, console)
    _show_p2s(st, console)
    _show_bgp(st, console)
    for p in st.problems:
        console.print(f"[red]problem:[/red] {p}")


def _show_p2s(st: LabStatus, console: Console) -> None:
    if st.p2s_clients:
        clients = Table(title="point-to-site clients")
        for col in ("client", "gateway", "public IP", "state", "virtual IP", "reason"):
            clients.add_column(col)
        for client in st.p2s_clients:
            state = f"[green]{client.state}[/green]" if client.state == "connected" else f"[red]{client.state}[/red]"
            clients.add_row(client.name, client.gateway, client.public_ip, state, client.virtual_ip or "-",
                            client.reason or "-")
        console.print(clients)


def _show_bgp(st: LabStatus, console: Console) -> None:
    if st.bgp_peers:
        peers = Table(title="BGP peers")
        for col in ("node", "peer", "ASN", "connection", "state", "uptime", "prefixes in/out", "last error"):
            peers.add_column(col)
        for b in st.bgp_peers:
            peers.add_row(b.node, b.peer, str(b.asn), b.connection, _styled(b.state), b.uptime or "-",
                          f"{b.prefixes_in}/{b.prefixes_out}", b.last_error or "-")
        console.print(peers)


def _show_interfaces(st: LabStatus, console: Console) -> None:
    ifaces = Table(title="tunnel interfaces (route-based: one charon each)")
    for col in ("node", "interface", "connection", "peer", "state", "routes"):
        ifaces.add_column(col)
    for i in st.interfaces:
        ifaces.add_row(i.node, i.interface, i.connection, i.peer, _styled(i.state), "\n".join(i.routes) or "-")
    console.print(ifaces)
