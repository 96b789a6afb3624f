"""Custom traffic selectors' later lines on first traffic: the acquire agent on libipsec nodes.

Azure creates a QMSA for only the first selector line when the tunnel comes up and the others when traffic is
attempted (lab.azure.facts.CUSTOM_TS_LATER_LINES_ON_TRAFFIC). The lab renders those lines with start_action =
trap; the kernel data plane acquires by itself, but libipsec 5.9.8 drops the packet and never tells charon, so
lab/probes/acquire_agent.py (copied into the node, run detached) initiates the line's CHILD_SA on its first
packet. This module says which nodes need the agent (pure, from the rendered trees) and starts it.
"""

from __future__ import annotations

import json
from pathlib import Path

from lab.core import Lab
from lab.hooks import Feature, Stage
from lab.node_agent import NodeAgent
from lab.render.swanctl import SwanctlConfig
from lab.runtime.base import Runtime

AGENT = NodeAgent(Path(__file__).parent / "probes" / "acquire_agent.py", "acquire-spec.json", "acquire-agent.pid")
EVENTS_FILE = "acquire-events.jsonl"
MAIN_URI = "unix:///lab/run/charon.vici"


def agent_specs(swan: dict[str, SwanctlConfig]) -> dict[str, dict[str, object]]:
    """node -> its agent's spec: every trap child of the node's main charon (a tunnel's own charon has none:
    selector lines are policy-based, on the main charon)."""
    out: dict[str, dict[str, object]] = {}
    for unit, cfg in sorted(swan.items()):
        lines = [{"child": child, "ike": conn, "local": tree["local_ts"], "remote": tree["remote_ts"]}
                 for conn, ctree in cfg.connections.items() if isinstance(ctree.get("children"), dict)
                 for child, tree in ctree["children"].items()  # type: ignore[union-attr]
                 if isinstance(tree, dict) and tree.get("start_action") == "trap"]
        if lines and "/" not in unit:
            out[unit] = {"dev": "ipsec0", "uri": MAIN_URI, "events": f"/lab/{EVENTS_FILE}", "lines": lines}
    return out


class AcquireFeature(Feature):
    """Agents stage: on a libipsec lab, an acquire agent on every node with a selector line that waits for
    traffic."""

    def running(self, st: Stage, swan: dict[str, SwanctlConfig]) -> None:
        if (st.lab.dir.read_dataplane() or "libipsec") == "libipsec":
            for node, spec in agent_specs(swan).items():
                start(st.lab, st.runtime, node, spec)


def restart(lab: Lab, runtime: Runtime, node: str, dataplane: str, swan: dict[str, SwanctlConfig]) -> bool:
    """(Re)start `node`'s agent after its container restarted (`lab reset`, heal); False: it needs none."""
    spec = agent_specs(swan).get(node) if dataplane == "libipsec" else None
    if spec is not None:
        start(lab, runtime, node, spec)
    return spec is not None


def follow(lab: Lab, runtime: Runtime, swan: dict[str, SwanctlConfig], running: set[str]) -> None:
    """After `lab apply`: (re)start the agent of every running unit whose lines changed, stop those that have
    none left."""
    specs = agent_specs(swan)
    with_agent = {n.name for n in lab.plan.nodes if (lab.dir.node(n.name) / AGENT.pid_file).exists()}
    for node in sorted(set(specs) | with_agent):
        spec_file = lab.dir.node(node) / AGENT.spec
        if node not in specs:
            stop(lab, runtime, node)
        elif node in running and (not spec_file.exists() or json.loads(spec_file.read_text()) != specs[node]):
            start(lab, runtime, node, specs[node])


def start(lab: Lab, runtime: Runtime, node: str, spec: dict[str, object]) -> None:
    AGENT.start(lab, runtime, node, "acquire", spec)


def stop(lab: Lab, runtime: Runtime, node: str) -> None:
    AGENT.stop(lab, runtime, node)


def events(lab: Lab, node: str) -> list[dict[str, object]]:
    """The node's agent events (start, acquire, initiated), oldest first."""
    path = lab.dir.node(node) / EVENTS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
