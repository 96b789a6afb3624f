"""vici replies -> typed SA models, event conversion, log diagnosis and the wait loop, without charon.

The list-sas fixture is a reply captured from charon 5.9.8 (libipsec, IKEv2, PSK) in the shape vici 6
returns it: str keys, bytes values, lists of bytes; a second IKE_SA shows a CHILD_SA not yet installed.
"""

from __future__ import annotations

import pytest

from lab.control.base import ChildSaStatus, IkeSaStatus
from lab.control.vici import event_from_vici, ike_sas_from_vici, vici_tree
from lab.control.wait import diagnose_log, missing, wait_established
from lab.errors import ControlError
from tests.fakes import FakeControl

CHILD_INSTALLED_RAW = {
    "name": b"azgw-onprem",
    "uniqueid": b"1",
    "reqid": b"1",
    "state": b"INSTALLED",
    "mode": b"TUNNEL",
    "protocol": b"ESP",
    "encap": b"yes",
    "spi-in": b"be295303",
    "spi-out": b"a8ab8284",
    "encr-alg": b"AES_GCM_16",
    "encr-keysize": b"256",
    "bytes-in": b"168",
    "packets-in": b"2",
    "use-in": b"0",
    "bytes-out": b"252",
    "packets-out": b"3",
    "use-out": b"0",
    "rekey-time": b"21757",
    "life-time": b"26996",
    "install-time": b"4",
    "local-ts": [b"10.1.0.0/16"],
    "remote-ts": [b"10.2.0.0/16", b"10.3.0.0/16"],
}

IKE_RAW = {
    "uniqueid": b"1",
    "version": b"2",
    "state": b"ESTABLISHED",
    "local-host": b"203.0.113.1",
    "local-port": b"4500",
    "local-id": b"203.0.113.1",
    "remote-host": b"198.51.100.1",
    "remote-port": b"4500",
    "remote-id": b"198.51.100.1",
    "initiator": b"yes",
    "initiator-spi": b"82b091644d1aed7c",
    "responder-spi": b"5d7a3dd1fe9df9a7",
    "nat-remote": b"yes",
    "nat-any": b"yes",
    "encr-alg": b"AES_CBC",
    "encr-keysize": b"256",
    "integ-alg": b"HMAC_SHA2_256_128",
    "prf-alg": b"PRF_HMAC_SHA2_256",
    "dh-group": b"MODP_2048",
    "established": b"4",
    "rekey-time": b"26944",
    "child-sas": {"azgw-onprem-1": CHILD_INSTALLED_RAW},
}

# Mid-negotiation: the IKE_SA is connecting and its CHILD_SA has no SPIs, counters or times yet.
CONNECTING_RAW = {
    "uniqueid": b"7",
    "version": b"2",
    "state": b"CONNECTING",
    "local-host": b"203.0.113.1",
    "remote-host": b"198.51.100.2",
    "child-sas": {"other-7": {"name": b"other", "uniqueid": b"7", "state": b"INSTALLING", "local-ts": []}},
}


def _child(name: str = "c", state: str = "INSTALLED") -> ChildSaStatus:
    return ChildSaStatus(name=name, uniqueid=1, state=state)


def _ike(name: str = "c", state: str = "ESTABLISHED", children: list[ChildSaStatus] | None = None) -> IkeSaStatus:
    return IkeSaStatus(
        name=name, uniqueid=1, state=state, version=2, local_host="a", remote_host="b", children=children or []
    )


def test_established_ike_sa_converts_every_field() -> None:
    (sa,) = ike_sas_from_vici({"azgw-onprem": IKE_RAW})
    assert (sa.name, sa.uniqueid, sa.state, sa.version) == ("azgw-onprem", 1, "ESTABLISHED", 2)
    assert (sa.local_host, sa.remote_host, sa.local_id, sa.remote_id) == (
        "203.0.113.1",
        "198.51.100.1",
        "203.0.113.1",
        "198.51.100.1",
    )
    assert (sa.encr_alg, sa.integ_alg, sa.prf_alg, sa.dh_group) == (
        "AES_CBC",
        "HMAC_SHA2_256_128",
        "PRF_HMAC_SHA2_256",
        "MODP_2048",
    )
    assert sa.established_s == 4
    (child,) = sa.children
    assert child == ChildSaStatus(
        name="azgw-onprem",
        uniqueid=1,
        reqid=1,
        state="INSTALLED",
        mode="TUNNEL",
        protocol="ESP",
        encap=True,
        spi_in="be295303",
        spi_out="a8ab8284",
        encr_alg="AES_GCM_16",
        encr_keysize=256,
        integ_alg=None,
        dh_group=None,
        bytes_in=168,
        bytes_out=252,
        packets_in=2,
        packets_out=3,
        local_ts=["10.1.0.0/16"],
        remote_ts=["10.2.0.0/16", "10.3.0.0/16"],
        install_time_s=4,
    )
    assert sa.child("azgw-onprem") == child


