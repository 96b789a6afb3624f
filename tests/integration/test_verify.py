"""`lab verify` for real: every check passes on the reference lab, and each one fails when the lab is
broken the way it guards against (traffic in clear, widened selectors). Unique lab names per test."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.helpers import ROOT, conn_control, host_network, lab_name, run_lab

pytestmark = pytest.mark.integration
REFERENCE = ROOT / "topologies" / "s2s-route-based.yml"
CONN = "azgw-onprem"


def unique(tag: str) -> str:
    return lab_name(f"v-{tag}")


def up_copy(name: str, tmp: Path, home: Path, dataplane: str) -> None:
    data = yaml.safe_load(REFERENCE.read_text())
    data["name"] = name
    path = tmp / f"{name}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    res = run_lab("up", str(path), "--dataplane", dataplane, home=home)
    assert res.returncode == 0, res.stderr
    assert f"data plane: {dataplane} (requested with --dataplane" in res.stderr


def verify_json(name: str, home: Path, *extra: str) -> tuple[int, dict, str]:
    res = run_lab("verify", name, "--json", *extra, home=home)
    assert res.stdout.strip(), res.stderr
    report = json.loads(res.stdout)
    return res.returncode, report, res.stderr


def checks(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


def test_reference_lab_passes_and_saved_capture_decrypts_in_tshark(
        lab_home: Path, image: str, cleanup_lab: list[str], tmp_path: Path, dataplane: str) -> None:
    before = host_network()
    name = unique("ok" + dataplane[0])
    cleanup_lab.append(name)
    up_copy(name, tmp_path, lab_home, dataplane)
    keys_file = tmp_path / "esp_sa"
    code, report, stderr = verify_json(name, lab_home, "--pcap", str(tmp_path / "pcap"),
                                       "--wireshark-keys", str(keys_file))
    by_name = checks(report)
    assert code == 0, stderr + json.dumps(report, indent=1)
    assert list(by_name) == ["reachability", "encrypted", "spis", "selectors", "decryption", "dataplane"]
    assert all(c["passed"] for c in report["checks"])
    plane = by_name["dataplane"]["data"]
    assert plane["dataplane"] == dataplane
    if dataplane == "kernel":  # raw ESP; every vici SPI an XFRM state; XFRM counters cover the wire
        assert plane["esp_raw"] >= 40 and plane["esp_udp"] == 0, plane
        assert all(sa["xfrm_out"] >= sa["wire"] and sa["xfrm_in"] >= sa["wire"] for sa in plane["sas"]), plane
    else:  # ESP in UDP 4500, nothing in the kernel's SAD
        assert plane["esp_udp"] >= 40 and plane["esp_raw"] == 0, plane
        assert not any(plane["xfrm_states"].values()), plane
    assert {p["received"] for p in by_name["reachability"]["data"]["probes"]} != {0}
    assert by_name["decryption"]["data"]["with_marker"] >= 40  # 10 ICMP + 10 UDP, both ways, request+answer
    pcap = Path(report["pcap"])
    read = subprocess.run(["tcpdump", "-n", "-r", str(pcap)], capture_output=True, text=True)
    assert read.returncode == 0 and "ESP(spi=" in read.stdout, read.stderr
    assert ("UDP-encap" in read.stdout) == (dataplane == "libipsec"), read.stdout[:2000]
    assert oct(keys_file.stat().st_mode & 0o777) == "0o600"
    assert keys_file.read_text().count('"AES-GCM with 16 octet ICV [RFC4106]"') == 2
    plain = subprocess.run(["tshark", "-n", "-r", str(pcap)], capture_output=True, text=True,
                           env={**os.environ, "HOME": str(tmp_path / "nokeys")})
    assert "Echo (ping) request" not in plain.stdout  # without keys: ESP only
    wsdir = tmp_path / "home" / ".config" / "wireshark"
    wsdir.mkdir(parents=True)
    (wsdir / "esp_sa").write_text(keys_file.read_text())
    tshark = ["tshark", "-n", "-r", str(pcap), "-o", "esp.enable_encryption_decode:TRUE"]
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    dec = subprocess.run(tshark, capture_output=True, text=True, env=env)
    assert re.search(r"10\.1\.0\.10 → 10\.2\.0\.10 +ICMP .*Echo \(ping\) request", dec.stdout), dec.stderr
    assert re.search(r"10\.2\.0\.10 → 10\.1\.0\.10 +ICMP .*Echo \(ping\) reply", dec.stdout), dec.stdout
    fields = subprocess.run([*tshark, "-Y", "icmp", "-T", "fields", "-e", "data.data"], capture_output=True,
                            text=True, env=env).stdout.split()
    assert any(report["marker"].encode() in bytes.fromhex(f) for f in fields), fields[:3]
    assert run_lab("down", name, home=lab_home).returncode == 0
    assert host_network() == before


def _control(home: Path, name: str, node: str):  # noqa: ANN202 - ViciControl
    """The charon of `node` that holds CONN (on libipsec a route-based tunnel's own: helpers.conn_control)."""
    return conn_control(home, name, node, CONN)


def test_traffic_in_clear_fails_encrypted_with_the_leaked_marker(
        lab_home: Path, image: str, cleanup_lab: list[str], tmp_path: Path, dataplane: str) -> None:
    name = unique("clear" + dataplane[0])
    cleanup_lab.append(name)
    up_copy(name, tmp_path, lab_home, dataplane)
    gw = _control(lab_home, name, "azgw-0")
    try:
        gw.unload_conn(CONN)  # tunnel down, and it stays down (its routes go with it: docs/route-based.md)
    finally:
        gw.close()
    for node, prefix, via in (("azgw-0", "10.2.0.0/16", "198.51.100.10"), ("onprem", "10.1.0.0/16", "203.0.113.10")):
        for argv in (["nft", "flush", "ruleset"], ["ip", "route", "replace", prefix, "via", via]):
            res = run_lab("exec", node, "--lab", name, "--", *argv, home=lab_home)
            assert res.returncode == 0, res.stdout + res.stderr
    code, report, _ = verify_json(name, lab_home)
    by_name = checks(report)
    assert code == 1
    assert by_name["reachability"]["passed"], by_name["reachability"]  # traffic flowed: in clear
    enc = by_name["encrypted"]
    assert not enc["passed"]
    # both hosts probe at once: either direction's ICMP may be among the first frames shown
    leaked = [f"carries the marker in clear: '{report['marker']}|icmp:{d}|" for d in ("vm1>pc1", "pc1>vm1")]
    assert any(w in e for w in leaked for e in enc["evidence"]), enc
    for failed in ("spis", "decryption", "selectors", "dataplane"):
        assert not by_name[failed]["passed"], by_name[failed]


def test_widened_selector_fails_selectors(lab_home: Path, image: str, cleanup_lab: list[str],
                                          tmp_path: Path, dataplane: str) -> None:
    from lab import core
    from lab.render.connections import render_swanctl
    from lab.render.swanctl import SwanctlConfig

    if dataplane == "libipsec":
        pytest.skip("route-based on libipsec: 0/0 on both ends, routes decide (test_route_to_an_outside_prefix...)")
    name = unique("wide" + dataplane[0])
    cleanup_lab.append(name)
    up_copy(name, tmp_path, lab_home, dataplane)
    lab = core.load_running(name, lab_home)
    site_cfg = render_swanctl(lab.topo, lab.dir.read_keys())["onprem"]
    conns = copy.deepcopy(site_cfg.connections)
    conns[CONN]["children"][CONN]["local_ts"] = ["10.2.0.0/16", "10.99.0.0/16"]  # type: ignore[index]
    # libipsec needs a local address inside every local selector; it also makes 10.99.0.1 answer
    res = run_lab("exec", "onprem", "--lab", name, "--", "ip", "addr", "add", "10.99.0.1/32", "dev", "lo",
                  home=lab_home)
    assert res.returncode == 0, res.stdout
    site, gw = _control(lab_home, name, "onprem"), _control(lab_home, name, "azgw-0")
    try:
        site.load(SwanctlConfig(conns, site_cfg.secrets))
        gw.terminate_ike(CONN)
        gw.initiate(CONN, CONN, timeout=15)
        child = next(sa for sa in gw.sas() if sa.state == "ESTABLISHED").child(CONN)
        assert child is not None and "10.99.0.0/16" in child.remote_ts, child
    finally:
        site.close()
        gw.close()

    code, report, _ = verify_json(name, lab_home)
    by_name = checks(report)
    assert code == 1
    sel = by_name["selectors"]
    assert not sel["passed"]
    assert sel["data"]["counters_grew"] > 0
    assert any("ICMP vm1 -> 10.99.0.1: carried by the tunnel" in e for e in sel["evidence"]), sel
    for ok in ("reachability", "encrypted", "spis", "decryption"):
        assert by_name[ok]["passed"], by_name[ok]


def test_route_to_an_outside_prefix_fails_selectors(lab_home: Path, image: str, cleanup_lab: list[str],
                                                   tmp_path: Path, dataplane: str) -> None:
    """Route-based on libipsec (0/0 on both ends): the routes decide what a tunnel carries. A route that sends the
    probe destination outside every prefix into the tunnel interface makes the tunnel carry it: the check fails."""
    if dataplane != "libipsec":
        pytest.skip("tunnel interfaces exist on the libipsec data plane only (docs/route-based.md)")
    name = unique("route")
    cleanup_lab.append(name)
    up_copy(name, tmp_path, lab_home, dataplane)
    for node, argv in (("onprem", ["ip", "addr", "add", "10.99.0.1/32", "dev", "lo"]),  # it answers, too
                       ("azgw-0", ["ip", "route", "add", "10.99.0.0/16", "dev", f"vti-{CONN}"])):
        res = run_lab("exec", node, "--lab", name, "--", *argv, home=lab_home)
        assert res.returncode == 0, res.stdout
    code, report, _ = verify_json(name, lab_home)
    by_name = checks(report)
    assert code == 1
    sel = by_name["selectors"]
    assert not sel["passed"] and sel["data"]["counters_grew"] > 0
    assert any("ICMP vm1 -> 10.99.0.1: carried by the tunnel" in e for e in sel["evidence"]), sel
    for ok in ("reachability", "encrypted", "spis", "decryption"):
        assert by_name[ok]["passed"], by_name[ok]


def test_verify_of_a_lab_that_is_not_there_exits_2(lab_home: Path) -> None:
    res = run_lab("verify", unique("none"), home=lab_home)
    assert res.returncode == 2, res.stderr
    assert "has no state directory" in res.stderr
