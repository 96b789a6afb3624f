"""Failover arithmetic: loss, reordering, the largest gap overall and within one flow."""

from __future__ import annotations

from lab.ha.failover import Series, carriers, largest_gap, stream_stats


def test_largest_gap() -> None:
    assert largest_gap([0.0, 0.1, 0.5, 0.6]) == (0.4, 0.1, 0.5)
    assert largest_gap([1.0]) == (0.0, 0.0, 0.0)


def test_stream_stats_counts_loss_reordering_duplicates() -> None:
    arrivals = [(0, 10.0, 0), (2, 10.02, 0), (1, 10.03, 1), (2, 10.04, 0), (4, 10.5, 0)]
    s = stream_stats([0, 1, 2, 3, 4], arrivals, t0=10.0)
    assert (s.sent, s.delivered, s.lost, s.reordered, s.duplicates) == (5, 4, 1, 1, 1)
    assert s.outage_ms == 460.0 and (s.outage_from, s.outage_to) == (0.04, 0.5)


def test_one_flow_down_is_an_outage_even_when_others_deliver() -> None:
    # flow 0 every 10 ms throughout; flow 1 stops for a second
    arrivals = [(i, i * 0.01, 0) for i in range(300)] + [(1000 + i, i * 0.01, 1) for i in range(300)
                                                         if not 100 <= i < 200]
    s = stream_stats([a for a, _, _ in arrivals], sorted(arrivals, key=lambda a: a[1]), t0=0.0, spacing_s=0.01)
    assert s.outage_ms <= 10.0
    assert s.flow_outage_ms == 1000.0 and s.flow_outage_from == 0.99


def test_carriers_need_a_few_frames_in_the_window() -> None:
    series = [Series(label="a", times=[0.1 * i for i in range(30)]), Series(label="b", times=[0.5, 2.5])]
    assert carriers(series, 0.0, 3.0) == ["a"]
    assert carriers(series, 3.0, 6.0) == []
