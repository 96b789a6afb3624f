"""`lab ui`'s pure parts: the graph model from `lab inspect` data, its SVG, the timeline's parsing and
diffing, the token check, the secret scrubber, the actions' validation; and the HTTP server refusing every
request without the token (a real server on loopback, with a stand-in collector)."""

from __future__ import annotations

import json
import re
import select
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab.plan import build_plan
from lab.routing.views import BgpPeerStatus
from lab.state import LabDir
from lab.status import ChildStatus, LabStatus, NodeStatus, P2sClientStatus, TunnelStatus
from lab.topology.load import load_file
from lab.ui import actions
from lab.ui.auth import MASK, authorized, new_token, redact
from lab.ui.events import CharonParser, LogTail, Summary, diff, parse_ha, parse_supervisor
from lab.ui.live import lab_secrets
from lab.ui.model import Live, build_graph, tunnel_state
from lab.ui.server import UiServer
from lab.ui.svg import render_svg

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):  # noqa: ANN202
    topo, _ = load_file(ROOT / "topologies" / f"{name}.yml")
    return topo, build_plan(topo)


def _node(name: str, role: str = "gateway", state: str = "running") -> NodeStatus:
    return NodeStatus(name=name, role=role, group="g", container=f"c-{name}", state=state, addresses=[])


def _sa(node: str, conn: str, state: str = "ESTABLISHED", child: str | None = "INSTALLED") -> TunnelStatus:
    kids = [ChildStatus(name=conn, state=child or "", spi_in="c1", spi_out="c2", encryption="AES_GCM_16-256",
                        local_ts=[], remote_ts=[], bytes_in=10, bytes_out=20, packets_in=1, packets_out=2)]
    return TunnelStatus(node=node, connection=conn, state=state, local="203.0.113.10", remote="198.51.100.10",
                        version=2, ike_proposal="AES", children=kids if child else [])


def _status(plan, tunnels: list[TunnelStatus], down: tuple[str, ...] = (), **kw) -> LabStatus:  # noqa: ANN001
    nodes = [_node(n.name, n.role, "exited" if n.name in down else "running") for n in plan.nodes]
    return LabStatus(name=plan.lab, state_dir="/x", dataplane="libipsec", nodes=nodes, tunnels=tunnels, **kw)


# ---- graph model ----------------------------------------------------------------------------------------


def test_reference_graph_has_every_node_and_one_tunnel_edge() -> None:
    topo, plan = _load("s2s-route-based")
    st = _status(plan, [_sa("azgw-0", "azgw-onprem"), _sa("onprem", "azgw-onprem")])
    g = build_graph(topo, plan, Live(st))
    assert {n.id for n in g.nodes} == {n.name for n in plan.nodes} | {"internet"}
    [edge] = [e for e in g.edges if e.kind == "tunnel"]
    assert (edge.a, edge.b, edge.state) == ("azgw-0", "onprem", "up")
    assert g.node("azgw-0").active and g.node("azgw-1").kind == "standby"
    svg = render_svg(g)
    for n in plan.nodes:
        assert f'data-node="{n.name}"' in svg
    assert 'data-edge="azgw-0~azgw-onprem" data-kind="tunnel" data-state="up"' in svg


@pytest.mark.parametrize(("sas", "down", "want"), [
    ([("azgw-0", "ESTABLISHED", "INSTALLED"), ("onprem", "ESTABLISHED", "INSTALLED")], (), "up"),
    ([("azgw-0", "ESTABLISHED", "INSTALLED"), ("onprem", "ESTABLISHED", "INSTALLED")], ("onprem",), "down"),
    ([("azgw-0", "CONNECTING", None)], (), "connecting"),
    ([("azgw-0", "ESTABLISHED", "INSTALLED"), ("onprem", "ESTABLISHED", "INSTALLING")], (), "connecting"),
    ([], (), "down"),
])
def test_tunnel_state(sas: list, down: tuple[str, ...], want: str) -> None:
    _, plan = _load("s2s-route-based")
    st = _status(plan, [_sa(n, "azgw-onprem", s, c) for n, s, c in sas], down)
    assert tunnel_state(st, [("azgw-0", "azgw-onprem"), ("onprem", "azgw-onprem")]) == want


