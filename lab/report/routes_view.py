"""`lab routes` as tables, one per instance: Azure's learned-routes and advertised-routes views."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from lab.routing.views import RouteRow

COLUMNS = ("local address", "network", "next hop", "source peer", "origin", "AS path", "weight")


def show_routes(title: str, rows: list[RouteRow], console: Console) -> None:
    for node in sorted({r.node for r in rows}):
        table = Table(title=f"{node}: {title}")
        for col in COLUMNS:
            table.add_column(col)
        for r in (r for r in rows if r.node == node):
            best = "" if r.best else " (not best)"
            table.add_row(r.local_address, r.network + best, r.next_hop, r.source_peer, r.origin, r.as_path or "-",
                          str(r.weight))
        console.print(table)
    if not rows:
        console.print(f"{title}: none")
