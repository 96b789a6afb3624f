"""The live half of `lab apply`: retire and load connections over vici on the nodes that changed, and prove
afterwards that every other connection kept its SAs. Pipeline level: charon only through `connect`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lab import core
from lab.control.base import CHILD_INSTALLED, VpnControl
from lab.control.wait import wait_established
from lab.errors import ControlError
from lab.render.swanctl import SwanctlConfig, Tree
from lab.render.tunnels import expected as child_expected


@dataclass(frozen=True)
class ConnWork:
    """What one charon node must do: retire `removed` and `load` (unload, terminate), then load `config`."""

    removed: list[str]
    load: list[str]
    config: SwanctlConfig


# node -> connection -> sorted (IKE uniqueid, CHILD uniqueid, SPI in, SPI out) of its installed CHILD_SAs
Snapshot = dict[str, dict[str, list[tuple[int, int, str, str]]]]


def live_apply(lab: core.Lab, work: Mapping[str, ConnWork], warm: Mapping[str, ConnWork],
               connect: core.Connect, progress: Callable[[str], None], timeout: float) -> None:
    """Retire changed and removed connections on every node, then load the new ones (passive ends first, so
    the initiator finds its peer ready) and wait until each loaded connection is up again. Warm standbys get
    the same changes (loaded, not started) and are not waited for."""
    every = {**warm, **work}
    controls = {node: connect(lab.dir.vici_socket(node)) for node in every}
    try:
        for node, w in every.items():
            for conn in [*w.removed, *w.load]:
                _retire(controls[node], node, conn)
        for passive in (True, False):
            for node, w in every.items():
                conns = {c: t for c, t in w.config.connections.items() if _initiates(t) != passive}
                keys = w.config.secrets if passive else ()
                if conns or keys:
                    controls[node].load(SwanctlConfig(conns, keys))
        expected = awaited(work)
        if any(expected.values()):
            progress(f"waiting for {sum(len(v) for v in expected.values())} reloaded connection end(s)")
        wait_established({n: controls[n] for n in work}, expected, timeout, lab.dir.log_tail)
    finally:
        for ctl in controls.values():
            ctl.close()


def awaited(work: Mapping[str, ConnWork]) -> dict[str, list[tuple[str, list[str]]]]:
    """node -> [(connection, [CHILD_SAs])] to wait for after loading: as at `lab up`, not a responder-only
    catch-all nor a custom selector line that waits for its first packet (lab.render.tunnels.expected)."""
    return {node: [(c, [k for k, kid in _children(t).items() if child_expected(k, kid)])
                   for c, t in w.config.connections.items()] for node, w in work.items()}


def _retire(ctl: VpnControl, node: str, conn: str) -> None:
    """Unload the connection (charon then deletes what it initiated) and delete any IKE_SA left of it."""
    if conn in ctl.conns():
        ctl.unload_conn(conn)
    if not any(sa.name == conn for sa in ctl.sas()):
        return
    try:
        ctl.terminate_ike(conn)
    except ControlError as exc:  # gone meanwhile (the peer's DELETE): fine; still there: a real failure
        if any(sa.name == conn for sa in ctl.sas()):
            raise ControlError(f"node {node!r}: {exc.message}", hint=exc.hint) from exc


def _children(tree: Tree) -> dict[str, object]:
    children = tree.get("children")
    return dict(children) if isinstance(children, dict) else {}


def _initiates(tree: Tree) -> bool:
    return any(isinstance(c, dict) and c.get("start_action") == "start" for c in _children(tree).values())


def snapshot(nodes: list[str], socket_of: Callable[[str], Path], connect: core.Connect) -> Snapshot:
    """Each node's installed CHILD_SAs by connection, to prove afterwards that untouched ones did not move."""
    out: Snapshot = {}
    for node in nodes:
        ctl = connect(socket_of(node))
        try:
            sas = ctl.sas()
        finally:
            ctl.close()
        conns: dict[str, list[tuple[int, int, str, str]]] = {}
        for sa in sas:
            conns.setdefault(sa.name, []).extend(
                (sa.uniqueid, c.uniqueid, c.spi_in, c.spi_out) for c in sa.children if c.state == CHILD_INSTALLED)
        out[node] = {name: sorted(v) for name, v in conns.items()}
    return out


def kept_problems(before: Snapshot, after: Snapshot, kept: Mapping[str, list[str]]) -> list[str]:
    """Connections apply left alone whose CHILD_SAs nevertheless changed (uniqueid or SPIs)."""
    return [f"node {node!r}: connection {conn!r} was not to be touched, but its CHILD_SAs changed "
            f"({before.get(node, {}).get(conn)} -> {after.get(node, {}).get(conn)})"
            for node, conns in kept.items() for conn in conns
            if before.get(node, {}).get(conn) != after.get(node, {}).get(conn)]
