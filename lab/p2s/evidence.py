"""Why the gateway refused one P2S client, from its charon log.

Clients connect at once, so their lines interleave and a window of neighbouring lines mixes clients (a rogue
client was once reported with its neighbour's "certificate was revoked"). charon handles one IKE message at a
time per worker thread, from its `received packet` line to the thread's next one; a certificate's verdict is
logged in the message that carried the certificate. So the evidence is looked for only in the messages whose
lines name the client."""

from __future__ import annotations

import re

EVIDENCE = ("was revoked", "no issuer", "constraint check failed", "no trusted certificate",
            "method failed",  # a refusal connection's EAP (lab.p2s.render.refusal_tree)
            "EAP_FAILURE")
_THREAD = re.compile(r"(?:^|\s)(\d+)\[[A-Z]+\]")
_MESSAGE_START = "[NET] received packet: "


def thread_of(line: str) -> str | None:
    """charon's worker thread number of a log line (`Nov 30 19:26:15 15[CFG] ...` -> "15")."""
    m = _THREAD.search(line)
    return m.group(1) if m else None


def message_lines(lines: list[str], i: int) -> list[str]:
    """The lines line i's thread logged while handling the same IKE message as line i."""
    thread = thread_of(lines[i])
    if thread is None:
        return [lines[i]]
    mine = [j for j, line in enumerate(lines) if thread_of(line) == thread]
    at = mine.index(i)
    start = next((k for k in range(at, -1, -1) if _MESSAGE_START in lines[mine[k]]), 0)
    end = next((k for k in range(at + 1, len(mine)) if _MESSAGE_START in lines[mine[k]]), len(mine))
    return [lines[j] for j in mine[start:end]]


def refusal_evidence(lines: list[str], identity: str) -> str:
    """The most specific refusal cause logged for `identity`'s latest attempt, without its prefix; "" if none."""
    for i in range(len(lines) - 1, -1, -1):
        if identity not in lines[i]:
            continue
        window = message_lines(lines, i)
        for key in EVIDENCE:  # the most specific cause first
            hit = next((line for line in window if key in line), None)
            if hit:
                return hit.split("] ", 1)[-1].strip()
    return ""
