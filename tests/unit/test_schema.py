"""The committed JSON Schema (for editors: `# yaml-language-server: $schema=...`) matches the model."""

from __future__ import annotations

import json
from pathlib import Path

from lab.topology.model import Topology

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "lab.schema.json"


def current() -> str:
    return json.dumps(Topology.model_json_schema(), indent=2, sort_keys=True) + "\n"


def test_committed_schema_is_current(update_golden: bool) -> None:
    if update_golden:
        SCHEMA.write_text(current())
    assert SCHEMA.read_text() == current(), "model changed: run pytest --update-golden and commit the schema"


def test_schema_forbids_unknown_keys() -> None:
    schema = json.loads(current())
    assert schema["additionalProperties"] is False
    assert all(d.get("additionalProperties") is False for d in schema["$defs"].values() if "properties" in d)
