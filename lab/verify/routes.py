"""The `routes` check of `lab verify` on a BGP lab: every prefix a node learned by BGP that holds a lab host is
reachable from a host behind that node, and a multi-flow probe (UDP flows on distinct ports, then a ping)
shows which tunnel interface(s) carried it, from the interfaces' packet counters. A learned prefix with no
lab host inside is listed with its next hop (nothing there to answer a probe)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network

from lab.core import Lab
from lab.routing.collect import routes
from lab.routing.peers import by_node, sessions
from lab.routing.views import RouteRow
from lab.runtime.base import Runtime
from lab.verify.model import CheckResult

FLOWS = 16
COUNTERS = ("for d in /sys/class/net/*; do n=${d##*/}; case $n in vti-*|ipsec*) "
            "echo $n $(cat $d/statistics/tx_packets);; esac; done")
# UDP flows on FLOWS destination ports (an L4 multipath hash spreads them), sent from the host's own address.
SEND_FLOWS = ("import socket,sys\n"
              "s=[socket.socket(socket.AF_INET,socket.SOCK_DGRAM) for _ in range(int(sys.argv[2]))]\n"
              "[x.sendto(b'lab-routes',(sys.argv[1],33434+i)) for i,x in enumerate(s) for _ in range(3)]\n")


@dataclass(frozen=True)
class Probe:
    node: str  # the node that learned the route (its tunnel interfaces are counted)
    network: str
    next_hop: str
    source: str  # host node behind `node`
    target: str  # an address of a lab host inside `network` ("" when none)


def parse_counters(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def carriers(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Tunnel interface -> packets it sent during the probe."""
    return {i: after[i] - before.get(i, 0) for i in sorted(after) if after[i] > before.get(i, 0)}


def probes(lab: Lab, rows: list[RouteRow]) -> list[Probe]:
    """One probe per learned best route: from the first host behind the node to the first host inside it."""
    hosts = [(n.name, n.group, a.ip) for n in lab.plan.nodes if n.role == "host" for i in n.ifaces
             for a in i.addresses]
    group = {n.name: n.group for n in lab.plan.nodes}
    out = []
    for r in rows:
        if r.origin != "EBgp" or not r.best:
            continue
        net = IPv4Network(r.network)
        source = next((h for h, g, _ in hosts if g == group.get(r.node)), "")
        target = next((str(ip) for _, _, ip in hosts if ip in net), "")
        if source:
            out.append(Probe(r.node, r.network, r.next_hop, source, target))
    return out


def check_routes(lab: Lab, runtime: Runtime) -> CheckResult | None:
    """None on a lab without BGP."""
    per_node = by_node(sessions(lab.topo))
    if not per_node:
        return None
    rows = routes(runtime, lab.topo.name, per_node, learned=True, advertised=False)
    found = probes(lab, rows)
    evidence, failed, data = [], [], []
    for p in found:
        ok, carried = _probe(lab, runtime, p) if p.target else (True, {})
        via = ", ".join(f"{i} {n} pkts" for i, n in carried.items()) or "-"
        line = (f"{p.node}: {p.network} via {p.next_hop}: " + (f"{p.source} -> {p.target} "
                f"{'reachable' if ok else 'UNREACHABLE'}, carried by {via}" if p.target else "no lab host inside"))
        evidence.append(line)
        data.append({"node": p.node, "network": p.network, "target": p.target, "reachable": ok, "carried": carried})
        if not ok:
            failed.append(line)
    summary = (f"{len(found) - len(failed)}/{len(found)} learned routes reachable" if found
               else "no route learned by BGP")
    return CheckResult(name="routes", passed=bool(found) and not failed, summary=summary, evidence=evidence,
                       data={"routes": data})  # type: ignore[dict-item]


def _probe(lab: Lab, runtime: Runtime, p: Probe) -> tuple[bool, dict[str, int]]:
    name = lab.topo.name
    before = parse_counters(runtime.exec(name, p.node, ["sh", "-c", COUNTERS], timeout=5).output)
    runtime.exec(name, p.source, ["python3", "-c", SEND_FLOWS, p.target, str(FLOWS)], timeout=10)
    ping = runtime.exec(name, p.source, ["ping", "-c", "2", "-i", "0.2", "-W", "2", p.target], timeout=10)
    after = parse_counters(runtime.exec(name, p.node, ["sh", "-c", COUNTERS], timeout=5).output)
    return ping.ok, carriers(before, after)