def test_child_not_installed_yet_gets_defaults() -> None:
    (sa,) = ike_sas_from_vici({"other": CONNECTING_RAW})
    assert sa.state == "CONNECTING" and sa.established_s is None and sa.encr_alg is None
    (child,) = sa.children
    assert child.state == "INSTALLING"
    assert (child.spi_in, child.spi_out, child.bytes_in, child.packets_out) == ("", "", 0, 0)
    assert child.install_time_s is None and child.encr_keysize is None and child.local_ts == []


def test_malformed_numbers_and_non_section_values_do_not_crash() -> None:
    raw = dict(IKE_RAW, uniqueid=b"", established=b"soon", **{"child-sas": b"garbage"})
    (sa,) = ike_sas_from_vici({"x": raw, "stray-key": b"yes"})
    assert sa.uniqueid == 0 and sa.established_s is None and sa.children == []


def test_rekey_leaves_two_children_and_child_prefers_installed() -> None:
    old = dict(CHILD_INSTALLED_RAW, state=b"DELETED")
    new = dict(CHILD_INSTALLED_RAW, uniqueid=b"2", **{"spi-in": b"5cdd74bc"})
    (sa,) = ike_sas_from_vici({"azgw-onprem": dict(IKE_RAW, **{"child-sas": {"a-1": old, "a-2": new}})})
    chosen = sa.child("azgw-onprem")
    assert chosen is not None and chosen.spi_in == "5cdd74bc"
    assert sa.child("nope") is None


def test_updown_events() -> None:
    up = event_from_vici("ike-updown", {"up": b"yes", "azgw-onprem": dict(IKE_RAW, **{"child-sas": {}})}, 1.5)
    assert up is not None and (up.time, up.name, up.ike, up.ike_uniqueid, up.children, up.up) == (
        1.5,
        "ike-updown",
        "azgw-onprem",
        1,
        (),
        True,
    )
    down = event_from_vici("child-updown", {"azgw-onprem": IKE_RAW}, 2.0)
    assert down is not None and down.children == ("azgw-onprem",) and down.up is False


def test_rekey_events_report_the_new_sa() -> None:
    ike_old, ike_new = dict(IKE_RAW, uniqueid=b"1"), dict(IKE_RAW, uniqueid=b"2")
    ike = event_from_vici("ike-rekey", {"azgw-onprem": {"old": ike_old, "new": ike_new}}, 3.0)
    assert ike is not None and ike.ike_uniqueid == 2 and ike.up is None
    pair = {"old": CHILD_INSTALLED_RAW, "new": dict(CHILD_INSTALLED_RAW, uniqueid=b"2")}
    child = event_from_vici("child-rekey", {"azgw-onprem": dict(IKE_RAW, **{"child-sas": {"x": pair}})}, 4.0)
    assert child is not None and child.children == ("azgw-onprem",) and child.up is None
    assert event_from_vici("ike-updown", {"up": b"yes"}, 5.0) is None


def test_vici_tree_splits_comma_strings_of_list_keys_only() -> None:
    tree = {
        "proposals": "aes256-sha256-modp2048, aes128-sha1-modp1024",
        "version": "2",
        "children": {"c": {"local_ts": "10.1.0.0/16,10.3.0.0/16", "esp_proposals": ["aes256gcm16"]}},
    }
    assert vici_tree(tree) == {
        "proposals": ["aes256-sha256-modp2048", "aes128-sha1-modp1024"],
        "version": "2",
        "children": {"c": {"local_ts": ["10.1.0.0/16", "10.3.0.0/16"], "esp_proposals": ["aes256gcm16"]}},
    }


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Nov 25 17:39:45 01[IKE] received NO_PROPOSAL_CHOSEN notify error", "no proposal chosen"),
        ("Nov 25 17:39:45 14[IKE] received proposals unacceptable", "no proposal chosen"),
        ("06[CFG] no acceptable proposal found", "no proposal chosen"),
        ("09[IKE] received AUTHENTICATION_FAILED notify error", "authentication failed"),
        ("11[IKE] tried 1 shared key for '198.51.100.1' - '203.0.113.1', but MAC mismatched", "authentication failed"),
        ("12[IKE] authentication of '203.0.113.1' with pre-shared key failed", "authentication failed"),
        ("05[IKE] received TS_UNACCEPTABLE notify, no CHILD_SA built", "traffic selectors unacceptable"),
        ("05[IKE] traffic selectors 10.1.0.0/16 === 10.9.0.0/16 unacceptable", "traffic selectors unacceptable"),
        ("07[IKE] giving up after 3 retransmits", "peer not responding"),
        ("07[IKE] establishing IKE_SA failed, peer not responding", "peer not responding"),
        ("13[CFG] no IKE config found for 198.51.100.1...203.0.113.1, sending NO_PROPOSAL_CHOSEN", "no IKE config"),
        ("13[CFG] no IKE config found for 198.51.100.1...203.0.113.9", "no IKE config found"),
        ("08[CFG] no matching peer config found", "no matching peer config"),
    ],
)
def test_diagnose_log_recognises_common_failures(line: str, expected: str) -> None:
    reason = diagnose_log(["Nov 25 17:39:45 01[IKE] initiating IKE_SA x[1] to 198.51.100.1", line])
    assert reason is not None and reason.startswith(expected)


