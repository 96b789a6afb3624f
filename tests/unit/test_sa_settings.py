"""`lab inspect` settings per tunnel end: lifetimes, DPD, proposals, and Azure's value where they differ."""

from __future__ import annotations

from lab.azure import facts
from lab.render.sa_settings import sa_settings
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