def test_active_standby_tunnel_follows_the_active_instance() -> None:
    topo, plan = _load("s2s-route-based")
    st = _status(plan, [_sa("azgw-1", "azgw-onprem"), _sa("onprem", "azgw-onprem")])
    g = build_graph(topo, plan, Live(st, active={"azgw": "azgw-1"}, faults={"onprem": "pause onprem"}))
    [edge] = [e for e in g.edges if e.kind == "tunnel"]
    assert (edge.a, edge.state) == ("azgw-1", "up")
    assert edge.id == "azgw-0~azgw-onprem"  # the same tunnel before and after the failover
    assert g.node("azgw-1").active and g.node("azgw-0").kind == "standby"
    assert g.node("onprem").fault == "pause onprem"
    assert ">PAUSE<" in render_svg(g)


def test_active_active_bgp_edges_carry_prefix_counts() -> None:
    topo, plan = _load("bgp-active-active")
    tunnels = [e for e in build_graph(topo, plan, Live(_status(plan, []))).edges if e.kind == "tunnel"]
    assert len(tunnels) == 2 and all(e.state == "down" for e in tunnels)
    node, conn = tunnels[0].ends[0]
    peers = [BgpPeerStatus(node=node, peer="169.254.21.1", asn=65050, local_asn=65515, state="Established",
                           prefixes_in=3, prefixes_out=2, connection=conn)]
    g = build_graph(topo, plan, Live(_status(plan, [], bgp_peers=peers)))
    edge = next(e for e in g.edges if e.ends == tunnels[0].ends)
    assert edge.bgp == "BGP Established, 3 in / 2 out"
    assert "BGP Established, 3 in / 2 out" in render_svg(g)


def test_p2s_clients_are_nodes_with_edges() -> None:
    topo, plan = _load("p2s")
    clients = [P2sClientStatus(name="azgw-client1", gateway="azgw", public_ip="198.51.100.101",
                               state="connected", virtual_ip="172.16.201.2"),
               P2sClientStatus(name="azgw-rogue", gateway="azgw", public_ip="198.51.100.105", state="refused",
                               reason="untrusted")]
    g = build_graph(topo, plan, Live(_status(plan, [], p2s_clients=clients)))
    p2s = {e.b: e.state for e in g.edges if e.kind == "p2s"}
    assert p2s == {"azgw-client1": "up", "azgw-rogue": "down"}
    assert {n.id for n in g.nodes if n.kind == "client"} == {n.name for n in plan.nodes if n.role == "client"}
    assert g.node("azgw-client1").sub == ("P2S · 172.16.201.2",)


def test_vnet_to_vnet_peer_is_drawn_right_of_the_internet() -> None:
    topo, plan = _load("vnet-to-vnet")
    g = build_graph(topo, plan, Live(_status(plan, [])))
    gateways = sorted(topo.gateways)
    xs = {g.node(f"{name}-0").x for name in gateways}
    assert len(xs) == 2 and min(xs) < g.node("internet").x < max(xs)


# ---- timeline ----------------------------------------------------------------------------------------


CHARON = (Path(__file__).parent / "data" / "ui_charon.log").read_text()  # lines from a real charon.log


