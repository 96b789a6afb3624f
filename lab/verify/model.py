"""Verification results as data: one CheckResult per check, and the report `lab verify --json` prints.

The JSON shape is documented in docs/verify.md and kept stable: add fields, never rename them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, JsonValue

CHECK_NAMES = ("reachability", "encrypted", "spis", "selectors", "decryption", "dataplane")


class CheckResult(BaseModel):
    """One named check: passed or not, a one-line summary, evidence lines, and its numbers as data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    passed: bool
    summary: str
    evidence: list[str] = Field(default_factory=list)
    data: dict[str, JsonValue] = Field(default_factory=dict)


class VerifyReport(BaseModel):
    """Every check of one `lab verify` run; `marker` is the random string every probe carried."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lab: str
    marker: str
    passed: bool
    duration_s: float
    pcap: str | None = None
    wireshark_keys: str | None = None
    checks: list[CheckResult]

    def check(self, name: str) -> CheckResult:
        """The check of that name (KeyError names the ones there are)."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check {name!r}; checks: {[c.name for c in self.checks]}")
