"""The SKU cap as tc parameters, and which links of a lab get it: pure, no kernel needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import core, pipeline
from lab.azure import facts
from lab.plan import build_plan
from lab.runtime.shaping import FRAME_BYTES, MAX_QUANTUM_BYTES, MIN_BURST_BYTES, htb_params, ifb_name
from lab.state import LabDir
from lab.topology.load import load_text
from tests.fakes import FakeRuntime

ROOT = Path(__file__).resolve().parents[2]


def test_rate_is_the_sku_aggregate_in_bytes_per_second() -> None:
    # Azure counts Mbps as 10^6 bit/s; HTB takes bytes/s.
    assert htb_params(100).rate_bytes_s == 12_500_000
    assert htb_params(650).rate_bytes_s == 81_250_000
    assert htb_params(10_000).rate_mbps == 10_000


@pytest.mark.parametrize("mbps, burst", [(100, 25_000), (650, 162_500), (10_000, 2_500_000)])
def test_burst_is_two_milliseconds_at_the_rate(mbps: int, burst: int) -> None:
    assert htb_params(mbps).burst_bytes == burst


def test_burst_never_below_ten_frames() -> None:
    assert htb_params(1).burst_bytes == MIN_BURST_BYTES == 10 * FRAME_BYTES


@pytest.mark.parametrize("mbps, quantum", [(1, FRAME_BYTES), (100, 12_500), (650, 81_250),
                                           (5_000, MAX_QUANTUM_BYTES)])
def test_quantum_between_one_frame_and_htbs_warning_limit(mbps: int, quantum: int) -> None:
    assert htb_params(mbps).quantum_bytes == quantum


@pytest.mark.parametrize("mbps", [0, -5])
def test_a_cap_must_be_positive(mbps: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        htb_params(mbps)


def test_ifb_name_fits_ifnamsiz() -> None:
    assert ifb_name("eth0") == "eth0-ifb"
    with pytest.raises(ValueError, match="too long"):
        ifb_name("a-very-long-if")


def _lab(text: str) -> core.Lab:
    topo, _ = load_text(text, "t.yml")
    return core.Lab(topo, build_plan(topo), LabDir(Path("/nonexistent")))


def test_every_gateway_instance_is_capped_on_its_internet_link_at_its_sku() -> None:
    text = (ROOT / "tests/integration/data/vpngw1.yml").read_text()
    text = text.replace("public_ips: [203.0.113.30]", "public_ips: [203.0.113.30, 203.0.113.31]\n"
                        "    active_active: true").replace("sku: VpnGw1", "sku: VpnGw2")
    caps = pipeline.gateway_caps(_lab(text))
    assert caps == [("azgw-0", "eth0", facts.SKUS["VpnGw2"].aggregate_mbps),
                    ("azgw-1", "eth0", facts.SKUS["VpnGw2"].aggregate_mbps)]


def test_sites_and_hosts_are_never_capped() -> None:
    lab = _lab((ROOT / "tests/integration/data/basic-rb.yml").read_text())
    # The A/S standby azgw-1 is capped too: it carries the tunnels after a failover.
    assert pipeline.gateway_caps(lab) == [("azgw-0", "eth0", 100), ("azgw-1", "eth0", 100)]


def test_shape_gateways_caps_and_uncaps() -> None:
    lab = _lab((ROOT / "tests/integration/data/basic-rb.yml").read_text())
    rt = FakeRuntime()
    pipeline.shape_gateways(lab, rt)
    pipeline.shape_gateways(lab, rt, capped=False)
    assert [c[2:] for c in rt.calls] == [("azgw-0", "eth0", 100), ("azgw-1", "eth0", 100),
                                         ("azgw-0", "eth0", None), ("azgw-1", "eth0", None)]
    assert {c[:2] for c in rt.calls} == {("shape", "bench-basic")}
