"""One lock per lab name: a second holder gets BusyError (exit 2) naming the first; a killed holder's lock
is free at once (flock), so no stale lock can block a lab."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.errors import BusyError
from lab.lock import lab_lock

HOLD = ("import sys, time; from pathlib import Path; from lab.lock import lab_lock\n"
        "with lab_lock('held', directory=Path(sys.argv[1])):\n"
        "    print('locked', flush=True); time.sleep(60)\n")


def _holder(tmp_path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_second_holder_is_busy_then_free_after_kill(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    try:
        t0 = time.monotonic()
        with pytest.raises(BusyError) as info, lab_lock("held", wait_s=0.3, directory=tmp_path):
            pass
        assert info.value.exit_code == 2 and str(proc.pid) in info.value.message
        assert time.monotonic() - t0 >= 0.3
        with lab_lock("other", directory=tmp_path):  # another name is independent
            pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with lab_lock("held", directory=tmp_path):  # the kernel dropped the dead holder's lock
        pass
    assert oct((tmp_path / "held.lock").stat().st_mode & 0o777) == "0o600"
