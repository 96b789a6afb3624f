"""`pipeline.up` against the fakes of both seams: its stages run in order (render, create, wire, shape, start
daemons, load, wait, agents), P2S plugs into the load stage through the control seam, and one `up` parses the
topology, renders the configs and builds the P2S PKI once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from lab import core, pipeline
from lab.control.base import ChildSaStatus, IkeSaStatus
from lab.p2s import run as p2s_run
from lab.render.swanctl import SwanctlConfig
from tests.fakes import FakeControl, FakeRuntime

ROOT = Path(__file__).resolve().parents[2]
P2S = ROOT / "topologies" / "p2s.yml"


def all_up(node: str, swan: dict[str, SwanctlConfig]) -> FakeControl:
    """A charon on which every connection it is given is up at once."""
    conns = swan[node].connections if node in swan else {}
    sas = [IkeSaStatus(name=c, uniqueid=1, state="ESTABLISHED", version=2, local_host="", remote_host="",
                       children=[ChildSaStatus(name=ch, uniqueid=1, state="INSTALLED") for ch in tree["children"]])
           for c, tree in conns.items()]
    return FakeControl([sas])


def counted(monkeypatch: pytest.MonkeyPatch, module: object, name: str, counts: Counter[str]) -> None:
    real: Callable[..., object] = getattr(module, name)

    def wrapper(*args: object, **kwargs: object) -> object:
        counts[name] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


def test_up_runs_its_stages_in_order_and_parses_renders_and_builds_pki_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_LOCK_DIR", str(tmp_path / "locks"))
    home = tmp_path / "home"
    lab = core.load(P2S, home)  # the CLI's own parse, for the warnings; `up` must not parse again
    swan = core.swanctl_configs(lab)
    counts: Counter[str] = Counter()
    counted(monkeypatch, core, "load_file", counts)
    counted(monkeypatch, pipeline, "render_files", counts)
    counted(monkeypatch, p2s_run, "ensure_pki", counts)
    controls: dict[str, FakeControl] = {}

    def connect(sock: Path) -> FakeControl:
        node = sock.parent.parent.name
        controls[node] = all_up(node, swan)
        return controls[node]

    rt, said = FakeRuntime(), []
    pipeline.up(P2S, home, rt, connect, "lab-node:fake", "libipsec", said.append, lab=lab)

    assert counts == {"render_files": 1, "ensure_pki": 1}  # and no load_file: parsed once, by the caller
    kinds = [c[0] if c[0] != "exec" else c[2] for c in rt.calls]
    stages = [kinds.index(k) for k in ("create", "wire", "shape", "nft", "/usr/lib/ipsec/charon")]
    assert stages == sorted(stages)  # create, wire, shape, firewall, then the daemons
    assert kinds.count("/usr/lib/ipsec/charon") == len(pipeline.control_nodes(lab))
    gw, client = controls["azgw-0"], controls["azgw-client1"]
    assert gw.calls.index(("creds", 1)) < [c[0] for c in gw.calls].index("load")  # credentials before configs
    assert ("creds", 1) in client.calls and ("close",) in client.calls  # every session opened is closed
    assert said[-1] == "waiting for tunnels" and any(s.startswith("starting charon on ") for s in said)


def test_a_feature_plugs_into_the_named_hooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_LOCK_DIR", str(tmp_path / "locks"))
    home = tmp_path / "home"
    lab = core.load(P2S, home)
    swan = core.swanctl_configs(lab)
    seen: list[str] = []

    class Recorder(pipeline.Feature):
        def render(self, st: pipeline.Stage, out: pipeline.Rendered) -> pipeline.Rendered:
            seen.append("render")
            return out

        def before_load(self, st: pipeline.Stage, controls: object) -> None:
            seen.append("before_load")

        def expect(self, st: pipeline.Stage, wants: pipeline.Expected) -> pipeline.Expected:
            seen.append("expect")
            return wants

        def running(self, st: pipeline.Stage, swan: dict[str, SwanctlConfig]) -> None:
            seen.append("running")

    real = pipeline.features
    monkeypatch.setattr(pipeline, "features", lambda lab, source: [*real(lab, source), Recorder()])
    pipeline.up(P2S, home, FakeRuntime(), lambda s: all_up(s.parent.parent.name, swan), "img", "libipsec",
                lambda _m: None, lab=lab)
    assert seen == ["render", "before_load", "expect", "running"]
