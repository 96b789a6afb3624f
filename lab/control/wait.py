"""Wait until every expected tunnel is up, or explain from charon's own log why one is not.

`lab up` must finish in seconds, so this polls fast; and a stuck tunnel must say which node, which
connection and the likely cause, so the user does not have to read charon logs to get started.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Mapping

from lab.control.base import CHILD_INSTALLED, IKE_ESTABLISHED, IkeSaStatus, VpnControl
from lab.errors import ControlError, LabError

POLL_S = 0.05
LOG_LINES_SHOWN = 15
MAX_NODES_WITH_LOG = 3
# Log lines worth showing a user: IKE exchanges, config matching, CHILD_SAs; minus the task bookkeeping
# that charon's `ike = 2` level adds ("13[IKE] queueing IKE_NATD task", "01[IKE]   activating ...").
IKE_LOG_LINE = re.compile(r"\[(IKE|CFG|CHD)\] ")
IKE_LOG_NOISE = re.compile(r"\] {2,}|\] (queueing|activating|reinitiating) .*tasks?$")

# Most specific first: a failure may be followed by retransmits or a NO_PROPOSAL_CHOSEN, not vice versa.
_DIAGNOSES = (
    # A responder without a matching connection answers NO_PROPOSAL_CHOSEN, so this one goes first.
    (
        r"no IKE config found",
        "no IKE config found: IKE packets came from an address no connection expects (local_addrs/remote_addrs)",
    ),
    (
        r"NO_PROPOSAL_CHOSEN|no acceptable proposal|no proposal chosen|proposals unacceptable",
        "no proposal chosen: the two ends share no IKE or ESP proposal, or the peer has no connection for "
        "this address (compare 'received proposals' with 'configured proposals' in the peer's log)",
    ),
    (
        r"AUTHENTICATION_FAILED|MAC mismatched|authentication of '.*' with .* failed|no shared key found",
        "authentication failed: the pre-shared keys (or the identities they belong to) differ",
    ),
    (
        r"TS_UNACCEPTABLE|traffic selectors .* unacceptable",
        "traffic selectors unacceptable: the two ends' prefixes (local_ts/remote_ts) do not match",
    ),
    (
        r"no matching peer config found|no peer config found",
        "no matching peer config: the IKE identities (local.id/remote.id) do not match",
    ),
    (
        r"peer not responding|giving up after \d+ retransmits",
        "peer not responding: IKE requests got no answer (peer down, unreachable, or not started)",
    ),
)
DIAGNOSES = tuple((re.compile(pattern, re.IGNORECASE), reason) for pattern, reason in _DIAGNOSES)
# Errors after which charon does not retry (or retries into the same refusal): waiting longer cannot help.
# Not "no IKE config found": a peer that loads its config a moment later is normal during `lab up`.
FATAL = re.compile(r"AUTHENTICATION_FAILED|received AUTH_FAILED|MAC mismatched|NO_PROPOSAL_CHOSEN|"
                   r"no acceptable proposal|TS_UNACCEPTABLE|no matching peer config found|INVALID_MAJOR_VERSION|"
                   r"no shared key found", re.IGNORECASE)
FATAL_GRACE_S = 1.0  # a fatal line must still leave the tunnel down this long (another attempt may be in flight)
LOG_CHECK_S = 0.25

Expected = Mapping[str, list[tuple[str, list[str]]]]


def diagnose_log(lines: list[str]) -> str | None:
    """The most specific known failure found in charon log lines, as one line; None if none matches."""
    for pattern, reason in DIAGNOSES:
        if any(pattern.search(line) for line in lines):
            return reason
    return None


def wait_established(
    controls: Mapping[str, VpnControl],
    expected: Expected,
    timeout: float,
    log_tail: Callable[[str], list[str]],
    poll: float = POLL_S,
) -> dict[str, list[IkeSaStatus]]:
    """Poll until, on each node, every expected IKE_SA is ESTABLISHED with each expected CHILD_SA INSTALLED.

    `expected` maps node -> [(connection, [child names])]; `log_tail(node)` returns that node's recent
    charon log lines (a few hundred: older failures would mislead the diagnosis). Returns the last
    snapshot of every node.
    """
    unknown = sorted(set(expected) - set(controls))
    if unknown:
        raise ValueError(f"no control for nodes {unknown}")
    start = time.monotonic()
    deadline, fatal_since, next_log = start + timeout, None, start
    snapshot: dict[str, list[IkeSaStatus]] = {}
    polled: Collection[str] = list(controls)  # every node first; then only the stuck ones, until all look up
    while True:
        snapshot |= {node: _node_sas(node, controls[node]) for node in polled}
        stuck = {node: missing(snapshot[node], wants) for node, wants in expected.items()}
        stuck = {node: problems for node, problems in stuck.items() if problems}
        if not stuck and len(polled) == len(controls):
            return snapshot
        # A node that is up is asked again only once all are (that full round decides): 200 tunnel charons
        # asked every 50 ms while the last ones start cost the machine more than the tunnels did.
        polled = list(stuck) if stuck else list(controls)
        if not stuck:
            continue
        now = time.monotonic()
        if now >= next_log:  # a fatal IKE error in a stuck node's log ends the wait (after a short grace)
            next_log = now + LOG_CHECK_S
            fatal = any(FATAL.search(line) for node in stuck for line in _safe_tail(log_tail, node))
            fatal_since = (fatal_since or now) if fatal else None
        if now >= deadline or (fatal_since is not None and now - fatal_since >= FATAL_GRACE_S):
            raise stuck_error(stuck, timeout if now >= deadline else round(now - start, 1), log_tail)
        time.sleep(poll)


def missing(sas: list[IkeSaStatus], wants: list[tuple[str, list[str]]]) -> list[str]:
    """What is not up yet on one node, one phrase per connection; empty when everything is up."""
    out = []
    for ike, children in wants:
        mine = sorted((sa for sa in sas if sa.name == ike), key=lambda sa: sa.uniqueid)
        up = [sa for sa in mine if sa.state == IKE_ESTABLISHED]
        absent = [c for c in children if not any(_installed(sa, c) for sa in up)]
        if up and not absent:
            continue
        where = "is ESTABLISHED" if up else f"stuck in {mine[-1].state}" if mine else "has no IKE_SA"
        names = ", ".join(repr(c) for c in absent)
        what = f" ({'child' if len(absent) == 1 else 'children'} {names} not installed)" if absent else ""
        out.append(f"connection {ike!r} {where}{what}")
    return out


def _installed(sa: IkeSaStatus, child: str) -> bool:
    return any(c.name == child and c.state == CHILD_INSTALLED for c in sa.children)


def _node_sas(node: str, control: VpnControl) -> list[IkeSaStatus]:
    try:
        return control.sas()
    except ControlError as exc:
        raise ControlError(f"node {node!r}: {exc.message}", hint=exc.hint or f"`lab logs {node}`") from exc


def stuck_error(stuck: Mapping[str, list[str]], timeout: float, log_tail: Callable[[str], list[str]]) -> ControlError:
    """One line per stuck connection with the log's diagnosis, then the IKE log tail of the first nodes."""
    lines: list[str] = []
    tails: list[str] = []
    for i, (node, problems) in enumerate(stuck.items()):
        log = _safe_tail(log_tail, node)
        reason = diagnose_log(log)
        cause = f": {reason}" if reason else ""
        lines += [f"node {node!r}: {problem} after {timeout:g} s{cause}" for problem in problems]
        if i < MAX_NODES_WITH_LOG:
            shown = [ln for ln in log if IKE_LOG_LINE.search(ln) and not IKE_LOG_NOISE.search(ln)] or log
            tails.append(f"last IKE log lines of {node!r}:")
            tails += [f"  {line}" for line in shown[-LOG_LINES_SHOWN:]] or ["  (log is empty)"]
    first = next(iter(stuck))
    return ControlError("\n".join(lines + tails), hint=f"`lab logs {first}` shows the whole charon log")


def _safe_tail(log_tail: Callable[[str], list[str]], node: str) -> list[str]:
    """A missing or unreadable log must not hide the real error (the tunnel that is stuck)."""
    try:
        return log_tail(node)
    except (OSError, LabError) as exc:
        return [f"(cannot read the log: {exc})"]
