"""A device's swanctl.conf or ipsec.conf, read into the few facts the lab compares with Azure.

Only what a diagnosis needs is kept (addresses, identities, proposals, selectors, lifetimes, DPD); charon
itself reads the real file, so anything this parser skips still takes effect in the tunnel.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Literal

from lab.render.strongswan_defaults import (
    IPSEC_CONF_IKE_LIFETIME_S,
    IPSEC_CONF_LIFETIME_S,
    STRONGSWAN_DEFAULT_ESP,
    STRONGSWAN_DEFAULT_IKE,
    SWANCTL_CHILD_LIFE_S,
    SWANCTL_IKE_REKEY_S,
    swanctl_child_life,
    swanctl_child_schedule,
)

Format = Literal["swanctl", "ipsec.conf"]
Tree = dict[str, "str | Tree"]
_TIME = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class DeviceChild:
    name: str
    local_ts: tuple[str, ...]
    remote_ts: tuple[str, ...]
    esp: tuple[str, ...] = ()
    life_s: int = SWANCTL_CHILD_LIFE_S  # the hard lifetime (swanctl life_time, ipsec.conf lifetime), defaults filled
    start_action: str = "none"  # swanctl terms: ipsec.conf auto=route is "trap", auto=start "start"
    life_kb: int | None = None  # swanctl life_bytes in KB (0: no volume limit, its default); None: not read
    schedule: tuple[int, int] | None = None  # swanctl (rekey_time, rand_time) as charon derives them; None: not read


@dataclass(frozen=True)
class DeviceConn:
    """One connection of a device config, in swanctl terms (ipsec.conf keys are translated)."""

    name: str
    version: int  # 0: any, 1 or 2
    local_addrs: tuple[str, ...] = ()
    remote_addrs: tuple[str, ...] = ()
    local_id: str | None = None
    remote_id: str | None = None
    ike: tuple[str, ...] = ()
    ike_life_s: int = SWANCTL_IKE_REKEY_S  # swanctl rekey_time (or reauth_time), ipsec.conf ikelifetime
    dpd_delay_s: int | None = None
    children: tuple[DeviceChild, ...] = field(default_factory=tuple)
    psks: tuple[str, ...] = ()


def detect_format(text: str) -> Format:
    """swanctl.conf has a `connections {` section; ipsec.conf has `conn NAME` sections."""
    if re.search(r"^\s*connections\s*\{", text, re.MULTILINE):
        return "swanctl"
    return "ipsec.conf"


def seconds(value: str | None) -> int | None:
    """`27000s`, `8h`, `45m` or `3600` in seconds; None if absent or unreadable."""
    m = _TIME.match((value or "").strip().lower())
    return int(float(m.group(1)) * _UNITS[m.group(2)]) if m else None


def kilobytes(value: str | None) -> int | None:
    """swanctl `life_bytes` in KB: absent is strongSwan's default 0 (no volume limit); unreadable is None."""
    try:
        return int(value) // 1024 if value else 0
    except ValueError:
        return None


def split(value: object) -> tuple[str, ...]:
    return tuple(v.strip() for v in str(value or "").split(",") if v.strip())


def strip_comment(line: str) -> str:
    """The line without its `#` comment; a `#` between double quotes is text."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == "#" and not quoted:
            return line[:i]
    return line


def decode_secret(value: str) -> str:
    """strongSwan's secret encodings: 0x<hex> and 0s<base64> are bytes; anything else is the text itself."""
    try:
        if value[:2].lower() == "0x":
            return bytes.fromhex(value[2:]).decode("utf-8", errors="replace")
        if value[:2].lower() == "0s":
            return base64.b64decode(value[2:], validate=True).decode("utf-8", errors="replace")
    except (ValueError, binascii.Error):
        return value
    return value


def parse_swanctl_tree(text: str) -> Tree:
    """swanctl.conf's nested `name { key = value }` syntax as nested dicts (comments dropped)."""
    root: Tree = {}
    stack = [root]
    for raw in text.splitlines():
        line = strip_comment(raw).strip()
        if line.endswith("{"):
            child: Tree = {}
            stack[-1][line[:-1].strip()] = child
            stack.append(child)
        elif line == "}" and len(stack) > 1:
            stack.pop()
        elif "=" in line:
            key, value = line.split("=", 1)
            value = value.strip()
            stack[-1][key.strip()] = value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value
    return root


def _sub(tree: Tree, key: str) -> Tree:
    value = tree.get(key)
    return value if isinstance(value, dict) else {}


def _str(tree: Tree, key: str) -> str | None:
    value = tree.get(key)
    return value if isinstance(value, str) else None


