"""A swanctl configuration as data: written to swanctl.conf for people, loaded over vici for charon.

One tree serves both so the file a user reads is exactly what charon was given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

Value = Union[str, list[str], "Tree"]
Tree = dict[str, Value]


@dataclass(frozen=True)
class SharedKey:
    name: str  # secrets section name, e.g. "ike-azgw-onprem"
    ids: tuple[str, ...]
    secret: str

    def vici(self) -> dict[str, object]:
        return {"id": self.name, "type": "IKE", "data": self.secret, "owners": list(self.ids)}


@dataclass(frozen=True)
class SwanctlConfig:
    connections: dict[str, Tree] = field(default_factory=dict)
    secrets: tuple[SharedKey, ...] = ()

    def initiates(self) -> bool:
        """Some CHILD_SA starts when loaded: its peer must have its config loaded first, or it answers
        NO_PROPOSAL_CHOSEN ("no IKE config found") and charon does not retry that."""
        return any(isinstance(kids, dict) and any(isinstance(c, dict) and c.get("start_action") == "start"
                                                  for c in kids.values())
                   for kids in (tree.get("children") for tree in self.connections.values()))

    def to_text(self) -> str:
        lines = ["# Rendered by lab: the same tree is loaded into charon over vici.", "connections {"]
        for name, tree in self.connections.items():
            lines += _section(name, tree, 1)
        lines.append("}")
        lines.append("secrets {")
        for key in self.secrets:
            body: Tree = {f"id-{i}": ident for i, ident in enumerate(key.ids)}
            body["secret"] = f'"{key.secret}"'
            lines += _section(key.name, body, 1)
        lines.append("}")
        return "\n".join(lines) + "\n"


def _section(name: str, tree: Tree, depth: int) -> list[str]:
    pad = "  " * depth
    out = [f"{pad}{name} {{"]
    for key, value in tree.items():
        if isinstance(value, dict):
            out += _section(key, value, depth + 1)
        elif isinstance(value, list):
            out.append(f"{pad}  {key} = {', '.join(value)}")
        else:
            out.append(f"{pad}  {key} = {value}")
    out.append(f"{pad}}}")
    return out
