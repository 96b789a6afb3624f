"""`lab verify` for point-to-site: every connected client's traffic to the VNet is ESP on the wire with its own
SA, its virtual IP comes from the pool, and every client the gateway must refuse (revoked, untrusted issuer)
has no SA. Pipeline level: runtime, capture and vici arrive injected; packets are read by lab.probes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import cast

from pydantic import JsonValue

from lab.control.base import P2sSa
from lab.core import Connect, Lab
from lab.p2s.model import ClientSpec, clients
from lab.p2s.run import client_sas, refused
from lab.plan import INTERNET
from lab.probes.pcap import WireFrame, read_frames
from lab.runtime.base import Runtime
from lab.verify.model import CheckResult

PINGS = 3
WORKERS = 8  # docker exec and vici calls are I/O bound; stays within docker-py's connection pool (10)
Progress = Callable[[str], None]


def has_p2s(lab: Lab) -> bool:
    return bool(clients(lab.topo))


def verify_p2s(lab: Lab, runtime: Runtime, connect: Connect,
               progress: Progress = lambda _m: None) -> list[CheckResult]:
    """Ping each VNet's first host from every expected client while capturing the Internet segment."""
    specs, why = clients(lab.topo), refused(lab)
    good = [c for c in specs if c.name not in why]
    sas = _client_sas(lab, specs, connect)
    with tempfile.TemporaryDirectory(prefix="lab-verify-p2s-") as tmp:
        pcap = Path(tmp) / "p2s.pcap"
        progress(f"P2S: pinging the VNet from {len(good)} client(s) while capturing {INTERNET!r}")
        handle = runtime.capture(lab.topo.name, INTERNET, pcap)
        try:
            pings = _ping_all(lab, runtime, good)
        finally:
            handle.stop()
        frames = read_frames(pcap)
    return [_check_traffic(lab, good, pings, sas, frames), _check_vips(lab, good, sas), _check_refused(lab, why, sas)]


def _target(lab: Lab, c: ClientSpec) -> str | None:
    hosts = lab.topo.gateways[c.gateway].vnet.hosts
    return str(sorted(hosts.items())[0][1]) if hosts else None


def _ping_all(lab: Lab, runtime: Runtime, good: list[ClientSpec]) -> dict[str, bool]:
    """Every client pings its VNet host, WORKERS at a time (one docker exec each)."""
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return dict(zip([c.name for c in good], pool.map(lambda c: _ping(lab, runtime, c), good), strict=True))


def _client_sas(lab: Lab, specs: list[ClientSpec], connect: Connect) -> dict[str, P2sSa | None]:
    """Every client's established P2S SA (or None), asked over vici WORKERS at a time."""
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return dict(zip([c.name for c in specs], pool.map(lambda c: _client_sa(lab, c, connect), specs), strict=True))


def _ping(lab: Lab, runtime: Runtime, c: ClientSpec) -> bool:
    target = _target(lab, c)
    if target is None:
        return False
    res = runtime.exec(lab.topo.name, c.name, ["ping", "-c", str(PINGS), "-i", "0.2", "-W", "2", target], timeout=20)
    return res.ok


def _client_sa(lab: Lab, c: ClientSpec, connect: Connect) -> P2sSa | None:
    try:
        found = [s for s in client_sas(lab, c.name, connect) if s.state == "ESTABLISHED"]
    except Exception:  # noqa: BLE001 - a client whose charon does not answer simply has no SA
        return None
    return found[0] if found else None


def _check_traffic(lab: Lab, good: list[ClientSpec], pings: dict[str, bool], sas: dict[str, P2sSa | None],
                   frames: list[WireFrame]) -> CheckResult:
    """Each client reached its VNet host; the wire between it and the gateway carried only ESP/IKE, with one
    outbound SPI per client (its own SA) and no clear-text packet of the pool or the VNet."""
    evidence: list[str] = []
    spis: dict[str, list[str]] = {}
    pools = [gw.p2s.address_pool for gw in lab.topo.gateways.values() if gw.p2s]
    clear = [f for f in frames if f.kind == "ip" and _inside(f, pools, lab)]
    for c in good:
        mine = {f.spi for f in frames if f.kind == "esp" and f.src == str(c.public_ip)}
        spis[c.name] = sorted(f"{s:08x}" for s in mine)
        if not pings[c.name]:
            evidence.append(f"{c.name}: ping to the VNet host failed")
        if not mine:
            evidence.append(f"{c.name}: no ESP from {c.public_ip} on {INTERNET!r}")
    shared = {s for n, ss in spis.items() for s in ss if any(s in o for m, o in spis.items() if m != n)}
    if shared:
        evidence.append(f"SPIs used by more than one client: {sorted(shared)}")
    evidence += [f"clear-text frame #{f.index}: {f.summary}" for f in clear[:5]]
    ok = not evidence and bool(good)
    summary = (f"{len(good)} client(s) reached the VNet, each over its own ESP SA; nothing in clear"
               if ok else "P2S traffic is not what it should be" if good else "no client expected to connect")
    return CheckResult(name="p2s-encrypted", passed=ok, summary=summary, evidence=evidence,
                       data={"spis": cast("dict[str, JsonValue]", spis),
                              "esp_frames": sum(1 for f in frames if f.kind == "esp")})


def _inside(f: WireFrame, pools: list[IPv4Network], lab: Lab) -> bool:
    nets = pools + [n for gw in lab.topo.gateways.values() for n in gw.vnet.address_space]
    return any(a is not None and IPv4Address(a) in n for a in (f.src, f.dst) for n in nets)


def _check_vips(lab: Lab, good: list[ClientSpec], sas: dict[str, P2sSa | None]) -> CheckResult:
    evidence: list[str] = []
    vips: dict[str, str] = {}
    for c in good:
        pool = lab.topo.gateways[c.gateway].p2s.address_pool  # type: ignore[union-attr]
        sa = sas.get(c.name)
        vip = sa.local_vips[0] if sa and sa.local_vips else ""
        vips[c.name] = vip
        if not vip:
            evidence.append(f"{c.name}: no virtual IP")
        elif IPv4Address(vip) not in pool:
            evidence.append(f"{c.name}: virtual IP {vip} is outside the pool {pool}")
    dupes = sorted({v for v in vips.values() if v and list(vips.values()).count(v) > 1})
    evidence += [f"virtual IP {v} leased twice" for v in dupes]
    ok = not evidence and bool(good)
    return CheckResult(name="p2s-virtual-ips", passed=ok, evidence=evidence,
                       data={"vips": cast("dict[str, JsonValue]", vips)},
                       summary="every client has its own virtual IP from the pool" if ok else "virtual IPs are wrong")


def _check_refused(lab: Lab, why: dict[str, str], sas: dict[str, P2sSa | None]) -> CheckResult:
    let_in = [n for n in why if sas.get(n) is not None]
    evidence = [f"{n}: has an SA although {why[n]}" for n in let_in]
    evidence += [f"{n}: refused ({r})" for n, r in why.items() if n not in let_in]
    ok = not let_in
    summary = f"{len(why)} client(s) that must be refused have no SA" if ok else "a refused client got in"
    return CheckResult(name="p2s-refused", passed=ok, summary=summary, evidence=evidence,
                       data={"refused": list[JsonValue](sorted(why))})
