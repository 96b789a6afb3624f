"""`lab inspect` settings per tunnel end: lifetimes, DPD, proposals, and Azure's value where they differ."""

from __future__ import annotations

from lab.azure import facts
from lab.device.byo import ByoConfig, byo_settings
from lab.device.parse import STRONGSWAN_DEFAULT_IKE
from lab.render.sa_settings import sa_settings
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
    assert site.azure == {"dpd": "delay 31 s"}  # Azure accepts both proposals; the lifetimes are Azure's


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