def parse_swanctl(text: str) -> list[DeviceConn]:
    tree = parse_swanctl_tree(text)
    psks = tuple(decode_secret(s) for sec in _sub(tree, "secrets").values() if isinstance(sec, dict)
                 for s in [_str(sec, "secret")] if s)  # swanctl decodes 0x/0s even when quoted
    out = []
    for name, conn in _sub(tree, "connections").items():
        if not isinstance(conn, dict):
            continue
        kids = tuple(_swanctl_child(cn, c) for cn, c in _sub(conn, "children").items() if isinstance(c, dict))
        out.append(DeviceConn(
            name=name, version=int(_str(conn, "version") or 0), local_addrs=split(conn.get("local_addrs")),
            remote_addrs=split(conn.get("remote_addrs")), local_id=_str(_sub(conn, "local"), "id"),
            remote_id=_str(_sub(conn, "remote"), "id"),
            ike=with_defaults(split(conn.get("proposals")), STRONGSWAN_DEFAULT_IKE),
            ike_life_s=seconds(_str(conn, "rekey_time") or _str(conn, "reauth_time")) or SWANCTL_IKE_REKEY_S,
            dpd_delay_s=seconds(_str(conn, "dpd_delay")), children=kids, psks=psks))
    return out


def _swanctl_child(name: str, c: Tree) -> DeviceChild:
    rekey, life, rand = (seconds(_str(c, k)) for k in ("rekey_time", "life_time", "rand_time"))
    return DeviceChild(name, split(c.get("local_ts")), split(c.get("remote_ts")),
                       with_defaults(split(c.get("esp_proposals")), STRONGSWAN_DEFAULT_ESP),
                       swanctl_child_life(rekey, life), _str(c, "start_action") or "none",
                       kilobytes(_str(c, "life_bytes")), swanctl_child_schedule(rekey, life, rand))


def parse_ipsec_conf(text: str, secrets: str = "") -> list[DeviceConn]:
    """Legacy `conn` sections (with `also=` and `%default` merged) as swanctl-style connections."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = strip_comment(raw).rstrip()
        if re.match(r"^conn\s+\S+", line):
            current = sections.setdefault(line.split()[1], {})
        elif re.match(r"^\S", line):
            current = None
        elif current is not None and "=" in line:
            key, value = line.strip().split("=", 1)
            current[key.strip()] = value.strip().strip('"')
    psks = tuple(quoted if quoted or not bare else decode_secret(bare)  # quoted: literal; bare: 0x/0s decoded
                 for quoted, bare in re.findall(r'PSK\s+(?:"([^"\n]*)"|(\S+))', secrets))
    return [_legacy_conn(name, _merged(sections, name), psks) for name in sections
            if name != "%default" and _merged(sections, name).get("auto", "ignore") != "ignore"]


def _merged(sections: dict[str, dict[str, str]], name: str, depth: int = 0) -> dict[str, str]:
    base = dict(sections.get("%default", {})) if depth == 0 else {}
    own = sections.get(name, {})
    for parent in split(own.get("also")) if depth < 5 else ():
        base.update(_merged(sections, parent, depth + 1))
    base.update(own)
    return base


def _legacy_conn(name: str, s: dict[str, str], psks: tuple[str, ...]) -> DeviceConn:
    version = {"ikev1": 1, "ikev2": 2}.get(s.get("keyexchange", "ike"), 0)
    child = DeviceChild(name, split(s.get("leftsubnet")), split(s.get("rightsubnet")),
                        legacy_proposals(s.get("esp"), STRONGSWAN_DEFAULT_ESP),
                        seconds(s.get("lifetime") or s.get("keylife")) or IPSEC_CONF_LIFETIME_S,
                        {"route": "trap", "start": "start"}.get(s.get("auto", "add"), "none"))
    return DeviceConn(
        name=name, version=version, local_addrs=split(s.get("left")), remote_addrs=split(s.get("right")),
        local_id=s.get("leftid"), remote_id=s.get("rightid"),
        ike=legacy_proposals(s.get("ike"), STRONGSWAN_DEFAULT_IKE),
        ike_life_s=seconds(s.get("ikelifetime")) or IPSEC_CONF_IKE_LIFETIME_S,
        dpd_delay_s=seconds(s.get("dpddelay")) if s.get("dpdaction", "none") != "none" else 0,
        children=(child,), psks=psks)


def with_defaults(proposals: tuple[str, ...], defaults: tuple[str, ...]) -> tuple[str, ...]:
    """swanctl.conf: the keyword `default` stands for strongSwan's default proposals."""
    return tuple(q for p in proposals for q in (defaults if p.lower() == "default" else (p,)))


def legacy_proposals(value: str | None, defaults: tuple[str, ...]) -> tuple[str, ...]:
    """ipsec.conf `ike=`/`esp=`: without a final `!`, strongSwan appends its default proposals (a peer may
    pick one of those); absent, the defaults alone."""
    listed = split(value)
    if not listed:
        return defaults
    strict = listed[-1].endswith("!")
    listed = tuple(p.rstrip("!") for p in listed)
    return listed if strict else listed + defaults


def parse_device(text: str, secrets: str = "") -> list[DeviceConn]:
    return parse_swanctl(text) if detect_format(text) == "swanctl" else parse_ipsec_conf(text, secrets)
