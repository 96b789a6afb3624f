"""Decrypt captured ESP with keys from charon's key log (Scapy's SecurityAssociation), and write the
same keys in Wireshark's esp_sa format so a saved capture opens decrypted.

Which candidate key belongs to an SA is decided by the packets themselves: AES-GCM's ICV (or the HMAC
of CBC suites) verifies only with the right key, so a wrong key can never yield a "decrypted" packet.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP, IPSecIntegrityError, SecurityAssociation

from lab.probes.keys_log import KeyCandidate, SaKeys
from lab.probes.pcap import WireFrame

# charon's algorithm names -> (Scapy's name, Wireshark's esp_sa name)
ENCRYPTION = {
    "AES_GCM_16": ("AES-GCM", "AES-GCM with 16 octet ICV [RFC4106]"),
    "AES_CBC": ("AES-CBC", "AES-CBC [RFC3602]"),
}
INTEGRITY = {
    None: ("NULL", "NULL"),
    "HMAC_SHA1_96": ("HMAC-SHA1-96", "HMAC-SHA-1-96 [RFC2404]"),
    "HMAC_SHA2_256_128": ("SHA2-256-128", "HMAC-SHA-256-128 [RFC4868]"),
    "HMAC_SHA2_384_192": ("SHA2-384-192", "HMAC-SHA-384-192 [RFC4868]"),
    "HMAC_SHA2_512_256": ("SHA2-512-256", "HMAC-SHA-512-256 [RFC4868]"),
}
SaId = tuple[int, str, str]  # (spi, src, dst): how a packet on the wire names its SA


@dataclass(frozen=True)
class Decryption:
    """One ESP frame: decrypted (with which node's log and role) or why not."""

    frame: WireFrame
    ok: bool
    role: str | None = None
    node: str | None = None
    inner: bytes = b""
    inner_summary: str = ""
    error: str | None = None


def sa_id(frame: WireFrame) -> SaId:
    return (frame.spi, frame.src or "", frame.dst or "")


def supported(keys: SaKeys) -> bool:
    return keys.encr_alg in ENCRYPTION and keys.integ_alg in INTEGRITY


def _security_association(frame: WireFrame, keys: SaKeys, cand: KeyCandidate) -> SecurityAssociation:
    natt = UDP(sport=frame.sport, dport=frame.dport) if frame.natt else None
    return SecurityAssociation(
        ESP, spi=frame.spi, crypt_algo=ENCRYPTION[keys.encr_alg][0], crypt_key=cand.encr_key,
        auth_algo=INTEGRITY[keys.integ_alg][0], auth_key=cand.integ_key or None,
        tunnel_header=IP(src=frame.src, dst=frame.dst), nat_t_header=natt)


def _try(frame: WireFrame, keys: SaKeys, cand: KeyCandidate) -> IP | None:
    """The inner packet, or None when the ICV/HMAC does not verify with this key."""
    outer = IP(src=frame.src, dst=frame.dst)
    outer = outer / UDP(sport=frame.sport, dport=frame.dport) if frame.natt else outer
    try:
        return _security_association(frame, keys, cand).decrypt(outer / ESP(frame.esp))
    except (IPSecIntegrityError, ValueError, IndexError, struct.error):
        return None


def decrypt_frame(frame: WireFrame, keys: list[SaKeys]) -> Decryption:
    """Try every candidate key logged for this SA (by any node) until one verifies."""
    if not keys:
        return Decryption(frame, False, error=f"no key in any keys.log for SPI 0x{frame.spi:08x}")
    usable = [k for k in keys if supported(k)]
    if not usable:
        algs = f"{keys[0].encr_alg}/{keys[0].integ_alg}"
        return Decryption(frame, False, error=f"SPI 0x{frame.spi:08x}: {algs} is not supported for decryption")
    for k in usable:
        for cand in k.candidates:
            inner = _try(frame, k, cand)
            if inner is not None:
                return Decryption(frame, True, cand.role, k.node, bytes(inner), inner.summary())
    return Decryption(frame, False, error=f"SPI 0x{frame.spi:08x}: ICV did not verify with any logged key "
                                          f"({sum(len(k.candidates) for k in usable)} tried)")


def decrypt_all(frames: Iterable[WireFrame], keys: list[SaKeys]) -> list[Decryption]:
    """Every ESP frame of the capture, decrypted or with the reason it could not be."""
    by_sa: dict[SaId, list[SaKeys]] = {}
    for k in keys:
        by_sa.setdefault((k.spi, k.src, k.dst), []).append(k)
    out = []
    for frame in frames:
        if frame.kind == "esp":
            out.append(decrypt_frame(frame, by_sa.get(sa_id(frame), [])))
    return out


def verified_keys(decrypted: Iterable[Decryption], keys: list[SaKeys]) -> dict[SaId, tuple[SaKeys, KeyCandidate]]:
    """The key that decrypted each SA's packets on the wire (SAs without packets are left out)."""
    roles = {sa_id(d.frame): (d.node, d.role) for d in decrypted if d.ok}
    out: dict[SaId, tuple[SaKeys, KeyCandidate]] = {}
    for k in keys:
        node_role = roles.get((k.spi, k.src, k.dst))
        if node_role and node_role[0] == k.node:
            out[(k.spi, k.src, k.dst)] = (k, next(c for c in k.candidates if c.role == node_role[1]))
    return out


def wireshark_esp_sa(verified: dict[SaId, tuple[SaKeys, KeyCandidate]]) -> str:
    """Wireshark's esp_sa UAT file: one quoted CSV line per SA."""
    lines = []
    for (spi, src, dst), (k, cand) in sorted(verified.items(), key=lambda item: (item[0][1], item[0][0])):
        encr, integ = ENCRYPTION[k.encr_alg][1], INTEGRITY[k.integ_alg][1]
        integ_key = f"0x{cand.integ_key.hex()}" if cand.integ_key else ""
        lines.append(f'"IPv4","{src}","{dst}","0x{spi:08x}","{encr}","0x{cand.encr_key.hex()}",'
                     f'"{integ}","{integ_key}"')
    return "".join(line + "\n" for line in lines)
