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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lab.device.parse import DeviceConn, Format, detect_format, parse_device
from lab.errors import ControlError, DeviceConfigError, TopologyError
from lab.render.strongswan_conf import Dataplane, render_strongswan_conf
from lab.render.swanctl import SwanctlConfig
from lab.runtime.base import Runtime
from lab.topology.load import read_file
from lab.topology.model import Topology

SWANCTL_LOAD = ["swanctl", "--load-all", "--file", "/lab/swanctl.conf"]
STARTER = ["ipsec", "start", "--conf", "/lab/ipsec.conf"]
CHARON_ENV = {"STRONGSWAN_CONF": "/lab/strongswan.conf"}
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
        path = base / site.device.config
        if not path.is_file():
            raise TopologyError(f"sites.{name}.device.config: {path} is not a file",
                                hint="the path is relative to the topology file")
        text = read_file(path, "a strongSwan config")
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


def start_legacy(runtime: Runtime, lab: str, node: str, sources: Mapping[str, str] | None = None) -> str:
    """strongswan-starter parses ipsec.conf and starts charon itself (no lab-started charon on this node).
    Returns what starter printed (its ipsec.conf parse errors are there, not in charon's log)."""
    res = runtime.exec(lab, node, STARTER, env=CHARON_ENV, timeout=20)
    raise_parse_errors(res.output, node, sources or {})
    if not res.ok:
        raise ControlError(f"node {node!r}: `ipsec start` failed: {res.output.strip()[-400:]}",
                           hint=f"check /lab/ipsec.conf; lab logs {node}")
    return res.output


def load_byo(runtime: Runtime, lab: str, cfg: ByoConfig) -> None:
    """Load a BYO config into a running charon: swanctl --load-all, or starter's reload + rereadsecrets."""
    if cfg.format == "swanctl":
        res = runtime.exec(lab, cfg.node, SWANCTL_LOAD, timeout=20)
        raise_parse_errors(res.output, cfg.node, cfg.sources)  # swanctl exits 0 after a syntax error
        if not res.ok:
            raise ControlError(f"node {cfg.node!r}: swanctl --load-all refused /lab/swanctl.conf: "
                               f"{_last_lines(res.output)}", hint="fix the file in the node's state directory")
        return
    for argv in (["ipsec", "rereadsecrets"], ["ipsec", "reload"]):
        runtime.exec(lab, cfg.node, argv, env=CHARON_ENV, timeout=20)


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