def test_charon_log_becomes_timeline_events() -> None:
    p = CharonParser("azgw-0", 2026)
    evs = [e for line in CHARON.splitlines() if (e := p.parse(line))]
    got = [(e.kind, e.text) for e in evs]
    assert got == [
        ("daemon", "charon started"),
        ("dpd", "peer not responding: gave up after 3 retransmits"),
        ("dpd", "DPD action: restarting CHILD_SA azgw-onprem"),
        ("ike", "IKE_SA azgw-onprem up (203.0.113.10[203.0.113.10] ... 198.51.100.10[198.51.100.10])"),
        ("child", "CHILD_SA azgw-onprem up, SPIs in 20cd513d out ef3e55eb, 10.1.0.0/16 === 10.2.0.0/16"),
        ("rekey", "CHILD_SA azgw-onprem rekeyed, new SPIs in 964d127d out 720551c8"),
        ("rekey", "CHILD_SA azgw-onprem closed (SPIs in 20cd513d, 0 B; out ef3e55eb, 0 B)"),  # the old SA
        ("rekey", "IKE_SA azgw-onprem rekeyed"),
        ("ike", "IKE_SA azgw-onprem down"),
        ("child", "CHILD_SA azgw-onprem closed (SPIs in 964d127d, 84 B; out 720551c8, 84 B)"),  # really down
        ("error", "peer sent AUTHENTICATION_FAILED"),
    ]
    assert all(e.node == "azgw-0" for e in evs)
    assert evs[3].t - evs[0].t == 126  # 19:29:35 -> 19:31:41


def test_ha_agent_events_are_failover_steps() -> None:
    e = parse_ha('{"t": 1796070223.05, "event": "peer-dead", "node": "azgw-1", "peer": "10.1.0.4", "planned": true}')
    assert e is not None and (e.kind, e.node, e.text) == ("failover", "azgw-1",
                                                          "HA agent: peer-dead (peer 10.1.0.4, planned True)")
    assert parse_ha("not json") is None and parse_ha('{"event": "x"}') is None


def test_lab_secrets_include_a_devices_own_key(tmp_path: Path) -> None:
    topo, plan = _load("s2s-route-based")
    d = LabDir.of(tmp_path, topo.name)
    d.write("name: x\n", {"azgw-onprem": "GeneratedKey123"}, {}, [n.name for n in plan.nodes])
    (d.node("onprem") / "swanctl.conf").write_text('secrets {\n  ike-x {\n    secret = "TheDevicesOwnKey"\n  }\n}\n')
    (d.node("azgw-0") / "ipsec.secrets").write_text('1.2.3.4 5.6.7.8 : PSK "LegacyKey99"\n')
    found = lab_secrets(SimpleNamespace(topo=topo, plan=plan, dir=d))
    assert found == {"GeneratedKey123", "TheDevicesOwnKey", "LegacyKey99"}


def test_a_failover_runs_marks_join_the_timeline_on_its_clock() -> None:
    from lab.ui.events import parse_failover

    run = {"t0": 1000.0, "gateway": "azgw", "kind": "planned", "azure_figure": "10-15 s",
           "udp": {"flow_outage_ms": 1234.5, "flow_outage_to": 5.0},
           "marks": [{"t": 3.0, "node": "azgw", "what": "fault: planned move azgw-0 -> azgw-1"},
                     {"t": 3.4, "node": "azgw-1", "what": "ike-updown up azgw-onprem"},
                     {"t": 3.2, "node": "azgw-1", "what": "agent: addresses-taken"}]}
    events = parse_failover(run)
    assert [(e.t, e.node) for e in events[:3]] == [(1003.0, "azgw"), (1003.4, "azgw-1"), (1003.2, "azgw-1")]
    assert all(e.kind == "failover" for e in events) and "ike-updown up azgw-onprem" in events[1].text
    assert events[-1].t == 1005.0 and "1234 ms" in events[-1].text and "(Azure: 10-15 s)" in events[-1].text
    assert parse_failover({"t0": "x"}) == []


def test_the_page_loads_nothing_from_elsewhere() -> None:
    """Offline: every script and style is in the package; no URL of another host anywhere in the page."""
    from lab.ui.server import CSP, STATIC

    for f in STATIC.iterdir():
        text = f.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, f.name
        assert not re.search(r"""(src|href)=["']//""", text), f.name
    assert "default-src 'none'" in CSP and "http" not in CSP
    script = (STATIC / "app.js").read_text()
    assert "new EventSource(" in script and "setInterval" not in script  # pushed, never polled


