"""One knob for slow machines: LAB_TIME_SCALE (default 1) multiplies the lab's own waits and the time it
gives commands in nodes. The emulated kernel-test guest (`make test-kernel`, QEMU without KVM) runs 10-20x
slower than a host and sets it; measurements (outages, RTTs) are never scaled, only how long the lab waits."""

from __future__ import annotations

import os


def time_scale() -> float:
    try:
        return max(1.0, float(os.environ.get("LAB_TIME_SCALE", "1")))
    except ValueError:
        return 1.0


def scaled(seconds: float) -> float:
    return seconds * time_scale()
