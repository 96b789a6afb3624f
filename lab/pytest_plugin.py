"""pytest plugin (entry point `lab`): bring a topology up once per session and assert on `lab verify`.

    def test_tunnel_is_encrypted(lab_up):
        lab = lab_up("topologies/s2s-route-based.yml", name="my-test")
        assert_verified(lab.verify())

`lab_up(file, name=None, dataplane=None)` brings the file up (renamed to `name`, so tests can run beside
other labs; `dataplane` "kernel" or "libipsec" overrides preflight's choice, as `lab up --dataplane` does),
once per session per (file, name), and brings everything down when the session ends, also after
failures. Nothing heavy is imported until a test asks for a lab, so the plugin costs unit tests nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from lab.runtime.base import Runtime
from lab.verify.model import VerifyReport


@dataclass
class RunningLab:
    """A lab brought up by `lab_up`, with the injected runtime and vici factory it runs under."""

    name: str
    home: Path
    runtime: Runtime  # the backend LAB_RUNTIME names (lab/runtime/registry.py)
    connect: Callable[[Path], object]

    def loaded(self):  # noqa: ANN201 - lab.core.Lab
        from lab import core

        return core.load_running(self.name, self.home)

    def verify(self, **options: object) -> VerifyReport:
        """Run every check (options: those of lab.verify.run.VerifyOptions, plus `read_keys`)."""
        from lab.verify.run import VerifyOptions, read_lab_keys, verify

        read_keys = options.pop("read_keys", read_lab_keys)
        return verify(self.loaded(), self.runtime, self.connect, VerifyOptions(**options),  # type: ignore[arg-type]
                      read_keys=read_keys)  # type: ignore[arg-type]

    def exec(self, node: str, argv: list[str], timeout: float = 30.0):  # noqa: ANN201 - ExecResult
        return self.runtime.exec(self.name, node, argv, timeout=timeout)  # type: ignore[attr-defined]


@dataclass
class _Session:
    home: Path
    labs: dict[tuple[str, str, str], RunningLab] = field(default_factory=dict)  # up, by (file, name, plane)
    started: list[RunningLab] = field(default_factory=list)  # brought down at the end, even half-built
    runtime: Runtime | None = None


def assert_verified(report: VerifyReport, *checks: str) -> None:
    """Fail the test, showing the whole report, unless every named check (default: all) passed."""
    from lab.report.verify_view import verify_text

    names = checks or tuple(c.name for c in report.checks)
    failed = [n for n in names if not report.check(n).passed]
    if failed:
        raise AssertionError(f"lab {report.lab}: check(s) {', '.join(failed)} failed\n{verify_text(report)}")


def assert_fails(report: VerifyReport, check: str) -> None:
    """Fail the test unless `check` failed (proving the check can catch what it is meant to)."""
    from lab.report.verify_view import verify_text

    if report.check(check).passed:
        raise AssertionError(f"lab {report.lab}: check {check} passed but should fail\n{verify_text(report)}")


def _renamed(path: Path, name: str | None, workdir: Path) -> Path:
    if name is None:
        return path
    data = yaml.safe_load(path.read_text())
    data["name"] = name
    out = workdir / f"{name}.yml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def _bring_up(session: _Session, path: Path, name: str | None, dataplane: str | None) -> RunningLab:
    from lab import core, pipeline
    from lab.control.vici import ViciControl
    from lab.runtime.base import default_containers_dir, require_preflight
    from lab.runtime.registry import connect_runtime

    runtime = session.runtime = session.runtime or connect_runtime()
    file = _renamed(path, name, session.home)
    plane = require_preflight(runtime, lambda _msg: None, dataplane)  # type: ignore[arg-type]
    image = runtime.ensure_image(default_containers_dir(), lambda _msg: None)
    lab = core.load(file, session.home)
    running = RunningLab(lab.topo.name, session.home, runtime, ViciControl)
    session.started.append(running)
    pipeline.up(file, session.home, runtime, ViciControl, image, plane, lambda _msg: None,  # type: ignore[arg-type]
                lab=lab)
    return running


@pytest.fixture(scope="session")
def lab_up() -> Iterator[Callable[..., RunningLab]]:
    """Factory: lab_up(file, name=None, dataplane=None) -> RunningLab, up once per session, down at its end."""
    from lab import pipeline

    with tempfile.TemporaryDirectory(prefix="lab-pytest-") as tmp:
        session = _Session(Path(tmp))

        def factory(file: str | Path, name: str | None = None, dataplane: str | None = None) -> RunningLab:
            key = (str(Path(file).resolve()), name or "", dataplane or "")
            if key not in session.labs:
                session.labs[key] = _bring_up(session, Path(file), name, dataplane)
            return session.labs[key]

        try:
            yield factory
        finally:
            for lab in session.started:
                pipeline.down(lab.name, lab.home, lab.runtime)  # type: ignore[arg-type]
