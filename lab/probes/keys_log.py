"""Parse charon's key log (filelog `keys`, chd = 4) into the ESP keys of every CHILD_SA it installed.

Per CHILD_SA, one charon thread logs, in order:
    13[CHD]   using AES_GCM_16 for encryption
    13[CHD] encryption initiator key => 36 bytes @ 0x...
    13[CHD]    0: 8A 23 F9 CF ...  (hex dump, 16 bytes a line)
    13[CHD] encryption responder key => 36 bytes @ 0x...
    13[CHD] adding inbound ESP SA
    13[CHD]   SPI 0x28d35b82, src 198.51.100.10 dst 203.0.113.10
    13[CHD] adding outbound ESP SA
    13[CHD]   SPI 0x74e6028a, src 203.0.113.10 dst 198.51.100.10
The initiator key protects initiator -> responder packets, but the log does not say which side this
node was, so each SA keeps both keys as candidates: decryption finds out (an AEAD ICV or HMAC verifies
only with the right one). Lines of several threads may interleave, hence the state per thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

Role = Literal["initiator", "responder"]
HEX_DUMP_WIDTH = 48  # 16 bytes as "XX " before the ASCII column

_THREAD = re.compile(r"(?:^|\s)(\d+)\[CHD\] (.*)$")
_USING = re.compile(r"^\s*using (\S+) for (encryption|integrity)")
_KEY = re.compile(r"^(encryption|integrity) (initiator|responder) key => (\d+) bytes")
_DUMP = re.compile(r"^\s+\d+: (.*)$")
_ADDING = re.compile(r"^adding (inbound|outbound) ESP SA")
_SPI = re.compile(r"^\s*SPI 0x([0-9a-fA-F]+), src (\S+) dst (\S+)")


@dataclass(frozen=True)
class KeyCandidate:
    """The keys one role derived: encryption (for AES-GCM including the 4-byte salt) and integrity."""

    role: Role
    encr_key: bytes
    integ_key: bytes = b""


@dataclass(frozen=True)
class SaKeys:
    """One direction of a CHILD_SA as one node installed it, with both candidate key sets."""

    node: str
    direction: Literal["inbound", "outbound"]
    spi: int
    src: str
    dst: str
    encr_alg: str  # charon's name: AES_GCM_16, AES_CBC, ...
    integ_alg: str | None
    candidates: tuple[KeyCandidate, ...]

    def with_keys(self, candidates: tuple[KeyCandidate, ...]) -> SaKeys:
        return replace(self, candidates=candidates)


@dataclass
class _Block:
    """What one thread has logged so far for the CHILD_SA it is installing (parser state only)."""

    encr_alg: str = ""
    integ_alg: str | None = None
    keys: dict[tuple[str, str], bytearray] = field(default_factory=dict)
    sizes: dict[tuple[str, str], int] = field(default_factory=dict)
    dumping: tuple[str, str] | None = None
    direction: str | None = None


def _candidates(block: _Block) -> tuple[KeyCandidate, ...]:
    out = []
    for role in ("initiator", "responder"):
        encr = bytes(block.keys.get(("encryption", role), b""))
        if encr:
            out.append(KeyCandidate(role, encr, bytes(block.keys.get(("integrity", role), b""))))  # type: ignore[arg-type]
    return tuple(out)


def _hex_bytes(dump: str) -> bytes:
    return bytes.fromhex(dump[:HEX_DUMP_WIDTH].replace(" ", ""))


def _feed(blocks: dict[str, _Block], thread: str, text: str, node: str) -> SaKeys | None:
    """Advance one thread's block by one line; returns an SA when its SPI line completes it."""
    block = blocks.setdefault(thread, _Block())
    if block.dumping and (m := _DUMP.match(text)):
        name = block.dumping
        block.keys[name] += _hex_bytes(m.group(1))
        if len(block.keys[name]) >= block.sizes[name]:
            block.dumping = None
        return None
    block.dumping = None
    if m := _USING.match(text):
        if m.group(2) == "encryption":  # a new CHILD_SA starts here
            blocks[thread] = _Block(encr_alg=m.group(1))
        else:
            block.integ_alg = m.group(1)
    elif m := _KEY.match(text):
        name = (m.group(1), m.group(2))
        block.keys[name], block.sizes[name], block.dumping = bytearray(), int(m.group(3)), name
    elif m := _ADDING.match(text):
        block.direction = m.group(1)
    elif (m := _SPI.match(text)) and block.direction:
        sa = SaKeys(node, block.direction, int(m.group(1), 16), m.group(2), m.group(3),  # type: ignore[arg-type]
                    block.encr_alg, block.integ_alg, _candidates(block))
        block.direction = None
        return sa
    return None


def parse_keys_log(text: str, node: str) -> list[SaKeys]:
    """Every ESP SA the log shows being added, in log order."""
    blocks: dict[str, _Block] = {}
    found = []
    for line in text.splitlines():
        m = _THREAD.search(line)
        if not m:
            continue
        sa = _feed(blocks, m.group(1), m.group(2), node)
        if sa is not None and sa.candidates:
            found.append(sa)
    return found
