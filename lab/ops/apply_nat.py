"""`lab apply` of NAT rule changes, live: Azure changes a connection's NAT rules in place, so does the lab.

A NAT change moves no container and touches no SA. It changes what a connection's tunnel namespace translates
(its `ip labnat` table), which prefixes the gateway and a route-based device route into the tunnel (the external
ones), the selector anchor on the tunnel namespace's `lo`, and, where a connection has no tunnel interface, the
instance's main-namespace NAT table and its translated inside address on `lo`. `nat_work` turns the old and new
renderings into the commands that redo each in place, removing what only the old rules needed: taking every
rule away leaves no table, route or address of them behind. Pure; `run_nat_work` executes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Interface
from pathlib import PurePosixPath

from lab.errors import RuntimeBackendError
from lab.plan_types import NodePlan
from lab.render.tunnel_ifaces import TunnelIface
from lab.render.tunnel_scripts import DIR, NAT_FILE
from lab.runtime.base import Runtime

Ifaces = Mapping[str, tuple[TunnelIface, ...]]
NAT_FIELDS = ("nat", "routes", "anchors")  # what NAT rules change on a tunnel interface
# Files a NAT change rewrites that take effect through `nat_work`, not only when charon starts.
NAT_FILES = ("nftables.conf", "routes.sh", "setup.sh", NAT_FILE)


@dataclass(frozen=True)
class NatWork:
    """The commands (argv, run in order in the node's container) that apply one node's NAT change."""

    node: str
    commands: tuple[tuple[str, ...], ...]


def nat_only(old: TunnelIface, new: TunnelIface) -> bool:
    """The interface changed, and only in what NAT rules decide."""
    return old != new and replace(old, **{f: getattr(new, f) for f in NAT_FIELDS}) == new


def nat_ifaces(old: Ifaces, new: Ifaces) -> dict[str, list[tuple[TunnelIface, TunnelIface]]]:
    """node -> (old, new) of each tunnel interface whose NAT side changed (nothing else about it)."""
    out: dict[str, list[tuple[TunnelIface, TunnelIface]]] = {}
    for node in sorted(old.keys() & new.keys()):
        before = {i.conn: i for i in old[node]}
        pairs = [(before[i.conn], i) for i in new[node] if i.conn in before and nat_only(before[i.conn], i)]
        if pairs:
            out[node] = pairs
    return out


def nat_work(old: Ifaces, new: Ifaces, old_plan: Mapping[str, NodePlan], new_plan: Mapping[str, NodePlan],
             reload_nft: set[str]) -> list[NatWork]:
    """Per node: tunnel namespaces' tables and anchors, stale routes removed, routes.sh re-run; the main
    namespace's ruleset reloaded (`reload_nft`: its nftables.conf changed) and NAT addresses on lo swapped."""
    changed = nat_ifaces(old, new)
    out = []
    for node in sorted(set(changed) | reload_nft | _lo_changed(old_plan, new_plan)):
        cmds: list[tuple[str, ...]] = []
        if node in reload_nft:
            cmds.append(("nft", "-f", "/lab/nftables.conf"))
        cmds += _lo_swap(old_plan.get(node), new_plan.get(node))
        pairs = changed.get(node, [])
        for before, after in pairs:
            cmds += _tunnel(before, after)
        if pairs:
            cmds.append(("nsenter", "--net=/proc/1/ns/net", "flock", f"{DIR}/.lock", "sh", f"{DIR}/routes.sh"))
        out.append(NatWork(node, tuple(cmds)))
    return out


def _tunnel(before: TunnelIface, after: TunnelIface) -> list[tuple[str, ...]]:
    ns = ("ip", "netns", "exec", after.netns)
    cmds: list[tuple[str, ...]] = []
    if after.nat:
        cmds.append((*ns, "nft", "-f", f"{after.dir}/{NAT_FILE}"))  # the file replaces the table whole
    elif before.nat:
        cmds.append((*ns, "nft", "delete", "table", "ip", "labnat"))
    cmds += [("ip", "-n", after.netns, "addr", "del", f"{a}/32", "dev", "lo")
             for a in before.anchors if a not in after.anchors]
    cmds += [("ip", "-n", after.netns, "addr", "add", f"{a}/32", "dev", "lo")
             for a in after.anchors if a not in before.anchors]
    cmds += [("ip", "route", "del", str(p), "proto", "static") for p in before.routes if p not in after.routes]
    return cmds


def _lo_changed(old: Mapping[str, NodePlan], new: Mapping[str, NodePlan]) -> set[str]:
    return {n for n in old.keys() & new.keys() if old[n].loopbacks != new[n].loopbacks}


def _lo_swap(old: NodePlan | None, new: NodePlan | None) -> list[tuple[str, ...]]:
    if old is None or new is None:
        return []
    gone: list[IPv4Interface] = [a for a in old.loopbacks if a not in new.loopbacks]
    came: list[IPv4Interface] = [a for a in new.loopbacks if a not in old.loopbacks]
    return [("ip", "addr", verb, str(a), "dev", "lo") for verb, addrs in (("del", gone), ("add", came))
            for a in addrs]


def handled_files(files: Mapping[PurePosixPath, str], work: list[NatWork], old: Ifaces,
                  new: Ifaces) -> set[PurePosixPath]:
    """The rendered files `nat_work` brings into effect (apply may change them on a running node): a node's
    ruleset always, its tunnel scripts only where nothing but NAT changed about its interfaces."""
    nodes = {w.node for w in work}
    other = {n for n in old.keys() | new.keys()
             if {i.conn for i in old.get(n, ())} != {i.conn for i in new.get(n, ())}
             or any(a.conn == b.conn and a != b and not nat_only(a, b) for a in old.get(n, ()) for b in new.get(n, ()))}
    return {rel for rel in files if rel.parts[0] in nodes
            and (rel.name == "nftables.conf" or (rel.name in NAT_FILES and rel.parts[0] not in other))}


def run_nat_work(runtime: Runtime, lab: str, work: list[NatWork], progress: Callable[[str], None]) -> None:
    """Run each node's commands; a route already gone is not an error (its tunnel may be down)."""
    for w in work:
        if w.commands:
            progress(f"NAT rules: {w.node}")
        for argv in w.commands:
            res = runtime.exec(lab, w.node, list(argv), timeout=30)
            if not res.ok and argv[:3] != ("ip", "route", "del"):
                raise RuntimeBackendError(f"node {w.node!r}: {' '.join(argv)}: {res.output.strip()[-300:]}")
