"""Bring-your-own configs: strongSwan's parse errors name the user's file and line; trap policies are named
with the fix; strongSwan's implicit default proposals count; the wait ends at once on a fatal IKE error; the
timeout text never contradicts the diagnosis."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lab.azure.algorithms import first_match
from lab.device.byo import ByoConfig, parse_errors, raise_parse_errors
from lab.device.diagnose import TunnelsDownError, diagnose, wait_diagnosed
from lab.device.parse import legacy_proposals, with_defaults
from lab.errors import DeviceConfigError
from lab.render.device_config import render_ipsec_conf_device, render_swanctl_device
from lab.render.strongswan_defaults import STRONGSWAN_DEFAULT_IKE
from lab.topology.load import load_file, load_text
from tests.fakes import FakeControl

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"azgw-onprem": "the-key"}
REF = (ROOT / "topologies" / "s2s-route-based.yml").read_text()


def _topo(mode: str = "Default"):  # noqa: ANN202
    return load_text(REF.replace("ike_version: IKEv2", f"ike_version: IKEv2\n    connection_mode: {mode}"))[0]


def test_swanctl_syntax_error_names_the_users_file_and_line() -> None:
    out = ("/lab/swanctl.conf:7: syntax error, unexpected NAME, expecting : or '{' or '='\n"
           "invalid config file '/lab/swanctl.conf'\nno connections found, 0 unloaded\n")
    assert parse_errors(out, "onprem", {"swanctl.conf": "my/site.conf"}) == [
        "my/site.conf: line 7: syntax error, unexpected NAME, expecting : or '{' or '='"]
    with pytest.raises(DeviceConfigError) as info:
        raise_parse_errors(out, "onprem", {"swanctl.conf": "my/site.conf"})
    assert info.value.exit_code == 1


def test_starter_error_and_unknown_source() -> None:
    out = "/lab/ipsec.conf:16: missing value for setting 'ike'\nunable to start strongSwan -- fatal errors in config"
    assert parse_errors(out, "onprem", {}) == ["onprem:/lab/ipsec.conf: line 16: missing value for setting 'ike'"]
    assert parse_errors("loaded connection 'x'\n", "onprem", {}) == []


def test_defaults_appended_without_bang_and_by_keyword() -> None:
    assert legacy_proposals("aes256-sha1-modp1024!", STRONGSWAN_DEFAULT_IKE) == ("aes256-sha1-modp1024",)
    assert legacy_proposals("aes256-sha1-modp1024", STRONGSWAN_DEFAULT_IKE) == ("aes256-sha1-modp1024",
                                                                               *STRONGSWAN_DEFAULT_IKE)
    assert legacy_proposals(None, STRONGSWAN_DEFAULT_IKE) == STRONGSWAN_DEFAULT_IKE
    assert with_defaults(("aes128-sha256-ecp256", "default"), STRONGSWAN_DEFAULT_IKE) == (
        "aes128-sha256-ecp256", *STRONGSWAN_DEFAULT_IKE)
    # the defaults do contain an offer a RouteBased Azure gateway accepts (AES256/SHA256/DHGroup14)
    assert first_match(list(STRONGSWAN_DEFAULT_IKE), ["aes256-sha256-modp2048"], "ike") is not None


def test_non_strict_device_proposal_is_no_mismatch() -> None:
    """A device whose own proposal Azure refuses, but without `!`: strongSwan adds its defaults, one fits."""
    topo = _topo("ResponderOnly")
    conf, secrets = render_ipsec_conf_device(topo, "azgw", "onprem", KEYS)
    strict = conf.replace("ike=aes256-sha1-modp1024!", "ike=aes128-sha512-modp8192!")
    assert strict != conf
    loose = strict.replace("ike=aes128-sha512-modp8192!", "ike=aes128-sha512-modp8192")
    kinds = {name: [d.kind for d in _report(topo, "ipsec.conf", {"ipsec.conf": c, "ipsec.secrets": secrets}).errors]
             for name, c in (("strict", strict), ("loose", loose))}
    assert kinds == {"strict": ["no-proposal-chosen"], "loose": []}


def _report(topo, fmt: str, files: dict[str, str]):  # noqa: ANN001, ANN202
    return diagnose(topo, {"azgw-0"}, lambda node, n: [], {"onprem": ByoConfig("onprem", fmt, files)}, KEYS)


@pytest.mark.parametrize(("mode", "severity"), [("ResponderOnly", "error"), ("Default", "warning")])
def test_trap_policy_is_named_with_the_fix(mode: str, severity: str) -> None:
    topo = _topo(mode)
    sw = render_swanctl_device(topo, "azgw", "onprem", KEYS)
    action = "start_action = start" if mode == "ResponderOnly" else "start_action = none"
    assert action in sw
    conf, secrets = render_ipsec_conf_device(topo, "azgw", "onprem", KEYS)
    auto = "auto=start" if mode == "ResponderOnly" else "auto=add"
    for fmt, files in (("swanctl", {"swanctl.conf": sw.replace(action, "start_action = trap")}),
                       ("ipsec.conf", {"ipsec.conf": conf.replace(auto, "auto=route"), "ipsec.secrets": secrets})):
        found = [d for d in _report(topo, fmt, files).diagnoses if d.kind == "trap-never-fires"]
        assert [d.severity for d in found] == [severity], fmt
        assert "start_action = start (ipsec.conf: auto=start)" in found[0].summary


def test_fatal_log_line_ends_the_wait_and_no_contradiction() -> None:
    topo = load_file(ROOT / "topologies" / "s2s-route-based.yml")[0]
    sw = render_swanctl_device(topo, "azgw", "onprem", KEYS)
    byo = {"onprem": ByoConfig("onprem", "swanctl", {"swanctl.conf": sw.replace('"the-key"', '"x"')})}
    # the log also holds "no IKE config found" (an earlier, transient refusal): it must not be printed as the cause
    logs = {"azgw-0": ["01[CFG] no IKE config found for 203.0.113.10...198.51.100.10",
                       "01[IKE] received AUTHENTICATION_FAILED notify error"]}
    t0 = time.monotonic()
    with pytest.raises(TunnelsDownError) as info:
        wait_diagnosed(topo, {"azgw-0": FakeControl()}, {"azgw-0": [("azgw-onprem", ["azgw-onprem"])]}, 20,
                       lambda node, n: logs.get(node, []), byo, KEYS)
    assert time.monotonic() - t0 < 3  # not the 20 s timeout
    message = info.value.message
    assert message.startswith("diagnosis: azgw-onprem (azgw-0 <-> onprem): auth-failed")
    assert "no IKE config found:" not in message.split("last IKE log lines")[0]


def test_connection_names_come_from_the_users_config(tmp_path: Path) -> None:
    from lab.core import Lab
    from lab.pipeline import expected_with_byo
    from lab.plan import build_plan
    from lab.state import LabDir

    data = ROOT / "tests" / "integration" / "data" / "byo"
    topo = load_text((data / "topology.yml").read_text().replace("config: CONFIG", "config: hand.swanctl.conf"))[0]
    d = LabDir(tmp_path)
    (d.node("onprem")).mkdir(parents=True)
    (d.node("onprem") / "swanctl.conf").write_text((data / "hand.swanctl.conf").read_text())
    expected = expected_with_byo(Lab(topo, build_plan(topo), d))
    assert expected["onprem"] == [("to-azure", ["lan-to-vnet"])]
    assert expected["azgw-0"] == [("azgw-onprem", ["azgw-onprem"])]
