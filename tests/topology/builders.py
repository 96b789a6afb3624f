"""Small topologies as plain dicts for unit tests: one valid base, changed per test (no YAML files)."""

from __future__ import annotations

import copy
from typing import Any

from lab.findings import Finding
from lab.topology.load import validate
from lab.topology.model import Topology

BASE: dict[str, Any] = {
    "name": "t",
    "gateways": {
        "azgw": {
            "vpn_type": "RouteBased",
            "sku": "VpnGw1",
            "public_ips": ["203.0.113.10"],
            "vnet": {"address_space": ["10.1.0.0/16"], "hosts": {"vm1": "10.1.0.10"}},
        }
    },
    "sites": {
        "onprem": {"public_ip": "198.51.100.10", "address_space": ["10.2.0.0/16"], "hosts": {"pc1": "10.2.0.10"}},
    },
    "connections": {"c1": {"gateway": "azgw", "site": "onprem"}},
}


def base(**top: Any) -> dict[str, Any]:
    """A deep copy of BASE with top-level keys replaced."""
    data = copy.deepcopy(BASE)
    data.update(top)
    return data


def findings(data: dict[str, Any]) -> list[Finding]:
    return validate(data)[1]


def at(data: dict[str, Any], path: str, severity: str | None = None) -> list[Finding]:
    """Findings whose dotted path is `path` (and of that severity, if given)."""
    return [f for f in findings(data) if f.path == path and (severity is None or f.severity == severity)]


def model(data: dict[str, Any]) -> Topology:
    topo, found = validate(data)
    assert topo is not None, found
    bad = [f for f in found if f.severity == "error"]
    assert not bad, bad
    return topo


def second_gateway(data: dict[str, Any], name: str = "west", **fields: Any) -> dict[str, Any]:
    """Add a RouteBased gateway `name` with its own VNet 10.9.0.0/16 and public IP 203.0.113.90."""
    gw = {"vpn_type": "RouteBased", "sku": "VpnGw1", "public_ips": ["203.0.113.90"],
          "vnet": {"address_space": ["10.9.0.0/16"], "hosts": {"vm9": "10.9.0.10"}}}
    gw.update(fields)
    data["gateways"][name] = gw
    return data
