"""The pure parts of bench/swarm.py (figures in docs/distributed.md come from it): the labs it generates are
valid topologies at its largest sizes, --place maps host indices onto the simulated hosts, `lab bench --json`
is read for the uncapped tunnel and the plain hop, and a container's memory is read from its cgroup."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from lab.plan import build_plan
from lab.topology.load import load_text

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_swarm", ROOT / "bench" / "swarm.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = _bench()


@pytest.mark.parametrize(("make", "count", "nodes"), [("sites_topology", 30, 63), ("p2s_topology", 250, 253),
                                                     ("p2s_topology", 500, 503)])
def test_the_generated_labs_are_valid_at_their_largest(make: str, count: int, nodes: int) -> None:
    topo, findings = load_text(yaml.safe_dump(getattr(bench, make)("sw2-x", count)))
    assert not [f for f in findings if f.severity == "error"]
    assert len(build_plan(topo).nodes) == nodes
    gw = next(iter(topo.gateways.values()))
    if make == "p2s_topology":
        assert gw.sku == ("VpnGw1" if count <= 250 else "VpnGw2")
    else:
        assert len(topo.connections) == count
    with pytest.raises(SystemExit):
        getattr(bench, make)("sw2-x", count + 1 if make == "sites_topology" else 501)


def test_place_maps_host_indices_onto_the_simulated_hosts() -> None:
    hosts = ["sw2-a-n1", "sw2-a-n2", "sw2-a-n3"]
    assert bench.placement("azgw-0=2,onprem=3", hosts) == "azgw-0=sw2-a-n2,onprem=sw2-a-n3"
    assert bench.placement("", hosts) == ""
    for bad in ("azgw-0=4", "azgw-0=0", "azgw-0", "azgw-0=n2"):
        with pytest.raises(SystemExit, match="--place"):
            bench.placement(bad, hosts)


def test_bench_figures_reads_cubic_uncapped_and_veth() -> None:
    result = {"measurements": [
        {"kind": "tunnel", "congestion": "cubic", "mbps": 600.0},
        {"kind": "uncapped", "congestion": "cubic", "mbps": 900.5},
        {"kind": "uncapped", "congestion": "inherited", "mbps": 1000.0},
        {"kind": "veth", "congestion": "cubic", "mbps": 20000.0}]}
    assert bench.bench_figures(result) == {"uncapped": 900.5, "veth": 20000.0}


def test_cgroup_memory_is_usage_minus_inactive_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "memory" / "sw2-a-n2" / "abc"
    d.mkdir(parents=True)
    (d / "memory.usage_in_bytes").write_text(str(5 * 2**20))
    (d / "memory.stat").write_text(f"cache 9\ntotal_inactive_file {2**20}\n")
    proc = tmp_path / "proc-cgroup"
    proc.write_text("4:memory:/sw2-a-n2/abc\n0::/sw2-a-n2/abc\n")
    real = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda p, *a, **k: real(proc if str(p) == "/proc/7/cgroup" else p))
    assert bench.cgroup_memory_mib(7, root=tmp_path) == 4.0


def test_placement_summary_spells_out_a_small_lab_and_counts_a_large_one() -> None:
    small = [{"name": "azgw-0", "role": "gateway", "host": "n2"}, {"name": "vm1", "role": "host", "host": ""}]
    assert bench.placement_summary(small) == {"azgw-0": "n2", "vm1": "this engine"}
    large = small[:1] + [{"name": f"c{i}", "role": "p2s-client", "host": f"n{i % 3 + 1}"} for i in range(9)]
    assert bench.placement_summary(large) == {"azgw-0": "n2", "nodes per host": {"n1": 3, "n2": 4, "n3": 3}}
