"""`lab apply FILE`: change a running lab in place, the way Azure changes a running gateway.

Two halves. `plan_changes(old, new)` is a pure diff of two topologies into changes Azure allows in place
(add/remove a connection, new shared key, new IPsec policy or other connection settings, resize within a SKU
family) and refusals citing the Azure rule (VPN type, Basic <-> VpnGw resize, a connection's endpoints or
IKE version) or naming what the lab cannot do live yet (new or re-wired nodes, settings read only when charon
starts, a lab with active faults or after a failover). `apply_file` then touches only the connections whose
rendered swanctl tree or key changed, over vici (`lab.ops.apply_live`): the others keep their SAs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Literal

import yaml
from pydantic import BaseModel

from lab import acquire, core, pipeline, tunnel_units
from lab.azure import facts
from lab.device.byo import byo_sites, override_files, without_byo
from lab.errors import TopologyError
from lab.ha import agents as ha
from lab.ha.standby import fast_dpd_nodes, standby_configs
from lab.ops.apply_live import ConnWork, kept_problems, live_apply, snapshot
from lab.ops.apply_nat import handled_files, nat_work, run_nat_work
from lab.ops.faults import read_faults
from lab.plan import build_plan
from lab.plan_types import NodePlan
from lab.render.lab_files import render_files
from lab.render.strongswan_conf import Dataplane
from lab.render.swanctl import SwanctlConfig, Tree
from lab.render.tunnels import pairs_mode
from lab.runtime.base import Runtime
from lab.secrets import resolve_keys
from lab.state import write_private
from lab.topology.model import Connection, Gateway, Strict, Topology

ChangeKind = Literal[
    "add-connection", "remove-connection", "shared-key", "ipsec-policy", "update-connection", "resize",
    "update-gateway", "update-site",
    # refused:
    "vpn-type", "sku-family", "connection-endpoints", "ike-version",
    # refused, limits of the lab (not Azure's):
    "new-nodes", "rewire", "charon-settings", "lab-state", "ha-timing",
]
# refusals that are the lab's, not Azure's
LAB_LIMITS = ("new-nodes", "rewire", "charon-settings", "lab-state", "ha-timing")
ENDPOINT_FIELDS = ("gateway", "site", "peer_gateway")  # a connection's two ends (peer_gateway: VNet-to-VNet)
RECREATE_HINT = "lab down {lab}, then lab up {file} (Azure: delete and re-create it)"
NODES_HINT = "apply changes connections, keys and SKUs of a lab as `up` left it: lab down {lab}, then lab up {file}"


class Change(BaseModel):
    """One difference between the running topology and the new file; `refusal` says why it cannot be applied."""

    kind: ChangeKind
    path: str  # dotted place in the topology, e.g. connections.azgw-onprem
    detail: str
    refusal: str | None = None

    def render(self) -> str:
        return f"{self.path}: {self.refusal or self.detail}"


class ChangeRefused(TopologyError):
    """The new topology asks for changes Azure (or the lab, live) cannot make; the running lab is untouched."""


class ApplyResult(BaseModel):
    lab: str
    changes: list[Change]
    dry_run: bool
    removed: dict[str, list[str]]  # node -> connections unloaded (and their SAs deleted)
    loaded: dict[str, list[str]]  # node -> connections (re)loaded and brought up afresh
    kept: dict[str, list[str]]  # node -> connections left alone (their CHILD_SAs checked unchanged)
    problems: list[str] = []


# ---- the pure diff -------------------------------------------------------------------------------


def sku_family(sku: str) -> str:
    """Azure resizes within a family only: Basic is a family of its own, VpnGw1-5 another."""
    return "Basic" if sku == "Basic" else "VpnGw"


def _differing(old: Strict, new: Strict, skip: tuple[str, ...] = ()) -> list[str]:
    """Field names whose values differ (any field a future model adds is compared too)."""
    names = dict.fromkeys([*type(old).model_fields, *type(new).model_fields])
    return [n for n in names if n not in skip and getattr(old, n, None) != getattr(new, n, None)]


def plan_changes(old: Topology, new: Topology) -> list[Change]:
    """Every change from `old` (running) to `new`, refused ones included, in topology order."""
    changes = _node_changes(old, new)
    for name in sorted(old.gateways.keys() & new.gateways.keys()):
        changes += _gateway_changes(name, old.gateways[name], new.gateways[name])
    for name in sorted(old.sites.keys() & new.sites.keys()):
        fields = _differing(old.sites[name], new.sites[name])
        if fields:
            changes.append(Change(kind="update-site", path=f"sites.{name}", detail=f"changes {', '.join(fields)}"))
    for name in sorted(old.connections.keys() | new.connections.keys()):
        changes += _routed(_connection_changes(name, old.connections.get(name), new.connections.get(name)),
                           old if name in old.connections else new, name)
    return _refuse_rewired_sections(changes)


def _routed(changes: list[Change], topo: Topology, name: str) -> list[Change]:
    """Adding or removing a route-based connection adds or removes tunnel interfaces and their charons
    (docs/route-based.md), which only `lab up` creates for now."""
    conn = topo.connections[name]
    gw = topo.gateways.get(conn.gateway)
    if gw is None or pairs_mode(conn, gw):
        return changes
    return [c.model_copy(update={"refusal": f"{c.detail}: a route-based connection has its own "
                                 "tunnel interface and charon on each end; apply cannot create or remove those yet"})
            if c.kind in ("add-connection", "remove-connection") else c for c in changes]


def _node_changes(old: Topology, new: Topology) -> list[Change]:
    """Gateways, sites and hosts are containers: adding, removing or re-addressing one needs `lab up`."""
    out = []
    for section in ("gateways", "sites"):
        before, after = getattr(old, section), getattr(new, section)
        for name in sorted(before.keys() ^ after.keys()):
            verb = "adding" if name in after else "removing"
            out.append(Change(kind="new-nodes", path=f"{section}.{name}", detail=f"{verb} {section[:-1]} {name}",
                              refusal=f"{verb} a {section[:-1]} adds or removes nodes; apply cannot do that yet"))
    explained = (old.gateways.keys() ^ new.gateways.keys()) | (old.sites.keys() ^ new.sites.keys())
    old_nodes = {n.name: _unsegmented(n) for n in build_plan(old).nodes if n.group not in explained}
    new_nodes = {n.name: _unsegmented(n) for n in build_plan(new).nodes if n.group not in explained}
    for name in sorted(old_nodes.keys() ^ new_nodes.keys()):
        node = new_nodes.get(name) or old_nodes[name]
        verb = "adding" if name in new_nodes else "removing"
        out.append(Change(kind="new-nodes", path=_node_path(old, new, node.group), detail=f"{verb} node {name}",
                          refusal=f"{verb} node {name!r} ({node.role}) needs the runtime; apply cannot do that yet"))
    for name in sorted(old_nodes.keys() & new_nodes.keys()):
        if old_nodes[name] != new_nodes[name]:
            out.append(Change(kind="rewire", path=_node_path(old, new, new_nodes[name].group),
                              detail=f"re-addresses node {name}",
                              refusal=f"node {name!r} would get other interfaces, addresses or routes; "
                                      "apply cannot re-wire a running node"))
    return out


def _unsegmented(node: NodePlan) -> NodePlan:
    """Bridge names are numbered by sort order (another site shifts them); addresses and routes are what count.
    Addresses on lo (a NAT rule's translated inside address, a BGP peer address) are swapped live
    (lab.ops.apply_nat; a BGP change is refused by its frr.conf)."""
    return replace(node, ifaces=tuple(replace(i, segment="") for i in node.ifaces), loopbacks=())


def _node_path(old: Topology, new: Topology, group: str) -> str:
    return f"gateways.{group}" if group in old.gateways or group in new.gateways else f"sites.{group}"


def _gateway_changes(name: str, old: Gateway, new: Gateway) -> list[Change]:
    path = f"gateways.{name}"
    out = []
    if old.vpn_type != new.vpn_type:
        out.append(Change(kind="vpn-type", path=f"{path}.vpn_type", detail=f"{old.vpn_type} -> {new.vpn_type}",
                          refusal=f"Azure cannot change a gateway's VPN type ({old.vpn_type} -> {new.vpn_type}): "
                                  "the gateway must be deleted and re-created"))
    if old.sku != new.sku and sku_family(old.sku) != sku_family(new.sku):
        out.append(Change(kind="sku-family", path=f"{path}.sku", detail=f"{old.sku} -> {new.sku}",
                          refusal=f"Azure resizes a gateway only within its SKU family ({old.sku} -> {new.sku}): "
                                  "Basic cannot become VpnGw1-5 or back; delete and re-create the gateway"))
    elif old.sku != new.sku:
        caps = f"{facts.SKUS[old.sku].aggregate_mbps} -> {facts.SKUS[new.sku].aggregate_mbps} Mbps"
        out.append(Change(kind="resize", path=f"{path}.sku", detail=f"{old.sku} -> {new.sku} (aggregate cap {caps})"))
    if old.ha_timing != new.ha_timing:
        out.append(Change(kind="ha-timing", path=f"{path}.ha_timing", detail=f"{old.ha_timing} -> {new.ha_timing}",
                          refusal="the HA agents read ha_timing when they start (a lab setting, not Azure's); "
                                  "bring the lab up again to change it"))
    fields = _differing(old, new, skip=("vpn_type", "sku", "ha_timing"))
    if fields:
        out.append(Change(kind="update-gateway", path=path, detail=f"changes {', '.join(fields)}"))
    return out


def _connection_changes(name: str, old: Connection | None, new: Connection | None) -> list[Change]:
    path = f"connections.{name}"
    if old is None and new is not None:
        return [Change(kind="add-connection", path=path, detail=f"adds connection {name}")]
    if new is None:
        return [Change(kind="remove-connection", path=path, detail=f"removes connection {name}")]
    assert old is not None
    ends = [f for f in ENDPOINT_FIELDS if getattr(old, f, None) != getattr(new, f, None)]
    if ends:
        return [Change(kind="connection-endpoints", path=f"{path}.{ends[0]}", detail=f"changes {', '.join(ends)}",
                       refusal="Azure fixes a connection's gateway and peer when it is created; add a connection "
                               "under a new name and remove this one")]
    out = []
    if old.ike_version != new.ike_version:
        out.append(Change(kind="ike-version", path=f"{path}.ike_version",
                          detail=f"{old.ike_version} -> {new.ike_version}",
                          refusal="Azure sets a connection's IKE protocol when the connection is created; add a "
                                  "connection under a new name and remove this one"))
    if new.shared_key is not None and new.shared_key != old.shared_key:
        out.append(Change(kind="shared-key", path=f"{path}.shared_key", detail="new shared key (not shown)"))
    if old.ipsec_policy != new.ipsec_policy:
        what = "added" if old.ipsec_policy is None else "removed" if new.ipsec_policy is None else "changed"
        out.append(Change(kind="ipsec-policy", path=f"{path}.ipsec_policy", detail=f"custom IPsec/IKE policy {what}"))
    fields = _differing(old, new, skip=(*ENDPOINT_FIELDS, "ike_version", "shared_key", "ipsec_policy"))
    if fields:
        out.append(Change(kind="update-connection", path=path, detail=f"changes {', '.join(fields)}"))
    return out


def _refuse_rewired_sections(changes: list[Change]) -> list[Change]:
    """A gateway/site update that also re-wires its node is covered by that refusal: drop the duplicate."""
    rewired = {c.path for c in changes if c.kind in ("rewire", "new-nodes")}
    return [c for c in changes if not (c.kind in ("update-gateway", "update-site") and c.path in rewired)]


def conn_work(old: dict[str, SwanctlConfig], new: dict[str, SwanctlConfig]) -> dict[str, ConnWork]:
    """Per charon node: connections to remove, and connections to (re)load because their tree or key changed."""
    work = {}
    for node in sorted(old.keys() | new.keys()):
        before, after = old.get(node, SwanctlConfig()), new.get(node, SwanctlConfig())
        old_keys, new_keys = {k.name: k for k in before.secrets}, {k.name: k for k in after.secrets}
        changed_ids = {frozenset(k.ids) for n, k in new_keys.items() if old_keys.get(n) != k}
        removed = sorted(before.connections.keys() - after.connections.keys())
        load = sorted(c for c, tree in after.connections.items()
                      if before.connections.get(c) != tree or _conn_ids(tree) in changed_ids)
        keys = tuple(k for k in after.secrets if frozenset(k.ids) in {_conn_ids(after.connections[c]) for c in load})
        if removed or load:
            work[node] = ConnWork(removed=removed, load=load, config=SwanctlConfig(
                {c: after.connections[c] for c in load}, keys))
    return work


def _conn_ids(tree: Tree) -> frozenset[str]:
    local, remote = tree.get("local"), tree.get("remote")
    ids = [side.get("id") for side in (local, remote) if isinstance(side, dict)]
    return frozenset(str(i) for i in ids if i)


# ---- the executor --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """What a live apply needs, all computed before anything is touched."""

    keys: dict[str, str]
    files: dict[PurePosixPath, str]  # rendered as `up` writes them (BYO files, fast-DPD settings)
    swan: dict[str, SwanctlConfig]  # the configs the lab loads itself (no BYO site, no standby)
    work: dict[str, ConnWork]
    warm: dict[str, ConnWork]  # warm standbys: the same changes, loaded quiet, never waited for
    loaded: frozenset[str]  # nodes whose swanctl.conf the lab loads itself (swan and warm standbys)


def apply_file(path: Path, home: Path, runtime: Runtime, connect: core.Connect, progress: Callable[[str], None],
               timeout: float = 30.0, dry_run: bool = False) -> ApplyResult:
    """Diff; refuse (nothing touched), or apply live and record the new topology in the state directory."""
    new = core.load(path, home)
    old = core.load_running(new.topo.name, home)
    if not runtime.list_nodes(new.topo.name):
        raise TopologyError(f"lab {new.topo.name!r} is not running", hint=f"lab up {path}")
    changes = plan_changes(old.topo, new.topo)
    refuse(changes, new.topo.name, path)
    prep = prepare(old, new, path, old.dataplane)  # the data plane `lab up` recorded
    old_ifaces, new_ifaces = tunnel_units.ifaces_for(old, old.dataplane), tunnel_units.ifaces_for(new, old.dataplane)
    on_disk = _on_disk(old, prep.files)
    nft = {rel.parts[0] for rel, text in prep.files.items()
           if rel.name == "nftables.conf" and on_disk.get(rel) not in (None, text)}
    nat = nat_work(old_ifaces, new_ifaces, {n.name: n for n in old.plan.nodes}, {n.name: n for n in new.plan.nodes},
                   nft)
    live = handled_files(prep.files, nat, old_ifaces, new_ifaces)
    refuse(file_changes(on_disk, {r: t for r, t in prep.files.items() if r not in live}, prep.loaded)
           + lab_state_refusals(old), new.topo.name, path)
    kept = {n: sorted(c for c in cfg.connections if n not in prep.work or c not in prep.work[n].load)
            for n, cfg in prep.swan.items()}
    result = ApplyResult(lab=new.topo.name, changes=changes, dry_run=dry_run, kept=by_node(kept),
                         removed=by_node({n: w.removed for n, w in prep.work.items() if w.removed}),
                         loaded=by_node({n: w.load for n, w in prep.work.items() if w.load}))
    if dry_run:
        return result
    before = snapshot(list(prep.swan), new.dir.vici_socket, connect)
    _write_files(new, {r: prep.files[r] for r in live if on_disk.get(r) != prep.files[r]})
    run_nat_work(runtime, new.topo.name, nat, progress)
    running = set(tunnel_units.units(new))  # a cold standby's tunnel charons: their files only (loaded at takeover)
    warm = {u: w for u, w in prep.warm.items() if u in running}
    if prep.work or warm:
        live_apply(new, prep.work, warm, connect, progress, timeout)
    if old.dataplane == "libipsec":  # selector lines that wait for traffic: each node's acquire agent follows
        acquire.follow(new, runtime, prep.swan, running)
    if any(c.kind == "resize" for c in changes):
        progress("re-shaping resized gateways to their new aggregate cap")
        pipeline.shape_gateways(new, runtime)
    result.problems = kept_problems(before, snapshot(list(prep.swan), new.dir.vici_socket, connect), kept)
    _save_state(new, path.read_text(), prep)
    return result


def by_node(per_unit: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Connections per charon unit, reported per node (a route-based tunnel's own charon is part of its node,
    lab/tunnel_units.py): what the user sees is the node, whichever of its charons holds a connection."""
    out: dict[str, list[str]] = {}
    for unit, conns in per_unit.items():
        out.setdefault(tunnel_units.node_of(unit), []).extend(conns)
    return {node: sorted(conns) for node, conns in out.items()}


def prepare(old: core.Lab, new: core.Lab, path: Path, dataplane: Dataplane) -> Prepared:
    """Keys, files and per-node work; BYO sites are left to their owner, warm standbys follow their active."""
    stored = old.dir.read_keys()
    keys = resolve_keys(new.topo, stored)
    files, rendered = render_files(new.topo, new.plan, keys, dataplane)
    byo = byo_sites(new.topo, path.parent)
    files = override_files(files, byo, dataplane, fast_dpd_nodes(new.topo))
    _, old_rendered = render_files(old.topo, old.plan, resolve_keys(old.topo, stored), dataplane)  # same units
    swan, old_swan = without_byo(rendered, byo), without_byo(old_rendered, byo)
    standby = standby_configs(new.topo, swan)
    warm = conn_work(standby_configs(old.topo, old_swan), standby)
    return Prepared(keys, files, swan, conn_work(old_swan, swan), warm, frozenset(swan) | frozenset(standby))


def file_changes(on_disk: Mapping[PurePosixPath, str | None], files: Mapping[PurePosixPath, str],
                 loaded: Collection[str]) -> list[Change]:
    """Files other than a lab-loaded swanctl.conf (strongswan.conf, nftables, a BYO device's own config)
    only take effect when charon (or the node) starts: a change there cannot be applied live."""
    out = []
    for rel, text in sorted(files.items()):
        node = rel.parts[0]
        if (rel.name == "swanctl.conf" and unit_of_file(rel) in loaded) or rel not in on_disk or on_disk[rel] == text:
            continue
        out.append(Change(kind="charon-settings", path=f"nodes.{node}", detail=f"{rel.name} changes",
                          refusal=f"node {node!r}: {rel.name} would change, which takes effect only when charon "
                                  "starts (e.g. dpd: fast, or a device's own config); apply changes connections "
                                  "and keys live only"))
    return out


def unit_of_file(rel: PurePosixPath) -> str:
    """The charon unit a rendered file belongs to: `<node>/tunnels/<conn>/swanctl.conf` is a route-based
    tunnel's own charon's (lab/tunnel_units.py), any other file its node's."""
    return "/".join(rel.parts[:3]) if len(rel.parts) == 4 and rel.parts[1] == "tunnels" else rel.parts[0]


def _on_disk(lab: core.Lab, files: Mapping[PurePosixPath, str]) -> dict[PurePosixPath, str | None]:
    """The state directory's copy of each file (None: absent), as `up` (or the last apply) wrote it."""
    out: dict[PurePosixPath, str | None] = {}
    for rel in files:
        target = lab.dir.node(rel.parts[0]).joinpath(*rel.parts[1:])
        if target.parent.is_dir():
            out[rel] = target.read_text() if target.exists() else None
    return out


def lab_state_refusals(lab: core.Lab) -> list[Change]:
    """Apply assumes the lab as `up` left it: no active fault, every A/S gateway on its first instance."""
    out = [Change(kind="lab-state", path=f"faults.{f.target}", detail=f.describe(),
                  refusal=f"fault {f.describe()} is active; `lab restore` first")
           for f in read_faults(lab.dir.root)]
    for pair in ha.standby_pairs(lab):
        if ha.active_of(lab, pair) != pair.nodes[0]:
            out.append(Change(kind="lab-state", path=f"gateways.{pair.gateway}", detail="failed over",
                              refusal=f"gateway {pair.gateway!r} runs on its standby {pair.nodes[1]!r} after a "
                                      "failover; apply needs the roles `up` set"))
    return out


def refuse(changes: list[Change], lab: str, path: Path) -> None:
    """All refusals at once, before anything is touched (exit 2)."""
    refused = [c for c in changes if c.refusal]
    if refused:
        hint = RECREATE_HINT if any(c.kind not in LAB_LIMITS for c in refused) else NODES_HINT
        raise ChangeRefused(f"{path}: cannot apply to running lab {lab!r}; nothing was changed:\n"
                            + "\n".join(f"  {c.render()}" for c in refused),
                            hint=hint.format(lab=lab, file=path), findings=[c.render() for c in refused])


def _write_files(lab: core.Lab, files: Mapping[PurePosixPath, str]) -> None:
    """Rendered files a live change brings into effect, in the state directory (the node's /lab)."""
    for rel, text in files.items():
        write_private(lab.dir.node(rel.parts[0]).joinpath(*rel.parts[1:]), text)


def _save_state(lab: core.Lab, topology_text: str, prep: Prepared) -> None:
    """The new topology and keys, and the swanctl.conf of each node charon was changed on; unlike
    LabDir.write, logs, sockets and every other file stay as they are."""
    for node in {**prep.work, **prep.warm}:
        target = lab.dir.node(node) / "swanctl.conf"
        write_private(target, prep.files[PurePosixPath(node) / "swanctl.conf"])
    write_private(lab.dir.keys, yaml.safe_dump(prep.keys))
    write_private(lab.dir.topology, topology_text)
