"""Static checks of one device connection against the Azure end of its tunnel: what Azure would refuse or
do differently, found by reading the configs (the logs then confirm what actually happened)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, ip_network
from itertools import product

from lab.azure import facts
from lab.azure.algorithms import first_match
from lab.azure.proposals import ike_proposal
from lab.device.parse import DeviceConn
from lab.render.strongswan_defaults import IPSEC_CONF_LIFETIME_S, SWANCTL_CHILD_LIFE_S
from lab.render.tunnels import ANY, End


@dataclass(frozen=True)
class Finding:
    kind: str
    summary: str
    evidence: tuple[str, ...] = ()
    severity: str = "error"  # error: the tunnel cannot come up as Azure's; warning: it does, but differs


def check_conn(azure: End, version: str, dev: DeviceConn, vnet: list[IPv4Network], lan: list[IPv4Network],
               psk: str | None, policy_based: bool) -> list[Finding]:
    """Every finding, most fundamental first (a wrong peer hides everything after it)."""
    found = _addresses(azure, dev) + _version(version, dev) + _ids(azure, dev) + _proposals(azure, dev)
    found += _psk(dev, psk) + _selectors(azure, dev, vnet, lan) + _trap(azure, dev)
    return found + _lifetimes(azure, dev) + _rekey_schedule(dev) + _dpd(dev, policy_based)


TRAP_FIX = "use start_action = start (ipsec.conf: auto=start) so the device initiates on its own"


def _trap(azure: End, dev: DeviceConn) -> list[Finding]:
    """A trap policy (start_action = trap, ipsec.conf auto=route) waits for traffic to hit a kernel policy; the
    lab's userspace data plane (kernel-libipsec) never reports such traffic, so it never initiates."""
    trapped = [c.name for c in dev.children if c.start_action == "trap"]
    if not trapped:
        return []
    evidence = (f"device child {', '.join(trapped)}: start_action = trap (ipsec.conf: auto=route)", TRAP_FIX)
    if not azure.initiates:
        return [Finding("trap-never-fires", "the device waits for traffic (trap policy), which never triggers under "
                        "libipsec, and the gateway (ResponderOnly) never initiates: " + TRAP_FIX, evidence)]
    return [Finding("trap-never-fires", "the device uses a trap policy, which never triggers under libipsec: the "
                    "tunnel comes up only because the gateway initiates; " + TRAP_FIX, evidence, "warning")]


def _addresses(azure: End, dev: DeviceConn) -> list[Finding]:
    gw, site = azure.local_ip, azure.remote_ip
    bad = [a for a in dev.remote_addrs if a not in (gw, "%any", "0.0.0.0/0")]
    if dev.remote_addrs and bad and gw not in dev.remote_addrs:
        return [Finding("peer-unreachable", f"the device sends IKE to {', '.join(bad)} but the gateway is at {gw}",
                        (f"device remote_addrs = {', '.join(dev.remote_addrs)}", f"gateway public IP = {gw}"))]
    if dev.local_addrs and site not in dev.local_addrs and "%any" not in dev.local_addrs:
        return [Finding("peer-unreachable", f"the device uses {', '.join(dev.local_addrs)} but Azure expects the "
                        f"site's public IP {site}", (f"device local_addrs = {', '.join(dev.local_addrs)}",))]
    return []


def _version(version: str, dev: DeviceConn) -> list[Finding]:
    want = 1 if version == "IKEv1" else 2
    if dev.version in (0, want):
        return []
    return [Finding("ike-version-mismatch", f"the device speaks IKEv{dev.version}, the connection is {version}",
                    (f"device version = {dev.version}", f"Azure connection ike_version = {version}"))]


def _ids(azure: End, dev: DeviceConn) -> list[Finding]:
    out = []
    if dev.remote_id and dev.remote_id not in (azure.local_ip, "%any"):
        out.append(f"device remote id = {dev.remote_id}, but the gateway identifies as {azure.local_ip}")
    if dev.local_id and dev.local_id != azure.remote_ip:
        out.append(f"device local id = {dev.local_id}, but Azure expects the site's public IP {azure.remote_ip}")
    return [Finding("peer-id-mismatch", "the IKE identities do not match: " + out[0], tuple(out))] if out else []


def _proposals(azure: End, dev: DeviceConn) -> list[Finding]:
    out = []
    for kind, mine, theirs in (("ike", list(azure.ike), list(dev.ike)),
                               ("esp", list(azure.esp), [p for c in dev.children for p in c.esp])):
        if not theirs:
            continue
        try:
            ok = first_match(theirs, mine, kind, with_dh=kind == "ike")  # type: ignore[arg-type]
        except ValueError as exc:
            out.append(Finding("no-proposal-chosen", f"the device's {kind.upper()} proposals cannot be read: {exc}"))
            continue
        if ok is None:
            out.append(Finding("no-proposal-chosen", f"no {kind.upper()} proposal in common",
                               (f"gateway {kind} proposals: {', '.join(mine)}",
                                f"device {kind} proposals: {', '.join(theirs)}",
                                *_policy_hint(kind, theirs))))
    return out


def _policy_hint(kind: str, theirs: list[str]) -> tuple[str, ...]:
    """Azure offers (as a custom ipsec_policy) that would match the device, when the defaults do not."""
    if kind != "ike":
        return ()
    combos = product(facts.IKE_ENCRYPTION, facts.IKE_INTEGRITY, facts.DH_GROUP)
    fits = [c for c in combos if _matches(ike_proposal(*c), theirs)]
    if not fits:
        return ("no Azure IKE offer (default or custom ipsec_policy) matches the device",)
    shown = "; ".join(f"ike_encryption {e}, ike_integrity {i}, dh_group {d}" for e, i, d in fits[:3])
    return (f"an ipsec_policy on the connection would match: {shown}",)


