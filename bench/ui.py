"""The `lab ui` server's CPU with a page open, on a lab of N site-to-site tunnels (default 30: a VpnGw1's
limit). Brings a generated topology up (one gateway, N sites without hosts), starts `lab ui`, opens the page in
headless Chromium, then reads the server's CPU time (utime + stime from /proc) over a window and prints it
as a share of one core, with the load average beside; `lab down` at the end.

Usage: python bench/ui.py [--tunnels N] [--seconds S] [--interval I]
"""

from __future__ import annotations

import argparse
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


def topology(name: str, n: int) -> dict:
    sites = {f"s{i:02d}": {"public_ip": f"198.51.100.{10 + i}", "address_space": [f"10.{100 + i}.0.0/16"]}
             for i in range(1, n + 1)}
    return {"name": name, "gateways": {"azgw": {
        "vpn_type": "RouteBased", "sku": "VpnGw1", "public_ips": ["203.0.113.10"], "active_active": False,
        "vnet": {"address_space": ["10.1.0.0/16"], "hosts": {"vm1": "10.1.0.10"}}}},
        "sites": sites,
        "connections": {f"azgw-{s}": {"gateway": "azgw", "site": s, "ike_version": "IKEv2"} for s in sites}}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tunnels", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--interval", type=float, default=1.0)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ui-bench-"))
    env = {**os.environ, "LAB_HOME": str(home)}
    name = f"ui-bench{args.tunnels}"
    path = home / f"{name}.yml"
    path.write_text(yaml.safe_dump(topology(name, args.tunnels)))
    lab = [sys.executable, "-m", "lab"]
    server = page = None
    try:
        t0 = time.monotonic()
        subprocess.run([*lab, "up", str(path), "--timeout", "300"], check=True, env=env, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        print(f"{args.tunnels} tunnels up in {time.monotonic() - t0:.1f} s")
        server = subprocess.Popen([*lab, "ui", name, "--interval", str(args.interval)], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
        assert server.stdout is not None
        url = server.stdout.readline().removeprefix("lab ui: ").strip()
        page = browser.Browser()
        page.get(url)
        page.wait(f"return document.querySelectorAll('#tunnels table[data-state=\"up\"]').length === {args.tunnels}",
                  120, "every tunnel up on the page")
        time.sleep(5)  # the initial log backlog is read
        c0, w0 = cpu_seconds(server.pid), time.monotonic()
        time.sleep(args.seconds)
        used, wall = cpu_seconds(server.pid) - c0, time.monotonic() - w0
        shown = page.js("return document.querySelectorAll('#graph [data-edge][data-kind=\"tunnel\"]').length")
        print(f"lab ui server, page open, {args.tunnels} tunnels ({shown} edges drawn), interval {args.interval} s: "
              f"{100 * used / wall:.1f} % of one core ({used:.1f} s CPU in {wall:.0f} s); "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        if page:
            page.close()
        subprocess.run([*lab, "down", name], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if server and server.poll() is None:
            server.terminate()


if __name__ == "__main__":
    main()