def test_supervisor_log_heals() -> None:
    e = parse_supervisor("2026-11-30T19:40:01 healed onprem in 3.1 s")
    assert e is not None and (e.kind, e.node) == ("heal", "onprem")
    assert parse_supervisor("2026-11-30T19:29:36 supervising lab x (pid 1)") is None


def test_snapshot_diff_names_what_changed() -> None:
    before = Summary(nodes={"onprem": "running"}, tunnels={"azgw-0~c": ("c", "up")}, active={"azgw": "azgw-0"})
    after = Summary(nodes={"onprem": "exited"}, tunnels={"azgw-0~c": ("c", "down")},
                    faults={"onprem": "kill onprem"}, active={"azgw": "azgw-1"})
    got = {(e.kind, e.text) for e in diff(before, after, 1.0)}
    assert got == {("node", "node onprem: running -> exited"), ("fault", "fault kill onprem"),
                   ("failover", "gateway azgw: active instance azgw-0 -> azgw-1"),
                   ("tunnel", "tunnel c: up -> down")}
    assert {(e.kind, e.text) for e in diff(after, before, 2.0)} >= {("restore", "restored kill onprem")}


def test_log_tail_reads_new_lines_and_starts_over_on_a_new_file(tmp_path: Path) -> None:
    log = tmp_path / "charon.log"
    log.write_text("a\nb\npart")
    tail = LogTail(log)
    assert tail.read() == ["a", "b"]
    with log.open("a") as f:
        f.write("ial\nc\n")
    assert tail.read() == ["partial", "c"]
    assert tail.read() == []
    log.unlink()
    log.write_text("new\n")  # a restarted node writes its log afresh
    assert tail.read() == ["new"]


# ---- token, scrubber, actions ---------------------------------------------------------------------------


def test_token_check() -> None:
    token = new_token()
    assert len(token) >= 32 and new_token() != token
    assert authorized(f"/lab/x?token={token}", {}, token)
    assert authorized("/api/state", {"X-Lab-Token": token}, token)
    assert not authorized("/lab/x", {}, token)
    assert not authorized("/lab/x?token=wrong", {}, token)
    assert not authorized(f"/lab/x?token={token[:-1]}", {}, token)
    assert not authorized("/lab/x?token=", {}, "")  # a server without a token answers nothing


def test_redact_removes_keys_and_pem() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----"
    text = redact(f"psk=Sup3rSecretKey and {pem} and Sup3rSecretKey2", ["Sup3rSecretKey", "Sup3rSecretKey2"])
    assert "Sup3r" not in text and "MIIB" not in text and text.count(MASK) == 3


def test_actions_are_checked_against_the_lab(tmp_path: Path) -> None:
    topo, plan = _load("s2s-route-based")
    lab = SimpleNamespace(topo=topo, plan=plan)
    a = actions.plan_action({"action": "fault", "kind": "kill", "node": "onprem"}, lab, None, tmp_path)
    assert a.argv == ("fault", "kill", "onprem", "--lab", "s2s-rb")
    a = actions.plan_action({"action": "fault", "kind": "loss", "node": "onprem", "percent": 30}, lab, None, tmp_path)
    assert a.argv == ("fault", "loss", "onprem:eth0", "30", "--lab", "s2s-rb")
    assert actions.plan_action({"action": "restore"}, lab, None, tmp_path).argv == ("restore", "--lab", "s2s-rb")
    a = actions.plan_action({"action": "failover", "gateway": "azgw", "planned": False}, lab, None, tmp_path)
    assert a.argv == ("failover", "azgw", "--unplanned", "--lab", "s2s-rb", "--json", "--plot",
                      str(tmp_path / actions.PLOT_FILE))
    a = actions.plan_action({"action": "failover", "gateway": "azgw", "duration": 20}, lab, None, tmp_path)
    assert a.argv[:5] == ("failover", "azgw", "--planned", "--duration", "20")
    assert actions.plan_action({"action": "reset", "gateway": "azgw"}, lab, None, tmp_path).argv == (
        "reset", "azgw", "--lab", "s2s-rb")
    assert actions.plan_action({"action": "verify"}, lab, None, tmp_path).argv == ("verify", "s2s-rb", "--json")
    a = actions.plan_action({"action": "capture"}, lab, None, tmp_path)
    assert a.argv == ("verify", "s2s-rb", "--json", "--pcap", str(tmp_path), "--wireshark-keys",
                      str(tmp_path / actions.KEYS_FILE))
    a = actions.plan_action({"action": "scenario-check"}, lab, "s2s-rb", tmp_path)
    assert a.argv == ("scenario", "check", "--json")
    for bad, field in [({"action": "fault", "kind": "kill", "node": "evil; rm -rf /"}, "node"),
                       ({"action": "fault", "kind": "explode", "node": "onprem"}, "kind"),
                       ({"action": "fault", "kind": "loss", "node": "onprem", "percent": 0}, "percent"),
                       ({"action": "fault", "kind": "link-down", "node": "onprem", "iface": "eth9"}, "iface"),
                       ({"action": "reset", "gateway": "nope"}, "gateway"),
                       ({"action": "failover", "gateway": "azgw", "duration": 1}, "duration"),
                       ({"action": "failover", "gateway": "azgw", "duration": "9; rm"}, "duration"),
                       ({"action": "scenario-hint"}, "action"),
                       ({"action": "rm"}, "action")]:
        with pytest.raises(actions.ActionError, match=f"^{field}:"):
            actions.plan_action(bad, lab, None, tmp_path)


