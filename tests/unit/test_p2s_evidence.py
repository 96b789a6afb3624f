"""Refusal evidence is read per IKE message, so interleaved clients never lend each other their causes."""

from __future__ import annotations

from pathlib import Path

from lab.p2s.evidence import message_lines, refusal_evidence, thread_of

LOG = (Path(__file__).parent / "data" / "p2s" / "gateway-charon.log").read_text().splitlines()
REVOKED, ROGUE = "CN=azgw-client4", "CN=azgw-rogue"


def _interleaved() -> list[str]:
    """The revoked client's certificate message moved to just before the rogue's: lines of both clients now
    sit within a few lines of each other, as they did in the CI run that reported the rogue as revoked."""
    start = next(i for i, line in enumerate(LOG) if "15[ENC] parsed IKE_AUTH request 6" in line)
    block = message_lines(LOG, start)
    rest = [line for line in LOG if line not in block]
    at = next(i for i, line in enumerate(rest) if f"received TLS peer certificate '{ROGUE}'" in line)
    return rest[:at] + block + rest[at:]


def test_thread_of_reads_the_worker_number() -> None:
    assert thread_of("Nov 30 19:26:15 15[CFG] certificate was revoked") == "15"
    assert thread_of("Dec  3 01:02:03 09[TLS] x") == "09"
    assert thread_of("no thread here") is None


def test_a_message_runs_from_its_received_packet_to_the_threads_next() -> None:
    i = next(i for i, line in enumerate(LOG) if "certificate was revoked" in line)
    window = message_lines(LOG, i)
    assert "received packet" in window[0] and "parsed IKE_AUTH request 6" in window[1]
    assert all(thread_of(line) == thread_of(LOG[i]) for line in window)
    assert any(REVOKED in line for line in window) and not any(ROGUE in line for line in window)
    assert "generating IKE_AUTH response 6" in window[-2] and "sending packet" in window[-1]


def test_each_refused_client_gets_its_own_cause() -> None:
    assert refusal_evidence(LOG, REVOKED).startswith("certificate was revoked on Jan 01 00:00:00 UTC 2024")
    assert refusal_evidence(LOG, ROGUE) == 'no issuer certificate found for "CN=azgw-rogue"'


def test_interleaved_clients_do_not_lend_each_other_their_cause() -> None:
    lines = _interleaved()
    assert any(REVOKED in line for line in lines[lines.index(next(x for x in lines if "no issuer" in x)) - 12:])
    assert refusal_evidence(lines, ROGUE) == 'no issuer certificate found for "CN=azgw-rogue"'
    assert refusal_evidence(lines, REVOKED).startswith("certificate was revoked")


def test_a_client_the_log_never_names_has_no_evidence() -> None:
    assert refusal_evidence(LOG, "CN=nobody") == ""
    assert refusal_evidence([], REVOKED) == ""
