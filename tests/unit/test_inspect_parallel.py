"""`lab inspect` reads its nodes a few at a time (tunnel_units.STATUS_WORKERS) and still lists them, their
tunnels and problems in the plan's order, whichever node answers first."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from lab import core, pipeline, tunnel_units
from lab.plan import build_plan
from lab.state import LabDir
from tests.fakes import FakeControl, FakeRuntime, running
from tests.topology.builders import base, model


class SlowRuntime(FakeRuntime):
    """Each node answers later the earlier it comes in the plan; counts the reads in flight at once."""

    def __init__(self, order: list[str], **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.order, self.lock, self.now, self.most = order, threading.Lock(), 0, 0

    def live_links(self, lab: str, node: str) -> dict[str, list[str]]:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.02 * (len(self.order) - self.order.index(node)))
        with self.lock:
            self.now -= 1
        return super().live_links(lab, node)


def test_nodes_are_read_at_once_and_listed_in_plan_order(tmp_path: Path) -> None:
    data = base()
    data["sites"]["onprem"]["hosts"] = {f"pc{i}": f"10.2.0.{10 + i}" for i in range(6)}
    topo = model(data)
    lab = core.Lab(topo, build_plan(topo), LabDir.of(tmp_path, topo.name))
    names = [n.name for n in lab.plan.nodes]
    rt = SlowRuntime(names, nodes=running(topo.name, lab.plan.nodes))
    st = pipeline.status(lab, rt, lambda sock: FakeControl(snapshots=[[]]), "libipsec")
    assert [n.name for n in st.nodes] == names and len(names) > tunnel_units.STATUS_WORKERS
    assert 1 < rt.most <= tunnel_units.STATUS_WORKERS
