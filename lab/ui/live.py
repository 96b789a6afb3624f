"""One collector per served lab: every `interval` seconds one `lab inspect` snapshot (pipeline.status), the
new lines of every node's charon log and of the supervisor's log, and what changed since the last snapshot.
Pages wait on its condition and get pushed what is new (server-sent events): one collection per interval
however many pages are open, never one per page.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from lab import core, daemons, pipeline
from lab.core import Connect
from lab.device.byo import byo_from_state
from lab.errors import LabError
from lab.ha import agents as ha
from lab.ops import faults as fault_store
from lab.ops.supervisor import LOG_FILE as SUPERVISOR_LOG
from lab.render.sa_settings import sa_settings
from lab.runtime.base import Runtime
from lab.scenarios import catalog
from lab.secrets import resolve_keys
from lab.status import LabStatus
from lab.ui.auth import redact
from lab.ui.events import CharonParser, Event, LogTail, Summary, diff, parse_ha, parse_supervisor
from lab.ui.model import Graph, Live, build_graph
from lab.ui.svg import render_svg
from lab.ui.tunnels import Settings, byo_settings, tunnel_details

MAX_EVENTS = 2000
_SWANCTL_SECRET = re.compile(r"^\s*secret\s*=\s*(\"?)(.+?)\1\s*$", re.M)
_IPSEC_SECRET = re.compile(r"PSK\s+\"([^\"]*)\"|PSK\s+(\S+)")


def lab_secrets(lab: core.Lab) -> set[str]:
    """Every shared key the lab knows: generated or given (keys.yml, topology) and any in a node's own
    config (a bring-your-own or scenario device may hold a different one)."""
    found = set(resolve_keys(lab.topo, lab.dir.read_keys(), generate=lambda: "").values())
    for node in lab.plan.nodes:
        for path in (d / name for d in lab.dir.charon_dirs(node.name) for name in ("swanctl.conf", "ipsec.secrets")):
            try:  # every charon of the node: a route-based tunnel's key is in its own charon's swanctl.conf
                text = path.read_text(errors="replace")
            except OSError:
                continue
            found |= {m.group(2) for m in _SWANCTL_SECRET.finditer(text)}
            found |= {a or b for a, b in _IPSEC_SECRET.findall(text)}
    return {s for s in found if s}


def active_instances(lab: core.Lab) -> dict[str, str]:
    """gateway -> its active instance, for active-standby gateways (a role file per instance)."""
    return {pair.gateway: ha.active_of(lab, pair) for pair in ha.standby_pairs(lab)}


def scenario_info(home: Path, lab_name: str) -> dict | None:
    try:
        state = catalog.read_state(home)
    except (LabError, ValueError, OSError):
        return None
    if state.lab != lab_name:
        return None
    scenario = catalog.load_scenario(state.name)
    return {"name": state.name, "title": scenario.title, "task": catalog.task(state.name),
            "hints": len(catalog.hints(state.name)), "hints_shown": state.hints_shown}


def summary(graph: Graph, faults: dict[str, str], active: dict[str, str]) -> Summary:
    return Summary(nodes={n.id: n.state for n in graph.nodes if n.kind != "internet"},
                   tunnels={e.id: (e.label.split(":")[0], e.state) for e in graph.edges if e.kind == "tunnel"},
                   faults=faults, active=active)


def build_snapshot(lab: core.Lab, status: LabStatus, graph: Graph, faults: list[fault_store.Fault],
                   scenario: dict | None, now: float, settings: Settings) -> dict:
    """The page's whole state, JSON-ready (the action and events parts are added by the collector)."""
    return {
        "lab": lab.topo.name, "time": now, "dataplane": status.dataplane,
        "svg": render_svg(graph), "graph": graph.as_dict(),
        "tunnels": tunnel_details(graph, status, settings),
        "bgp": [p.model_dump() for p in status.bgp_peers],
        "p2s": [c.model_dump() for c in status.p2s_clients],
        "problems": status.problems,
        "faults": [{"kind": f.kind, "target": f.target, "text": f.describe()} for f in faults],
        "gateways": sorted(lab.topo.gateways),
        "nodes": [{"name": n.name, "role": n.role, "ifaces": [i.name for i in n.ifaces],
                   "charon": n.runs(daemons.CHARON.name)} for n in lab.plan.nodes],
        "scenario": scenario,
    }


