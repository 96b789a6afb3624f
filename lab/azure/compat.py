"""Would Azure accept this on-prem device? Its proposals and lifetimes against the gateway's policy.

These are warnings, not errors: modelling a mismatching device is a use of the lab (`lab up` then
fails the way Azure would, e.g. "no proposal chosen"). Only devices with overrides are checked: a
rendered device without them mirrors its gateway.
"""

from __future__ import annotations

from collections.abc import Iterator

from lab.azure import facts
from lab.azure.algorithms import first_match, is_aead
from lab.azure.proposals import child_lifetime, documented_ike_proposals, gateway_proposals
from lab.findings import Finding
from lab.topology.model import Connection, Device, Gateway, Topology

LIFETIME_NOTE = "lifetimes need not match: each end rekeys on its own timer, the shorter one decides"


def check_device_compat(topo: Topology) -> list[Finding]:
    found: list[Finding] = []
    for cname, conn in sorted(topo.connections.items()):
        gw, site = topo.gateways.get(conn.gateway), topo.sites.get(conn.site or "")
        if gw is None or site is None:
            continue
        path = f"sites.{conn.site}.device"
        found += _ike_compat(path, cname, conn, gw, site.device)
        found += _esp_compat(path, cname, conn, gw, site.device)
        found += _lifetimes(path, cname, conn, gw, site.device)
    return found


def _policy_name(conn: Connection, cname: str) -> str:
    kind = "custom" if conn.ipsec_policy is not None else "default"
    return f"the {kind} policy of connection {cname!r}"


def _ike_compat(path: str, cname: str, conn: Connection, gw: Gateway, dev: Device) -> Iterator[Finding]:
    offered = dev.ike_proposals
    if offered is None:
        return
    path = f"{path}.ike_proposals"
    if conn.ike_version == "IKEv1" and any(is_aead(p) for p in offered):
        yield Finding(path, "IKEv1 cannot negotiate AEAD IKE ciphers (e.g. aes256gcm16): those proposals never "
                      "match", "use aes256-sha256-modp2048 style proposals with IKEv1", severity="warning")
    accepted = gateway_proposals(conn, gw)[0]
    if first_match(offered, accepted, "ike") is None:
        yield Finding(path, f"no IKE proposal in common with {_policy_name(conn, cname)}, which accepts "
                      f"{', '.join(accepted)}", "lab up will fail with 'no proposal chosen'", severity="warning")
    elif conn.ipsec_policy is None and first_match(offered, documented_ike_proposals(gw.vpn_type, conn.ike_version),
                                                   "ike") is None:
        yield Finding(path, f"matches only IKE offers the lab assumes Azure accepts, not the documented ones "
                      f"({', '.join(documented_ike_proposals(gw.vpn_type, conn.ike_version))})",
                      "add a documented proposal, or set a custom ipsec_policy on the connection", severity="warning")


def _esp_compat(path: str, cname: str, conn: Connection, gw: Gateway, dev: Device) -> Iterator[Finding]:
    offered = dev.esp_proposals
    if offered is None:
        return
    path = f"{path}.esp_proposals"
    accepted = gateway_proposals(conn, gw)[1]
    if first_match(offered, accepted, "esp") is not None:
        return
    if conn.ike_version == "IKEv2" and first_match(offered, accepted, "esp", with_dh=False) is not None:
        yield Finding(path, f"PFS groups differ from {_policy_name(conn, cname)}: the first CHILD_SA comes up "
                      "(IKE_AUTH carries no key exchange) but rekeying it will fail",
                      "use the same PFS group (or none) on both ends", severity="warning")
        return
    yield Finding(path, f"no ESP proposal in common with {_policy_name(conn, cname)}, which accepts "
                  f"{', '.join(accepted)}", "lab up will fail with 'no proposal chosen'", severity="warning")


def _lifetimes(path: str, cname: str, conn: Connection, gw: Gateway, dev: Device) -> Iterator[Finding]:
    if dev.ike_lifetime_seconds is not None and dev.ike_lifetime_seconds != facts.IKE_SA_LIFETIME_S:
        yield Finding(f"{path}.ike_lifetime_seconds",
                      f"{dev.ike_lifetime_seconds} s differs from Azure's fixed IKE SA lifetime of "
                      f"{facts.IKE_SA_LIFETIME_S} s", LIFETIME_NOTE, severity="warning")
    azure_s = child_lifetime(conn, gw)[0]
    if dev.child_lifetime_seconds is not None and dev.child_lifetime_seconds != azure_s:
        yield Finding(f"{path}.child_lifetime_seconds",
                      f"{dev.child_lifetime_seconds} s differs from the {azure_s} s phase-2 lifetime of connection "
                      f"{cname!r}", LIFETIME_NOTE, severity="warning")
