"""The lab state directory: topology copy, generated keys, rendered configs, charon logs and sockets.

Layout: <home>/<lab>/topology.yml, keys.yml (0600), nodes/<node>/ (mounted at /lab in the container).
Runtime objects are found by label, not from here, so `lab down` works even if this directory is gone.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import yaml

DEFAULT_HOME = Path("/var/lib/lab")
# Node files that hold a pre-shared key (rendered or the user's own): owner-only, like keys.yml.
SECRET_FILES = frozenset({"swanctl.conf", "ipsec.secrets"})


def write_private(path: Path, text: str) -> None:
    """Write a file that holds a key: created 0600 (never briefly world-readable), and an existing file is
    narrowed to 0600 before the new text goes in."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def lab_home(environ: dict[str, str]) -> Path:
    return Path(environ.get("LAB_HOME", str(DEFAULT_HOME)))


@dataclass(frozen=True)
class LabDir:
    root: Path

    @classmethod
    def of(cls, home: Path, lab: str) -> LabDir:
        return cls(home / lab)

    @property
    def topology(self) -> Path:
        return self.root / "topology.yml"

    @property
    def keys(self) -> Path:
        return self.root / "keys.yml"

    def node(self, name: str) -> Path:
        """A node's directory; a charon unit `<node>/tunnels/<conn>` resolves inside it (lab/tunnel_units.py)."""
        return self.root / "nodes" / name

    def vici_socket(self, node: str) -> Path:
        return self.node(node) / "run" / "charon.vici"

    def charon_log(self, node: str) -> Path:
        return self.node(node) / "charon.log"

    def keys_log(self, node: str) -> Path:
        return self.node(node) / "keys.log"

    def charon_dirs(self, node: str) -> list[Path]:
        """Where every charon of a node keeps its vici socket and logs: the node's main charon's directory, then
        each route-based tunnel's own (`tunnels/<conn>/`, docs/route-based.md); a unit `<node>/tunnels/<conn>`
        is just its own. What reads a node's logs or keys reads them all through this (a rendered site whose
        every tunnel has its own charon runs no main charon: its logs are all under tunnels/)."""
        own = self.node(node)
        if "/" in node:
            return [own]
        return [own, *sorted(p for p in (own / "tunnels").glob("*") if p.is_dir())]

    def charon_logs(self, node: str) -> list[Path]:
        """Every charon log of a node (charon_dirs), those that exist."""
        return [p for d in self.charon_dirs(node) if (p := d / "charon.log").exists()]

    def keys_logs(self, node: str) -> list[Path]:
        """Every ESP key log of a node (charon_dirs), those that exist."""
        return [p for d in self.charon_dirs(node) if (p := d / "keys.log").exists()]

    @property
    def dataplane_file(self) -> Path:
        return self.root / "dataplane"

    def read_dataplane(self) -> Literal["kernel", "libipsec"] | None:
        """The data plane `lab up` chose for this lab (commands after `up` must use the same one)."""
        try:
            text = self.dataplane_file.read_text().strip()
        except OSError:
            return None
        return text if text in ("kernel", "libipsec") else None  # type: ignore[return-value]

    def read_keys(self) -> dict[str, str]:
        if not self.keys.exists():
            return {}
        data = yaml.safe_load(self.keys.read_text()) or {}
        return {str(k): str(v) for k, v in data.items()}

    def write(self, topology_text: str, keys: dict[str, str], files: dict[PurePosixPath, str],
              nodes: list[str], dataplane: str | None = None) -> None:
        """Create the directory afresh; files holding keys readable by their owner only."""
        self.root.mkdir(parents=True, exist_ok=True)
        write_private(self.topology, topology_text)  # may hold shared_key values
        write_private(self.keys, yaml.safe_dump(keys))
        if dataplane:
            self.dataplane_file.write_text(dataplane + "\n")
        for node in nodes:
            run = self.node(node) / "run"
            run.mkdir(parents=True, exist_ok=True)
            for stale in (self.charon_log(node), self.keys_log(node), self.vici_socket(node)):
                stale.unlink(missing_ok=True)
        for rel, text in files.items():
            path = self.node(rel.parts[0]).joinpath(*rel.parts[1:])
            path.parent.mkdir(parents=True, exist_ok=True)  # a tunnel's charon: nodes/<node>/tunnels/<conn>/
            if path.name in SECRET_FILES:
                write_private(path, text)
            else:
                path.write_text(text)

    def log_tail(self, node: str, lines: int = 15) -> list[str]:
        """The last lines of a charon's log; for a node, its main charon's and then each of its route-based
        tunnels' own (`<node>/tunnels/<conn>`), those lines prefixed with [<conn>]."""
        out: list[str] = []
        for log in self.charon_logs(node):
            tag = f"[{log.parent.name}] " if log.parent != self.node(node) else ""
            out += [f"{tag}{line}" for line in self._tail(log, lines)]
        return out

    @staticmethod
    def _tail(path: Path, lines: int) -> list[str]:
        try:
            return path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return []

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
