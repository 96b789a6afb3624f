"""Print how long `lab up` takes to reach all tunnels established (warm image), and image build times.

Usage: python bench/up.py [--runs N] [--cold] [TOPOLOGY]
  --cold removes this tree's lab-node/lab-base images first, so the build is measured from nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    subprocess.run(argv, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.monotonic() - start


def build_times(cold: bool, env: dict[str, str]) -> tuple[float | None, float]:
    build = [sys.executable, "-m", "lab.runtime.image"]
    cold_s = None
    if cold:
        # every lab-node/lab-base image goes, so no layer of an older build can serve as cache
        ids = subprocess.run(["docker", "images", "-q", "--filter", "reference=lab-node", "--filter",
                              "reference=lab-base"], capture_output=True, text=True).stdout.split()
        for repo in ("lab-node", "lab-base"):
            ids += subprocess.run(["docker", "images", "-q", repo], capture_output=True, text=True).stdout.split()
        subprocess.run(["docker", "rmi", "-f", *sorted(set(ids))], check=False, capture_output=True)
        left = subprocess.run(["docker", "images", "-q", "lab-base"], capture_output=True, text=True).stdout
        if left.strip():
            raise SystemExit(f"could not remove lab-base images for a cold build: {left.split()}")
        cold_s = timed(build, env)
    return cold_s, timed(build, env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("topology", nargs="?", default=str(ROOT / "topologies" / "s2s-route-based.yml"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cold", action="store_true")
    args = ap.parse_args()
    env = {**os.environ, "LAB_HOME": tempfile.mkdtemp(prefix="lab-bench-")}
    cold_s, warm_s = build_times(args.cold, env)
    name = __import__("yaml").safe_load(Path(args.topology).read_text())["name"]
    lab = [sys.executable, "-m", "lab"]
    ups, downs = [], []
    for _ in range(args.runs):
        try:
            ups.append(timed([*lab, "up", args.topology], env))
        finally:
            downs.append(timed([*lab, "down", name], env))
    cold = f"{cold_s:.1f} s" if cold_s is not None else "(run with --cold)"
    print(f"image build, cold:           {cold}")
    print(f"image build, warm (no-op):   {warm_s:.2f} s")
    print(f"lab up -> tunnels up ({args.runs} runs): median {statistics.median(ups):.2f} s, "
          f"min {min(ups):.2f} s, max {max(ups):.2f} s   (goal <= 10 s)")
    print(f"lab down ({args.runs} runs):           median {statistics.median(downs):.2f} s")


if __name__ == "__main__":
    main()
