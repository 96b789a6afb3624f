"""image_inputs_hash decides whether a multi-minute build runs: it must be stable and see every edit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lab.runtime.image import DEFAULT_MIRROR, apt_mirror, base_hash, image_inputs_hash

CONTAINERS = Path(__file__).resolve().parents[2] / "containers"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A private copy of containers/, so edits never touch the checkout."""
    return Path(shutil.copytree(CONTAINERS, tmp_path / "containers"))


def test_hash_is_12_hex_chars_and_deterministic(tree: Path) -> None:
    first = image_inputs_hash(tree)
    assert len(first) == 12
    int(first, 16)
    assert image_inputs_hash(tree) == first


def test_hash_does_not_depend_on_location(tree: Path, tmp_path: Path) -> None:
    other = shutil.copytree(tree, tmp_path / "elsewhere" / "containers")
    assert image_inputs_hash(other) == image_inputs_hash(tree)


def test_hash_changes_when_a_file_changes(tree: Path) -> None:
    before = image_inputs_hash(tree)
    dockerfile = tree / "node" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "\n# edit\n")
    assert image_inputs_hash(tree) != before


def test_hash_changes_when_a_file_is_added_or_renamed(tree: Path) -> None:
    before = image_inputs_hash(tree)
    extra = tree / "node" / "extra.conf"
    extra.write_text("x\n")
    added = image_inputs_hash(tree)
    extra.rename(tree / "node" / "renamed.conf")
    assert len({before, added, image_inputs_hash(tree)}) == 3


def test_hash_covers_the_debootstrap_mirror(tree: Path) -> None:
    assert image_inputs_hash(tree, "http://mirror.example/debian") != image_inputs_hash(tree, DEFAULT_MIRROR)
    assert base_hash("http://mirror.example/debian") != base_hash(DEFAULT_MIRROR)


def test_apt_mirror_reads_deb822_then_one_line_then_falls_back(tmp_path: Path) -> None:
    assert apt_mirror(tmp_path) == DEFAULT_MIRROR
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [signed-by=/k.gpg] http://one-line.example/debian bookworm main\n"
    )
    assert apt_mirror(tmp_path) == "http://one-line.example/debian"
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://deb822.example/debian\nSuites: bookworm bookworm-updates\n"
    )
    assert apt_mirror(tmp_path) == "http://deb822.example/debian"
