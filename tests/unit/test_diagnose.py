"""Diagnosis without Docker: static checks of device configs against the gateway end, and log signatures."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.device.byo import ByoConfig
from lab.device.checks import HARD_LIFETIME
from lab.device.diagnose import diagnose
from lab.device.parse import parse_device, seconds
from lab.render.device_config import render_ipsec_conf_device, render_swanctl_device
from lab.topology.load import load_file
from tests.fakes import FakeControl

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"azgw-onprem": "the-key"}


def _topo(name: str = "s2s-route-based"):  # noqa: ANN202
    return load_file(ROOT / "topologies" / f"{name}.yml")[0]


GOOD = render_swanctl_device(_topo(), "azgw", "onprem", KEYS)


def _diag(config: str, down: bool = True, logs: dict[str, list[str]] | None = None) -> list[tuple[str, str]]:
    topo = _topo()
    byo = {"onprem": ByoConfig("onprem", "swanctl", {"swanctl.conf": config})}
    rep = diagnose(topo, {"azgw-0"} if down else set(), lambda node, n: (logs or {}).get(node, []), byo, KEYS)
    return [(d.kind, d.severity) for d in rep.diagnoses]


def test_generated_config_has_no_findings() -> None:
    assert _diag(GOOD) == []
    conf, secrets = render_ipsec_conf_device(_topo(), "azgw", "onprem", KEYS)
    byo = {"onprem": ByoConfig("onprem", "ipsec.conf", {"ipsec.conf": conf, "ipsec.secrets": secrets})}
    assert diagnose(_topo(), {"azgw-0"}, lambda n, k: [], byo, KEYS).diagnoses == []


@pytest.mark.parametrize("kind,old,new", [
    ("auth-failed", '"the-key"', '"other"'),
    ("no-proposal-chosen", "proposals = aes256-sha1-modp1024", "proposals = aes128-sha512-modp4096"),
    ("ts-unacceptable", "local_ts = 10.2.0.0/16", "local_ts = 10.3.0.0/16"),
    ("ike-version-mismatch", "version = 2", "version = 1"),
    ("peer-unreachable", "remote_addrs = 203.0.113.10", "remote_addrs = 203.0.113.99"),
    ("peer-id-mismatch", "      id = 203.0.113.10", "      id = vpn.example"),
])
def test_error_class_comes_first(kind: str, old: str, new: str) -> None:
    assert old in GOOD
    assert _diag(GOOD.replace(old, new))[0] == (kind, "error")


@pytest.mark.parametrize("kind,old,new", [
    ("lifetime-mismatch", "life_time = 27000s", "life_time = 3600s"),
    ("dpd-rejected", "dpd_delay = 31s", "dpd_delay = 2s"),
    ("rekey-in-the-past", "        rekey_time = 24300s\n", ""),  # life_time 27000s alone: rand_time 23400 s > 1h
])
def test_warnings_also_when_up(kind: str, old: str, new: str) -> None:
    assert (kind, "warning") in _diag(GOOD.replace(old, new), down=False)


@pytest.mark.parametrize(("child", "schedule"), [
    ("life_time = 27000s", (3600, 23400)),  # rand_time defaults to life - rekey: above the 1h rekey_time
    ("rekey_time = 24300s\n        life_time = 27000s", (24300, 2700)),
    ("life_time = 3600s", (3600, 0)),
    ("rekey_time = 7200s", (7200, 720)),  # life_time defaults to rekey_time + 10 %
    ("life_time = 27000s\n        rand_time = 600s", (3600, 600)),
])
def test_swanctl_child_rekey_schedule_fills_strongswans_defaults(child: str, schedule: tuple[int, int]) -> None:
    conf = "connections {\n  c {\n    children {\n      k {\n        " + child + "\n      }\n    }\n  }\n}\n"
    assert parse_device(conf)[0].children[0].schedule == schedule
    late = [f for f in _diag(GOOD.replace("        rekey_time = 24300s\n        life_time = 27000s\n",
                                          f"        {child}\n"), down=False) if f[0] == "rekey-in-the-past"]
    assert late == ([("rekey-in-the-past", "warning")] if schedule[1] > schedule[0] else [])


def _lifetime_evidence(files: dict[str, str]) -> list[str]:
    fmt = "swanctl" if "swanctl.conf" in files else "ipsec.conf"
    rep = diagnose(_topo(), set(), lambda n, k: [], {"onprem": ByoConfig("onprem", fmt, files)}, KEYS)
    return next((d.evidence for d in rep.diagnoses if d.kind == "lifetime-mismatch"), [])


@pytest.mark.parametrize(("child", "life"), [
    ("rekey_time = 24300s\n        life_time = 27000s\n", None),  # Azure's hard lifetime: nothing to report
    ("", 3960),  # neither set: rekey_time 1h, life_time 10 % more (what `lab inspect` shows)
    ("rekey_time = 24300s\n", 26730),  # life_time from the rekey_time, not the 1h rekey default
    ("life_time = 3600s\n", 3600),
])
def test_lifetime_check_compares_hard_lifetimes_with_strongswans_defaults(child: str, life: int | None) -> None:
    old = "        rekey_time = 24300s\n        life_time = 27000s\n"
    conf = GOOD.replace(old, f"        {child}" if child else "")
    want = [] if life is None else [f"child azgw-onprem: hard lifetime {life} s (Azure: 27000 s)", HARD_LIFETIME]
    assert _lifetime_evidence({"swanctl.conf": conf}) == want


def test_lifetime_check_reads_ipsec_conf_defaults() -> None:
    """ipsec.conf's lifetime (1h) and ikelifetime (3h) are its own defaults, not swanctl's 3960 s and 4h."""
    conf, secrets = render_ipsec_conf_device(_topo(), "azgw", "onprem", KEYS)
    bare = conf.replace("  ikelifetime=28800s\n", "").replace("  lifetime=27000s\n", "")
    assert _lifetime_evidence({"ipsec.conf": bare, "ipsec.secrets": secrets}) == [
        "IKE SA lifetime 10800 s (Azure: 28800 s)", "child azgw-onprem: hard lifetime 3600 s (Azure: 27000 s)",
        HARD_LIFETIME]


def test_ipsec_conf_rekey_schedule_is_not_read() -> None:
    conf, _ = render_ipsec_conf_device(_topo(), "azgw", "onprem", KEYS)
    assert parse_device(conf)[0].children[0].schedule is None


def test_no_proposal_lists_both_sides_and_azure_offers() -> None:
    topo = _topo()
    bad = GOOD.replace("proposals = aes256-sha1-modp1024", "proposals = aes256-sha384-ecp384")
    byo = {"onprem": ByoConfig("onprem", "swanctl", {"swanctl.conf": bad})}
    d = diagnose(topo, {"azgw-0"}, lambda n, k: [], byo, KEYS).diagnoses[0]
    text = "\n".join(d.evidence)
    assert "gateway ike proposals: aes256-sha1-modp1024" in text
    assert "device ike proposals: aes256-sha384-ecp384" in text
    assert "ike_encryption AES256, ike_integrity SHA384, dh_group ECP384" in text


def test_log_only_class_when_configs_agree() -> None:
    """A rendered (non-BYO) site agrees with its gateway; the log alone names the class, with both sides' lines."""
    logs = {"azgw-0": ["09[IKE] received AUTHENTICATION_FAILED notify error"],
            "onprem": ["12[IKE] tried 1 shared key for 'a' - 'b', but MAC mismatched"]}
    rep = diagnose(_topo(), {"azgw-0"}, lambda node, n: logs.get(node, []), {}, KEYS)
    assert [d.kind for d in rep.diagnoses] == ["auth-failed"]
    assert any(e.startswith("onprem: ") for e in rep.diagnoses[0].evidence)


