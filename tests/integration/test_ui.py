"""`lab ui` in a real headless Chromium against one real lab (module-scoped): the reference topology as the
training scenario lifetime-dpd-mismatch runs it (same nodes; the tunnel up, the site's lifetimes not Azure's).
The page shows every node; `lab fault kill` on the site device turns its tunnel red within 5 s and `lab restore`
green again; a scenario check from the page grades as `lab scenario check` does; no request without the token
is answered, nothing listens beyond loopback, no shared key reaches the page; `lab down` stops the server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lab.plan import build_plan
from lab.topology.load import load_file
from lab.ui import browser
from tests.integration.helpers import ROOT, first_event, lab_argv, lab_leftovers, lab_name, run_lab

pytestmark = pytest.mark.integration
SCENARIO = "lifetime-dpd-mismatch"
EDGE = "azgw-0~azgw-onprem"
SHARED_KEY = "TrainingKey-lifetime-dpd-mismatch"  # the scenario topology's shared_key


def _edge_state_js() -> str:
    """A JS expression: the tunnel edge's state as the graph draws it (data-state on its SVG path)."""
    return f"(document.querySelector('#graph [data-edge=\"{EDGE}\"]') || {{dataset: {{}}}}).dataset.state"


@pytest.fixture(scope="module")
def ui_lab(tmp_path_factory: pytest.TempPathFactory, image: str) -> Iterator[tuple[str, Path]]:
    """The scenario's lab under a name of this run, in a LAB_HOME of its own (scenario.json is per home)."""
    home = tmp_path_factory.mktemp("ui-home")
    name = lab_name("ui")
    try:
        res = run_lab("scenario", "start", SCENARIO, "--lab", name, home=home, timeout=240)
        assert res.returncode == 0, res.stdout + res.stderr
        yield name, home
    finally:
        run_lab("down", name, home=home, timeout=120)
        run_lab("scenario", "stop", home=home, timeout=120)
        assert lab_leftovers(name) == []


@pytest.fixture(scope="module")
def ui_server(ui_lab: tuple[str, Path]) -> Iterator[tuple[str, subprocess.Popen]]:
    """`lab ui NAME` as a user starts it; yields the URL it prints (with the token) and its process."""
    name, home = ui_lab
    argv, env = lab_argv("ui", name, home=home)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the URL is printed (or the process exits)
        url = line.removeprefix("lab ui: ").strip()
        assert url.startswith("http://127.0.0.1:") and "token=" in url, line
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


