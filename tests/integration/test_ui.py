"""`lab ui` in a real headless Chromium against one real lab (module-scoped): the reference topology as the
training scenario lifetime-dpd-mismatch runs it (same nodes; the tunnel up, the site's lifetimes not Azure's).
The page shows every node; `lab fault kill` on the site device turns its tunnel red within 5 s and `lab restore`
green again; a scenario check from the page grades as `lab scenario check` does; no request without the token
is answered, nothing listens beyond loopback, no shared key reaches the page; `lab down` stops the server."""

from __future__ import annotations

import json
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
from tests.integration.helpers import ROOT, lab_argv, lab_leftovers, lab_name, run_lab

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
    # the tunnel table: both ends' SPIs, the gateway's lifetimes beside Azure's
    table = page.js(f"return document.querySelector('#tunnels [data-edge=\"{EDGE}\"]').textContent")
    assert table.count("SPI in") == 2 and "child 27000 s (= Azure)" in table, table


def test_requests_without_the_token_are_refused_and_only_loopback_listens(
        ui_server: tuple[str, subprocess.Popen]) -> None:
    url, _ = ui_server
    base, token = url.split("/lab/")[0], url.split("token=")[1]
    for path in ("/", url.split(base)[1].split("?")[0], "/api/state", "/api/events", "/static/app.js"):
        code, _ = _get(base + path)
        assert code == 403, path
        code, _ = _get(base + path + "?token=" + token[::-1])
        assert code == 403, path
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
        texts.append(r.read1(1 << 20).decode())  # the first server-sent event: the whole state
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


def test_lab_down_stops_the_server(ui_lab: tuple[str, Path], ui_server: tuple[str, subprocess.Popen]) -> None:
    name, home = ui_lab
    _, proc = ui_server
    res = run_lab("down", name, home=home, timeout=120)
    assert res.returncode == 0 and "lab ui server" in res.stderr, res.stderr
    proc.wait(15)
    assert proc.returncode is not None