def test_missing_prefix_pairs_on_policy_based() -> None:
    topo = _topo("policy-based-basic")
    keys = {"azgw-branch": "k"}
    text = render_swanctl_device(topo, "azgw", "branch", keys)
    conns = parse_device(text)
    assert len(conns[0].children) == 4
    cut = text.split("      azgw-branch-1-1 {")[0] + "    }\n  }\n}\n"
    byo = {"branch": ByoConfig("branch", "swanctl", {"swanctl.conf": cut})}
    rep = diagnose(topo, {"azgw-0"}, lambda n, k: [], byo, keys)
    assert rep.diagnoses[0].kind == "missing-prefix-pairs"


def test_seconds_units() -> None:
    assert [seconds(v) for v in ("8h", "7.5h", "45m", "27000s", "90", None, "x")] == [
        28800, 27000, 2700, 27000, 90, None, None]


def test_up_timeout_error_names_the_cause() -> None:
    from lab.device.diagnose import TunnelsDownError, wait_diagnosed

    topo = _topo()
    logs = {"azgw-0": ["01[IKE] received AUTHENTICATION_FAILED notify error"]}
    byo = {"onprem": ByoConfig("onprem", "swanctl", {"swanctl.conf": GOOD.replace('"the-key"', '"x"')})}
    with pytest.raises(TunnelsDownError, match=r"(?s)^diagnosis: azgw-onprem \(azgw-0 <-> onprem\): auth-failed.*"
                                               r"connection 'azgw-onprem' has no IKE_SA") as info:
        wait_diagnosed(topo, {"azgw-0": FakeControl()}, {"azgw-0": [("azgw-onprem", ["azgw-onprem"])]}, 0.01,
                       lambda node, n: logs.get(node, []), byo, KEYS)
    assert info.value.report.errors[0].kind == "auth-failed"
    assert "the-key" not in info.value.message  # never a PSK in messages
