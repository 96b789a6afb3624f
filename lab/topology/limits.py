"""Where the emulation cannot follow Azure, as warnings: the topology is valid, the lab may misbehave.

libipsec (the userspace data plane) has one `ipsec0` per charon and picks the outbound SA by policy
lookup. Two tunnels of one charon whose CHILD_SAs both end up 0.0.0.0/0 <-> 0.0.0.0/0 have identical
policies, so all traffic leaves through one of them. The lab gives every route-based tunnel of a gateway
instance and of a rendered device its own charon and interface (docs/route-based.md); only a device that
brings its own config runs all its tunnels in one charon, so it still meets the limit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from lab.findings import Finding
from lab.plan import gateway_inside_ip, site_inside_ip
from lab.topology.model import Site, Topology

HINT = ("let the device narrow to its prefixes in its config, or use a rendered device (one charon and "
        "tunnel interface per tunnel); see docs/route-based.md")


def check_emulation_limits(topo: Topology) -> list[Finding]:
    return [*_any_to_any_on_sites(topo), *_ikev1_one_pair(topo), *_selectors_without_local_address(topo)]


def _selectors_without_local_address(topo: Topology) -> Iterator[Finding]:
    """libipsec installs a CHILD_SA's routes with a source address from its local selector: a custom selector
    range that holds none of the node's addresses is refused (TS_UNACCEPTABLE) on that end."""
    for cname, conn in sorted(topo.connections.items()):
        gw, site = topo.gateways.get(conn.gateway), topo.sites.get(conn.site or "")
        if gw is None or site is None:
            continue
        gw_ips = [gateway_inside_ip(gw, i, k) for i in range(2) for k in range(len(gw.vnet.address_space))]
        site_ips = [site_inside_ip(site, k, j) for k in range(len(site.address_space))
                    for j in range(len(site.device_ips))]
        for i, line in enumerate(conn.traffic_selector_policies):
            for side, ranges, ips in (("local", line.local_address_ranges, gw_ips),
                                      ("remote", line.remote_address_ranges, site_ips)):
                if not any(ip in net for net in ranges for ip in ips):
                    yield Finding(f"connections.{cname}.traffic_selector_policies[{i}].{side}_address_ranges",
                                  f"none of these ranges holds the lab's {'gateway' if side == 'local' else 'device'}"
                                  " address: libipsec (the lab's data plane) will refuse this CHILD_SA",
                                  "include the gateway's (.4) or device's (.1) inside address in one range",
                                  severity="warning")


def one_charon_any_to_any(site: Site) -> bool:
    """A device with its own config: one charon for all its tunnels, selectors the lab cannot see."""
    return site.device.config is not None


def _any_to_any_on_sites(topo: Topology) -> Iterator[Finding]:
    """A device with its own config and tunnels to two different gateways: one charon, maybe two 0/0 SAs."""
    gateways: dict[str, set[str]] = defaultdict(set)
    for conn in topo.connections.values():
        site = topo.sites.get(conn.site or "")
        if site is not None and one_charon_any_to_any(site):
            gateways[conn.site or ""].add(conn.gateway)
    for s, gws in sorted(gateways.items()):
        if len(gws) > 1:
            yield Finding(f"sites.{s}.device.traffic_selectors",
                          f"tunnels to gateways {', '.join(sorted(gws))} may all use 0.0.0.0/0 <-> 0.0.0.0/0 in "
                          "this device's one charon: libipsec cannot tell them apart", HINT, severity="warning")


def _ikev1_one_pair(topo: Topology) -> Iterator[Finding]:
    """IKEv1 negotiates one selector pair per CHILD_SA: narrowing any-to-any keeps only the first pair."""
    for cname, conn in sorted(topo.connections.items()):
        gw, site = topo.gateways.get(conn.gateway), topo.sites.get(conn.site or "")
        if (gw is None or site is None or conn.ike_version != "IKEv1" or gw.vpn_type != "RouteBased"
                or conn.use_policy_based_traffic_selectors or site.device.traffic_selectors != "prefixes"):
            continue
        if len(gw.vnet.address_space) > 1 or len(site.address_space) > 1:
            first = f"{site.address_space[0]} <-> {gw.vnet.address_space[0]}"
            yield Finding(f"connections.{cname}.ike_version",
                          f"IKEv1 carries one prefix pair per CHILD_SA: the device narrows Azure's any-to-any "
                          f"offer to its first pair ({first}) only",
                          "use IKEv2, or use_policy_based_traffic_selectors: true (one CHILD_SA per pair)",
                          severity="warning")
