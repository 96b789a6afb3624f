"""Frames on the Internet link: classification, pcap reading, ESP decryption and Wireshark's key file."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from lab.errors import ProbeError
from lab.probes.esp import decrypt_all, decrypt_frame, verified_keys, wireshark_esp_sa
from lab.probes.keys_log import KeyCandidate, SaKeys
from lab.probes.pcap import classify, read_frames

GW, SITE = "203.0.113.10", "198.51.100.10"
SPI = 0x74E6028A
INNER = IP(src="10.1.0.10", dst="10.2.0.10") / ICMP(id=7, seq=1) / Raw(b"labverify-0011|icmp:vm1>pc1|1")


def esp_frame(key: bytes, algo: str = "AES-GCM", auth: str = "NULL", auth_key: bytes = b"",
              natt: bool = True) -> bytes:
    sa = SecurityAssociation(ESP, spi=SPI, crypt_algo=algo, crypt_key=key, auth_algo=auth,
                             auth_key=auth_key or None, tunnel_header=IP(src=GW, dst=SITE),
                             nat_t_header=UDP(sport=4500, dport=4500) if natt else None)
    return bytes(Ether() / sa.encrypt(INNER.copy(), seq_num=5))


def sa_keys(*cands: KeyCandidate, encr: str = "AES_GCM_16", integ: str | None = None) -> SaKeys:
    return SaKeys("azgw-0", "outbound", SPI, GW, SITE, encr, integ, cands)


def test_classify_underlay_frames() -> None:
    key = bytes(range(36))
    esp = classify(1, 1.0, esp_frame(key))
    assert (esp.kind, esp.spi, esp.seq, esp.src, esp.dst, esp.natt) == ("esp", SPI, 5, GW, SITE, True)
    raw_esp = classify(2, 1.0, esp_frame(key, natt=False))
    assert (raw_esp.kind, raw_esp.natt, raw_esp.spi) == ("esp", False, SPI)
    ike = Ether() / IP(src=GW, dst=SITE) / UDP(sport=4500, dport=4500) / Raw(b"\0\0\0\0" + b"x" * 40)
    assert classify(3, 1.0, bytes(ike)).kind == "ike"
    ike500 = Ether() / IP(src=GW, dst=SITE) / UDP(sport=500, dport=500) / Raw(b"y" * 40)
    assert classify(4, 1.0, bytes(ike500)).kind == "ike"
    keepalive = Ether() / IP(src=GW, dst=SITE) / UDP(sport=4500, dport=4500) / Raw(b"\xff")
    assert classify(5, 1.0, bytes(keepalive)).kind == "keepalive"
    arp = classify(6, 1.0, bytes(Ether() / ARP(psrc=GW, pdst="10.2.0.10")))
    assert (arp.kind, arp.src, arp.dst) == ("arp", GW, "10.2.0.10")
    assert classify(7, 1.0, bytes(Ether() / INNER)).kind == "ip"
    igmp = Ether() / IP(src="0.0.0.0", dst="224.0.0.22", proto=2) / Raw(bytes.fromhex("2200f90200000001"))
    assert classify(8, 1.0, bytes(igmp)).kind == "igmp"


def test_read_frames_numbers_like_tcpdump(tmp_path: Path) -> None:
    path = tmp_path / "c.pcap"
    wrpcap(str(path), [Ether(esp_frame(bytes(36))), Ether() / INNER])
    frames = read_frames(path)
    assert [(f.index, f.kind) for f in frames] == [(1, "esp"), (2, "ip")]
    with pytest.raises(ProbeError, match="cannot read"):
        read_frames(tmp_path / "missing.pcap")


@pytest.mark.parametrize("size", [20, 28, 36])  # AES-GCM-128/192/256 plus the 4-byte salt
def test_gcm_decrypts_only_with_the_right_candidate(size: int) -> None:
    right, wrong = bytes(range(size)), bytes(range(1, size + 1))
    frame = classify(1, 1.0, esp_frame(right))
    d = decrypt_frame(frame, [sa_keys(KeyCandidate("initiator", wrong), KeyCandidate("responder", right))])
    assert d.ok and d.role == "responder" and d.node == "azgw-0"
    assert b"labverify-0011|icmp:vm1>pc1|1" in d.inner and "echo-request" in d.inner_summary
    bad = decrypt_frame(frame, [sa_keys(KeyCandidate("initiator", wrong))])
    assert not bad.ok and "ICV did not verify" in (bad.error or "")


def test_cbc_hmac_decrypts_and_a_wrong_hmac_key_fails() -> None:
    key, mac = bytes(range(32)), bytes(range(32, 64))
    frame = classify(1, 1.0, esp_frame(key, "AES-CBC", "SHA2-256-128", mac))
    ok = decrypt_frame(frame, [sa_keys(KeyCandidate("initiator", key, mac), integ="HMAC_SHA2_256_128",
                                       encr="AES_CBC")])
    assert ok.ok and b"labverify-0011" in ok.inner
    bad = decrypt_frame(frame, [sa_keys(KeyCandidate("initiator", key, bytes(32)), integ="HMAC_SHA2_256_128",
                                        encr="AES_CBC")])
    assert not bad.ok


def test_no_key_and_unsupported_algorithm_are_reasons_not_crashes() -> None:
    frame = classify(1, 1.0, esp_frame(bytes(36)))
    assert "no key" in (decrypt_frame(frame, []).error or "")
    odd = decrypt_frame(frame, [sa_keys(KeyCandidate("initiator", bytes(36)), encr="CHACHA20_POLY1305")])
    assert "not supported" in (odd.error or "")


def test_wireshark_file_has_the_verified_key_per_sa() -> None:
    right = bytes(range(36))
    keys = [sa_keys(KeyCandidate("initiator", bytes(36)), KeyCandidate("responder", right))]
    frames = [classify(1, 1.0, esp_frame(right)), classify(2, 1.0, bytes(Ether() / INNER))]
    decrypted = decrypt_all(frames, keys)
    assert len(decrypted) == 1 and decrypted[0].ok
    text = wireshark_esp_sa(verified_keys(decrypted, keys))
    assert text == (f'"IPv4","{GW}","{SITE}","0x74e6028a","AES-GCM with 16 octet ICV [RFC4106]",'
                    f'"0x{right.hex()}","NULL",""\n')
