"""Print the wall time of `lab verify` on the reference lab (goal: <= 10 s).

Usage: python bench/verify.py [--runs N] [TOPOLOGY]
Brings a renamed copy of the topology up in a temporary LAB_HOME, times `lab verify NAME` N times (the
whole CLI process, as a user waits for it), prints each run and the median, and brings the lab down.
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

import yaml

ROOT = Path(__file__).resolve().parents[1]


def lab(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, check=check)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("topology", nargs="?", default=str(ROOT / "topologies" / "s2s-route-based.yml"))
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    name = f"bv{os.getpid() % 100000}"
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        env = {**os.environ, "LAB_HOME": str(Path(tmp) / "home")}
        data = yaml.safe_load(Path(args.topology).read_text())
        data["name"] = name
        topo = Path(tmp) / f"{name}.yml"
        topo.write_text(yaml.safe_dump(data, sort_keys=False))
        try:
            lab("up", str(topo), env=env)
            times = []
            for i in range(args.runs):
                start = time.monotonic()
                res = lab("verify", name, env=env, check=False)
                times.append(time.monotonic() - start)
                verdict = "all checks passed" if res.returncode == 0 else f"exit {res.returncode}"
                print(f"run {i + 1}: {times[-1]:.2f} s ({verdict})")
        finally:
            lab("down", name, env=env, check=False)
    print(f"lab verify on {Path(args.topology).name} ({args.runs} runs): median {statistics.median(times):.2f} s, "
          f"min {min(times):.2f} s, max {max(times):.2f} s (goal <= 10 s)")


if __name__ == "__main__":
    main()
