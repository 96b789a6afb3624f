"""strongSwan proposal strings: shape checks with useful messages, and matching between two ends."""

from __future__ import annotations

import pytest

from lab.azure.algorithms import first_match, parse_proposal


@pytest.mark.parametrize("text, kind, problem", [
    ("aes256-sha256", "ike", "needs a Diffie-Hellman group"),
    ("aes256-modp2048", "ike", "needs an integrity algorithm"),
    ("aes256gcm16-modp2048", "ike", "needs a PRF"),
    ("aes256gcm16-sha256", "esp", "carries its own integrity"),
    ("aes256-aes256gcm16-sha256", "esp", "mixes AEAD"),
    ("sha256-modp2048", "ike", "has no encryption algorithm"),
    ("aes257-sha256", "esp", "unknown algorithm 'aes257'"),
    ("aes256-sha256-esn", "ike", "unknown algorithm 'esn'"),
    ("aes256-prfsha256-sha256", "esp", "unknown algorithm 'prfsha256'"),
])
def test_malformed_proposals_say_what_is_wrong(text: str, kind: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_proposal(text, kind)  # type: ignore[arg-type]


def test_ike_prf_defaults_to_the_integrity_algorithm() -> None:
    assert parse_proposal("aes256-sha256-modp2048", "ike").prf == {"prfsha256"}
    assert parse_proposal("aes256gcm16-prfsha384-ecp384", "ike").prf == {"prfsha384"}
    assert parse_proposal("aes-sha-modp1024", "ike") == parse_proposal("aes128-sha1-modp1024", "ike")


def test_matching_needs_every_transform_in_common() -> None:
    site = ["aes128-sha1-modp1024"]
    assert first_match(site, ["aes256-sha1-modp1024", "aes128-sha1-modp1024"], "ike") == "aes128-sha1-modp1024"
    assert first_match(site, ["aes128-sha1-modp2048"], "ike") is None
    assert first_match(["aes128-aes256-sha1-sha256-modp1024-modp2048"], ["aes256-sha256-modp2048"], "ike")


def test_esp_pfs_is_a_transform_unless_ignored() -> None:
    assert first_match(["aes256-sha1-modp1024"], ["aes256-sha1"], "esp") is None
    assert first_match(["aes256-sha1-modp1024"], ["aes256-sha1"], "esp", with_dh=False) == "aes256-sha1"
    assert first_match(["aes256gcm16"], ["aes256gcm16", "aes256-sha1"], "esp") == "aes256gcm16"
