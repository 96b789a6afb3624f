"""Read what `lab diagnose` needs from an FRR config (the user's or the lab's own): the BGP ASN, each
neighbor's remote-as / update-source / passive, the networks it originates and its static routes.

FRR's integrated config is line-oriented; only these statements matter here, the rest is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network

ROUTER = re.compile(r"^router bgp (\d+)\s*$")
NEIGHBOR = re.compile(r"^neighbor (\S+) (remote-as|update-source|passive|ebgp-multihop)\b\s*(\S*)")
NETWORK = re.compile(r"^network (\S+)")
STATIC = re.compile(r"^ip route (\S+)\s+(.+)$")


@dataclass
class Neighbor:
    address: str
    remote_as: int | None = None
    update_source: str | None = None
    passive: bool = False


@dataclass
class FrrConfig:
    asn: int | None = None
    neighbors: dict[str, Neighbor] = field(default_factory=dict)
    networks: list[IPv4Network] = field(default_factory=list)
    static_routes: dict[IPv4Network, str] = field(default_factory=dict)  # prefix -> "via/dev" text

    def neighbor(self, ip: IPv4Address) -> Neighbor | None:
        return self.neighbors.get(str(ip))

    def routes_to(self, ip: IPv4Address) -> list[tuple[IPv4Network, str]]:
        """Static routes covering `ip`, most specific first."""
        found = [(net, via) for net, via in self.static_routes.items() if ip in net]
        return sorted(found, key=lambda r: r[0].prefixlen, reverse=True)


def parse_frr(text: str) -> FrrConfig:
    cfg = FrrConfig()
    for raw in text.splitlines():
        line = raw.split("!", 1)[0].strip()
        if m := ROUTER.match(line):
            cfg.asn = int(m.group(1))
        elif m := NEIGHBOR.match(line):
            _neighbor(cfg, m.group(1), m.group(2), m.group(3))
        elif (m := NETWORK.match(line)) and _is_net(m.group(1)):
            cfg.networks.append(ip_network(m.group(1), strict=False))  # type: ignore[arg-type]
        elif (m := STATIC.match(line)) and _is_net(m.group(1)):
            cfg.static_routes[ip_network(m.group(1), strict=False)] = m.group(2).strip()  # type: ignore[index]
    return cfg


def _neighbor(cfg: FrrConfig, addr: str, key: str, value: str) -> None:
    if not _is_ip(addr):
        return  # a peer-group name: not followed here
    n = cfg.neighbors.setdefault(addr, Neighbor(addr))
    if key == "remote-as" and value.isdigit():
        n.remote_as = int(value)
    elif key == "update-source":
        n.update_source = value
    elif key == "passive":
        n.passive = True


def _is_ip(text: str) -> bool:
    try:
        return ip_address(text).version == 4
    except ValueError:
        return False


def _is_net(text: str) -> bool:
    try:
        return ip_network(text, strict=False).version == 4
    except ValueError:
        return False
