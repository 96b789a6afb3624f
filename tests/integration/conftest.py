"""Integration fixtures: a real Docker runtime, the node image, and a snapshot of the host's network.

Every lab a test brings up is removed in teardown, also when the test fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import run_lab

# The same tests on both ESP data planes. This host's kernel may lack ESP: the kernel variants then skip, and
# `make test-kernel` runs them (`-m kernel`) in a QEMU guest with Debian's stock kernel.
DATAPLANES = [pytest.param("libipsec", id="libipsec"),
              pytest.param("kernel", id="kernel", marks=pytest.mark.kernel)]
NO_ESP = "kernel data plane: this kernel has no esp4; `make test-kernel` runs these in a QEMU guest"


@pytest.fixture(scope="session")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("labhome")


@pytest.fixture(scope="session")
def runtime():  # noqa: ANN201
    from lab.runtime.docker import connect_runtime

    return connect_runtime()


@pytest.fixture(scope="session")
def image(runtime) -> str:  # noqa: ANN001
    from lab.runtime.image import default_containers_dir, ensure_image

    return ensure_image(runtime.client, default_containers_dir(), lambda line: None)


@pytest.fixture
def cleanup_lab(lab_home: Path) -> Iterator[list[str]]:
    """Names appended here are brought down after the test, whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        run_lab("down", name, home=lab_home)


def usable_dataplane(plane: str) -> str:
    """`plane`, or skip the test when this kernel cannot run it."""
    from lab.runtime.preflight import host_dataplane

    if plane == "kernel" and host_dataplane() != "kernel":
        pytest.skip(NO_ESP)
    return plane


@pytest.fixture(params=DATAPLANES)
def dataplane(request: pytest.FixtureRequest) -> str:
    """The ESP data plane a test brings its labs up with (`lab up --dataplane`); kernel skips without esp4."""
    return usable_dataplane(request.param)


@pytest.fixture(scope="module", params=DATAPLANES)
def module_dataplane(request: pytest.FixtureRequest) -> str:
    """`dataplane` for a module-scoped lab: one lab per data plane, shared by the module's tests."""
    return usable_dataplane(request.param)
