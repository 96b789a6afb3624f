"""Read a topology file: YAML -> pydantic model -> cross-reference and Azure checks, all errors at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lab.azure.compat import check_device_compat
from lab.azure.rules import check_azure_rules
from lab.errors import TopologyError
from lab.findings import Finding, errors
from lab.topology.checks import check_topology
from lab.topology.limits import check_emulation_limits
from lab.topology.model import Topology


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys: PyYAML would silently keep the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}: line {mark.line + 1}, column {mark.column + 1}" if mark else source
        raise TopologyError(f"{where}: not valid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise TopologyError(f"{source}: not valid YAML: {exc}") from exc


_HINTS = {
    "ip_v4_network": "write a network prefix with its host bits zero, such as 10.2.0.0/16",
    "ip_v4_address": "write an IPv4 address such as 203.0.113.10",
    "missing": "add this key",
    "string_pattern_mismatch": "use lowercase letters, digits and '-', starting with a letter",
}
# Hints for one field's errors, where the kind's generic hint says less.
_FIELD_HINTS = {
    "runtime": "write runtime: docker (this machine's engine) or runtime: swarm (LAB_SWARM_MANAGER names the "
               "swarm's manager), or leave it out; `lab up --runtime` overrides it",
}


def findings_from_validation(exc: ValidationError) -> list[Finding]:
    out = []
    for err in exc.errors():
        path = ".".join(_loc(p) for p in err["loc"]).replace(".[", "[")
        msg, kind = err["msg"], err["type"]
        if kind == "extra_forbidden":
            msg = "unknown key (check the spelling; `lab schema` lists the allowed keys)"
            if path.startswith("gateways.") and path.endswith(".enable_bgp"):
                out.append(Finding(path, "BGP is set per gateway (bgp:) and per connection (enable_bgp)",
                                   "write bgp: {asn: 65515} on the gateway and connections.<name>.enable_bgp: true"))
                continue
        elif kind in ("literal_error", "ip_v4_network", "ip_v4_address", "string_pattern_mismatch",
                      "greater_than_equal", "less_than_equal"):
            msg = f"{msg}, found {err['input']!r}"
        elif kind == "value_error":  # raised by our own field validators: the message is already ours
            msg = str(err.get("ctx", {}).get("error", msg))
        out.append(Finding(path, msg, _FIELD_HINTS.get(path) or _HINTS.get(kind)))
    return out


def _loc(part: int | str) -> str:
    return f"[{part}]" if isinstance(part, int) else str(part)


def validate(data: Any) -> tuple[Topology | None, list[Finding]]:
    """Validate parsed YAML; returns the model (if its shape is right) and every finding."""
    if not isinstance(data, dict):
        return None, [Finding("", "the topology must be a mapping with name, gateways, sites, connections")]
    try:
        topo = Topology.model_validate(data)
    except ValidationError as exc:
        return None, findings_from_validation(exc)
    return topo, [*check_topology(topo), *check_azure_rules(topo), *check_device_compat(topo),
                  *check_emulation_limits(topo)]


def load_text(text: str, source: str = "topology") -> tuple[Topology, list[Finding]]:
    """Parse and validate; raise TopologyError naming every error; return the model and its warnings."""
    topo, found = validate(parse_yaml(text, source))
    bad = errors(found)
    if topo is None or bad:
        lines = [f.render(source) for f in bad]
        raise TopologyError("\n".join(lines), findings=[f.render(source) for f in bad])
    return topo, found


def read_file(path: Path, what: str = "a topology") -> str:
    """A user's text file as str; unreadable, binary or non-UTF-8 files raise TopologyError (exit 2) naming
    the place, never a traceback."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TopologyError(f"{path}: cannot read: {exc.strerror}", hint="check the path") from exc
    return decode_text(data, str(path), what)


def read_site_file(base: Path, field: str, rel: str, what: str) -> tuple[Path, str]:
    """A site device's own file (`field` is its path in the topology, `rel` relative to the topology file's
    directory): missing, binary or non-UTF-8 raise TopologyError naming the field (exit 2)."""
    path = base / rel
    if not path.is_file():
        raise TopologyError(f"{field}: {path} is not a file", hint="the path is relative to the topology file")
    return path, read_file(path, what)


def decode_text(data: bytes, source: str, what: str) -> str:
    if b"\0" in data:
        line = data[:data.index(b"\0")].count(b"\n") + 1
        raise TopologyError(f"{source}: line {line}: a NUL byte: this is a binary file, not {what}",
                            hint=f"pass {what} file: UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise TopologyError(f"{source}: line {line}: byte 0x{data[exc.start]:02x} is not UTF-8",
                            hint=f"save the file as UTF-8 text ({what})") from None


def load_file(path: Path) -> tuple[Topology, list[Finding]]:
    return load_text(read_file(path), str(path))


def check_file(path: Path) -> tuple[Topology | None, list[Finding]]:
    """Every finding of a topology file, errors and warnings alike, without raising on errors
    (`lab validate`); unreadable files and broken YAML still raise TopologyError."""
    return validate(parse_yaml(read_file(path), str(path)))
