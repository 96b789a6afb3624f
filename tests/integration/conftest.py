"""Integration fixtures: a real Docker runtime, the node image, and a snapshot of the host's network.

Every lab a test brings up is removed in teardown, also when the test fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import run_lab


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