def test_an_action_runs_as_the_lab_command_with_its_output_directory_made(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The plot of a failover goes into the capture directory, which no capture may have made yet."""
    seen = {}

    def fake_run(argv, **kw):  # noqa: ANN001, ANN202
        seen.update(argv=argv, dir=(tmp_path / "cap").is_dir(), home=kw["env"]["LAB_HOME"])
        return SimpleNamespace(returncode=0, stdout='{"t0": 1.0}', stderr="")

    monkeypatch.setattr(actions.subprocess, "run", fake_run)
    a = actions.Action("failover", ("failover", "azgw", "--json", "--plot", str(tmp_path / "cap" / "p.png")))
    res = actions.run_action(a, tmp_path / "home", tmp_path / "cap")
    assert seen["dir"] and seen["argv"][-5:] == list(a.argv) and seen["home"] == str(tmp_path / "home")
    assert res["ok"] and res["data"] == {"t0": 1.0} and res["command"] == "lab " + " ".join(a.argv)


# ---- the Tunnels panel: both ends' settings beside Azure's --------------------------------------------------


def _scenario(name: str):  # noqa: ANN202
    from lab.device.byo import byo_sites

    path = ROOT / "scenarios" / name / "topology.yml"
    topo, _ = load_file(path)
    return topo, build_plan(topo), byo_sites(topo, path.parent)


def test_a_byo_devices_lifetimes_dpd_and_proposals_are_shown_beside_azures() -> None:
    from lab.ui.tunnels import byo_settings

    topo, _, byo = _scenario("lifetime-dpd-mismatch")
    st = byo_settings(topo, byo)[("onprem", "azgw-onprem")]
    assert (st.ike_lifetime_s, st.child_lifetime_s, st.dpd) == (10800, 3600, "delay 5 s")  # its own config
    assert st.azure == {"ike_lifetime_s": "28800 s", "child_lifetime_s": "27000 s", "dpd": "delay 31 s"}
    assert st.ike_proposals == ["aes256-sha1-modp1024"] and st.esp_proposals == ["aes256gcm16"]  # Azure accepts
    assert st.child_lifetime_kb == 104857600000 // 1024


def test_a_devices_proposal_azure_refuses_is_flagged() -> None:
    from lab.device.byo import ByoConfig
    from lab.ui.tunnels import byo_settings

    topo, _, byo = _scenario("lifetime-dpd-mismatch")
    cfg = byo["onprem"]
    text = cfg.main.replace("esp_proposals = aes256gcm16", "esp_proposals = des-md5").replace(
        "life_bytes = 104857600000", "")
    st = byo_settings(topo, {"onprem": ByoConfig("onprem", "swanctl", {"swanctl.conf": text})})[
        ("onprem", "azgw-onprem")]
    assert "esp_proposals" in st.azure and "aes256gcm16" in st.azure["esp_proposals"]  # Azure's list beside
    assert st.child_lifetime_kb == 0 and st.azure["child_lifetime_kb"] == "102400000 KB"  # no volume limit
    text = text.replace("life_time = 3600s", "").replace("rekey_time = 10800s", "").replace("dpd_delay = 5s", "")
    st = byo_settings(topo, {"onprem": ByoConfig("onprem", "swanctl", {"swanctl.conf": text})})[
        ("onprem", "azgw-onprem")]
    assert (st.ike_lifetime_s, st.child_lifetime_s, st.dpd) == (14400, 3564, "off")  # rekey_time 3240 s + 10 %
    text = text.replace("rekey_time = 3240s", "")
    st = byo_settings(topo, {"onprem": ByoConfig("onprem", "swanctl", {"swanctl.conf": text})})[
        ("onprem", "azgw-onprem")]
    assert (st.ike_lifetime_s, st.child_lifetime_s, st.dpd) == (14400, 3960, "off")  # strongSwan's defaults


def test_tunnel_details_show_both_ends_settings_even_without_an_sa() -> None:
    from lab.render.sa_settings import sa_settings
    from lab.ui.tunnels import tunnel_details

    topo, plan = _load("s2s-route-based")
    st = _status(plan, [_sa("azgw-0", "azgw-onprem")])  # the device has no SA
    details = tunnel_details(build_graph(topo, plan, Live(st)), st, sa_settings(topo))
    (tunnel,) = details
    gw, dev = tunnel["ends"]
    assert gw["sas"][0]["settings"]["child_lifetime_s"] == 27000 and gw["sas"][0]["settings"]["azure"] == {}
    assert dev["sas"] == [] and dev["settings"]["ike_lifetime_s"] == 28800  # the rendered device: Azure's


# ---- the server refuses requests without the token -------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path):  # noqa: ANN201
    notes: list[str] = []
    col = SimpleNamespace(name="ui-unit", snapshot={}, action={"running": None},
                          lab=SimpleNamespace(dir=SimpleNamespace(root=tmp_path)),
                          state_json=lambda with_svg=True: json.dumps({"lab": "ui-unit"}),
                          note=lambda *a: notes.append(a), set_action=lambda *a: notes.append(a))
    srv = UiServer(("127.0.0.1", 0), col, new_token(), notes.append)  # type: ignore[arg-type]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv, notes
    srv.shutdown()
    srv.server_close()


def _fetch(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_every_route_refuses_a_request_without_the_token(server) -> None:  # noqa: ANN001
    srv, notes = server
    base = srv.url().split("/lab/")[0]
    for path in ("/", "/lab/ui-unit", "/static/app.js", "/api/state", "/api/events", "/api/captures",
                 "/api/capture/x.pcap", "/nothing"):
        for suffix in ("", "?token=", "?token=wrong"):
            code, body = _fetch(base + path + suffix)
            assert code == 403 and b"token" in body, (path, suffix)
    code, _ = _fetch(base + "/api/action", json.dumps({"action": "verify"}).encode(),
                     {"Content-Type": "application/json"})
    assert code == 403 and notes == []  # nothing started
    code, body = _fetch(srv.url())
    assert code == 200 and b"/static/app.js?token=" in body
    code, body = _fetch(base + "/api/state", headers={"X-Lab-Token": srv.token})
    assert code == 200 and json.loads(body) == {"lab": "ui-unit"}
    assert srv.server_address[0] == "127.0.0.1"


# ---- the collector on the seams' fakes: what a page is pushed -------------------------------------------


def test_collector_publishes_changes_only_and_scrubs_keys(tmp_path: Path) -> None:
    from lab.secrets import resolve_keys
    from lab.ui.live import Collector
    from tests.fakes import FakeControl, FakeRuntime, running

    text = (ROOT / "topologies" / "s2s-route-based.yml").read_text().replace(
        "    ike_version: IKEv2", '    ike_version: IKEv2\n    shared_key: "UnitTestSharedKey42"')
    topo, plan = load_file_text(text)
    d = LabDir.of(tmp_path, topo.name)
    d.write(text, resolve_keys(topo, {}), {}, [n.name for n in plan.nodes], "libipsec")
    up = [_ike("azgw-onprem")]
    col = Collector(topo.name, tmp_path, FakeRuntime(nodes=running(topo.name, plan.nodes)),
                    lambda sock: FakeControl(snapshots=[up]), clock=lambda: 1000.0)
    col.tick()
    first = col.version
    state = json.loads(col.state_json())
    assert 'data-node="onprem"' in state["svg"] and state["lab"] == topo.name
    assert [e["state"] for e in state["graph"]["edges"] if e["kind"] == "tunnel"] == ["up"]
    col.tick()
    assert col.version == first  # nothing changed: nothing pushed
    col.note("action", "onprem", "output that quotes UnitTestSharedKey42 by mistake")
    col.set_action(None, {"name": "verify", "output": "key UnitTestSharedKey42", "ok": True})
    _, events = col.events_since(0)
    assert col.version > first
    assert "UnitTestSharedKey42" not in json.dumps(events) + col.state_json()
    assert MASK in events[-1]["text"]


def _read_until(sock, end: bytes) -> bytes:  # noqa: ANN001 - a socket
    data = b""
    while end not in data:
        chunk = sock.recv(1 << 16)
        assert chunk, data
        data += chunk
    return data


def test_the_event_stream_sends_the_state_once_collected_then_only_changes(tmp_path: Path) -> None:
    """A page opened before the first collection waits for it (never an empty state); a tick that changes
    nothing sends nothing."""
    from lab.secrets import resolve_keys
    from lab.ui.live import Collector
    from tests.fakes import FakeControl, FakeRuntime, running

    text = (ROOT / "topologies" / "s2s-route-based.yml").read_text()
    topo, plan = load_file_text(text)
    LabDir.of(tmp_path, topo.name).write(text, resolve_keys(topo, {}), {}, [n.name for n in plan.nodes], "libipsec")
    col = Collector(topo.name, tmp_path, FakeRuntime(nodes=running(topo.name, plan.nodes)),
                    lambda sock: FakeControl(snapshots=[[_ike("azgw-onprem")]]), clock=lambda: 1000.0)
    srv = UiServer(("127.0.0.1", 0), col, new_token(), lambda line: None)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sock = socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=5)
    try:
        sock.sendall(f"GET /api/events?token={srv.token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = _read_until(sock, b"\r\n\r\n")
        assert b" 200 " in head.split(b"\r\n")[0] and b"text/event-stream" in head
        assert not select.select([sock], [], [], 0.5)[0]  # nothing before the first collection
        col.tick()
        event = _read_until(sock, b"\n\n").decode()
        assert event.startswith("event: state\ndata: ")
        state = json.loads(event.split("data: ", 1)[1])
        assert state["lab"] == topo.name and 'data-node="onprem"' in state["svg"]
        version = col.version
        col.tick()  # nothing changed: nothing published, nothing sent
        assert col.version == version and not select.select([sock], [], [], 0.5)[0]
    finally:
        sock.close()
        col.close()
        srv.stopping.set()
        srv.shutdown()
        srv.server_close()


def load_file_text(text: str):  # noqa: ANN201
    from lab.topology.load import load_text

    topo, _ = load_text(text, "t.yml")
    return topo, build_plan(topo)


def _ike(name: str):  # noqa: ANN202
    from lab.control.base import ChildSaStatus, IkeSaStatus

    return IkeSaStatus(name=name, uniqueid=1, state="ESTABLISHED", version=2, local_host="a", remote_host="b",
                       children=[ChildSaStatus(name=name, uniqueid=1, state="INSTALLED", encr_alg="AES_GCM_16")])
