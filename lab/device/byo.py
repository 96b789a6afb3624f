"""Sites whose device is the user's own strongSwan config: copy it into the node's state directory (/lab in
the container) and load it there instead of the rendered one.

swanctl configs: charon is started by the lab as on every node, then `swanctl --load-all --file
/lab/swanctl.conf` (the in-container swanctl reaches charon through /etc/strongswan.conf). Legacy
ipsec.conf + ipsec.secrets: the starter (`ipsec start --conf /lab/ipsec.conf`) starts charon itself with
the node's strongswan.conf, which then also loads `stroke` and reads /lab/ipsec.secrets.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lab import daemons
from lab.control.base import VpnControl
from lab.core import Lab
from lab.daemons import CHARON, CHARON_BY_STARTER, Daemon
from lab.device.parse import DeviceChild, DeviceConn, Format, detect_format, parse_device
from lab.errors import ControlError, DeviceConfigError, TopologyError
from lab.ha.standby import fast_dpd_nodes
from lab.hooks import Feature, Rendered, Stage
from lab.plan_types import NodePlan
from lab.render.sa_settings import SaSettings, azure_reference, declared_settings
from lab.render.strongswan_conf import Dataplane, render_strongswan_conf
from lab.render.strongswan_defaults import STRONGSWAN_DEFAULT_ESP, STRONGSWAN_DEFAULT_IKE
from lab.render.swanctl import SwanctlConfig
from lab.render.tunnels import End, tunnels
from lab.runtime.base import Runtime
from lab.topology.load import read_file, read_site_file
from lab.topology.model import Topology

LEGACY_READY_S = 10.0


@dataclass(frozen=True)
class ByoConfig:
    """A site's own config, as copied into its node directory."""

    node: str
    format: Format
    files: dict[str, str]  # file name in /lab -> text
    sources: dict[str, str] = field(default_factory=dict, compare=False)  # file name in /lab -> the user's path

    @property
    def main(self) -> str:
        return self.files["swanctl.conf" if self.format == "swanctl" else "ipsec.conf"]

    def conns(self) -> list[DeviceConn]:
        return parse_device(self.main, self.files.get("ipsec.secrets", ""))


def byo_sites(topo: Topology, base: Path) -> dict[str, ByoConfig]:
    """Every site with `device.config`, its file read relative to the topology file's directory."""
    out = {}
    for name, site in sorted(topo.sites.items()):
        if site.device.config is None:
            continue
        path, text = read_site_file(base, f"sites.{name}.device.config", site.device.config, "a strongSwan config")
        fmt = detect_format(text)
        files = {"swanctl.conf" if fmt == "swanctl" else "ipsec.conf": text}
        if fmt == "ipsec.conf":
            secrets = path.with_name("ipsec.secrets")
            if not secrets.is_file():
                raise TopologyError(f"sites.{name}.device.config: legacy {path.name} needs {secrets} beside it",
                                    hint="write the PSK there: '<site ip> <gateway ip> : PSK \"...\"'")
            files["ipsec.secrets"] = read_file(secrets, "an ipsec.secrets")
        out[name] = ByoConfig(name, fmt, files, {n: str(path.with_name(n) if n == "ipsec.secrets" else path)
                                                 for n in files})
    return out


def byo_from_state(topo: Topology, node_dir: Path) -> dict[str, ByoConfig]:
    """The BYO configs of a running lab, read back from its node directories (after `lab reload` edits too)."""
    out = {}
    for name, site in sorted(topo.sites.items()):
        if site.device.config is None:
            continue
        d = node_dir / name
        fmt: Format = "ipsec.conf" if (d / "ipsec.conf").exists() else "swanctl"
        names = ("ipsec.conf", "ipsec.secrets") if fmt == "ipsec.conf" else ("swanctl.conf",)
        present = [n for n in names if (d / n).exists()]
        out[name] = ByoConfig(name, fmt, {n: (d / n).read_text() for n in present}, {n: str(d / n) for n in present})
    return out


def device_conns(conns: Sequence[DeviceConn], azure_ip: str) -> list[DeviceConn]:
    """A device config's connections towards one Azure public IP: those naming it in remote_addrs or accepting
    any peer, in the config's order."""
    return [c for c in conns if not c.remote_addrs or azure_ip in c.remote_addrs]


def device_conn(conns: Sequence[DeviceConn], azure_ip: str) -> DeviceConn | None:
    """The one connection serving the tunnel to `azure_ip`: the first naming it, else the config's only one
    (whatever address it names: a wrong address is what its user must see beside Azure's settings)."""
    named = [c for c in conns if azure_ip in c.remote_addrs]
    return named[0] if named else (conns[0] if len(conns) == 1 else None)