class Collector:
    """Refreshes one lab's snapshot and timeline; `version` grows whenever either changed."""

    def __init__(self, name: str, home: Path, runtime: Runtime, connect: Connect,
                 clock: Callable[[], float] = time.time) -> None:
        self.name, self.home, self.runtime, self.connect = name, home, runtime, connect
        self.clock = clock
        self.lab = core.load_running(name, home)
        self.dataplane = self.lab.dataplane  # what `lab up` recorded
        # as written and as JSON escapes them: the scrubber runs over JSON text
        self.secrets = {v for s in lab_secrets(self.lab) for v in (s, json.dumps(s)[1:-1])}
        self.cond = threading.Condition()
        self.version = 0
        self.closed = False
        self.snapshot: dict = {}
        self.snapshot_json = "{}"
        self.events: deque[tuple[int, Event]] = deque(maxlen=MAX_EVENTS)
        self.seq = 0
        self.action: dict = {"running": None, "last": None}
        self._summary: Summary | None = None
        self._year = dt.datetime.now(dt.UTC).year
        self._charon: dict[Path, tuple[LogTail, CharonParser]] = {}
        self._ha: dict[Path, LogTail] = {}
        self._supervisor = LogTail(self.lab.dir.root / SUPERVISOR_LOG)
        self._rendered = sa_settings(self.lab.topo)  # the rendered ends' settings: fixed for the lab's life

    def alive(self) -> bool:
        return self.lab.dir.topology.exists()

    def tick(self) -> None:
        """One collection; publishes when anything changed."""
        status = pipeline.status(self.lab, self.runtime, self.connect, self.dataplane)
        faults = fault_store.read_faults(self.lab.dir.root)
        active = active_instances(self.lab)
        live = Live(status, active, {f.node: f.describe() for f in faults})
        graph = build_graph(self.lab.topo, self.lab.plan, live)
        now = self.clock()
        # a BYO device's config is read each time: `lab reload` edits it while the page is open
        settings = {**byo_settings(self.lab.topo, byo_from_state(self.lab.topo, self.lab.dir.root / "nodes")),
                    **self._rendered}
        snap = build_snapshot(self.lab, status, graph, faults, scenario_info(self.home, self.name), now, settings)
        new = self._log_events()
        cur = summary(graph, {f.target: f.describe() for f in faults}, active)
        if self._summary is not None:
            new += diff(self._summary, cur, now)
        self._summary = cur
        self.publish(snap, new)

    def _discover(self) -> None:
        """Every charon log of the lab (a node's own and one per route-based tunnel, which appear as tunnels
        come and go) and every HA agent's event file."""
        for n in self.lab.plan.nodes:
            if not n.runs(daemons.CHARON.name):
                continue
            root = self.lab.dir.node(n.name)
            for path in self.lab.dir.charon_logs(n.name):
                if path not in self._charon:
                    self._charon[path] = (LogTail(path), CharonParser(n.name, self._year))
            ha_file = root / ha.EVENTS_FILE
            if ha_file not in self._ha and ha_file.exists():
                self._ha[ha_file] = LogTail(ha_file)

    def _log_events(self) -> list[Event]:
        self._discover()
        out = []
        for tail, parser in self._charon.values():
            out += [e for line in tail.read() if (e := parser.parse(line))]
        for ha_tail in self._ha.values():
            out += [e for line in ha_tail.read() if (e := parse_ha(line))]
        out += [e for line in self._supervisor.read() if (e := parse_supervisor(line))]
        return sorted(out, key=lambda e: e.t)

    def publish(self, snap: dict | None = None, events: list[Event] | None = None) -> None:
        with self.cond:
            changed = False
            if snap is not None:
                text = redact(json.dumps({k: v for k, v in snap.items() if k != "time"}, sort_keys=True),
                              self.secrets)
                if text != self.snapshot_json:
                    self.snapshot_json, changed = text, True
                self.snapshot = snap
            for e in events or []:
                self.seq += 1
                self.events.append((self.seq, e))
                changed = True
            if changed:
                self.version += 1
                self.cond.notify_all()

    def note(self, kind: str, node: str, text: str) -> None:
        """An event from the server itself (an action started or finished)."""
        self.publish(None, [Event(self.clock(), kind, node, redact(text, self.secrets))])

    def set_action(self, running: str | None, last: dict | None = None) -> None:
        with self.cond:
            self.action = {"running": running, "last": last if last is not None else self.action["last"]}
            self.version += 1
            self.cond.notify_all()

    def state_json(self, with_svg: bool = True) -> str:
        """The snapshot with the action state, scrubbed of every secret (a last guard: nothing in it
        should hold one)."""
        with self.cond:
            snap = dict(self.snapshot, action=self.action)
        if not with_svg:
            snap.pop("svg", None)
        return redact(json.dumps(snap), self.secrets)

    def events_since(self, seq: int) -> tuple[int, list[dict]]:
        with self.cond:
            new = [dict(e.as_dict(), seq=s) for s, e in self.events if s > seq]
            last = self.seq
        return last, new

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def run(self, interval: float, stop: threading.Event, log: Callable[[str], None]) -> None:
        """Collect until `stop` or until the lab is gone (`lab down` removed its state directory)."""
        while not stop.is_set():
            if not self.alive():
                log(f"lab {self.name} is gone: the UI stops")
                break
            try:
                self.tick()
            except LabError as exc:
                log(f"collect: {exc.message}")
            except Exception as exc:  # noqa: BLE001 - a failed collection must not stop the page; next tick
                log(f"collect: {type(exc).__name__}: {exc}")
            stop.wait(interval)
        self.close()
        stop.set()
