"""Packet capture on a segment bridge inside the lab namespace: tcpdump entered with nsenter.

The capture runs in the lab's own namespace (`lab-<lab>`), never the host's: the host namespace gains
no interface, address or rule. tcpdump puts the bridge in promiscuous mode, so it sees the frames the
bridge forwards between nodes, not only those addressed to the bridge itself.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
from collections import deque
from pathlib import Path

from lab.errors import RuntimeBackendError
from lab.runtime.base import CaptureStats

NETNS_DIR = Path("/run/netns")
START_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 5.0
CAPTURE_BUFFER_KIB = 32768
TCPDUMP_HINT = "install tcpdump on the host (scripts/host-setup.sh does)"
_COUNT = re.compile(r"^(\d+) packets? (captured|dropped by kernel)")


def tcpdump_argv(namespace: str, iface: str, path: Path) -> list[str]:
    """-U: write each packet at once (the file is complete when tcpdump exits); -Z root: keep the
    right to write `path` (tcpdump otherwise drops to its own user before opening the file); -B: a kernel
    buffer that holds a burst while tcpdump waits for a core (the 2 MiB default dropped 66 of ~8,000 frames
    of a 100-tunnel verify at load 15)."""
    return ["nsenter", f"--net={NETNS_DIR / namespace}", "tcpdump", "-i", iface, "-n", "-U",
            "--immediate-mode", "-B", str(CAPTURE_BUFFER_KIB), "-s", "0", "-Z", "root", "-w", str(path)]


class TcpdumpCapture:
    """A running tcpdump; `stop()` ends it and reports what it captured."""

    def __init__(self, namespace: str, iface: str, path: Path) -> None:
        if not (NETNS_DIR / namespace).exists():
            raise RuntimeBackendError(f"namespace {namespace!r}: does not exist", hint="is the lab up?")
        self._where = f"capture on {iface!r} in namespace {namespace!r}"
        self._path = path
        self._lines: deque[str] = deque(maxlen=20)
        self._listening = threading.Event()
        try:
            self._proc = subprocess.Popen(tcpdump_argv(namespace, iface, path), stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        except FileNotFoundError as exc:
            raise RuntimeBackendError(f"{self._where}: {exc.filename} not found", hint=TCPDUMP_HINT) from exc
        self._reader = threading.Thread(target=self._read_stderr, name=f"tcpdump {namespace}", daemon=True)
        self._reader.start()
        if not self._listening.wait(START_TIMEOUT_S):
            self._kill()
            raise RuntimeBackendError(f"{self._where}: tcpdump did not start: {' | '.join(self._lines)}",
                                      hint=TCPDUMP_HINT)

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._lines.append(line.strip())
            if "listening on" in line:
                self._listening.set()

    def _kill(self) -> None:
        self._proc.kill()
        self._proc.wait()
        self._reader.join(timeout=1)

    def stop(self) -> CaptureStats:
        """SIGINT lets tcpdump flush the file and print its counters; KILL if it does not end."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._kill()
        self._reader.join(timeout=STOP_TIMEOUT_S)
        counts = {m.group(2): int(m.group(1)) for ln in self._lines if (m := _COUNT.match(ln))}
        if not self._path.exists():
            raise RuntimeBackendError(f"{self._where}: tcpdump wrote no file: {' | '.join(self._lines)}")
        return CaptureStats(path=self._path, packets=counts.get("captured", -1),
                            dropped=counts.get("dropped by kernel", 0))