def declared(reference: End, dc: DeviceConn) -> SaSettings:
    """What one connection of a device config declares (its first child's ESP side; with no child, a child with
    strongSwan's defaults), beside Azure's."""
    kid = dc.children[0] if dc.children else DeviceChild("", (), (), life_kb=0)
    return declared_settings(reference, dc.ike or STRONGSWAN_DEFAULT_IKE, kid.esp or STRONGSWAN_DEFAULT_ESP,
                             dc.ike_life_s, kid.life_s, dc.dpd_delay_s, kid.life_kb)


Keyed = dict[tuple[str, str], SaSettings]


def byo_views(topo: Topology, byo: Mapping[str, ByoConfig]) -> tuple[Keyed, Keyed]:
    """What each device config declares, with Azure's values beside each difference, made in one pass (each
    config parsed once, each connection's settings made once): (site node, the user's connection name) for
    every connection towards one of the gateway's public IPs (`lab inspect`), and (site node, the lab's
    connection name) for the device connection serving that tunnel (`lab ui` shows a tunnel's ends by the lab's
    names, also before charon reports an SA)."""
    parsed = {node: cfg.conns() for node, cfg in byo.items()}
    by_device: Keyed = {}
    by_lab: Keyed = {}
    for t in tunnels(topo):
        conns = parsed.get(t.peer.node)
        if conns is None:
            continue
        shown = {dc.name: dc for dc in device_conns(conns, t.azure.local_ip)}
        serving = device_conn(conns, t.azure.local_ip)
        reference = azure_reference(topo, t)
        made = {name: declared(reference, dc) for name, dc in ({**shown, serving.name: serving} if serving
                                                               else shown).items()}
        by_device.update({(t.peer.node, name): made[name] for name in shown})
        if serving is not None:
            by_lab[(t.peer.node, t.peer.conn)] = made[serving.name]
    return by_device, by_lab


def byo_settings(topo: Topology, byo: Mapping[str, ByoConfig]) -> Keyed:
    """(site node, the user's connection name) -> what its own config declares, beside Azure's (`lab inspect`)."""
    return byo_views(topo, byo)[0]


def override_files(files: dict[PurePosixPath, str], byo: dict[str, ByoConfig], dataplane: Dataplane,
                   fast_dpd: set[str]) -> dict[PurePosixPath, str]:
    """Replace the rendered swanctl.conf of BYO sites by the user's files (legacy: stroke in strongswan.conf)."""
    out = dict(files)
    for node, cfg in byo.items():
        out.pop(PurePosixPath(node) / "swanctl.conf", None)
        for name, text in cfg.files.items():
            out[PurePosixPath(node) / name] = text
        if cfg.format == "ipsec.conf":
            out[PurePosixPath(node) / "strongswan.conf"] = render_strongswan_conf(
                dataplane, node in fast_dpd, legacy=True)
    return dict(sorted(out.items()))


def without_byo(swan: dict[str, SwanctlConfig], byo: dict[str, ByoConfig]) -> dict[str, SwanctlConfig]:
    """The rendered configs the lab still loads itself (and waits for): all but the BYO sites'."""
    return {n: c for n, c in swan.items() if n not in byo}


def charon_of(cfg: ByoConfig | None) -> Daemon:
    """How charon runs on a node: started by the lab, or by strongswan-starter for a legacy ipsec.conf site."""
    return CHARON_BY_STARTER if cfg is not None and cfg.format == "ipsec.conf" else CHARON


def start_legacy(runtime: Runtime, lab: str, node: str, sources: Mapping[str, str] | None = None) -> str:
    """strongswan-starter parses ipsec.conf and starts charon itself (no lab-started charon on this node).
    Returns what starter printed (its ipsec.conf parse errors are there, not in charon's log)."""
    res = runtime.exec(lab, node, list(CHARON_BY_STARTER.start), env=dict(CHARON_BY_STARTER.env),
                       timeout=CHARON_BY_STARTER.start_timeout)
    raise_parse_errors(res.output, node, sources or {})
    if not res.ok:
        raise ControlError(f"node {node!r}: `ipsec start` failed: {res.output.strip()[-400:]}",
                           hint=f"check /lab/ipsec.conf; lab logs {node}")
    return res.output


