"""Namespaces, bridges, veths, addresses and routes, through pyroute2 (the only module importing it).

Safety: nothing here touches the host's network namespace. Every netlink socket and ioctl socket is
opened *inside* the lab namespace or a container's namespace; veths are created in the lab namespace
with their peer born directly in the container's namespace under its final name, so no interface
exists in the host namespace even transiently.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

from pyroute2 import IPRoute, netns
from pyroute2.ethtool.ioctl import IoctlEthtool
from pyroute2.netlink.exceptions import NetlinkError

from lab.errors import RuntimeBackendError
from lab.plan_types import Iface, NodePlan, Plan, Route
from lab.runtime.base import NAME_PREFIX, namespace_name

IFNAME_MAX = 15  # IFNAMSIZ - 1
RT_SCOPE_LINK = 253
OPERSTATE_WAIT_S = 5.0
OPERSTATE_POLL_S = 0.05
BR_STATE_FORWARDING = 3
DOWN_HINT = "run `lab down {lab}` to clear what was half built, then try again"
# Lab-namespace sysctls: no IPv6 chatter (RS/MLD/DAD) on the segments, and bridged frames must not
# traverse netfilter (br_netfilter defaults to 1 in a new namespace).
LAB_NS_SYSCTLS = {
    "net/ipv6/conf/all/disable_ipv6": "1",
    "net/ipv6/conf/default/disable_ipv6": "1",
    "net/bridge/bridge-nf-call-iptables": "0",
    "net/bridge/bridge-nf-call-ip6tables": "0",
    "net/bridge/bridge-nf-call-arptables": "0",
}


@contextmanager
def _step(subject: str, what: str, hint: str | None = None) -> Iterator[None]:
    """Turn a netlink/OS failure into a RuntimeBackendError naming the place (`node 'gw'`) and the step."""
    try:
        yield
    except NetlinkError as exc:
        raise RuntimeBackendError(f"{subject}: {what}: {os.strerror(exc.code)}", hint=hint) from exc
    except OSError as exc:
        raise RuntimeBackendError(f"{subject}: {what}: {exc}", hint=hint) from exc


def lab_namespaces() -> list[str]:
    """Named namespaces that look like a lab's (`lab-*`)."""
    return sorted(name for name in netns.listnetns() if name.startswith(NAME_PREFIX))


def remove_namespace(name: str) -> bool:
    """Delete a named namespace (its bridges and veths go with it); False if it did not exist."""
    if name not in netns.listnetns():
        return False
    try:
        netns.remove(name)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise RuntimeBackendError(f"namespace {name!r}: cannot remove: {exc}") from exc
    return True


def probe_namespace(name: str) -> None:
    """Create and remove a scratch namespace, proving netns and netlink work here (preflight)."""
    netns.create(name)
    try:
        with IPRoute(netns=name, flags=0) as ipr:
            ipr.link("set", index=index_of(ipr, "lo"), state="up")
    finally:
        netns.remove(name)


def veth_names(plan: Plan) -> dict[tuple[str, str], str]:
    """Bridge-side veth name per (node, iface): `<node>-<iface>`, hashed when longer than 15 chars. Four hex
    digits collide among a few hundred hashed names (azgw-client160 met azgw-client73): a name already taken is
    hashed again with a counter, in plan order, so every name is unique and a lab without a clash keeps the
    names it always had."""
    names: dict[tuple[str, str], str] = {}
    used = set(segments(plan))
    for node in plan.nodes:
        for iface in node.ifaces:
            full = f"{node.name}-{iface.name}"
            name, salt = full, 0
            while len(name) > IFNAME_MAX or name in used:
                key = f"{node.name}/{iface.name}" + (f"/{salt}" if salt else "")
                name, salt = f"{full[:10]}~{hashlib.sha1(key.encode()).hexdigest()[:4]}", salt + 1
            names[(node.name, iface.name)] = name
            used.add(name)
    taken = list(names.values()) + list(segments(plan))
    if len(set(taken)) != len(taken):
        raise RuntimeBackendError(f"lab {plan.lab!r}: interface names collide in the lab namespace: {taken}")
    return names


def segments(plan: Plan) -> tuple[str, ...]:
    """Every segment named by the plan or used by an interface, sorted, each a valid bridge name."""
    names = sorted(set(plan.segments) | {i.segment for n in plan.nodes for i in n.ifaces})
    for name in names:
        if not 0 < len(name) <= IFNAME_MAX or "/" in name or name.isspace():
            raise RuntimeBackendError(f"segment {name!r}: not a valid bridge name (1-15 chars, no '/')")
    return tuple(names)


# Makes the bridge-side port `name` of (node, iface) in the lab namespace (open as `ipr`) and the node's end
# inside the node's namespace (by pid) under iface.name: a veth pair here; a VXLAN pair on a swarm (vxlan.py).
PortMaker = Callable[[IPRoute, IoctlEthtool, str, NodePlan, Iface, int], None]


def wire(plan: Plan, pids: Mapping[str, int], make_port: PortMaker | None = None) -> None:
    """Build the lab namespace with its bridges and ports (veths by default), then configure every node's
    namespace."""
    make_port = make_port or add_veth
    names = veth_names(plan)
    ns = namespace_name(plan.lab)
    hint = DOWN_HINT.format(lab=plan.lab)
    if ns in netns.listnetns():
        raise RuntimeBackendError(f"lab {plan.lab!r}: namespace {ns!r} already exists", hint=hint)
    where = f"namespace {ns!r}"
    with _step(where, "create", hint):
        netns.create(ns)
        _run_in_namespace(ns, _write_sysctls)
    with _step(where, "open", hint), IPRoute(netns=ns, flags=0) as ipr, _ethtool(ns) as eth:
        ipr.link("set", index=index_of(ipr, "lo"), state="up")
        for seg in segments(plan):
            with _step(where, f"bridge {seg}", hint):
                ipr.link("add", ifname=seg, kind="bridge", state="up")
        for node in plan.nodes:
            for iface in node.ifaces:
                with _step(f"node {node.name!r}", f"veth {iface.name} on {iface.segment}", hint):
                    make_port(ipr, eth, names[(node.name, iface.name)], node, iface, pids[node.name])
    for node in plan.nodes:
        configure_node(node, pids[node.name], hint)


def configure_node(node: NodePlan, pid: int, hint: str | None = None) -> None:
    """Inside the container's namespace (by pid): lo and its extra addresses, interfaces up, routes."""
    path = f"/proc/{pid}/ns/net"
    where = f"node {node.name!r}"
    with _step(where, "open container namespace", hint), IPRoute(netns=path, flags=0) as ipr, _ethtool(path) as eth:
        lo = index_of(ipr, "lo")
        with _step(where, "lo", hint):
            ipr.link("set", index=lo, state="up")
        for addr in node.loopbacks:
            with _step(where, f"address {addr} on lo", hint):
                ipr.addr("add", index=lo, address=str(addr.ip), prefixlen=addr.network.prefixlen)
        for iface in node.ifaces:
            with _step(where, f"interface {iface.name}", hint):
                _configure_iface(ipr, eth, iface)
        for route in node.routes:
            with _step(where, f"route {_describe(route)}", hint):
                ipr.route("add", **_route_spec(ipr, route))


def rewire_node(plan: Plan, node: NodePlan, pid: int, make_port: PortMaker | None = None) -> None:
    """Re-create one node's veths (stale bridge-side ends are deleted first), then configure it."""
    make_port = make_port or add_veth
    names = veth_names(plan)
    ns = namespace_name(plan.lab)
    hint = DOWN_HINT.format(lab=plan.lab)
    where = f"node {node.name!r}"
    with _step(f"namespace {ns!r}", "open", hint), IPRoute(netns=ns, flags=0) as ipr, _ethtool(ns) as eth:
        for iface in node.ifaces:
            name = names[(node.name, iface.name)]
            with _step(where, f"veth {iface.name} on {iface.segment}", hint):
                for index in ipr.link_lookup(ifname=name):
                    ipr.link("del", index=index)
                make_port(ipr, eth, name, node, iface, pid)
        configure_node(node, pid, hint)
        for iface in node.ifaces:
            with _step(where, f"veth {iface.name} carrier", hint):
                _wait_operstate_up(ipr, names[(node.name, iface.name)])