@pytest.fixture(scope="module")
def page(ui_server: tuple[str, subprocess.Popen]) -> Iterator[browser.Browser]:
    assert browser.available(), "chromium and chromedriver are needed: scripts/host-setup.sh installs them"
    b = browser.Browser()
    try:
        b.get(ui_server[0])
        b.wait("return document.querySelectorAll('#graph [data-node]').length > 0", 30, "the graph")
        yield b
    finally:
        b.close()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_page_shows_every_node_of_the_reference_lab(page: browser.Browser) -> None:
    topo, _ = load_file(ROOT / "topologies" / "s2s-route-based.yml")
    want = sorted([n.name for n in build_plan(topo).nodes] + ["internet"])
    shown = page.js("return Array.from(document.querySelectorAll('#graph [data-node]')).map(n => n.dataset.node)")
    assert sorted(shown) == want
    page.wait(f"return ({_edge_state_js()}) === 'up'", 60, "the tunnel up")
    assert page.js("return document.querySelector('#graph [data-node=\"azgw-0\"] .badge').textContent") == "ACTIVE"
    # the tunnel table: both ends' SPIs and proposals; each end's lifetimes, DPD and offered proposals beside
    # Azure's: the gateway's are Azure's, the site device's own config (the scenario's mismatch) is not
    rows = page.js(f"return Array.from(document.querySelectorAll('#tunnels [data-edge=\"{EDGE}\"] tr')).map("
                   "r => r.textContent.replace(/\\s+/g, ' '))")
    gw, dev = (next(r for r in rows if r.strip().startswith(n)) for n in ("azgw-0", "onprem"))
    for row in (gw, dev):
        assert "SPI in" in row and "INSTALLED" in row and "offers IKE" in row and "offers ESP" in row, row
    assert "child 27000 s (= Azure)" in gw and "IKE 28800 s (= Azure)" in gw, gw
    assert "child 3600 s (Azure: 27000 s)" in dev and "IKE 10800 s (Azure: 28800 s)" in dev, dev
    assert "DPD delay 5 s (Azure: delay 31 s)" in dev and "offers ESP aes256gcm16 (= Azure)" in dev, dev
    # the timeline is fed by the charons' own events
    page.wait("return document.querySelector('#timeline').textContent.includes('CHILD_SA azgw-onprem up')", 10,
              "charon's CHILD_SA up in the timeline")
    # offline: everything the page loaded came from this server
    origin = page.js("return location.origin")
    loaded = page.js("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(u.startswith(origin + "/") for u in loaded), loaded


def test_requests_without_the_token_are_refused_and_only_loopback_listens(
        ui_server: tuple[str, subprocess.Popen]) -> None:
    url, _ = ui_server
    base, token = url.split("/lab/")[0], url.split("token=")[1]
    for path in ("/", url.split(base)[1].split("?")[0], "/api/state", "/api/events", "/static/app.js",
                 "/api/captures", "/api/capture/esp_sa"):
        code, _ = _get(base + path)
        assert code == 403, path
        code, _ = _get(base + path + "?token=" + token[::-1])
        assert code == 403, path
    req = urllib.request.Request(base + "/api/action", data=b'{"action": "restore"}', method="POST",
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=10)
    assert refused.value.code == 403
    port = int(base.rsplit(":", 1)[1])
    listening = [ln.split()[1] for ln in Path("/proc/net/tcp").read_text().splitlines()[1:]
                 if ln.split()[3] == "0A" and int(ln.split()[1].split(":")[1], 16) == port]
    assert listening == [f"0100007F:{port:04X}"]  # 127.0.0.1 only
    assert not any(int(ln.split()[1].rsplit(":", 1)[1], 16) == port and ln.split()[3] == "0A"
                   for ln in Path("/proc/net/tcp6").read_text().splitlines()[1:])


def test_no_shared_key_in_the_page_or_the_api(ui_lab: tuple[str, Path], ui_server: tuple[str, subprocess.Popen],
                                              page: browser.Browser) -> None:
    name, home = ui_lab
    url, _ = ui_server
    base, token = url.split("/lab/")[0], url.split("token=")[1]
    secrets = {SHARED_KEY, *map(str, (yaml.safe_load((home / name / "keys.yml").read_text()) or {}).values())}
    texts = [_get(url)[1], _get(f"{base}/api/state?token={token}")[1],
             page.js("return document.documentElement.outerHTML")]
    with urllib.request.urlopen(f"{base}/api/events?token={token}", timeout=10) as r:
        texts.append(first_event(r))  # the whole state
    for text in texts:
        assert len(text) > 100
        for s in secrets:
            assert s not in text
        assert "PRIVATE KEY" not in text


def test_fault_kill_turns_the_tunnel_red_within_5_s_and_restore_green(
        ui_lab: tuple[str, Path], page: browser.Browser) -> None:
    name, home = ui_lab
    page.wait(f"return ({_edge_state_js()}) === 'up'", 60, "the tunnel up before the fault")
    res = run_lab("fault", "kill", "onprem", "--lab", name, home=home, timeout=60)
    assert res.returncode == 0, res.stderr
    t0 = time.monotonic()
    page.wait(f"return ({_edge_state_js()}) === 'down'", 5, "the tunnel red after `lab fault kill onprem`")
    red_after = time.monotonic() - t0
    assert page.js("return document.querySelector('#graph [data-node=\"onprem\"]').dataset.state") != "running"
    page.wait("return document.querySelector('#timeline').textContent.includes('fault kill onprem')", 10,
              "the fault in the timeline")
    res = run_lab("restore", "--lab", name, home=home, timeout=180)
    assert res.returncode == 0, res.stderr
    t1 = time.monotonic()
    page.wait(f"return ({_edge_state_js()}) === 'up'", 30, "the tunnel green after `lab restore`")
    print(f"tunnel red {red_after:.1f} s after the kill, green {time.monotonic() - t1:.1f} s after restore returned")
    page.wait("return document.querySelector('#timeline').textContent.includes('restored kill onprem')", 10,
              "the restore in the timeline")


def _action_done(page: browser.Browser, name: str, timeout: float) -> bool:
    """Wait for the page to show the result of its action `name`; whether it says OK."""
    sel = f"#action-result [data-action=\"{name}\"]"
    page.wait(f"return document.querySelector('{sel}') && !document.querySelector('#action-state')"
              ".textContent.startsWith('running')", timeout, f"the page's {name} result")
    return page.js(f"return document.querySelector('{sel}').dataset.ok") == "true"


def _select(page: browser.Browser, node: str) -> None:
    """Click the node in the graph (what a user does before a node action)."""
    page.js("document.querySelector(`#graph [data-node=\"${arguments[0]}\"]`).dispatchEvent("
            "new MouseEvent('click', {bubbles: true}))", node)
    assert page.js("return document.querySelector('#node').value") == node


def test_fault_and_restore_from_the_page(page: browser.Browser) -> None:
    page.wait(f"return ({_edge_state_js()}) === 'up'", 60, "the tunnel up before the page's fault")
    _select(page, "onprem")
    page.js("document.querySelector('#fault-kind').value = 'pause'")
    page.click("#btn-fault")
    page.wait(f"return ({_edge_state_js()}) === 'down'", 15, "the tunnel red after the page's pause")
    assert _action_done(page, "fault", 60)
    assert page.js("return document.querySelector('#graph [data-node=\"onprem\"] .badge').textContent") == "PAUSE"
    page.wait("return document.querySelector('#timeline').textContent.includes('fault pause onprem')", 10,
              "the page's fault in the timeline")
    page.click("#btn-restore")
    assert _action_done(page, "restore", 180)
    page.wait(f"return ({_edge_state_js()}) === 'up'", 30, "the tunnel green after the page's restore")
    page.wait("return document.querySelector('#timeline').textContent.includes('restored pause onprem')", 10,
              "the page's restore in the timeline")


def test_capture_from_the_page_verifies_and_its_pcap_decrypts_with_its_keys(
        ui_server: tuple[str, subprocess.Popen], page: browser.Browser, tmp_path: Path) -> None:
    """*capture Internet link* is `lab verify --pcap --wireshark-keys`: its checks on the page, the pcap and the
    esp_sa file to download, and Wireshark's dissector (tshark) decrypts the one with the other."""
    page.wait(f"return ({_edge_state_js()}) === 'up'", 60, "the tunnel up before the capture")
    packets = "return Array.from(document.querySelectorAll('#tunnels [data-packets-in]')).reduce(" \
              "(n, e) => n + Number(e.dataset.packetsIn), 0)"
    before = page.js(packets)
    page.click("#btn-capture")
    assert _action_done(page, "capture", 240)
    checks = page.js("return Array.from(document.querySelectorAll('#action-result tr')).map("
                     "r => [r.cells[1].textContent, r.cells[0].textContent])")
    assert [c for c, _ in checks] == ["reachability", "encrypted", "spis", "selectors", "decryption", "dataplane"]
    assert {v for _, v in checks} == {"PASS"}, checks
    page.wait(f"{packets} > arguments[0]", 10, "the tunnel's packet counters growing on the page", before)
    links = page.wait("return Array.from(document.querySelectorAll('#downloads a')).map(a => a.href)", 10,
                      "the capture's download links")
    files = {u.split("/api/capture/")[1].split("?")[0]: u for u in links}
    assert "esp_sa" in files and any(f.endswith(".pcap") for f in files), files
    for name, href in files.items():
        code, _ = _get(href.split("?")[0])
        assert code == 403  # a download without the token is refused too
        with urllib.request.urlopen(href, timeout=30) as r:
            (tmp_path / name).write_bytes(r.read())
    keys = (tmp_path / "esp_sa").read_text()
    shown = page.js("return document.querySelector('#tunnels').textContent")
    spis = re.findall(r'"0x([0-9a-f]{8})"', keys)
    assert len(spis) == 2 and all(spi in shown for spi in spis), (spis, shown)  # the SAs the page shows
    wsdir = tmp_path / "home" / ".config" / "wireshark"
    wsdir.mkdir(parents=True)
    (wsdir / "esp_sa").write_text(keys)
    pcap = next(tmp_path / f for f in files if f.endswith(".pcap"))
    dec = subprocess.run(["tshark", "-n", "-r", str(pcap), "-o", "esp.enable_encryption_decode:TRUE"],
                         capture_output=True, text=True, env={**os.environ, "HOME": str(tmp_path / "home")})
    assert re.search(r"10\.1\.0\.10 → 10\.2\.0\.10 +ICMP .*Echo \(ping\) request", dec.stdout), dec.stdout[:2000]


def test_scenario_hint_from_the_page(ui_lab: tuple[str, Path], page: browser.Browser) -> None:
    page.wait("return !document.querySelector('#scenario-card').hidden", 10, "the scenario card")
    assert "IKE SA 28,800 s" in page.js("return document.querySelector('#scenario-task').textContent")
    page.click("#btn-hint")
    assert _action_done(page, "scenario-hint", 60)
    shown = page.js("return document.querySelector('#scenario-result').textContent")
    assert "lab diagnose" in shown and "lifetime-mismatch" in shown, shown  # the first hint
    page.wait("return document.querySelector('#btn-hint').textContent.includes('(1/3 shown)')", 10,
              "the hint count")


def test_scenario_check_from_the_page_matches_the_command(ui_lab: tuple[str, Path], page: browser.Browser) -> None:
    name, home = ui_lab
    page.wait("return !document.querySelector('#scenario-card').hidden", 10, "the scenario card")
    assert SCENARIO in page.js("return document.querySelector('#scenario-name').textContent")
    page.click("#btn-check")
    page.wait("return document.querySelector('#scenario-grades')", 180, "the page's scenario check")
    shown = page.js("return Array.from(document.querySelectorAll('#scenario-grades tr')).map("
                    "r => [r.cells[1].textContent, r.cells[0].textContent === 'PASS'])")
    res = run_lab("scenario", "check", "--json", home=home, timeout=180)
    cli = [[g["check"], g["passed"]] for g in json.loads(res.stdout)]
    assert sorted(shown) == sorted(cli), (shown, cli)
    assert res.returncode == 1 and not all(p for _, p in cli)  # the scenario is not solved: both say FAIL


def _active(page: browser.Browser) -> list[str]:
    return page.js("return Array.from(document.querySelectorAll('#graph [data-node]')).filter("
                   "n => (n.querySelector('.badge') || {}).textContent === 'ACTIVE').map(n => n.dataset.node)")


def test_failover_and_reset_from_the_page(page: browser.Browser) -> None:
    """Planned failover from the page: the standby becomes ACTIVE, the run's marks (vici events, HA agent steps)
    join the timeline with its outage beside Azure's figure and its plot; reset moves it back."""
    page.wait(f"return ({_edge_state_js()}) === 'up'", 60, "the tunnel up before the failover")
    assert _active(page) == ["azgw-0"]
    page.js("document.querySelector('#failover-seconds').value = '25'")  # ha_timing azure: 10-15 s planned
    page.click("#btn-failover")
    assert _action_done(page, "failover", 180)
    result = page.js("return document.querySelector('#failover-result').textContent")
    assert "active-standby planned failover of azgw" in result and "Azure: 10-15 s (planned)" in result, result
    page.wait("return document.querySelector('#failover-plot').naturalWidth > 500", 10, "the failover plot")
    page.wait("return Array.from(document.querySelectorAll('#graph [data-node=\"azgw-1\"] .badge')).some("
              "b => b.textContent === 'ACTIVE')", 15, "azgw-1 ACTIVE after the failover")
    timeline = page.js("return document.querySelector('#timeline').textContent")
    for step in ("failover run: fault: planned move azgw-0 -> azgw-1", "failover run: agent: addresses-taken",
                 "failover run: ike-updown up azgw-onprem", "worst UDP flow outage"):
        assert step in timeline, step
    page.wait(f"return ({_edge_state_js()}) === 'up'", 60, "the tunnel up on azgw-1")
    page.click("#btn-reset")
    assert _action_done(page, "reset", 180)
    page.wait("return Array.from(document.querySelectorAll('#graph [data-node=\"azgw-0\"] .badge')).some("
              "b => b.textContent === 'ACTIVE')", 15, "azgw-0 ACTIVE again after the reset")
    page.wait(f"return ({_edge_state_js()}) === 'up'", 60, "the tunnel up after the reset")


def test_lab_down_stops_the_server(ui_lab: tuple[str, Path], ui_server: tuple[str, subprocess.Popen]) -> None:
    name, home = ui_lab
    _, proc = ui_server
    res = run_lab("down", name, home=home, timeout=120)
    assert res.returncode == 0 and "lab ui server" in res.stderr, res.stderr
    proc.wait(15)
    assert proc.returncode is not None
