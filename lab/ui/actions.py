"""What the page's buttons do: each request becomes one `lab` command line, checked against the lab's own
nodes, gateways and fault kinds before anything runs (`plan_action`, pure), then run as its own process
(`run_action`): the same code, locks and output as the command a user types, so a check from the page
reports what `lab scenario check` reports.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lab.core import Lab
from lab.ops.faults import LINK_FAULTS, NODE_FAULTS

ACTION_TIMEOUT_S = 900.0
OUTPUT_CHARS = 12000
CAPTURE_DIR = "ui-capture"
CAPTURE_FILE = re.compile(r"^[\w.-]+$")
KEYS_FILE = "esp_sa"
PLOT_FILE = "failover-timeline.png"  # `lab failover --plot`'s picture of the run the page started


class ActionError(Exception):
    """A request the server refuses (HTTP 400), naming the field and what it accepts."""


@dataclass(frozen=True)
class Action:
    name: str  # fault, restore, failover, reset, verify, capture, scenario-hint, scenario-check
    argv: tuple[str, ...]  # after `lab`
    node: str = ""  # what the timeline names

    @property
    def command(self) -> str:
        return "lab " + " ".join(self.argv)


def _str(req: dict, key: str, default: str | None = None) -> str:
    value = req.get(key, default)
    if not isinstance(value, str) or not value:
        raise ActionError(f"{key}: required (a string)")
    return value


def _node(req: dict, lab: Lab) -> str:
    node = _str(req, "node")
    if node not in {n.name for n in lab.plan.nodes}:
        raise ActionError(f"node: {node!r} is not a node of lab {lab.topo.name}")
    return node


def _gateway(req: dict, lab: Lab) -> str:
    gw = _str(req, "gateway")
    if gw not in lab.topo.gateways:
        raise ActionError(f"gateway: {gw!r} is not a gateway of lab {lab.topo.name} "
                          f"({', '.join(sorted(lab.topo.gateways))})")
    return gw


def _fault(req: dict, lab: Lab) -> Action:
    kind, node = _str(req, "kind"), _node(req, lab)
    name = lab.topo.name
    if kind in NODE_FAULTS:
        return Action("fault", ("fault", kind, node, "--lab", name), node)
    if kind not in LINK_FAULTS:
        raise ActionError(f"kind: {kind!r} unknown ({', '.join(NODE_FAULTS + LINK_FAULTS)})")
    iface = _str(req, "iface", "eth0")
    if iface not in {i.name for i in lab.plan.node(node).ifaces}:
        raise ActionError(f"iface: node {node} has no interface {iface!r}")
    extra: tuple[str, ...] = ()
    if kind == "loss":
        pct = req.get("percent")
        if not isinstance(pct, int | float) or isinstance(pct, bool) or not 0 < pct <= 100:
            raise ActionError("percent: a number in (0, 100]")
        extra = (f"{pct:g}",)
    return Action("fault", ("fault", kind, f"{node}:{iface}", *extra, "--lab", name), node)


def plan_action(req: dict, lab: Lab, scenario_lab: str | None, capture_dir: Path) -> Action:
    """The command line for one request; ActionError for anything not of this lab."""
    what = req.get("action")
    name = lab.topo.name
    if what == "fault":
        return _fault(req, lab)
    if what == "restore":
        node = req.get("node")
        target = (_node(req, lab),) if node else ()
        return Action("restore", ("restore", *target, "--lab", name), str(node or ""))
    if what == "failover":
        mode = "--planned" if req.get("planned", True) is True else "--unplanned"
        gw = _gateway(req, lab)
        secs = req.get("duration")
        if secs is not None and (not isinstance(secs, int | float) or isinstance(secs, bool) or not 2 <= secs <= 600):
            raise ActionError("duration: seconds of probe stream, a number in [2, 600] (or none: the gateway's "
                              "ha_timing and DPD decide)")
        extra = ("--duration", f"{secs:g}") if secs is not None else ()
        # --json: its marks go into the timeline, the very data its --plot draws (the picture is a download)
        return Action("failover", ("failover", gw, mode, *extra, "--lab", name, "--json", "--plot",
                                   str(capture_dir / PLOT_FILE)), gw)
    if what == "reset":
        gw = _gateway(req, lab)
        return Action("reset", ("reset", gw, "--lab", name), gw)
    if what == "verify":
        return Action("verify", ("verify", name, "--json"))
    if what == "capture":
        return Action("capture", ("verify", name, "--json", "--pcap", str(capture_dir),
                                  "--wireshark-keys", str(capture_dir / KEYS_FILE)))
    if what in ("scenario-hint", "scenario-check"):
        if scenario_lab != name:
            raise ActionError(f"action: no scenario runs on lab {name}")
        return Action(what, ("scenario", "hint") if what == "scenario-hint" else ("scenario", "check", "--json"))
    raise ActionError(f"action: {what!r} unknown (fault, restore, failover, reset, verify, capture, "
                      "scenario-hint, scenario-check)")


def run_action(action: Action, home: Path, capture_dir: Path) -> dict:
    """Run it as `python -m lab ...`; the result the page shows (output cut to its end, JSON parsed).
    `capture_dir` is made first: `lab failover --plot` writes into it but, unlike `--pcap`, does not make it."""
    capture_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LAB_HOME": str(home), "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "160"}
    try:
        proc = subprocess.run([sys.executable, "-m", "lab", *action.argv], capture_output=True, text=True,
                              env=env, timeout=ACTION_TIMEOUT_S, stdin=subprocess.DEVNULL)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, out, err = 124, _text(exc.stdout), _text(exc.stderr) + f"\ntimed out after {ACTION_TIMEOUT_S:.0f} s"
    data = None
    if "--json" in action.argv:
        try:
            data = json.loads(out)
            out = ""
        except ValueError:
            data = None
    return {"name": action.name, "command": action.command, "node": action.node, "code": code,
            "ok": code == 0, "output": (err + out)[-OUTPUT_CHARS:], "data": data}


def _text(raw: bytes | str | None) -> str:
    if raw is None:
        return ""
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


def capture_files(capture_dir: Path) -> list[str]:
    """The downloadable files of the last capture (the pcap of the Internet link, its ESP keys)."""
    try:
        return sorted(p.name for p in capture_dir.iterdir() if p.is_file() and CAPTURE_FILE.match(p.name))
    except OSError:
        return []
