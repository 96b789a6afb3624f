"""The Makefile runs Python only from its own venv (PEP 668: Debian's python3 refuses `pip install`), and a
foreign python3 first on PATH is never called."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_uses_venv_python_not_path_python(tmp_path: Path) -> None:
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho FOREIGN-PYTHON; exit 1\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:/usr/sbin:/usr/bin:/sbin:/bin"}
    out = subprocess.run(["make", "-n", "-B", "demo", "test", "unit", "lint"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    lines = [line for line in out.splitlines() if "python" in line]
    assert "/usr/bin/python3 -m venv .venv" in lines
    assert ".venv/bin/python -m pip install -q -e '.[dev]'" in lines
    others = [line for line in lines if "venv" not in line]
    assert others == [], others
    assert all(line.startswith(".venv/bin/python ") for line in lines if "-m venv" not in line)
    demo = next(line for line in out.splitlines() if "scripts/demo.sh" in line)
    assert demo.startswith(f'PATH="{ROOT}/.venv/bin:'), demo  # demo.sh's `lab` and `python3` are the venv's
