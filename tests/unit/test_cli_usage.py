"""Usage errors exit 2 with click's message and no traceback (typer vendors its own click)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(("argv", "message"), [
    (["inspect", "--no-such-option"], "No such option: --no-such-option"),
    (["exec"], "Missing argument"),
    (["no-such-command"], "No such command"),
])
def test_usage_error_exits_2_without_traceback(argv: list[str], message: str) -> None:
    res = subprocess.run([sys.executable, "-m", "lab", *argv], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr
