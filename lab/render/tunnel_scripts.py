"""The files that make tunnel interfaces real on a node: setup, routes, updown, one charon per tunnel.

All pure text from `TunnelIface` (lab/render/tunnel_ifaces.py); the runtime only runs them inside the
container. Layout under /lab/tunnels/: setup.sh (namespaces, veths, steering rules; idempotent), routes.sh
(routes into the interfaces whose CHILD_SA is up), updown.sh (strongSwan's updown plugin calls it), and per
tunnel <conn>/ with charon.sh, strongswan.conf, swanctl.conf, and at run time the vici socket and logs.
"""

from __future__ import annotations

from collections import defaultdict
from ipaddress import IPv4Network
from pathlib import PurePosixPath

from lab.render.nftables import render_nat
from lab.render.swanctl import SharedKey, SwanctlConfig, Tree
from lab.render.tunnel_ifaces import LOCAL_PREF, STEER_PREF, TUNNELS_DIR, TunnelIface

EXT = "ext"  # the veth end inside a tunnel namespace
# proxy_arp on ext: the main namespace may route on-link into the interface (`ip route X/32 dev vti-<conn>`, as
# FRR's host route to a BGP peer does); ext answers for whatever a CHILD_SA carries (table 220 -> ipsec0).
TUNNEL_SYSCTLS = ("net/ipv4/ip_forward=1", "net/ipv4/conf/all/rp_filter=0", "net/ipv4/conf/default/rp_filter=0",
                  f"net/ipv4/conf/{EXT}/rp_filter=0", f"net/ipv4/conf/{EXT}/proxy_arp=1")
# ipsec0's MTU is 1400 (fixed in libipsec). The interface keeps 1500: it also carries the ESP-in-UDP of a full
# 1400-byte packet (~1460 bytes), which must not be fragmented (the steering rule matches UDP ports, which a
# non-first fragment lacks). A bigger packet from the main namespace meets ipsec0's 1400 in the tunnel namespace,
# whose "fragmentation needed" would follow table 220 into the tunnel: this rule sends the tunnel namespace's own
# ICMP back to the main namespace, so path MTU discovery works (bgpd's TCP, forwarded traffic).
ICMP_BACK_PREF = 150
BLACKHOLE_PREF = 230  # after libipsec's 220: what no CHILD_SA takes is dropped, never sent back in clear
DIR = f"/lab/{TUNNELS_DIR}"
# Kernel data plane: the tunnel namespace's XFRM interface. Without if_id the namespace's inbound `fwd` policy
# (0.0.0.0/0 <= 0.0.0.0/0) would also match the clear packets it forwards from `ext` towards the peer; with it,
# policies only see packets routed through XFRM_DEV (what arrives from `ext`: XFRM_TABLE).
XFRM_DEV, XFRM_IF_ID, XFRM_TABLE = "xfrm0", 1, 221  # not 220: charon adds "not fwmark 0x42 lookup 220"
START_BATCH = 10  # tunnel charons a node starts at once
START_WAIT_S = 20.0  # how long a batch may take to open its vici sockets before the next batch starts anyway
NAT_FILE = "nat.nft"
UPDOWN = f"""\
#!/bin/sh
# Rendered by lab. strongSwan's updown plugin runs this in a tunnel's namespace when its CHILD_SA goes up
# or down ($1: the connection); the routes into the tunnel interfaces follow (routes.sh, main namespace).
d={DIR}/$1
case "$PLUTO_VERB" in
  up-client) touch "$d/up"; ip link set ipsec0 txqueuelen 10000 2>/dev/null ;;
  down-client) rm -f "$d/up" ;;
  *) exit 0 ;;
esac
exec nsenter --net=/proc/1/ns/net flock {DIR}/.lock sh {DIR}/routes.sh
"""


def setup_script(node: str, ifaces: tuple[TunnelIface, ...], dataplane: str = "libipsec") -> str:
    """Namespaces, veths, addresses, steering rules and sysctls; run again after a restart (it first
    removes what an earlier run left)."""
    kernel = dataplane == "kernel"
    names = " ".join(i.netns for i in ifaces)
    lines = [
        "#!/bin/sh",
        f"# Rendered by lab: the tunnel interfaces of {node} (docs/route-based.md). Idempotent.",
        "set -e",
        f"while ip rule del pref {STEER_PREF} 2>/dev/null; do :; done",
        # The main charon's pid file survives a container restart, and in the fresh container its old pid may now
        # be a tunnel charon's (they start first): charon would refuse to start ("already running"). Nothing
        # runs the main charon while this script runs.
        "rm -f /var/run/charon.pid",
        # Each interface first (deleting one end removes the pair at once; a namespace's deletion, and its veths
        # with it, completes asynchronously: re-adding raced it, "File exists"), then the namespaces.
        f"for l in {' '.join(i.ifname for i in ifaces)}; do ip link del $l 2>/dev/null || true; done",
        f"for ns in {names}; do ip netns del $ns 2>/dev/null || true; done",
        f"ip rule add pref {LOCAL_PREF} lookup local 2>/dev/null || true  # `local` after the steering rules",
        "ip rule del pref 0 lookup local 2>/dev/null || true",
        "ip -b - <<EOF",
        *[f"netns add {i.netns}" for i in ifaces],
        *[line for i in ifaces for line in _main_side(i, kernel)],
        "EOF",
    ]
    for i in ifaces:
        lines += [f"ip -n {i.netns} -b - <<EOF", *_tunnel_side(i), *(_xfrm_side() if kernel else []), "EOF",
                  f"ethtool -K {i.ifname} tx off >/dev/null"]
        if i.nat:  # the connection's NAT rules, in its own namespace (a fresh one: nothing to remove first)
            lines.append(f"ip netns exec {i.netns} nft -f {i.dir}/{NAT_FILE}")
    keys = " ".join(f"net/ipv4/conf/{i.ifname}/accept_local=1" for i in ifaces)
    lines.append(f"unshare -m sh -c 'mount -o remount,rw,bind /proc/sys && sysctl -qw {keys}'")
    return "\n".join(lines) + "\n"


def _main_side(i: TunnelIface, kernel: bool = False) -> list[str]:
    """The interface, its /31, and UDP 500/4500 from the peer steered into the tunnel namespace (kernel data
    plane: raw ESP too)."""
    esp = [f"rule add pref {STEER_PREF} from {i.peer_ip} ipproto esp table {i.table}"] if kernel else []
    return [
        f"link add {i.ifname} type veth peer name {EXT} netns {i.netns}",
        f"addr add {i.main_addr}/31 dev {i.ifname}",
        f'link set {i.ifname} alias "{i.conn} to {i.peer_ip}" up',
        f"route replace default via {i.tunnel_addr} dev {i.ifname} table {i.table}",
        *[f"rule add pref {STEER_PREF} from {i.peer_ip} ipproto udp dport {port} table {i.table}"
          for port in (500, 4500)],
        *esp,
    ]


def _xfrm_side() -> list[str]:
    """Kernel data plane: the XFRM interface in the tunnel namespace; what arrives from the main namespace is
    routed into it (the namespace's own IKE and ESP leave by its main table, via `ext`)."""
    return [
        f"link add {XFRM_DEV} type xfrm dev {EXT} if_id {XFRM_IF_ID}",
        f"link set {XFRM_DEV} mtu 1400 up",
        f"route add default dev {XFRM_DEV} table {XFRM_TABLE}",
        f"rule add pref {XFRM_TABLE} iif {EXT} table {XFRM_TABLE}",
    ]


def _tunnel_side(i: TunnelIface) -> list[str]:
    """The public IP (IKE source), the way back to the main namespace, and decrypted packets routed there."""
    return [
        "link set lo up",
        f"addr add {i.public_ip}/32 dev lo",
        *[f"addr add {a}/32 dev lo" for a in i.anchors],
        f"addr add {i.tunnel_addr}/31 dev {EXT}",
        f"link set {EXT} up",
        f"route add default via {i.main_addr} dev {EXT}",
        "rule add pref 100 iif ipsec0 table main",
        f"rule add pref {ICMP_BACK_PREF} iif lo ipproto icmp table main",
        f"rule add pref {BLACKHOLE_PREF} iif {EXT} blackhole",
    ]


def nat_ruleset(i: TunnelIface) -> str:
    """The connection's NAT rules in its tunnel namespace: `ext` faces the VNet, ipsec0 the site. Per
    connection, as Azure applies them, so the VNet reaches two sites that share a prefix at two external
    prefixes: the route picks the interface, the namespace behind it translates."""
    head = f"# Rendered by lab: NAT rules of {i.conn} (docs/azure-model.md \"NAT rules\").\n"
    return head + render_nat(list(i.nat), EXT)


def charon_script(i: TunnelIface) -> str:
    """Start the tunnel's charon inside its namespace, with a private /run (its pid file) and its own
    strongswan.conf (vici socket and logs in the tunnel's directory)."""
    return f"""\
#!/bin/sh
# Rendered by lab: the charon of tunnel {i.conn} ({i.ifname}), in namespace {i.netns}.
exec ip netns exec {i.netns} sh -c '
mount -o remount,rw,bind /proc/sys && sysctl -qw {" ".join(TUNNEL_SYSCTLS)}
ethtool -K {EXT} tx off >/dev/null 2>&1 || true
mount -t tmpfs tmpfs /run
mkdir -p {i.dir}/run
[ -e {i.dir}/up ] && rm -f {i.dir}/up && nsenter --net=/proc/1/ns/net flock {DIR}/.lock sh {DIR}/routes.sh
echo $$ > {i.dir}/charon.pid
STRONGSWAN_CONF={i.dir}/strongswan.conf exec /usr/lib/ipsec/charon'
"""


def start_script(node: str, ifaces: tuple[TunnelIface, ...], batch: int = START_BATCH) -> str:
    """Start the node's tunnel charons `batch` at a time, each detached in its namespace; every batch waits
    (up to START_WAIT_S) for its charons' vici sockets before the next starts. 300 charons started at once on
    2 cores starved each other past the 10 s vici connect timeout (docs/route-based.md)."""
    tries = int(START_WAIT_S / 0.1)
    lines = ["#!/bin/sh", f"# Rendered by lab: start the tunnel charons of {node}, {batch} at a time.",
             # a tunnel whose charon runs (its pid file names a live charon) keeps it: a takeover may repeat this
             f'start() {{ p=$(cat {DIR}/$1/charon.pid 2>/dev/null); [ "$(cat /proc/$p/comm 2>/dev/null)" = charon ] '
             f"&& return; rm -f {DIR}/$1/run/charon.vici; setsid sh {DIR}/$1/charon.sh </dev/null >/dev/null 2>&1 & }}",
             f'ready() {{ for c; do i=0; while [ ! -S {DIR}/$c/run/charon.vici ] && [ $i -lt {tries} ]; do '
             "sleep 0.1; i=$((i+1)); done; done; }"]
    conns = [i.conn for i in ifaces]
    for k in range(0, len(conns), batch):
        group = " ".join(conns[k:k + batch])
        lines.append(f"for c in {group}; do start $c; done; ready {group}")
    return "\n".join(lines) + "\n"


def routes_script(node: str, ifaces: tuple[TunnelIface, ...]) -> str:
    """One route per prefix over every tunnel interface that carries it and is up (ECMP when several);
    none up: the route goes and the LAN's packets meet the "not via a tunnel" drop."""
    by_prefix: dict[IPv4Network, list[TunnelIface]] = defaultdict(list)
    for i in ifaces:
        for p in i.routes:
            by_prefix[p].append(i)
    lines = ["#!/bin/sh", f"# Rendered by lab: routes of {node} into its tunnel interfaces whose CHILD_SA is up."]
    if not by_prefix:  # a BGP device routes by what it learns: nothing static (an empty `{ }` is a syntax error)
        return "\n".join(lines) + "\nexit 0\n"
    # One `ip` for all prefixes: a gateway with 100 tunnels runs this 200 times at `lab up` (each charon's
    # start and each CHILD_SA up), and one `ip` per prefix was 20,000 processes under the lock.
    lines.append("{")
    for prefix, carriers in sorted(by_prefix.items()):
        lines.append('h=""')
        lines += [f'[ -e {i.dir}/up ] && h="$h nexthop via {i.tunnel_addr} dev {i.ifname}"' for i in carriers]
        lines.append(f'if [ -n "$h" ]; then echo "route replace {prefix} src {carriers[0].src} proto static $h"; '
                     f'else echo "route del {prefix} proto static"; fi')
    # -force: every line runs; a `route del` of a route that is not there is no error worth a word
    lines.append("} | ip -force -batch - 2>&1 | grep -v -e '^RTNETLINK answers: No such process' "
                 "-e '^Command failed' >&2")
    return "\n".join(lines) + "\nexit 0\n"


def node_files(node: str, ifaces: tuple[TunnelIface, ...], dataplane: str = "libipsec") -> dict[PurePosixPath, str]:
    """The node-level scripts and each tunnel's charon.sh, as {<node>/tunnels/...: text}."""
    base = PurePosixPath(node) / TUNNELS_DIR
    files = {base / "setup.sh": setup_script(node, ifaces, dataplane), base / "routes.sh": routes_script(node, ifaces),
             base / "updown.sh": UPDOWN, base / "start.sh": start_script(node, ifaces)}
    files.update({base / i.conn / "charon.sh": charon_script(i) for i in ifaces})
    files.update({base / i.conn / NAT_FILE: nat_ruleset(i) for i in ifaces if i.nat})
    return files


def split_units(swan: dict[str, SwanctlConfig], ifaces: dict[str, tuple[TunnelIface, ...]],
                kernel: bool = False) -> dict[str, SwanctlConfig]:
    """Move each tunnel's connection (and its PSK) from its node's tree to its own charon unit; its
    CHILD_SAs call updown.sh (`kernel`: and use the namespace's XFRM interface). A node left with nothing to
    load drops out (its main charon has no config)."""
    out = dict(swan)
    for node, found in ifaces.items():
        cfg = out.get(node)
        if cfg is None:
            continue
        conns, secrets = dict(cfg.connections), list(cfg.secrets)
        for i in found:
            tree = conns.pop(i.conn, None)
            if tree is None:
                continue
            key = next(k for k in secrets if set(k.ids) == {str(i.public_ip), str(i.peer_ip)})
            out[i.unit] = SwanctlConfig({i.conn: _with_updown(tree, i, kernel)}, (key,))
        keep = tuple(k for k in secrets if not _moved(k, found))
        if conns or keep:
            out[node] = SwanctlConfig(conns, keep)
        else:  # nothing left for the node's main charon to load (a site runs none then)
            del out[node]
    return dict(sorted(out.items()))


def _moved(key: SharedKey, found: tuple[TunnelIface, ...]) -> bool:
    return any(set(key.ids) == {str(i.public_ip), str(i.peer_ip)} for i in found)


def _with_updown(tree: Tree, i: TunnelIface, kernel: bool = False) -> Tree:
    kids = tree.get("children")
    if not isinstance(kids, dict):
        return tree
    extra = {"updown": f"/bin/sh {DIR}/updown.sh {i.conn}"}
    if kernel:
        extra = {"if_id_in": str(XFRM_IF_ID), "if_id_out": str(XFRM_IF_ID), **extra}
    return {**tree, "children": {n: {**c, **extra} if isinstance(c, dict) else c for n, c in kids.items()}}
