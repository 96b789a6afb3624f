"""vtysh JSON -> Azure's views, from output captured on a real lab (tests/integration/data/bgp-basic.yml)."""

from __future__ import annotations

import json
from pathlib import Path

from lab.routing.views import advertised_routes, learned_routes, peer_status

DATA = Path(__file__).parent / "data" / "frr"


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def test_peer_status_reads_state_counts_and_connection() -> None:
    (gw,) = peer_status("azgw-0", load("azgw-neighbors.json"))
    assert (gw.peer, gw.asn, gw.local_asn, gw.state) == ("10.2.255.254", 65010, 65515, "Established")
    assert (gw.prefixes_in, gw.connection) == (2, "azgw-onprem")
    assert gw.uptime and not gw.last_error
    (site,) = peer_status("onprem", load("onprem-neighbors.json"))
    assert (site.peer, site.asn, site.prefixes_in) == ("10.1.0.4", 65515, 1)


def test_learned_routes_as_azure_shows_them() -> None:
    rows = learned_routes("azgw-0", "10.1.0.4", {"10.2.255.254": "10.1.0.4"}, load("azgw-table.json"))
    by_net = {r.network: r for r in rows}
    own = by_net["10.1.0.0/16"]
    assert (own.origin, own.next_hop, own.source_peer, own.as_path) == ("Network", "10.1.0.4", "10.1.0.4", "")
    site = by_net["10.20.0.0/16"]
    assert (site.origin, site.next_hop, site.source_peer, site.as_path) == ("EBgp", "10.2.255.254",
                                                                           "10.2.255.254", "65010")


def test_advertised_routes_carry_the_gateways_asn_and_address() -> None:
    rows = advertised_routes("azgw-0", "10.1.0.4", 65515, "10.2.255.254", load("azgw-advertised.json"))
    by_net = {r.network: r for r in rows}
    assert by_net["10.1.0.0/16"].as_path == "65515"
    assert by_net["10.1.0.0/16"].next_hop == "10.1.0.4" and by_net["10.1.0.0/16"].origin == "Igp"
    assert "0.0.0.0/0" not in by_net


def test_a_peer_that_is_down_shows_its_last_error() -> None:
    data = load("azgw-neighbors.json")
    peer = data["10.2.255.254"]
    peer.update(bgpState="Idle", lastNotificationReason="Cease/Maximum Number of Prefixes Reached")
    (st,) = peer_status("azgw-0", data)
    assert st.state == "Idle" and st.uptime == "" and "Maximum Number of Prefixes" in st.last_error
