"""`lab inspect` settings per tunnel end: lifetimes, DPD, proposals, and Azure's value where they differ."""

from __future__ import annotations

import pytest

from lab.azure import facts
from lab.device import byo as byo_module
from lab.device.byo import ByoConfig, byo_settings, byo_views
from lab.render.sa_settings import UNKNOWN_KB, sa_settings
from lab.render.strongswan_defaults import STRONGSWAN_DEFAULT_IKE
from lab.report.status_view import settings_lines
from lab.topology.model import Topology
from tests.topology.builders import base, model


def test_a_mirroring_device_and_the_gateway_show_no_difference() -> None:
    settings = sa_settings(model(base()))
    gw, site = settings[("azgw-0", "c1")], settings[("onprem", "c1")]
    assert gw.ike_lifetime_s == facts.IKE_SA_LIFETIME_S and gw.child_lifetime_s == facts.ROUTE_BASED_CHILD_LIFETIME_S
    assert gw.dpd == "delay 31 s"  # 45 s DPD timeout minus the 14 s retransmit window
    assert gw.azure == {} and site.azure == {}


def test_device_overrides_show_azures_value_beside_each_difference() -> None:
    data = base()
    data["sites"]["onprem"]["device"] = {"ike_proposals": ["aes128-sha512-modp3072"], "ike_lifetime_seconds": 3600,
                                         "child_lifetime_seconds": 1200, "dpd_delay_seconds": 0}
    site = sa_settings(model(data))[("onprem", "c1")]
    assert (site.ike_lifetime_s, site.child_lifetime_s, site.dpd) == (3600, 1200, "off")
    assert site.azure["ike_lifetime_s"] == "28800 s" and site.azure["child_lifetime_s"] == "27000 s"
    assert site.azure["dpd"] == "delay 31 s"
    assert site.azure["ike_proposals"].startswith("aes256-sha1-modp1024")  # what Azure accepts
    assert "esp_proposals" not in site.azure and "child_lifetime_kb" not in site.azure


def test_fast_dpd_on_the_gateway_shows_azures_dpd() -> None:
    data = base()
    data["connections"]["c1"]["dpd"] = "fast"
    gw = sa_settings(model(data))[("azgw-0", "c1")]
    assert gw.dpd == "delay 1 s" and gw.azure == {"dpd": "delay 31 s"}


HAND = """connections {
  to-azure {
    version = 2
    remote_addrs = 203.0.113.10
    proposals = aes256-sha256-modp1024
    rekey_time = 8h
    dpd_delay = 30s
    children {
      lan {
        local_ts = 10.2.0.0/16
        esp_proposals = aes256-sha1
        life_time = 27000s
      }
    }
  }
  elsewhere { remote_addrs = 192.0.2.99 }
}
"""


def byo_lab(config: str) -> tuple[Topology, dict[str, ByoConfig]]:
    data = base()
    data["sites"]["onprem"]["device"] = {"config": "dev.conf"}
    return model(data), {"onprem": ByoConfig("onprem", "swanctl", {"swanctl.conf": config})}


def test_a_byo_device_shows_what_its_config_declares_and_azures_value_beside() -> None:
    settings = byo_settings(*byo_lab(HAND))
    assert list(settings) == [("onprem", "to-azure")]  # the connection towards the gateway, under its own name
    site = settings[("onprem", "to-azure")]
    assert (site.ike_lifetime_s, site.child_lifetime_s, site.dpd) == (28_800, 27_000, "delay 30 s")
    assert (site.ike_proposals, site.esp_proposals) == (["aes256-sha256-modp1024"], ["aes256-sha1"])
    # Azure accepts both proposals; the lifetimes are Azure's; no life_bytes: strongSwan's no volume limit
    assert site.child_lifetime_kb == 0
    assert site.azure == {"dpd": "delay 31 s", "child_lifetime_kb": f"{facts.ROUTE_BASED_CHILD_LIFETIME_KB} KB"}