def start_byo(runtime: Runtime, lab: str, cfg: ByoConfig) -> None:
    """Start charon on a BYO site: as on every node for swanctl, by starter for ipsec.conf (then wait for it)."""
    if cfg.format == "swanctl":
        daemons.start(runtime, lab, cfg.node, CHARON)
        return
    said = start_legacy(runtime, lab, cfg.node, cfg.sources)
    wait_legacy_loaded(runtime, lab, cfg.node, sum(len(c.children) for c in cfg.conns()), said)


def load_byo(runtime: Runtime, lab: str, cfg: ByoConfig) -> None:
    """Load a BYO config into a running charon: swanctl --load-all, or starter's reload + rereadsecrets."""
    res = daemons.reload(runtime, lab, cfg.node, charon_of(cfg))
    if cfg.format != "swanctl":
        return
    raise_parse_errors(res.output, cfg.node, cfg.sources)  # swanctl exits 0 after a syntax error
    if not res.ok:
        raise ControlError(f"node {cfg.node!r}: swanctl --load-all refused /lab/swanctl.conf: "
                           f"{_last_lines(res.output)}", hint="fix the file in the node's state directory")


class ByoFeature(Feature):
    """Sites with their own device config: their files replace the rendered ones, charon starts the way the
    config needs, and the config is loaded before the lab's (the gateways initiate as soon as they load)."""

    def __init__(self, configs: dict[str, ByoConfig]) -> None:
        self.configs = configs

    @classmethod
    def of(cls, lab: Lab, source: Path | None) -> ByoFeature:
        """At `up`, from beside the topology file (`source`); on a running lab, from its state directory."""
        if source is None:
            return cls(byo_from_state(lab.topo, lab.dir.root / "nodes"))
        return cls(byo_sites(lab.topo, source))

    def render(self, st: Stage, out: Rendered) -> Rendered:
        files = override_files(out.files, self.configs, out.dataplane, fast_dpd_nodes(st.lab.topo))
        return Rendered(out.keys, files, without_byo(out.swan, self.configs), out.dataplane)

    def start_daemon(self, st: Stage, node: NodePlan, daemon: Daemon) -> bool:
        cfg = self.configs.get(node.name)
        if cfg is None or daemon.name != CHARON.name:
            return False
        start_byo(st.runtime, st.lab.topo.name, cfg)
        return True

    def before_load(self, st: Stage, controls: Mapping[str, VpnControl]) -> None:
        for name, cfg in self.configs.items():
            if name in controls:
                load_byo(st.runtime, st.lab.topo.name, cfg)


def wait_legacy_loaded(runtime: Runtime, lab: str, node: str, expected: int, starter_output: str = "") -> None:
    """Starter hands its conns to charon asynchronously: wait until `ipsec status` lists them."""
    deadline = time.monotonic() + LEGACY_READY_S
    while time.monotonic() < deadline:
        res = runtime.exec(lab, node, ["ipsec", "statusall"], timeout=10)
        if res.ok and res.output.count("child:") >= expected:
            return
        time.sleep(0.2)
    said = [ln for ln in starter_output.splitlines() if ln.strip() and not ln.startswith(("!!", "Starting"))]
    raise ControlError(f"node {node!r}: starter did not load the connections of /lab/ipsec.conf within "
                       f"{LEGACY_READY_S:g} s" + (f"; starter said: {' | '.join(said[-4:])}" if said else ""),
                       hint=f"lab exec {node} -- ipsec statusall; lab logs {node}")


# strongSwan's parsers (swanctl.conf settings, starter's ipsec.conf) say `<file>:<line>: <what>`
_PARSE_ERROR = re.compile(r"^(/lab/[\w.-]+):(\d+): (.+)$", re.MULTILINE)


def parse_errors(output: str, node: str, sources: Mapping[str, str]) -> list[str]:
    """strongSwan's parse errors, each naming the user's own file and line."""
    out = [f"{sources.get(PurePosixPath(path).name, f'{node}:{path}')}: line {line}: {what.strip()}"
           for path, line, what in _PARSE_ERROR.findall(output)]
    if not out and "invalid config file" in output:
        out.append(f"{node}: strongSwan refused the config: {_last_lines(output)}")
    return out


def raise_parse_errors(output: str, node: str, sources: Mapping[str, str]) -> None:
    errors = parse_errors(output, node, sources)
    if errors:
        raise DeviceConfigError("\n".join(errors), hint="fix that line (strongSwan's own parser read it), "
                                "then run the command again")


def _last_lines(output: str, n: int = 4) -> str:
    lines = [ln for ln in output.splitlines() if ln.strip() and "opening directory" not in ln]
    return " | ".join(lines[-n:])