def live_links(pid: int) -> dict[str, list[str]]:
    """What a container's namespace holds now: interface -> its IPv4 addresses (cidr). A container restarted
    by Docker has a fresh namespace: only `lo` (the lab's veths died with the old one)."""
    out: dict[str, list[str]] = {}
    try:
        with IPRoute(netns=f"/proc/{pid}/ns/net", flags=0) as ipr:
            names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
            out = {name: [] for name in names.values()}
            for addr in ipr.get_addr(family=socket.AF_INET):
                out.setdefault(names.get(addr["index"], "?"), []).append(
                    f"{addr.get_attr('IFA_ADDRESS')}/{addr['prefixlen']}")
    except (OSError, NetlinkError):  # the container went away meanwhile
        return {}
    return out


def _wait_operstate_up(ipr: IPRoute, name: str, timeout: float = OPERSTATE_WAIT_S) -> None:
    """The kernel applies carrier changes later (linkwatch, up to ~1 s): frames sent before then are
    lost, so `restore` returns only once the link really carries traffic."""
    deadline = time.monotonic() + timeout
    while not _forwarding(ipr, name):
        if time.monotonic() >= deadline:
            raise OSError(errno.ETIMEDOUT, f"{name} not operationally up after {timeout:g} s")
        time.sleep(OPERSTATE_POLL_S)


def forget_neighbours(plan: Plan, node: NodePlan, pids: Mapping[str, int]) -> None:
    """A rewired node has new MACs, and a gratuitous ARP sent as its link comes up is lost while the
    bridge port is still coming up; peers would keep the old MAC until their entry expires (~45 s
    measured). Deleting their entries for the node's addresses makes them ask again at once. A peer whose
    namespace went away since `pids` was read (restarted meanwhile) is skipped: its fresh namespace holds no
    old entry, and its own heal wires it. Seen: `docker restart` of vm1 while the supervisor healed azgw-1
    failed that heal ("forget neighbours of 'azgw-1': No such file or directory"), leaving azgw-1 wired
    without its charon, which no later sweep completes (a wired node is not broken)."""
    addrs = {str(a.ip) for i in node.ifaces for a in i.addresses}
    for peer in plan.nodes:
        if peer.name == node.name or peer.name not in pids:
            continue
        with _step(f"node {peer.name!r}", f"forget neighbours of {node.name!r}"):
            try:
                ipr = IPRoute(netns=f"/proc/{pids[peer.name]}/ns/net", flags=0)
            except FileNotFoundError:
                continue
            with ipr:
                for entry in ipr.get_neighbours(family=socket.AF_INET):
                    if entry.get_attr("NDA_DST") in addrs:
                        with suppress(NetlinkError):  # already gone
                            ipr.neigh("del", dst=entry.get_attr("NDA_DST"), ifindex=entry["ifindex"])


def _forwarding(ipr: IPRoute, name: str) -> bool:
    """Operationally up (a VXLAN port of the swarm runtime has no carrier to report: UNKNOWN when up), and (as
    a bridge port) in the forwarding state."""
    link = ipr.get_links(index_of(ipr, name))[0]
    info = link.get_attr("IFLA_LINKINFO")
    port = info.get_attr("IFLA_INFO_SLAVE_DATA") if info is not None else None
    state = port.get_attr("IFLA_BRPORT_STATE") if port is not None else BR_STATE_FORWARDING
    return bool(link.get_attr("IFLA_OPERSTATE") in ("UP", "UNKNOWN") and state == BR_STATE_FORWARDING)