def test_diagnose_log_ignores_normal_lines_and_prefers_the_specific_cause() -> None:
    assert diagnose_log(["04[IKE] retransmit 1 of request with message ID 0", "IKE_SA x[1] established"]) is None
    assert diagnose_log([]) is None
    both = ["07[IKE] giving up after 3 retransmits", "01[IKE] received NO_PROPOSAL_CHOSEN notify error"]
    assert (diagnose_log(both) or "").startswith("no proposal chosen")


def test_missing_names_connection_state_and_children() -> None:
    wants = [("c", ["c"]), ("d", ["d-0", "d-1"]), ("e", ["e"])]
    sas = [_ike("c", "CONNECTING"), _ike("d", children=[_child("d-0"), _child("d-1", "INSTALLING")])]
    assert missing(sas, wants) == [
        "connection 'c' stuck in CONNECTING (child 'c' not installed)",
        "connection 'd' is ESTABLISHED (child 'd-1' not installed)",
        "connection 'e' has no IKE_SA (child 'e' not installed)",
    ]
    assert missing([_ike("c", children=[_child("c")])], [("c", ["c"])]) == []


def test_wait_established_returns_once_everything_is_installed() -> None:
    up = [_ike("c", children=[_child("c")])]
    controls = {"gw": FakeControl([[], [_ike("c", "CONNECTING")], up]), "site": FakeControl([up])}
    result = wait_established(controls, {"gw": [("c", ["c"])]}, 2.0, lambda n: [], poll=0.001)
    assert result == {"gw": up, "site": up}
    # the stuck node until it is up, then one round of every node decides; an up node is not asked meanwhile
    assert (controls["gw"].asked, controls["site"].asked) == (4, 2)


def test_wait_established_goes_on_when_the_deciding_round_finds_a_tunnel_gone() -> None:
    up = [_ike("c", children=[_child("c")])]
    controls = {"gw": FakeControl([up]), "site": FakeControl([[], up, [], up])}
    expected = {"gw": [("c", ["c"])], "site": [("c", ["c"])]}
    result = wait_established(controls, expected, 2.0, lambda n: [], poll=0.001)
    assert result == {"gw": up, "site": up}
    assert controls["site"].asked == 5  # stuck, up, gone in the full round, up, up


def test_wait_established_timeout_names_node_cause_and_log() -> None:
    log = [f"Nov 25 17:39:45 01[IKE]   activating task {i}" for i in range(30)]
    log += ["Nov 25 17:39:45 13[IKE] queueing IKE_NATD task", "Nov 25 17:39:45 13[IKE] activating new tasks"]
    log += ["Nov 25 17:39:45 01[IKE] received NO_PROPOSAL_CHOSEN notify error"]
    controls = {"azgw-0": FakeControl([[_ike("azgw-onprem", "CONNECTING")]])}
    expected = {"azgw-0": [("azgw-onprem", ["azgw-onprem"])]}
    with pytest.raises(ControlError, match=r"node 'azgw-0': connection 'azgw-onprem' stuck in CONNECTING") as err:
        wait_established(controls, expected, 0.05, lambda n: log, poll=0.01)
    message = err.value.message
    assert "(child 'azgw-onprem' not installed) after 0.05 s: no proposal chosen" in message
    assert message.endswith("  Nov 25 17:39:45 01[IKE] received NO_PROPOSAL_CHOSEN notify error")
    assert "activating" not in message and "queueing" not in message  # task bookkeeping is left out
    assert err.value.hint == "`lab logs azgw-0` shows the whole charon log"


def test_wait_established_survives_an_unreadable_log() -> None:
    def no_log(node: str) -> list[str]:
        raise FileNotFoundError(2, "No such file or directory", f"/state/{node}/charon.log")

    controls = {"site": FakeControl([[]])}
    with pytest.raises(ControlError, match=r"(?s)node 'site': connection 'c' has no IKE_SA.*cannot read the log"):
        wait_established(controls, {"site": [("c", ["c"])]}, 0.0, no_log)


def test_wait_established_puts_the_node_on_control_errors() -> None:
    class Broken(FakeControl):
        def sas(self) -> list[IkeSaStatus]:
            raise ControlError("listing SAs failed: vici connection broke")

    with pytest.raises(ControlError, match=r"^node 'gw': listing SAs failed"):
        wait_established({"gw": Broken()}, {"gw": [("c", ["c"])]}, 1.0, lambda n: [])
