"""The data-plane check and its `ip -s xfrm state` parser, over made-up evidence (no kernel ESP needed)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from lab.control.base import ChildSaStatus, IkeSaStatus
from lab.probes.pcap import WireFrame
from lab.runtime.base import CaptureStats
from lab.verify.checks_dataplane import check_dataplane
from lab.verify.evidence import Evidence
from lab.verify.targets import Targets
from lab.verify.xfrm import XfrmSa, grew, parse_xfrm_states

KEY = "0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324"
XFRM = f"""src 203.0.113.10 dst 198.51.100.10
\tproto esp spi 0xc1a2b3c4(3248665540) reqid 1(0x00000001) mode tunnel
\treplay-window 0 seq 0x00000000 flag af-unspec (0x00100000)
\taead rfc4106(gcm(aes)) {KEY}(288 bits) 128
\tanti-replay context: seq 0x0, oseq 0x14, bitmap 0x00000000
\tlifetime config:
\t  limit: soft (INF)(bytes), hard (INF)(bytes)
\t  limit: soft (INF)(packets), hard (INF)(packets)
\tlifetime current:
\t  1680(bytes), 20(packets)
\t  add 2026-11-30 16:00:00 use 2026-11-30 16:00:01
\tstats:
\t  replay-window 0 replay 0 failed 0
src 198.51.100.10 dst 203.0.113.10
\tproto esp spi 0x0000abcd(43981) reqid 1(0x00000001) mode tunnel
\tlifetime current:
\t  0(bytes), 0(packets)
"""
GW, SITE = "203.0.113.10", "198.51.100.10"


def test_parser_keeps_addresses_spis_and_counters_never_keys() -> None:
    sas = parse_xfrm_states(XFRM)
    assert sas == [XfrmSa(GW, SITE, 0xC1A2B3C4, 20, 1680), XfrmSa(SITE, GW, 0xABCD, 0, 0)]
    assert KEY[2:] not in repr(sas)
    assert parse_xfrm_states("") == []


def test_grew_counts_from_zero_for_new_states() -> None:
    old = {"azgw-0": [XfrmSa(GW, SITE, 1, 5)]}
    new = {"azgw-0": [XfrmSa(GW, SITE, 1, 12), XfrmSa(SITE, GW, 2, 3)]}
    assert grew(old, new) == {("azgw-0", 1, GW, SITE): 7, ("azgw-0", 2, SITE, GW): 3}


def _frame(i: int, spi: int, src: str, dst: str, udp: bool) -> WireFrame:
    port = 4500 if udp else 0
    return WireFrame(i, 0.0, "esp", "esp", b"", src=src, dst=dst, sport=port, dport=port, spi=spi)


def _sa(spi_in: int, spi_out: int, pkts: int) -> list[IkeSaStatus]:
    child = ChildSaStatus(name="c", uniqueid=1, state="INSTALLED", spi_in=f"{spi_in:08x}", spi_out=f"{spi_out:08x}",
                          packets_in=pkts, packets_out=pkts)
    return [IkeSaStatus(name="c", uniqueid=1, state="ESTABLISHED", version=2, local_host="", remote_host="",
                        children=[child])]


def _evidence(udp: bool, dataplane: str, xfrm_after_gw: list[XfrmSa], xfrm_after_site: list[XfrmSa]) -> Evidence:
    targets = Targets(pairs=(), host_ips={}, public_ips={GW: "azgw-0", SITE: "onprem"},
                      groups={"azgw-0": "azgw", "onprem": "onprem"}, inner={}, outside="10.99.0.1",
                      spoofed="10.98.0.1")
    frames = [_frame(i, 0xA, GW, SITE, udp) for i in range(3)] + [_frame(9, 0xB, SITE, GW, udp)]
    before = {"azgw-0": _sa(0xB, 0xA, 0), "onprem": _sa(0xA, 0xB, 0)}
    after = {"azgw-0": _sa(0xB, 0xA, 3), "onprem": _sa(0xA, 0xB, 3)}
    return Evidence("m", targets, [], [], before, before, after, after, frames, CaptureStats(Path("x.pcap"), 4, 0),
                    dataplane=dataplane, xfrm_before={},
                    xfrm_after={"azgw-0": xfrm_after_gw, "onprem": xfrm_after_site})


KERNEL_GW = [XfrmSa(GW, SITE, 0xA, 3), XfrmSa(SITE, GW, 0xB, 1)]
KERNEL_SITE = [XfrmSa(GW, SITE, 0xA, 3), XfrmSa(SITE, GW, 0xB, 1)]


def test_kernel_passes_with_raw_esp_and_matching_xfrm_states() -> None:
    res = check_dataplane(_evidence(False, "kernel", KERNEL_GW, KERNEL_SITE))
    assert res.passed, res.evidence
    assert res.data["esp_raw"] == 4 and res.data["esp_udp"] == 0
    assert any("azgw-0: vici SPIs 0x0000000a, 0x0000000b all in `ip xfrm state`" in e for e in res.evidence)
    assert any("SPI 0x0000000a 203.0.113.10 -> 198.51.100.10: 3 on the wire; XFRM azgw-0 out +3, onprem in +3"
               in e for e in res.evidence), res.evidence


def test_kernel_fails_on_esp_in_udp_missing_state_or_short_counter() -> None:
    assert not check_dataplane(_evidence(True, "kernel", KERNEL_GW, KERNEL_SITE)).passed
    missing = check_dataplane(_evidence(False, "kernel", KERNEL_GW[:1], KERNEL_SITE))
    assert not missing.passed and any("missing from `ip xfrm state`: 0x0000000b" in e for e in missing.evidence)
    short = [replace(KERNEL_SITE[0], packets=2), KERNEL_SITE[1]]
    assert not check_dataplane(_evidence(False, "kernel", KERNEL_GW, short)).passed


def test_libipsec_wants_esp_in_udp_and_no_kernel_state() -> None:
    ok = check_dataplane(_evidence(True, "libipsec", [], []))
    assert ok.passed and ok.summary.startswith("libipsec"), ok.evidence
    assert not check_dataplane(_evidence(False, "libipsec", [], [])).passed
    assert not check_dataplane(_evidence(True, "libipsec", KERNEL_GW, [])).passed


def test_kernel_passes_with_a_warm_standby_holding_no_sa() -> None:
    ev = _evidence(False, "kernel", KERNEL_GW, KERNEL_SITE)
    ev = replace(ev, after={**ev.after, "azgw-1": []}, xfrm_after={**ev.xfrm_after, "azgw-1": []})
    res = check_dataplane(ev)
    assert res.passed, res.evidence
    assert "ok  azgw-1: no CHILD_SA in vici, 0 XFRM state(s)" in res.evidence