def _matches(azure: str, theirs: list[str]) -> bool:
    try:
        return first_match(theirs, [azure], "ike") is not None
    except ValueError:
        return False


def _psk(dev: DeviceConn, psk: str | None) -> list[Finding]:
    if psk is None or not dev.psks or psk in dev.psks:
        return []
    return [Finding("auth-failed", "the device's pre-shared key differs from the connection's shared key",
                    ("device secret != connection shared_key (values not shown)",))]


def _nets(values: tuple[str, ...]) -> list[IPv4Network]:
    out = []
    for v in values:
        try:
            out.append(ip_network(v.split("[")[0], strict=False))
        except ValueError:
            continue
    return [n for n in out if isinstance(n, IPv4Network)]


def _within(nets: list[IPv4Network], allowed: list[IPv4Network]) -> bool:
    return all(n == ANY or any(n.subnet_of(a) for a in allowed) for n in nets)


def _selectors(azure: End, dev: DeviceConn, vnet: list[IPv4Network], lan: list[IPv4Network]) -> list[Finding]:
    local = [n for c in dev.children for n in _nets(c.local_ts)]
    remote = [n for c in dev.children for n in _nets(c.remote_ts)]
    if not _within(local, lan) or not _within(remote, vnet):
        return [Finding("ts-unacceptable", "the device's traffic selectors are not the site's and the VNet's prefixes",
                        (f"device local_ts {', '.join(map(str, local))} (site: {', '.join(map(str, lan))})",
                         f"device remote_ts {', '.join(map(str, remote))} (VNet: {', '.join(map(str, vnet))})"))]
    wanted = [c for c in azure.children if c.local_ts != (ANY,)]
    have = {(r, loc) for c in dev.children for r in _nets(c.remote_ts) for loc in _nets(c.local_ts)}
    absent = [c for c in wanted if (c.local_ts[0], c.remote_ts[0]) not in have and len(c.local_ts) == 1]
    if absent and len(wanted) > 1:
        return [Finding("missing-prefix-pairs", f"the gateway has {len(wanted)} prefix pairs, the device "
                        f"configured {len(wanted) - len(absent)}",
                        tuple(f"no device CHILD_SA for {c.remote_ts[0]} <-> {c.local_ts[0]}" for c in absent))]
    return []


HARD_LIFETIME = (f"hard lifetime: swanctl life_time (unset: rekey_time + 10 %, {SWANCTL_CHILD_LIFE_S} s by default), "
                 f"ipsec.conf lifetime (unset: {IPSEC_CONF_LIFETIME_S} s), as Azure's is")


def _lifetimes(azure: End, dev: DeviceConn) -> list[Finding]:
    """The IKE SA's lifetime and each CHILD_SA's hard lifetime against Azure's (hard) ones, like with like, with
    strongSwan's defaults where the config sets none (filled in by lab.device.parse: what `lab inspect` shows)."""
    out = []
    if dev.ike_life_s != facts.IKE_SA_LIFETIME_S:
        out.append(f"IKE SA lifetime {dev.ike_life_s} s (Azure: {facts.IKE_SA_LIFETIME_S} s)")
    kids = [f"child {c.name}: hard lifetime {c.life_s} s (Azure: {azure.child_lifetime[0]} s)"
            for c in dev.children if c.life_s != azure.child_lifetime[0]]
    out += [*kids, HARD_LIFETIME] if kids else []
    if not out:
        return []
    return [Finding("lifetime-mismatch", "lifetimes differ from Azure's: " + out[0], tuple(out), "warning")]


REKEY_FIX = ("set rekey_time below life_time (with Azure's 27000 s lifetime: rekey_time = 24300s), or rand_time "
             "below rekey_time")


def _rekey_schedule(dev: DeviceConn) -> list[Finding]:
    """swanctl with life_time but no rekey_time: rand_time defaults to life_time - 1h, and a random value up to
    it is subtracted from the 1h rekey_time, so the rekey can fall before the CHILD_SA exists. strongSwan 5.9.8
    shows `rekeying in -16688s`; with kernel ESP the soft expiry fires at once and the CHILD_SA rekeys without
    pause (seen in the guest); libipsec never acts on it, so the lab's own tunnel would hide it."""
    bad = [(c, *c.schedule) for c in dev.children if c.schedule and c.schedule[1] > c.schedule[0]]
    return [Finding("rekey-in-the-past", f"child {c.name}: rekey at {rekey} s minus up to {rand} s (rand_time) can "
                    "fall before the CHILD_SA is installed, and a kernel-ESP device then rekeys without pause",
                    (f"device child {c.name}: rekey_time {rekey} s, rand_time {rand} s, life_time "
                     f"{c.life_s} s (strongSwan derives what the config omits)", REKEY_FIX),
                    "warning") for c, rekey, rand in bad]


def _dpd(dev: DeviceConn, policy_based: bool) -> list[Finding]:
    lo, hi = facts.DPD_TIMEOUT_RANGE_S
    delay = dev.dpd_delay_s or 0
    if delay and not lo <= delay <= hi:
        return [Finding("dpd-rejected", f"DPD every {delay} s: Azure's DPD timeout range is {lo}-{hi} s",
                        (f"device dpd_delay = {delay}s",), "warning")]
    if delay and policy_based:
        return [Finding("dpd-rejected", "the device uses DPD; Azure's PolicyBased gateways do not support it",
                        (f"device dpd_delay = {delay}s",), "warning")]
    return []
