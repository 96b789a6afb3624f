"""A finding: one problem in a topology, named by its dotted path, with the fix when there is one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Finding:
    path: str  # dotted path into the topology file, e.g. "connections.c1.site"
    message: str
    hint: str | None = None
    severity: Literal["error", "warning"] = "error"

    def render(self, source: str) -> str:
        text = f"{source}: {self.path}: {self.message}" if self.path else f"{source}: {self.message}"
        if self.severity == "warning":
            text = f"{source}: warning: {self.path}: {self.message}"
        return text + (f"\n  hint: {self.hint}" if self.hint else "")


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]
