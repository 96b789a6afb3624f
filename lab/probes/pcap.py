"""Read a capture of the Internet link and classify every frame: IKE, ESP (raw or in UDP 4500), ARP,
IGMP (link chatter), or anything else (which on the underlay means something travelled in clear).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from scapy.error import Scapy_Exception
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.utils import PcapReader

from lab.errors import ProbeError

FrameKind = Literal["esp", "ike", "keepalive", "arp", "igmp", "ip", "other"]
IKE_PORTS = (500, 4500)
NATT_PORT = 4500
IPPROTO_IGMP = 2  # the kernel's multicast membership reports when links come up: no payload
IPPROTO_ESP = 50
NON_ESP_MARKER = b"\x00\x00\x00\x00"


@dataclass(frozen=True)
class WireFrame:
    """One captured frame. `esp` holds the ESP packet (SPI to ICV) of ESP frames, for decryption."""

    index: int  # 1-based, as tcpdump and Wireshark number frames
    time: float  # epoch seconds
    kind: FrameKind
    summary: str
    raw: bytes
    src: str | None = None  # IPv4 source (ARP: sender protocol address)
    dst: str | None = None
    sport: int = 0
    dport: int = 0
    spi: int = 0
    seq: int = 0
    esp: bytes = b""

    @property
    def natt(self) -> bool:
        return self.sport == NATT_PORT or self.dport == NATT_PORT


def classify(index: int, time: float, raw: bytes) -> WireFrame:
    """What one Ethernet frame is, as far as the underlay is concerned."""
    eth = Ether(raw)
    if ARP in eth:
        arp = eth[ARP]
        return WireFrame(index, time, "arp", arp.summary(), raw, src=str(arp.psrc), dst=str(arp.pdst))
    if IP not in eth:
        return WireFrame(index, time, "other", eth.summary(), raw)
    ip = eth[IP]
    base: dict = {"index": index, "time": time, "raw": raw, "src": str(ip.src), "dst": str(ip.dst)}
    if ip.proto == IPPROTO_IGMP:
        return WireFrame(kind="igmp", summary=ip.summary(), **base)
    if ip.proto == IPPROTO_ESP:
        body = bytes(ip.payload)
        return _esp(base, body, f"ESP {ip.src} > {ip.dst}", 0, 0)
    if UDP in ip and (ip[UDP].sport in IKE_PORTS or ip[UDP].dport in IKE_PORTS):
        return _udp(base, ip[UDP])
    return WireFrame(kind="ip", summary=ip.summary(), **base)


def _udp(base: dict, udp: UDP) -> WireFrame:
    body = bytes(udp.payload)
    sport, dport = int(udp.sport), int(udp.dport)
    what = f"{base['src']}:{sport} > {base['dst']}:{dport}"
    natt = NATT_PORT in (sport, dport)
    if natt and body == b"\xff":
        return WireFrame(kind="keepalive", summary=f"NAT-T keepalive {what}", sport=sport, dport=dport, **base)
    if natt and len(body) >= 8 and body[:4] != NON_ESP_MARKER:
        return _esp(base, body, f"ESP-in-UDP {what}", sport, dport)
    return WireFrame(kind="ike", summary=f"IKE {what}", sport=sport, dport=dport, **base)


def _esp(base: dict, body: bytes, what: str, sport: int, dport: int) -> WireFrame:
    if len(body) < 8:
        return WireFrame(kind="ip", summary=f"{what}: truncated ESP", sport=sport, dport=dport, **base)
    spi, seq = struct.unpack("!II", body[:8])
    return WireFrame(kind="esp", summary=f"{what} spi=0x{spi:08x} seq={seq}", sport=sport, dport=dport,
                     spi=spi, seq=seq, esp=body, **base)


def read_frames(path: Path) -> list[WireFrame]:
    """Every frame of a pcap file, classified; a missing or unreadable file is a ProbeError."""
    frames = []
    try:
        with PcapReader(str(path)) as reader:
            for i, pkt in enumerate(reader, start=1):
                frames.append(classify(i, float(pkt.time), bytes(pkt)))
    except (OSError, Scapy_Exception) as exc:
        raise ProbeError(f"capture {path}: cannot read: {exc}", hint="was tcpdump stopped early?") from exc
    return frames