def set_link_state(plan: Plan, node: str, iface: str, up: bool) -> None:
    """Bridge-side veth of (node, iface) up or down in the lab namespace: the node sees its carrier go."""
    name = veth_names(plan).get((node, iface))
    if name is None:
        raise RuntimeBackendError(f"node {node!r}: no interface {iface!r} in the plan", hint="lab inspect")
    ns = namespace_name(plan.lab)
    state = "up" if up else "down"
    where = f"set {name} {state} in namespace {ns!r}"
    with _step(f"node {node!r}", where, f"is lab {plan.lab!r} up?"), IPRoute(netns=ns, flags=0) as ipr:
        ipr.link("set", index=index_of(ipr, name), state=state)
        if up:
            _wait_operstate_up(ipr, name)


def add_veth(ipr: IPRoute, eth: IoctlEthtool, name: str, node: NodePlan, iface: Iface, pid: int) -> None:
    """A veth `name` on the segment bridge here; its peer is born in the container as iface.name."""
    bridge = index_of(ipr, iface.segment)
    peer = {"ifname": iface.name, "net_ns_pid": pid}
    ipr.link("add", ifname=name, kind="veth", master=bridge, state="up", peer=peer)
    tx_checksum_off(eth, name)


def _configure_iface(ipr: IPRoute, eth: IoctlEthtool, iface: Iface) -> None:
    index = index_of(ipr, iface.name)
    tx_checksum_off(eth, iface.name)
    for addr in iface.addresses:
        ipr.addr("add", index=index, address=str(addr.ip), prefixlen=addr.network.prefixlen)
    ipr.link("set", index=index, state="up")


def _route_spec(ipr: IPRoute, route: Route) -> dict[str, object]:
    """netlink route arguments: ECMP for several gateways, on-link (scope link) when only a device."""
    spec: dict[str, object] = {"dst": str(route.dst)}
    dev = {"oif": index_of(ipr, route.dev)} if route.dev else {}
    if len(route.via) > 1:
        spec["multipath"] = [{"gateway": str(gw), **dev} for gw in route.via]
    elif route.via:
        spec.update(gateway=str(route.via[0]), **dev)
    elif dev:
        spec.update(scope=RT_SCOPE_LINK, **dev)
    else:
        raise OSError(errno.EINVAL, "a route needs `via` or `dev`")
    return spec


def _describe(route: Route) -> str:
    via = " via " + ",".join(map(str, route.via)) if route.via else ""
    return f"{route.dst}{via}{f' dev {route.dev}' if route.dev else ''}"


def index_of(ipr: IPRoute, ifname: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise OSError(errno.ENODEV, f"no interface {ifname!r}")
    return int(found[0])


def tx_checksum_off(eth: IoctlEthtool, ifname: str) -> None:
    """`ethtool -K <if> tx off`: veths otherwise hand on packets with only a partial checksum, which
    captures show as bad and userspace consumers (libipsec via TUN, scapy) may pass on unfixed."""
    eth.change_ifname(ifname)
    eth.set_offload_flag("tx-checksumming", 0)


@contextmanager
def _ethtool(ns: str) -> Iterator[IoctlEthtool]:
    """An ethtool ioctl handle whose socket lives in namespace `ns` (a name or /proc/<pid>/ns/net).

    pyroute2's Ethtool has no netns argument: its ioctls act on the namespace of its socket, so the
    socket it opened (in ours) is swapped for one created inside `ns`.
    """
    eth = IoctlEthtool()
    eth.sock.close()
    eth.sock = netns.create_socket(ns, socket.AF_INET, socket.SOCK_DGRAM, flags=0)
    try:
        yield eth
    finally:
        eth.close()


def _write_sysctls() -> None:
    for key, value in LAB_NS_SYSCTLS.items():
        path = Path("/proc/sys") / key
        if path.exists():
            path.write_text(value)


def _run_in_namespace(ns: str, work: Callable[[], None]) -> None:
    """Run `work()` in a throwaway thread moved into `ns`: setns moves only the calling thread, so the
    process (and its other threads) stay in the host namespace, and no pushns/popns stack is shared."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            netns.setns(ns, flags=0)
            work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=target, name=f"setns-{ns}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
