"""Error golden files: each bad topology yields exactly the message in its .err file (exit code 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import TopologyError
from lab.topology.load import load_file

CASES = sorted((Path(__file__).resolve().parents[1] / "topology" / "errors").glob("*.yml"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_bad_topology_message(path: Path, update_golden: bool) -> None:
    with pytest.raises(TopologyError) as info:
        load_file(path)
    assert info.value.exit_code == 2
    text = info.value.message.replace(str(path), path.name) + "\n"
    expected = path.with_suffix(".err")
    if update_golden:
        expected.write_text(text)
    assert text == expected.read_text()
