"""The five checks over made-up evidence: each passes on good evidence and fails on the fault it guards."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from lab.control.base import ChildSaStatus, IkeSaStatus
from lab.plan import build_plan
from lab.probes.esp import Decryption
from lab.probes.pcap import WireFrame, classify
from lab.probes.results import ProbeResult, payload
from lab.runtime.base import CaptureStats
from lab.topology.load import load_file
from lab.verify.checks_sa import check_decryption, check_selectors, check_spis
from lab.verify.checks_wire import check_encrypted, check_reachability
from lab.verify.evidence import Evidence
from lab.verify.targets import ProbeOptions, build_targets, held_now, holders, reach_specs, selector_specs

ROOT = Path(__file__).resolve().parents[2]
GW, SITE = "203.0.113.10", "198.51.100.10"
GW_OUT, SITE_OUT = 0x74E6028A, 0x28D35B82  # gateway's outbound SPI == site's inbound SPI, and back
MARKER = "labverify-feedbeef"
N = 10


def snapshot(gw_out: int, site_out: int) -> dict[str, list[IkeSaStatus]]:
    def ike(node: str, spi_in: int, spi_out: int, pin: int, pout: int) -> IkeSaStatus:
        child = ChildSaStatus(name="c", uniqueid=1, state="INSTALLED", spi_in=f"{spi_in:08x}",
                              spi_out=f"{spi_out:08x}", packets_in=pin, packets_out=pout)
        return IkeSaStatus(name="c", uniqueid=1, state="ESTABLISHED", version=2, local_host="", remote_host="",
                           children=[child])
    return {"azgw-0": [ike("azgw-0", SITE_OUT, GW_OUT, site_out, gw_out)],
            "onprem": [ike("onprem", GW_OUT, SITE_OUT, gw_out, site_out)]}


def esp(index: int, src: str, dst: str, spi: int) -> WireFrame:
    body = spi.to_bytes(4, "big") + index.to_bytes(4, "big") + b"\x99" * 60
    return classify(index, 1.0, bytes(Ether() / IP(src=src, dst=dst) / UDP(sport=4500, dport=4500) / Raw(body)))


def decrypted(frame: WireFrame, probe: str, ok: bool = True) -> Decryption:
    inner = bytes(IP(src="10.1.0.10", dst="10.2.0.10") / ICMP() / Raw(payload(MARKER, probe, 0)))
    return Decryption(frame, ok, "initiator", "azgw-0", inner if ok else b"", "IP / ICMP", None if ok else "ICV")


@pytest.fixture
def good() -> Evidence:
    """Reference lab: every probe answered, so 4N ESP frames each way (N ICMP + N UDP requests one way,
    the answers to the other side's 2N), and the counters grew by exactly that."""
    topo, _ = load_file(ROOT / "topologies" / "s2s-route-based.yml")
    targets = build_targets(topo, build_plan(topo))
    opt = ProbeOptions(count=N)
    reach = [ProbeResult(spec=s, sent=N, received=N, rtts_ms=[0.5] * N, start=0, end=1)
             for s in reach_specs(targets, 20000, opt)]
    selector = [ProbeResult(spec=s, sent=3, received=0, rtts_ms=[], start=0, end=1)
                for s in selector_specs(targets, opt)]
    frames = [esp(i, GW, SITE, GW_OUT) for i in range(1, 4 * N + 1)]
    frames += [esp(i, SITE, GW, SITE_OUT) for i in range(4 * N + 1, 8 * N + 1)]
    dec = [decrypted(f, "icmp:vm1>pc1") for f in frames]
    return Evidence(MARKER, targets, reach, selector, snapshot(0, 0), snapshot(4 * N, 4 * N),
                    snapshot(4 * N, 4 * N), snapshot(4 * N, 4 * N), frames,
                    CaptureStats(Path("x"), len(frames), 0), [], dec)


def test_good_evidence_passes_every_check(good: Evidence) -> None:
    for result in (check_reachability(good, 10.0), check_encrypted(good), check_spis(good),
                   check_selectors(good), check_decryption(good)):
        assert result.passed, result


def test_reachability_fails_on_loss_and_on_nothing_to_probe(good: Evidence) -> None:
    lossy = [good.reach[0].model_copy(update={"received": N // 2}), *good.reach[1:]]
    res = check_reachability(replace(good, reach=lossy), 10.0)
    assert not res.passed and res.evidence[0].startswith("LOSS ICMP vm1 -> pc1")
    assert res.data["probes"][0]["loss_pct"] == 50.0  # type: ignore[index]
    assert not check_reachability(replace(good, reach=[]), 10.0).passed


def test_encrypted_fails_on_marker_in_clear_and_shows_it(good: Evidence) -> None:
    leak = classify(99, 1.0, bytes(Ether() / IP(src="10.1.0.10", dst="10.2.0.10") / ICMP()
                                   / Raw(payload(MARKER, "icmp:vm1>pc1", 3))))
    res = check_encrypted(replace(good, frames=[*good.frames, leak]))
    assert not res.passed
    assert f"carries the marker in clear: '{MARKER}|icmp:vm1>pc1|3'" in res.evidence[0]


@pytest.mark.parametrize("frame, why", [
    (bytes(Ether() / ARP(psrc=GW, pdst="10.2.0.10")), "inner address 10.2.0.10"),
    (bytes(Ether() / IP(src=GW, dst=SITE) / ICMP()), "neither IKE"),
    (bytes(Ether() / IP(src="192.0.2.1", dst=SITE) / UDP(sport=500, dport=500) / Raw(b"i" * 30)), "not the lab's"),
])
def test_encrypted_fails_on_other_clear_traffic(good: Evidence, frame: bytes, why: str) -> None:
    res = check_encrypted(replace(good, frames=[*good.frames, classify(99, 1.0, frame)]))
    assert not res.passed and why in res.evidence[0]


def test_encrypted_allows_link_chatter(good: Evidence) -> None:
    igmp = Ether() / IP(src="0.0.0.0", dst="224.0.0.22", proto=2) / Raw(bytes.fromhex("2200f90200000001"))
    arp = Ether() / ARP(psrc=GW, pdst=SITE)
    res = check_encrypted(replace(good, frames=[*good.frames, classify(98, 1.0, bytes(igmp)),
                                                classify(99, 1.0, bytes(arp))]))
    assert res.passed and res.data["by_kind"] == {"arp": 1, "esp": 8 * N, "igmp": 1}, res


def test_encrypted_fails_when_the_capture_proves_nothing(good: Evidence) -> None:
    assert not check_encrypted(replace(good, frames=[])).passed
    dropped = check_encrypted(replace(good, capture=CaptureStats(Path("x"), 40, 3)))
    assert not dropped.passed and "dropped 3" in dropped.evidence[0]


def test_spis_fail_on_wrong_direction_and_on_counters(good: Evidence) -> None:
    swapped = [esp(1, GW, SITE, SITE_OUT)]  # the gateway sending with its inbound SPI
    res = check_spis(replace(good, frames=swapped))
    assert not res.passed and "not an outbound SA of azgw-0" in res.evidence[0]
    res = check_spis(replace(good, after=snapshot(4 * N - 5, 4 * N)))
    assert not res.passed and any("less than seen on the wire" in e for e in res.evidence)
    assert not check_spis(replace(good, frames=[])).passed


def on(node: str, snap: dict[str, list[IkeSaStatus]]) -> dict[str, list[IkeSaStatus]]:
    """The same SAs, held by `node` instead of azgw-0 (the standby that took over)."""
    return {node if n == "azgw-0" else n: sas for n, sas in snap.items()}


# each charon node's live interfaces (Runtime.live_links) after an active-standby failover: azgw-1 is active
FAILED_OVER = {"azgw-0": {"eth0": [], "eth1": ["10.1.0.5/24"], "lo": ["127.0.0.1/8"]},
               "azgw-1": {"eth0": [f"{GW}/24"], "eth1": ["10.1.0.6/24", "10.1.0.4/24"]},
               "onprem": {"eth0": [f"{SITE}/24"], "eth1": ["10.2.0.1/24"]}}


def test_holders_are_read_from_the_live_addresses_of_every_read() -> None:
    public = {GW: "azgw-0", SITE: "onprem"}
    assert holders(public, FAILED_OVER) == {GW: ("azgw-1",), SITE: ("onprem",)}
    before = {**FAILED_OVER, "azgw-0": {"eth0": [f"{GW}/24"]}, "azgw-1": {"eth0": []}}
    assert holders(public, before, FAILED_OVER) == {GW: ("azgw-0", "azgw-1"), SITE: ("onprem",)}
    assert holders(public, {}) == {}


def test_spis_follow_the_public_address_to_the_instance_that_holds_it_now(good: Evidence) -> None:
    """After a failover the standby holds the gateway's address and its SAs carry the traffic: a correct lab.
    The plan's azgw-0 held the address at `lab up`; checking its SAs failed spis on every SPI (seen on nat-overlap
    after `lab failover azgw --planned`, and after a standby's takeover from a healthy active)."""
    snaps = {f: on("azgw-1", getattr(good, f)) for f in ("before", "mid", "closing", "after")}
    moved = replace(good, **snaps)  # type: ignore[arg-type]
    res = check_spis(moved)
    assert not res.passed and "not an outbound SA of azgw-0" in " ".join(res.evidence)
    held = holders(good.targets.public_ips, FAILED_OVER)
    res = check_spis(replace(moved, targets=held_now(good.targets, held), holders=held))
    assert res.passed, res.evidence
    assert f"ok  SPI 0x{GW_OUT:08x} {GW} (azgw-1) -> {SITE} (onprem)" in "\n".join(res.evidence)


def test_spis_fail_when_two_nodes_held_one_public_address(good: Evidence) -> None:
    """Two active instances (a standby that took over while the active still ran) both answer for the
    address: that fails, naming both, even though the SPIs match the plan's node."""
    held = {GW: ("azgw-0", "azgw-1"), SITE: ("onprem",)}
    assert held_now(good.targets, held).public_ips == good.targets.public_ips
    res = check_spis(replace(good, holders=held))
    assert not res.passed
    assert res.evidence[0].startswith(f"BAD {GW} was held by azgw-0 and azgw-1 during verify")
    assert res.data["holders"] == {GW: ["azgw-0", "azgw-1"], SITE: ["onprem"]}


def test_selectors_fail_when_counters_grow_or_probes_show_up(good: Evidence) -> None:
    res = check_selectors(replace(good, closing=snapshot(4 * N + 3, 4 * N + 3)))
    assert not res.passed and "while only out-of-selector probes ran" in res.evidence[0]
    assert check_selectors(replace(good, after=snapshot(4 * N + 3, 4 * N + 3))).passed  # past the capture's end
    carried = [*good.decrypted, decrypted(good.frames[0], "outside:vm1>10.99.0.1")]
    res = check_selectors(replace(good, decrypted=carried))
    assert not res.passed and any("ICMP vm1 -> 10.99.0.1: carried by the tunnel" in e for e in res.evidence)
    arp = classify(99, 1.0, bytes(Ether() / ARP(psrc=GW, pdst="10.99.0.1")))
    res = check_selectors(replace(good, frames=[*good.frames, arp]))
    assert [e.split(":")[0] for e in res.evidence] == ["ICMP vm1 -> 10.99.0.1"]  # the site's probe is not blamed


def test_decryption_fails_on_a_bad_frame_or_a_direction_without_the_marker(good: Evidence) -> None:
    bad = [decrypted(good.frames[0], "x", ok=False), *good.decrypted[1:]]
    res = check_decryption(replace(good, decrypted=bad))
    assert not res.passed and res.data["decrypted"] == 8 * N - 1
    one_way = [d if d.frame.src == GW else replace(d, inner=b"no marker") for d in good.decrypted]
    assert not check_decryption(replace(good, decrypted=one_way)).passed
    assert not check_decryption(replace(good, decrypted=[])).passed


def test_decryption_accepts_a_direction_that_carried_only_its_bgp_session(good: Evidence) -> None:
    """Four tunnels (a device pair, active-active): ECMP may send no probe flow through one of them, whose
    frames then decrypt to its BGP keepalives only; anything else without the marker still fails."""
    from scapy.layers.inet import IP, TCP

    bgp = bytes(IP(src="169.254.21.2", dst="169.254.22.1") / TCP(sport=40000, dport=179))
    only_bgp = [d if d.frame.src == GW else replace(d, inner=bgp) for d in good.decrypted]
    res = check_decryption(replace(good, decrypted=only_bgp))
    assert res.passed and any("only its BGP session" in e for e in res.evidence), res.evidence
    mixed = [d if d.frame.src == GW or i % 2 else replace(d, inner=b"no marker") for i, d in enumerate(only_bgp)]
    assert not check_decryption(replace(good, decrypted=mixed)).passed


def test_bgp_segments_are_recognised_for_the_selector_tolerance() -> None:
    from scapy.layers.inet import IP, TCP, UDP

    from lab.verify.checks_sa import is_bgp

    assert is_bgp(bytes(IP(src="10.2.255.254", dst="10.1.0.4") / TCP(sport=40000, dport=179)))
    assert is_bgp(bytes(IP(src="10.1.0.4", dst="10.2.255.254") / TCP(sport=179, dport=40000)))
    assert not is_bgp(bytes(IP(src="10.1.0.4", dst="10.2.0.10") / UDP(sport=179, dport=179)))
    assert not is_bgp(b"\\x45short")
