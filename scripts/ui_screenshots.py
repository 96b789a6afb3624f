"""Screenshots of `lab ui` for docs/ui.md: brings each topology up under a name of its own, opens the page in
headless Chromium, lets the page settle (every tunnel drawn; for the reference lab `lab verify` run from the
page), saves docs/ui/<topology>.png and brings the lab down.

Usage: python scripts/ui_screenshots.py [TOPOLOGY ...]
  (default: s2s-route-based bgp-active-active p2s scenario:lifetime-dpd-mismatch)
  TOPOLOGY: a name in topologies/, a .yml file, or scenario:NAME (the training scenario's lab, after a planned
  failover from the page).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.ui import browser  # noqa: E402

OUT = ROOT / "docs" / "ui"
DEFAULT = ["s2s-route-based", "bgp-active-active", "p2s", "scenario:lifetime-dpd-mismatch"]


def _up(topology: str, home: Path, env: dict[str, str]) -> tuple[str, str]:
    """Bring the lab up; (its name, the picture's name). `scenario:NAME` starts that training scenario."""
    lab = [sys.executable, "-m", "lab"]
    if topology.startswith("scenario:"):
        scenario = topology.removeprefix("scenario:")
        name = f"ui-sc-{scenario.split('-')[0]}"[:16]
        subprocess.run([*lab, "scenario", "start", scenario, "--lab", name], check=True, env=env, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        return name, f"scenario-{scenario}"
    src = ROOT / topology if topology.endswith(".yml") else ROOT / "topologies" / f"{topology}.yml"
    data = yaml.safe_load(src.read_text())
    name = data["name"] = f"ui-{data['name']}"[:16]
    path = home / f"{src.stem}.yml"
    path.write_text(yaml.safe_dump(data))
    subprocess.run([*lab, "up", str(path), "--timeout", "120"], check=True, env=env, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    return name, src.stem


def _act(page: browser.Browser, topology: str) -> None:
    """What the page shows before the picture: verify on the reference lab; a planned failover (20 s of probe
    stream) on a scenario's lab; a few seconds of updates otherwise."""
    if topology == "s2s-route-based":
        page.click("#btn-verify")
        page.wait("return document.querySelector('#action-result [data-action=\"verify\"]')", 120, "verify")
    elif topology.startswith("scenario-"):
        page.js("document.querySelector('#failover-seconds').value = '20'")
        page.click("#btn-failover")
        page.wait("return document.querySelector('#action-result [data-action=\"failover\"]')", 240, "the failover")
        if page.js("return document.querySelector('#action-result [data-action=\"failover\"]').dataset.ok") != "true":
            raise SystemExit("failover from the page failed: " + page.js("return document.querySelector("
                                                                          "'#action-result').textContent"))
        page.wait("return document.querySelector('#failover-plot').naturalWidth > 0", 30, "the failover plot")
        page.wait("return !document.querySelector('#tunnels table:not([data-state=\"up\"])')", 60, "tunnels up")
        time.sleep(2)
    else:
        time.sleep(3)


def shoot(topology: str, home: Path) -> Path:
    env = {**os.environ, "LAB_HOME": str(home)}
    lab = [sys.executable, "-m", "lab"]
    server = page = None
    name, topology = _up(topology, home, env)
    try:
        server = subprocess.Popen([*lab, "ui", name], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                  env=env, cwd=ROOT)
        assert server.stdout is not None
        url = server.stdout.readline().removeprefix("lab ui: ").strip()
        page = browser.Browser(width=1500, height=1150)
        page.get(url)
        page.wait("return document.querySelectorAll('#graph [data-node]').length > 0 && "
                  "!document.querySelector('#tunnels table:not([data-state=\"up\"])') && "
                  "document.querySelectorAll('#graph [data-kind=\"tunnel\"], #graph [data-kind=\"p2s\"]').length > 0",
                  120, "every tunnel up")
        _act(page, topology)
        OUT.mkdir(exist_ok=True)
        return page.screenshot(OUT / f"{topology}.png")
    finally:
        if page:
            page.close()
        subprocess.run([*lab, "down", name], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if topology.startswith("scenario-"):
            subprocess.run([*lab, "scenario", "stop"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if server and server.poll() is None:
            server.terminate()


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="ui-shots-"))
    for topology in sys.argv[1:] or DEFAULT:
        print(f"wrote {shoot(topology, home)}", flush=True)


if __name__ == "__main__":
    main()
