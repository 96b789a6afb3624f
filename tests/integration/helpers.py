"""Helpers for integration tests: run the real CLI, name labs per run, snapshot the host's network, find leftovers.

Lab names: Docker container and network-namespace names are machine-wide, so two test runs on one machine (two
engineers, CI beside a developer) must never use one lab name. Every lab a test brings up is named by
`lab_name(base)` (or `renamed(file, ...)`, which copies a topology file under such a name): the base plus this
run's id. `run_lab` refuses to bring up a lab whose name lacks the id (tests/unit/test_integration_names.py
also checks the sources statically).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from lab import core, tunnel_units
from lab.control.base import IkeSaStatus
from lab.control.vici import ViciControl
from lab.state import LabDir
from lab.timing import time_scale

ROOT = Path(__file__).resolve().parents[2]
# This pytest process's id (LAB_TEST_RUN_ID overrides it, to reproduce a run): the tail of every lab name.
RUN_ID = os.environ.get("LAB_TEST_RUN_ID") or uuid.uuid4().hex[:4]
LAB_NAME = re.compile(r"^[a-z][a-z0-9-]{0,15}$")  # lab/topology/model.py: LabName
BRING_UP = ("up", "test-device")  # commands that create a lab from a topology file
# The emulated kernel-test guest (`make test-kernel`) runs everything 10-20x slower: it scales the time the
# tests give each command, and the HA outage bounds (its HA agents wait that much longer before acting).
TIME_SCALE = time_scale()  # LAB_TIME_SCALE (lab/timing.py)


def lab_name(base: str) -> str:
    """`base` made unique to this test run (a base of at most 11 characters: lab names have 16)."""
    name = f"{base}-{RUN_ID}"
    if not LAB_NAME.match(name):
        raise AssertionError(f"lab name {name!r} from base {base!r} is not a valid lab name (at most 16 characters)")
    return name


def of_this_run(name: str) -> bool:
    return name.endswith(f"-{RUN_ID}")


def own_name(text: str) -> re.Match[str]:
    found = re.search(r"^name:[ \t]*(\S+)[ \t]*$", text, re.MULTILINE)
    if found is None:
        raise AssertionError("the topology has no top-level `name:` line to rename")
    return found


def with_name(text: str, name: str) -> str:
    """Topology text with its top-level `name:` line set to `name` (comments and every other line kept)."""
    own = own_name(text)
    return text[:own.start()] + f"name: {name}" + text[own.end():]


def renamed(src: Path, dst_dir: Path, base: str | None = None) -> tuple[Path, str]:
    """A copy of topology file `src` in dst_dir under lab_name(base or its own name): (the copy, the name)."""
    text = src.read_text()
    name = lab_name(base or own_name(text).group(1))
    path = dst_dir / f"{name}.yml"
    path.write_text(with_name(text, name))
    return path, name


def topology_name(path: str) -> str | None:
    """The `name` of a topology file, None when it is not one (a hostile-input test's binary, a missing file)."""
    try:
        data: Any = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def assert_named_for_this_run(args: tuple[str, ...]) -> None:
    """Refuse a command that would bring up a lab under a name another test run could use too. Invalid names
    pass: `lab up` refuses them before anything exists."""
    names: list[str | None] = []
    if args and args[0] in BRING_UP:
        names = [topology_name(next((a for a in args[1:] if not a.startswith("-")), ""))]
    elif args[:2] == ("scenario", "start"):
        names = [args[args.index("--lab") + 1] if "--lab" in args else "(the scenario's own name)"]
    for name in names:
        if name is not None and (LAB_NAME.match(name) or name.startswith("(")) and not of_this_run(name):
            raise AssertionError(f"`lab {' '.join(args[:2])}` would bring up lab {name!r}: a fixed name collides "
                                 f"with other test runs on this machine; name it helpers.lab_name(...) or "
                                 f"helpers.renamed(...)")


def lab_argv(*args: str, home: Path, env: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """argv and environment of the real `lab` CLI (for a test that runs it with Popen), checked like run_lab;
    `env`: extra variables (a runtime's, say)."""
    assert_named_for_this_run(args)
    return [sys.executable, "-m", "lab", *args], {**os.environ, **(env or {}), "LAB_HOME": str(home)}


def run_lab(*args: str, home: Path, timeout: float = 120, check: bool = False,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `lab` CLI in a subprocess, as a user would (`env`: extra variables, e.g. a runtime)."""
    argv, full_env = lab_argv(*args, home=home, env=env)
    return subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=timeout * TIME_SCALE,
                          check=check, cwd=ROOT)


def host_network() -> dict[str, object]:
    """The host namespace's interfaces, addresses, routes, rules and nftables ruleset."""
    def cmd(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True).stdout

    links = json.loads(cmd("ip", "-j", "link") or "[]")
    return {
        "links": sorted(link["ifname"] for link in links),
        "addr": cmd("ip", "-4", "-o", "addr"),
        "route": cmd("ip", "-4", "route", "show", "table", "all"),
        "rule": cmd("ip", "rule"),
        "nft": cmd("nft", "list", "ruleset"),
    }


def lab_leftovers(name: str) -> list[str]:
    """Containers and namespaces of a lab that still exist."""
    containers = subprocess.run(["docker", "ps", "-a", "--filter", f"label=lab.topology={name}",
                                 "--format", "{{.Names}}"], capture_output=True, text=True).stdout.split()
    namespaces = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
                  .stdout.split() if n == f"lab-{name}"]
    return containers + namespaces


# ---- a node's charons, read as the lab reads them -------------------------------------------------------
# A node may run several charons: its main one and one per route-based tunnel (docs/route-based.md); a
# rendered site whose every tunnel has its own runs no main charon. Tests never open `nodes/<node>/run/
# charon.vici` or read `nodes/<node>/charon.log` themselves: they go through the lab's own functions.



@contextmanager
def lab_up(path: Path, name: str, home: Path, *up_args: str, timeout: float = 300,
           env: dict[str, str] | None = None) -> Iterator[str]:
    """A module's (or a test's) lab: `lab up path` (asserted), yields its name; afterwards `lab down` succeeds
    and leaves no container, namespace or host-network change behind, even when the tests failed. `env`: extra
    variables for `lab up` only (a runtime's, say: `lab down` must find the runtime in the lab's state)."""
    before = host_network()
    res = run_lab("up", str(path), *up_args, home=home, timeout=timeout, env=env)
    try:
        assert res.returncode == 0, res.stdout + res.stderr
        yield name
    finally:
        down = run_lab("down", name, home=home, timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not lab_leftovers(name)
        assert host_network() == before


def node_sas(home: Path, lab: str, node: str) -> list[IkeSaStatus]:
    """The IKE_SAs of every charon of `node` (lab.tunnel_units.node_sas, what `lab inspect` reads)."""
    return [sa for sas in tunnel_units.node_sas(core.load_running(lab, home), node, ViciControl).values()
            for sa in sas]


def conn_control(home: Path, lab: str, node: str, conn: str) -> ViciControl:
    """A vici session to the charon of `node` that holds connection `conn` (a route-based tunnel's own);
    the caller closes it."""
    loaded = core.load_running(lab, home)
    return ViciControl(loaded.dir.vici_socket(tunnel_units.conn_unit(loaded, node, conn)))


def charon_log(home: Path, lab: str, node: str) -> str:
    """Every charon log of `node` (LabDir.charon_logs: the main charon's, then each tunnel's), concatenated."""
    return "\n".join(p.read_text(errors="replace") for p in LabDir.of(home, lab).charon_logs(node))


def swanctl_text(home: Path, lab: str, node: str) -> str:
    """Every swanctl.conf of `node`'s charons (LabDir.charon_dirs: a route-based tunnel's connection and its
    key are in its own charon's), concatenated."""
    paths = [d / "swanctl.conf" for d in LabDir.of(home, lab).charon_dirs(node)]
    return "\n".join(p.read_text() for p in paths if p.exists())


def first_event(stream: Any) -> str:
    """The first server-sent event with data from `lab ui`'s /api/events (the whole state). Keepalive comments
    (`: keepalive`) come first while the first collection runs (seen in the QEMU guest, where it takes longer
    than the keepalive interval)."""
    buf, deadline = "", time.monotonic() + 60 * TIME_SCALE
    while time.monotonic() < deadline:
        events = buf.split("\n\n")[:-1]  # the complete ones
        data = [e for e in events if any(ln.startswith("data:") for ln in e.splitlines())]
        if data:
            return data[0]
        chunk = stream.read1(1 << 22).decode()
        if not chunk:
            break
        buf += chunk
    return buf
