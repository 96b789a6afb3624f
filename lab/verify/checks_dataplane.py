"""Check 6: the ESP on the wire and the SAs come from the data plane the lab runs on.

Kernel: every ESP frame is raw ESP (IP protocol 50, no NAT between the peers), every SPI vici reports is an
XFRM state of that node's kernel, and the kernel's own per-SA packet counters (`ip -s xfrm state`) grew by
at least what the capture saw. libipsec: ESP is in UDP 4500 and the kernel holds no SA (userspace ESP).
"""

from __future__ import annotations

from collections import Counter

from pydantic import JsonValue

from lab.probes.esp import SaId, sa_id
from lab.verify.evidence import Evidence, children, grew
from lab.verify.model import CheckResult
from lab.verify.xfrm import grew as xfrm_grew


def _encapsulation(ev: Evidence) -> tuple[bool, str, dict[str, JsonValue]]:
    raw = sum(not f.natt for f in ev.esp_frames)
    udp = len(ev.esp_frames) - raw
    want_raw = ev.dataplane == "kernel"
    ok = bool(ev.esp_frames) and (udp == 0 if want_raw else raw == 0)
    want = "raw ESP (IP protocol 50)" if want_raw else "ESP in UDP 4500 (libipsec 5.9.8 always encapsulates)"
    line = f"{'ok ' if ok else 'BAD'} ESP on the wire: {raw} raw (IP protocol 50), {udp} in UDP 4500; want {want}"
    return ok, line, {"esp_raw": raw, "esp_udp": udp}


def _vici_in_xfrm(ev: Evidence) -> tuple[bool, list[str]]:
    """Every SPI vici reports for a node (after the probes) is one of that node's XFRM states."""
    ok, lines = True, []
    for node in sorted(ev.after):
        kernel = {s.spi for s in ev.xfrm_after.get(node, [])}
        vici = {spi for c in children({node: ev.after[node]}) for spi in (c.spi_in, c.spi_out) if spi}
        missing = sorted(vici - kernel)
        ok = ok and not missing
        if not vici:  # a warm standby holds no CHILD_SA until it takes over
            lines.append(f"ok  {node}: no CHILD_SA in vici, {len(kernel)} XFRM state(s)")
            continue
        shown = ", ".join(f"0x{s:08x}" for s in sorted(vici))
        lines.append(f"{'ok ' if not missing else 'BAD'} {node}: vici SPIs {shown} "
                     + (f"all in `ip xfrm state` ({len(kernel)} states)" if not missing else
                        f"missing from `ip xfrm state`: {', '.join(f'0x{s:08x}' for s in missing)}"))
    return ok and any(children({n: sas}) for n, sas in ev.after.items()), lines


def _counters(ev: Evidence, wire: Counter[SaId]) -> tuple[bool, list[str], list[JsonValue]]:
    """Per SA on the wire: the sender's and the receiver's XFRM counters grew by >= the frames captured."""
    kgrew, vgrew = xfrm_grew(ev.xfrm_before, ev.xfrm_after), grew(ev.before, ev.after)
    ok, lines = True, []
    data: list[JsonValue] = []
    for (spi, src, dst), n in sorted(wire.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        s_node, d_node = ev.targets.public_ips.get(src, "?"), ev.targets.public_ips.get(dst, "?")
        k_out, k_in = kgrew.get((s_node, spi, src, dst), 0), kgrew.get((d_node, spi, src, dst), 0)
        v_out = sum(o for (node, _i, so), (_in, o) in vgrew.items() if node == s_node and so == spi)
        v_in = sum(i for (node, si, _o), (i, _out) in vgrew.items() if node == d_node and si == spi)
        good = k_out >= n and k_in >= n
        ok = ok and good
        lines.append(f"{'ok ' if good else 'BAD'} SPI 0x{spi:08x} {src} -> {dst}: {n} on the wire; XFRM "
                     f"{s_node} out +{k_out}, {d_node} in +{k_in} (vici: +{v_out} / +{v_in})")
        data.append({"spi": f"{spi:08x}", "wire": n, "xfrm_out": k_out, "xfrm_in": k_in, "vici_out": v_out,
                     "vici_in": v_in})
    return ok, lines, data


def check_dataplane(ev: Evidence) -> CheckResult:
    enc_ok, enc_line, data = _encapsulation(ev)
    states = {node: len(sas) for node, sas in sorted(ev.xfrm_after.items())}
    data.update({"dataplane": ev.dataplane, "xfrm_states": states})  # type: ignore[dict-item]
    if ev.dataplane != "kernel":
        empty = not any(states.values())
        lines = [enc_line, f"{'ok ' if empty else 'BAD'} kernel XFRM states per node: {states} "
                           "(libipsec keeps its SAs in userspace)"]
        return CheckResult(name="dataplane", passed=enc_ok and empty, evidence=lines, data=data,
                           summary="libipsec: ESP in UDP 4500, no SA in the kernel" if enc_ok and empty
                           else "the wire or the kernel does not look like libipsec")
    in_ok, in_lines = _vici_in_xfrm(ev)
    cnt_ok, cnt_lines, sas = _counters(ev, Counter(sa_id(f) for f in ev.esp_frames))
    data["sas"] = sas
    passed = enc_ok and in_ok and cnt_ok
    summary = ("kernel: raw ESP on the wire; vici's SPIs are XFRM states; XFRM counters >= the captured ESP"
               if passed else "the wire, `ip xfrm state` and vici disagree (see evidence)")
    return CheckResult(name="dataplane", passed=passed, summary=summary, evidence=[enc_line, *in_lines, *cnt_lines],
                       data=data)
