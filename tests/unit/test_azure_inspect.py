"""`lab inspect` explains a tunnel that is not up, from the node's charon log (pipeline.status)."""

from __future__ import annotations

from pathlib import Path

from lab import core, pipeline
from lab.control.base import ChildSaStatus, IkeSaStatus
from lab.plan import build_plan
from lab.state import LabDir
from tests.fakes import FakeControl, FakeRuntime, running
from tests.topology.builders import base, model


def up_sa(name: str) -> IkeSaStatus:
    return IkeSaStatus(name=name, uniqueid=1, state="ESTABLISHED", version=2, local_host="a", remote_host="b",
                       children=[ChildSaStatus(name=name, uniqueid=1, state="INSTALLED", encr_alg="AES_GCM_16")])


def make_lab(tmp_path: Path) -> core.Lab:
    topo = model(base())
    d = LabDir.of(tmp_path, topo.name)
    for unit in ("azgw-0", "azgw-0/tunnels/c1", "onprem/tunnels/c1"):  # onprem: only its tunnel's charon
        d.node(unit).mkdir(parents=True)
    return core.Lab(topo, build_plan(topo), d)


def test_inspect_names_the_connection_and_the_cause_from_the_log(tmp_path: Path) -> None:
    lab = make_lab(tmp_path)
    lab.dir.charon_log("onprem/tunnels/c1").write_text("12[IKE] received proposals unacceptable\n")
    sas: dict[str, list[IkeSaStatus]] = {"azgw-0": [], "azgw-0/tunnels/c1": [], "onprem/tunnels/c1": []}
    st = pipeline.status(lab, FakeRuntime(nodes=running(lab.topo.name, ["azgw-0", "onprem"])),
                         lambda sock: FakeControl(snapshots=[sas[unit_of(lab, sock)]]), "libipsec")
    onprem = [p for p in st.problems if p.startswith("node 'onprem'")]
    assert len(onprem) == 1
    assert "connection 'c1' has no IKE_SA" in onprem[0] and ": no proposal chosen" in onprem[0]
    (gw,) = [p for p in st.problems if p.startswith("node 'azgw-0'")]
    assert "lab logs azgw-0" in gw


def test_inspect_is_quiet_when_every_expected_tunnel_is_up(tmp_path: Path) -> None:
    lab = make_lab(tmp_path)
    lab.dir.charon_log("azgw-0/tunnels/c1").write_text("old: NO_PROPOSAL_CHOSEN\n")
    st = pipeline.status(lab, FakeRuntime(nodes=running(lab.topo.name, ["azgw-0", "onprem"])),
                         lambda sock: FakeControl(snapshots=[[up_sa("c1")]]), "libipsec")
    assert st.problems == [] and len(st.tunnels) == 3  # azgw-0's main charon answers too (the fake's c1)
    assert {t.interface for t in st.tunnels} == {"", "vti-c1"}
    assert [(i.node, i.interface, i.state) for i in st.interfaces] == [("azgw-0", "vti-c1", "missing"),
                                                                     ("onprem", "vti-c1", "missing")]


def unit_of(lab: pipeline.Lab, sock: Path) -> str:
    """The charon unit a vici socket belongs to: nodes/<unit>/run/charon.vici."""
    return str(sock.parent.parent.relative_to(lab.dir.root / "nodes"))
