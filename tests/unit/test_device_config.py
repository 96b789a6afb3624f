"""`lab device-config`: the generated site config mirrors the gateway (swanctl and legacy ipsec.conf)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.device.parse import detect_format, parse_device
from lab.errors import TopologyError
from lab.render.device_config import render_ipsec_conf_device, render_swanctl_device
from lab.topology.load import load_file, load_text

ROOT = Path(__file__).resolve().parents[2]


def _topo(name: str):  # noqa: ANN202
    return load_file(ROOT / "topologies" / f"{name}.yml")[0]


def test_swanctl_device_config_parses_back() -> None:
    text = render_swanctl_device(_topo("s2s-route-based"), "azgw", "onprem", {"azgw-onprem": "k1"})
    assert detect_format(text) == "swanctl"
    (conn,) = parse_device(text)
    assert conn.remote_addrs == ("203.0.113.10",) and conn.local_addrs == ("198.51.100.10",)
    # one charon, no tunnel interface: it narrows to its LAN (0/0 would route the device's own LAN into the tunnel)
    assert conn.children[0].local_ts == ("10.2.0.0/16",) and conn.psks == ("k1",)
    assert render_swanctl_device(_topo("s2s-route-based"), "azgw", "onprem", {"azgw-onprem": "k1"}) == text


def test_a_device_that_chose_any_to_any_keeps_it() -> None:
    """`device.traffic_selectors: any` (a VTI device of the user's own): the generated config keeps 0/0."""
    data = yaml.safe_load((ROOT / "topologies" / "s2s-route-based.yml").read_text())
    data["sites"]["onprem"]["device"] = {"traffic_selectors": "any"}
    topo, _ = load_text(yaml.safe_dump(data), "vti.yml")
    (conn,) = parse_device(render_swanctl_device(topo, "azgw", "onprem", {"azgw-onprem": "k1"}))
    assert conn.children[0].local_ts == ("0.0.0.0/0",) and conn.children[0].remote_ts == ("0.0.0.0/0",)


def test_ipsec_conf_one_conn_per_prefix_pair() -> None:
    conf, secrets = render_ipsec_conf_device(_topo("policy-based-basic"), "azgw", "branch", {"azgw-branch": "k2"})
    assert detect_format(conf) == "ipsec.conf"
    conns = parse_device(conf, secrets)
    assert len(conns) == 4 and {c.version for c in conns} == {1}
    assert 'PSK "k2"' in secrets


def test_unknown_pair_and_missing_key_are_topology_errors() -> None:
    with pytest.raises(TopologyError, match="no connection between gateway 'azgw' and site 'nowhere'"):
        render_swanctl_device(_topo("s2s-route-based"), "azgw", "nowhere", {"azgw-onprem": "k"})
    with pytest.raises(TopologyError, match="shared_key: not set"):
        render_swanctl_device(_topo("s2s-route-based"), "azgw", "onprem", {"azgw-onprem": ""})
