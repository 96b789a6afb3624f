"""`lab inspect` shows where each node runs on a runtime that places nodes on hosts (swarm): the host read from
the node's `lab.host` label, carried through pipeline.status into the table (a `host` column) and --json; a lab
on one engine keeps its table as it was (no column)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

from rich.console import Console

from lab import core, pipeline
from lab.plan import build_plan
from lab.report.status_view import node_columns, node_rows, show_status
from lab.runtime.base import LABEL_GROUP, LABEL_HOST, LABEL_LAB, LABEL_NODE, LABEL_ROLE
from lab.runtime.docker import _node_info
from lab.state import LabDir
from lab.status import LabStatus, NodeStatus
from tests.fakes import FakeControl, FakeRuntime, running
from tests.topology.builders import base, model


def _lab(tmp_path: Path) -> core.Lab:
    topo = model(base())
    return core.Lab(topo, build_plan(topo), LabDir.of(tmp_path, topo.name))


def _status(tmp_path: Path, hosts: dict[str, str]) -> LabStatus:
    """pipeline.status on a fake runtime whose nodes run on `hosts` (node -> host; a node absent: not found)."""
    lab = _lab(tmp_path)
    infos = [dataclasses.replace(i, host=hosts[i.node]) for i in running(lab.topo.name, hosts)]
    return pipeline.status(lab, FakeRuntime(nodes=infos), lambda sock: FakeControl(snapshots=[[]]), "libipsec")


def _table(st: LabStatus) -> str:
    console = Console(record=True, width=200)
    show_status(st, console)
    return console.export_text()


def _header(lines: list[str]) -> str:
    """The nodes table's header row."""
    return next(ln for ln in lines if " node " in ln and " state " in ln)


def test_the_docker_runtime_reads_the_host_label() -> None:
    labels = {LABEL_LAB: "x", LABEL_NODE: "azgw-0", LABEL_ROLE: "gateway", LABEL_GROUP: "azgw", LABEL_HOST: "h2"}
    box = SimpleNamespace(labels=labels, name="lab-x-azgw-0", status="running", attrs={"State": {"Pid": 7}})
    assert _node_info(box).host == "h2"  # type: ignore[arg-type]
    assert _node_info(SimpleNamespace(**{**vars(box), "labels": {LABEL_LAB: "x"}})).host == ""  # type: ignore[arg-type]


def test_inspect_shows_each_nodes_host_in_the_table_and_json(tmp_path: Path) -> None:
    st = _status(tmp_path, {"azgw-0": "h2", "onprem": "h3"})
    by_name = {n.name: n for n in st.nodes}
    assert by_name["azgw-0"].host == "h2" and by_name["onprem"].host == "h3"
    missing = [n for n in st.nodes if n.state == "missing"]
    assert missing and all(n.host == "" for n in missing)  # not found on any reachable host
    assert {n["name"]: n["host"] for n in json.loads(st.model_dump_json())["nodes"]}["azgw-0"] == "h2"
    assert node_columns(st) == ("node", "role", "group", "container", "state", "host", "addresses")
    rows = {r[0]: r for r in node_rows(st)}
    assert rows["azgw-0"][5] == "h2" and rows[missing[0].name][5] == "-"
    lines = _table(st).splitlines()
    assert " host " in _header(lines)
    assert any("azgw-0" in ln and " h2 " in ln for ln in lines) and any("onprem" in ln and " h3 " in ln for ln in lines)


def test_a_lab_on_one_engine_has_no_host_column(tmp_path: Path) -> None:
    st = _status(tmp_path, {"azgw-0": "", "onprem": ""})
    assert node_columns(st) == ("node", "role", "group", "container", "state", "addresses")
    assert all(len(r) == 6 for r in node_rows(st))
    assert " host " not in _header(_table(st).splitlines())


def test_a_node_status_without_host_still_loads() -> None:
    """inspect JSON written before the field existed (e.g. read back by the UI) still parses."""
    n = NodeStatus.model_validate({"name": "a", "role": "r", "group": "g", "container": "c", "state": "running",
                                   "addresses": []})
    assert n.host == ""
