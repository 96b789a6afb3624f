"""`lab ui`: the live web view of a running lab (lab/ui, docs/ui.md)."""

from __future__ import annotations

import ipaddress
import signal
import socket
import threading
from typing import Annotated

import typer

from lab.cli.common import app, connect, err, home, make_runtime, only_lab
from lab.errors import TopologyError


@app.command()
def ui(name: Annotated[str | None, typer.Argument(help="running lab")] = None,
       port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port (0: any free one)")] = 0,
       host: Annotated[str, typer.Option("--host", help="address to listen on (default: loopback only)")]
       = "127.0.0.1",
       interval: Annotated[float, typer.Option("--interval", min=0.2, help="seconds between two snapshots")] = 1.0,
       ) -> None:
    """Serve a live view of the lab: topology, tunnels, timeline, faults, verify, scenario (until `lab down`).

    Prints the URL with its token; every request without the token is refused."""
    from lab.ui import process
    from lab.ui.auth import new_token
    from lab.ui.live import Collector
    from lab.ui.server import UiServer

    try:  # checked before anything is loaded or started
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise TopologyError(f"--host {host!r}: not an IP address", hint="--host 127.0.0.1 (the default)") from None
    runtime = make_runtime(name)
    lab = only_lab(name, runtime)
    col = Collector(lab, home(), runtime, connect)
    if not addr.is_loopback:
        err.print(f"warning: --host {host}: the lab UI is reachable from other machines (token still required)")
    UiServer.address_family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    server = UiServer((host, port), col, new_token(), lambda line: err.print(line, markup=False))
    process.write_pid(col.lab.dir.root)
    stop = threading.Event()
    collector = threading.Thread(target=col.run, args=(interval, stop, server.log), daemon=True)
    collector.start()
    threading.Thread(target=_stop_when, args=(stop, server), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"lab ui: {server.url()}", flush=True)
    err.print("`lab down` (or Ctrl-C) stops it", markup=False)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.stopping.set()
        col.close()
        server.server_close()
        process.forget(col.lab.dir.root)


def _stop_when(stop: threading.Event, server) -> None:  # noqa: ANN001 - UiServer
    stop.wait()
    server.stopping.set()
    server.shutdown()
