"""The pytest plugin (entry point `lab`): the documented example, and a wrong key caught by check 5."""

from __future__ import annotations

import pytest

from lab.pytest_plugin import assert_fails, assert_verified
from tests.integration.helpers import ROOT, lab_name

pytestmark = pytest.mark.integration
REFERENCE = ROOT / "topologies" / "s2s-route-based.yml"
NAME = lab_name("v-plug")


# --- the example from docs/verify.md ---
def test_reference_lab_is_really_encrypted(lab_up):  # noqa: ANN001, ANN201
    lab = lab_up("topologies/s2s-route-based.yml", name=NAME)
    report = lab.verify()
    assert_verified(report)  # all six checks, or the whole report in the failure message
    assert report.check("decryption").data["with_marker"] > 0
# ---


def test_wrong_key_fails_decryption(lab_up) -> None:  # noqa: ANN001
    from lab.probes.keys_log import KeyCandidate
    from lab.verify.run import read_lab_keys

    def wrong_keys(d, nodes):  # noqa: ANN001, ANN202 - flip one bit of every logged key
        return [k.with_keys(tuple(KeyCandidate(c.role, bytes([c.encr_key[0] ^ 1]) + c.encr_key[1:], c.integ_key)
                                  for c in k.candidates)) for k in read_lab_keys(d, nodes)]

    lab = lab_up(REFERENCE, name=NAME)
    report = lab.verify(read_keys=wrong_keys)
    assert_fails(report, "decryption")
    assert report.check("decryption").data["decrypted"] == 0
    assert any("ICV did not verify" in e for e in report.check("decryption").evidence)
    assert_verified(report, "reachability", "encrypted", "spis", "selectors")
    assert_verified(lab.verify())  # the same lab with the real keys: passes again


def test_lab_up_reuses_the_session_lab(lab_up) -> None:  # noqa: ANN001
    assert lab_up(REFERENCE, name=NAME) is lab_up(str(REFERENCE), name=NAME)
