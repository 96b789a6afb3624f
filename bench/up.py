"""Print how long `lab up` takes to reach all tunnels established (warm image), and image build times, with the
load average beside them (2 shared cores: a figure means little without it).

Usage: python bench/up.py [--runs N] [--cold] [--prefix P] [TOPOLOGY]
  --cold removes this tree's lab-node/lab-base images first, so the build is measured from nothing.
The topology is brought up under a lab name of this run's own (a copy of the file), so the bench never meets
a demo or a test run of the same file on this machine.
"""

from __future__ import annotations

import argparse
import os
import re
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


def own_copy(topology: Path, where: Path, prefix: str = "bench") -> tuple[Path, str]:
    """The topology under the name `<prefix>-<pid>` (its top-level `name:` line replaced), beside the state."""
    name = f"{prefix}-{os.getpid() % 100000}"
    text = re.sub(r"^name:.*$", f"name: {name}", topology.read_text(), count=1, flags=re.MULTILINE)
    path = where / f"{name}.yml"
    path.write_text(text)
    return path, name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("topology", nargs="?", default=str(ROOT / "topologies" / "s2s-route-based.yml"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("--prefix", default="bench", help="the lab's name starts with it (unique to whoever runs it)")
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="lab-bench-")
    env = {**os.environ, "LAB_HOME": home}
    cold_s, warm_s = build_times(args.cold, env)
    topology, name = own_copy(Path(args.topology), Path(home), args.prefix)
    lab = [sys.executable, "-m", "lab"]
    ups, downs = [], []
    load_before = os.getloadavg()
    for _ in range(args.runs):
        try:
            ups.append(timed([*lab, "up", str(topology)], env))
        finally:
            downs.append(timed([*lab, "down", name], env))
    load_after = os.getloadavg()
    cold = f"{cold_s:.1f} s" if cold_s is not None else "(run with --cold)"
    print(f"image build, cold:           {cold}")
    print(f"image build, warm (no-op):   {warm_s:.2f} s")
    print(f"lab up -> tunnels up ({args.runs} runs): median {statistics.median(ups):.2f} s, "
          f"min {min(ups):.2f} s, max {max(ups):.2f} s   (target <= 1.5 s on a quiet machine)")
    print(f"lab down ({args.runs} runs):           median {statistics.median(downs):.2f} s")
    print(f"load average (1/5/15 min) before: {' '.join(f'{x:.2f}' for x in load_before)}, "
          f"after: {' '.join(f'{x:.2f}' for x in load_after)}  ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
