"""A script of lab/probes copied into a node's /lab and run there detached, its pid in a file beside it: the HA
agent and the acquire agent both live this way, so starting and stopping one is written once."""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from lab.core import Lab
from lab.errors import RuntimeBackendError
from lab.runtime.base import Runtime


@dataclass(frozen=True)
class NodeAgent:
    """`source` is copied to /lab/<its name>; it reads /lab/<spec>; its shell writes its pid to /lab/<pid_file>."""

    source: Path
    spec: str
    pid_file: str

    @property
    def script(self) -> str:
        return f"/lab/{self.source.name}"

    def start(self, lab: Lab, runtime: Runtime, node: str, mode: str, spec: dict[str, object]) -> None:
        """Replace the node's agent: copy the script, write its spec, kill the old one by its pid, start."""
        d = lab.dir.node(node)
        d.mkdir(parents=True, exist_ok=True)
        (d / self.source.name).write_text(self.source.read_text())
        (d / self.spec).write_text(json.dumps(spec, indent=1))
        self.stop(lab, runtime, node)
        argv = ["sh", "-c", f"echo $$ > /lab/{self.pid_file}; exec python3 {self.script} {mode} /lab/{self.spec}"]
        runtime.exec(lab.topo.name, node, argv, detach=True)

    def stop(self, lab: Lab, runtime: Runtime, node: str) -> None:
        pid_file = lab.dir.node(node) / self.pid_file
        pid = pid_file.read_text().strip() if pid_file.exists() else ""
        if pid.isdigit():
            with suppress(RuntimeBackendError):  # container gone: so is the agent
                runtime.exec(lab.topo.name, node, ["kill", pid], timeout=5)
        pid_file.unlink(missing_ok=True)
