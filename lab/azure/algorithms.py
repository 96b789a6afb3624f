"""strongSwan proposal strings as transform sets, so a site's offers can be checked against Azure's.

A proposal such as `aes256-sha256-modp2048` lists, per transform type, the algorithms one end accepts;
two proposals match when every transform type has an algorithm in common. Only the keywords the lab
renders or a device commonly uses are known: an unknown keyword is an error, not a silent mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["ike", "esp"]

_AES = ("aes128", "aes192", "aes256")
ENCRYPTION = frozenset({*_AES, "3des", "des", "null", "camellia128", "camellia192", "camellia256",
                        *(f"{a}ctr" for a in _AES)})
AEAD = frozenset({*(f"{a}{m}{icv}" for a in _AES for m in ("gcm", "ccm") for icv in (8, 12, 16)),
                  "chacha20poly1305"})
INTEGRITY = frozenset({"md5", "sha1", "sha256", "sha384", "sha512", "aesxcbc", "aescmac"})
PRF = frozenset(f"prf{i}" for i in INTEGRITY)
DH = frozenset({"modp768", "modp1024", "modp1536", "modp2048", "modp3072", "modp4096", "modp6144", "modp8192",
                "modp1024s160", "modp2048s224", "modp2048s256", "ecp192", "ecp224", "ecp256", "ecp384", "ecp521",
                "ecp224bp", "ecp256bp", "ecp384bp", "ecp512bp", "curve25519", "curve448"})
ESN = frozenset({"esn", "noesn"})
ALIASES = {"aes": "aes128", "sha": "sha1", "sha2_256": "sha256", "sha2_384": "sha384", "sha2_512": "sha512",
           "x25519": "curve25519", "x448": "curve448", "prfsha": "prfsha1",
           **{f"{a}gcm": f"{a}gcm16" for a in _AES}, **{f"{a}ccm": f"{a}ccm16" for a in _AES}}


@dataclass(frozen=True)
class Transforms:
    """One proposal: the algorithms of each transform type (empty: none of that type)."""

    encryption: frozenset[str]
    integrity: frozenset[str]
    prf: frozenset[str]
    dh: frozenset[str]

    def matches(self, other: Transforms, *, with_dh: bool = True) -> bool:
        """Each transform type shares an algorithm (or both ends have none of that type)."""
        pairs = [(self.encryption, other.encryption), (self.integrity, other.integrity), (self.prf, other.prf)]
        if with_dh:
            pairs.append((self.dh, other.dh))
        return all((a & b) or (not a and not b) for a, b in pairs)


def parse_proposal(text: str, kind: Kind) -> Transforms:
    """Parse one strongSwan proposal; ValueError names the offending keyword and what is missing."""
    groups: dict[str, set[str]] = {"encr": set(), "aead": set(), "integ": set(), "prf": set(), "dh": set()}
    for raw in text.strip().lower().split("-"):
        token = ALIASES.get(raw, raw)
        group = _group_of(token, kind)
        if group is None:
            raise ValueError(f"unknown algorithm {raw!r} in {kind.upper()} proposal {text!r}")
        if group != "esn":
            groups[group].add(token)
    return _checked(groups, text, kind)


def _group_of(token: str, kind: Kind) -> str | None:
    for group, names in (("encr", ENCRYPTION), ("aead", AEAD), ("integ", INTEGRITY), ("dh", DH)):
        if token in names:
            return group
    if kind == "ike" and token in PRF:
        return "prf"
    if kind == "esp" and token in ESN:
        return "esn"
    return None


def _checked(g: dict[str, set[str]], text: str, kind: Kind) -> Transforms:
    """Apply strongSwan's rules for a complete proposal; derive IKE's PRF from its integrity algorithm."""
    def fail(why: str) -> ValueError:
        return ValueError(f"{kind.upper()} proposal {text!r}: {why}")

    if g["encr"] and g["aead"]:
        raise fail("mixes AEAD (e.g. aes256gcm16) and classic ciphers: write them as separate proposals")
    if not g["encr"] and not g["aead"]:
        raise fail("has no encryption algorithm (e.g. aes256 or aes256gcm16)")
    if g["aead"] and g["integ"]:
        raise fail("an AEAD cipher carries its own integrity: drop the integrity algorithm")
    if g["encr"] and not g["integ"]:
        raise fail("needs an integrity algorithm (e.g. sha256)")
    prf = set(g["prf"])
    if kind == "ike":
        if g["aead"] and not prf:
            raise fail("an AEAD IKE proposal needs a PRF (e.g. aes256gcm16-prfsha384-ecp384)")
        prf = prf or {f"prf{i}" for i in g["integ"]}
        if not g["dh"]:
            raise fail("needs a Diffie-Hellman group (e.g. modp2048 or ecp256)")
    return Transforms(frozenset(g["encr"] | g["aead"]), frozenset(g["integ"]), frozenset(prf), frozenset(g["dh"]))


def is_aead(text: str) -> bool:
    """An AEAD IKE proposal, which IKEv1 cannot negotiate in strongSwan."""
    return any(ALIASES.get(t, t) in AEAD for t in text.lower().split("-"))


def first_match(offered: list[str], accepted: list[str], kind: Kind, *, with_dh: bool = True) -> str | None:
    """The first accepted proposal that one of the offered proposals matches, or None."""
    theirs = [parse_proposal(p, kind) for p in offered]
    for mine in accepted:
        if any(parse_proposal(mine, kind).matches(t, with_dh=with_dh) for t in theirs):
            return mine
    return None
