"""A site device's own files (swanctl.conf/ipsec.conf, frr.conf) are read one way: missing, binary or
non-UTF-8 files are a TopologyError naming the field (exit 2), never a traceback."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from types import SimpleNamespace

import pytest

from lab.errors import TopologyError
from lab.routing.run import byo_frr_files


def topo_with_frr(rel: str) -> SimpleNamespace:
    return SimpleNamespace(sites={"onprem": SimpleNamespace(device=SimpleNamespace(frr_config=rel))})


def test_frr_config_is_read_relative_to_the_topology(tmp_path: Path) -> None:
    (tmp_path / "frr.conf").write_text("router bgp 65010\n")
    files = byo_frr_files(topo_with_frr("frr.conf"), tmp_path)  # type: ignore[arg-type]
    assert files == {PurePosixPath("onprem/frr.conf"): "router bgp 65010\n"}


def test_missing_frr_config_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match=r"sites\.onprem\.device\.frr_config: .* is not a file"):
        byo_frr_files(topo_with_frr("nope.conf"), tmp_path)  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [b"router bgp\0\x01", b"hostname caf\xe9\n"])
def test_binary_or_non_utf8_frr_config_is_a_topology_error(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "frr.conf").write_bytes(data)
    with pytest.raises(TopologyError, match="frr.conf"):
        byo_frr_files(topo_with_frr("frr.conf"), tmp_path)  # type: ignore[arg-type]
