"""A swanctl configuration as data: written to swanctl.conf for people, loaded over vici for charon.

One tree serves both so the file a user reads is exactly what charon was given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union

Value = Union[str, list[str], "Tree"]
Tree = dict[str, Value]


# Written between double quotes as is; any other key is written as 0x<hex> of its bytes, which swanctl.conf and
# ipsec.secrets both read back exactly (a quoted `"`, `\\` or `#` would not survive, and swanctl decodes a
# quoted value starting with 0x or 0s as hex or base64).
_PLAIN_PSK = re.compile(r"[A-Za-z0-9._~+/=@:%^!*-]+")


def psk_literal(key: str) -> str:
    """A pre-shared key as swanctl.conf's `secret =` and ipsec.secrets' `PSK` value, byte for byte."""
    if _PLAIN_PSK.fullmatch(key) and not key.lower().startswith(("0x", "0s")):
        return f'"{key}"'
    return "0x" + key.encode().hex()


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
            body["secret"] = psk_literal(key.secret)
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