def test_a_byo_device_that_declares_nothing_shows_strongswans_defaults_against_azures() -> None:
    bare = "connections {\n  to-azure {\n    remote_addrs = 203.0.113.10\n    children {\n      lan {\n      }\n" \
           "    }\n  }\n}\n"
    site = byo_settings(*byo_lab(bare))[("onprem", "to-azure")]
    assert (site.ike_lifetime_s, site.child_lifetime_s, site.dpd) == (14_400, 3_960, "off")
    assert site.azure["ike_lifetime_s"] == "28800 s" and site.azure["child_lifetime_s"] == "27000 s"
    assert site.azure["dpd"] == "delay 31 s"
    assert site.ike_proposals == list(STRONGSWAN_DEFAULT_IKE)


def test_inspect_lines_put_azures_value_beside_each_difference() -> None:
    data = base()
    data["sites"]["onprem"]["device"] = {"ike_lifetime_seconds": 3600, "dpd_delay_seconds": 0}
    settings = sa_settings(model(data))
    assert settings_lines(settings[("onprem", "c1")], azure_style="") == [
        "IKE life 3600 s (Azure: 28800 s)", "child life 27000 s", "child KB 102400000 KB",
        "DPD off (Azure: delay 31 s)", "IKE aes256-sha1-modp1024",
        "ESP aes256gcm16"]
    assert settings_lines(settings[("onprem", "c1")])[0] == "IKE life 3600 s [red](Azure: 28800 s)[/red]"
    assert settings_lines(settings[("azgw-0", "c1")], azure_style="")[3] == "DPD delay 31 s"


def test_a_byo_devices_byte_limit_is_read_and_a_legacy_ones_is_not_shown_as_a_difference() -> None:
    topo, byo = byo_lab(HAND.replace("life_time = 27000s", "life_time = 27000s\n        life_bytes = 2048"))
    assert byo_settings(topo, byo)[("onprem", "to-azure")].child_lifetime_kb == 2
    legacy = ("conn to-azure\n  left=198.51.100.10\n  right=203.0.113.10\n  leftsubnet=10.2.0.0/16\n"
              "  rightsubnet=10.1.0.0/16\n  auto=start\n")
    site = byo_settings(topo, {"onprem": ByoConfig("onprem", "ipsec.conf", {"ipsec.conf": legacy})})[
        ("onprem", "to-azure")]
    assert site.child_lifetime_kb == UNKNOWN_KB and "child_lifetime_kb" not in site.azure
    assert settings_lines(site, azure_style="")[2] == "child KB not read from its config"


def test_byo_ends_name_the_device_connection_serving_each_tunnel_by_the_labs_name() -> None:
    """One connection naming another address is still shown (a wrong address is the user's to see); of two
    connections, the one naming the gateway's address serves the tunnel."""
    topo, byo = byo_lab(HAND.replace("remote_addrs = 203.0.113.10", "remote_addrs = 192.0.2.77").replace(
        "  elsewhere { remote_addrs = 192.0.2.99 }\n", ""))
    assert byo_settings(topo, byo) == {}  # `lab inspect`: no connection towards the gateway
    assert list(byo_views(topo, byo)[1]) == [("onprem", "c1")]
    assert byo_views(*byo_lab(HAND))[1][("onprem", "c1")] == byo_settings(*byo_lab(HAND))[("onprem", "to-azure")]


def test_lab_ui_makes_each_device_connections_settings_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """`lab ui` shows a device connection under its own name and the lab's: one parse, one settings object."""
    from lab.ui.tunnels import byo_settings as ui_settings

    made: list[str] = []
    parsed: list[str] = []
    declared, conns = byo_module.declared, ByoConfig.conns
    monkeypatch.setattr(byo_module, "declared", lambda ref, dc: made.append(dc.name) or declared(ref, dc))
    monkeypatch.setattr(ByoConfig, "conns", lambda self: parsed.append(self.node) or conns(self))
    shown = ui_settings(*byo_lab(HAND))
    assert shown[("onprem", "c1")] is shown[("onprem", "to-azure")]
    assert (made, parsed) == (["to-azure"], ["onprem"])
