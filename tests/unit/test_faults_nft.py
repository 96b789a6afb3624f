"""The loss ruleset: a per-direction rate chosen so a round trip through the interface loses PERCENT %."""

from __future__ import annotations

import pytest

from lab.runtime.faults import LOSS_TABLE, NUMGEN_MOD, delete_argv, direction_threshold, loss_ruleset


@pytest.mark.parametrize("percent", [0, 1, 10, 25, 50, 75, 99, 100])
def test_round_trip_loss_matches_percent(percent: float) -> None:
    q = direction_threshold(percent) / NUMGEN_MOD
    assert 1 - (1 - q) ** 2 == pytest.approx(percent / 100, abs=2e-4)


def test_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="outside 0..100"):
        direction_threshold(101)


def test_ruleset_drops_in_and_out_per_interface_sorted() -> None:
    text = loss_ruleset({"eth1": 10, "eth0": 50})
    assert text.startswith("# Rendered by lab fault")
    assert f"table inet {LOSS_TABLE}\ndelete table inet {LOSS_TABLE}\n" in text  # reload replaces, never stacks
    assert 'iifname "eth0" numgen random mod 10000 < 2929 counter drop' in text
    assert 'oifname "eth0" numgen random mod 10000 < 2929 counter drop' in text
    assert 'iifname "eth1" numgen random mod 10000 < 513 counter drop' in text
    assert text.index('iifname "eth0"') < text.index('iifname "eth1"')
    assert "hook prerouting priority -300" in text and "hook postrouting priority 300" in text
    assert loss_ruleset({"eth0": 50}) == loss_ruleset({"eth0": 50})  # deterministic


def test_delete_argv() -> None:
    assert delete_argv() == ["nft", "delete", "table", "inet", LOSS_TABLE]
