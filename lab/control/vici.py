"""VpnControl over charon's vici socket, and the conversion of vici's bytes-dicts into typed SA models.

The only module of lab that imports `vici`. The socket lives in the node's bind-mounted /lab directory,
so the host reaches it at <state>/nodes/<node>/run/charon.vici.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import TypeVar

from vici import Session
from vici.exception import (
    CommandException,
    DeserializationException,
    EventUnknownException,
    SessionException,
)

from lab.control.base import ChildSaStatus, Creds, IkeSaStatus, P2sSa, VpnControl, VpnEvent
from lab.control.wait import diagnose_log
from lab.errors import ControlError
from lab.render.swanctl import SwanctlConfig

Raw = Mapping[str, object]
T = TypeVar("T")

CONNECT_RETRY_S = 0.05
UNIX_PATH_MAX = 107  # sun_path is 108 bytes including the terminating NUL
TERMINATE_TIMEOUT_MS = 3000
LISTEN_TICK_S = 0.2  # how often a listener thread looks at its stop flag
# Keys swanctl sends as vici lists (src/swanctl/commands/load_conns.c); load-conn answers
# "unknown option: <key>" if one of them arrives as a plain string.
LIST_KEYS = frozenset(
    {
        "local_addrs",
        "remote_addrs",
        "proposals",
        "esp_proposals",
        "ah_proposals",
        "local_ts",
        "remote_ts",
        "vips",
        "pools",
        "groups",
        "certs",
        "cacerts",
    }
)
START_HINT = "is charon running on that node? its log is charon.log next to run/ (`lab logs <node>`)"


# ---- conversion: vici message (nested dicts of bytes) -> models -------------------------------------


def _text(raw: Raw, key: str) -> str:
    value = raw.get(key)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""


def _opt_text(raw: Raw, key: str) -> str | None:
    return _text(raw, key) or None


def _opt_int(raw: Raw, key: str) -> int | None:
    """vici sends numbers as decimal text; a missing or malformed one is None rather than a crash."""
    text = _text(raw, key).strip()
    return int(text) if text.isdigit() else None


def _int(raw: Raw, key: str) -> int:
    return _opt_int(raw, key) or 0


def _strings(raw: Raw, key: str) -> list[str]:
    value = raw.get(key)
    items = value if isinstance(value, list) else [value] if value else []
    return [i.decode("utf-8", "replace") if isinstance(i, bytes) else str(i) for i in items]


def _section(raw: Raw, key: str) -> Raw:
    value = raw.get(key)
    return value if isinstance(value, Mapping) else {}


def child_sa_from_vici(raw: Raw) -> ChildSaStatus:
    """One entry of an IKE_SA's `child-sas` section; counters are absent until the SA is installed."""
    return ChildSaStatus(
        name=_text(raw, "name"),
        uniqueid=_int(raw, "uniqueid"),
        reqid=_int(raw, "reqid"),
        state=_text(raw, "state"),
        mode=_text(raw, "mode"),
        protocol=_text(raw, "protocol"),
        encap=_text(raw, "encap") == "yes",
        spi_in=_text(raw, "spi-in"),
        spi_out=_text(raw, "spi-out"),
        encr_alg=_opt_text(raw, "encr-alg"),
        encr_keysize=_opt_int(raw, "encr-keysize"),
        integ_alg=_opt_text(raw, "integ-alg"),
        dh_group=_opt_text(raw, "dh-group"),
        bytes_in=_int(raw, "bytes-in"),
        bytes_out=_int(raw, "bytes-out"),
        packets_in=_int(raw, "packets-in"),
        packets_out=_int(raw, "packets-out"),
        local_ts=_strings(raw, "local-ts"),
        remote_ts=_strings(raw, "remote-ts"),
        install_time_s=_opt_int(raw, "install-time"),
    )


def ike_sa_from_vici(name: str, raw: Raw) -> IkeSaStatus:
    """One IKE_SA section of a list-sa event (the section is named after the connection)."""
    children = _section(raw, "child-sas")
    return IkeSaStatus(
        name=name,
        uniqueid=_int(raw, "uniqueid"),
        state=_text(raw, "state"),
        version=_int(raw, "version"),
        local_host=_text(raw, "local-host"),
        remote_host=_text(raw, "remote-host"),
        local_id=_text(raw, "local-id"),
        remote_id=_text(raw, "remote-id"),
        encr_alg=_opt_text(raw, "encr-alg"),
        encr_keysize=_opt_int(raw, "encr-keysize"),
        integ_alg=_opt_text(raw, "integ-alg"),
        prf_alg=_opt_text(raw, "prf-alg"),
        dh_group=_opt_text(raw, "dh-group"),
        established_s=_opt_int(raw, "established"),
        children=[child_sa_from_vici(c) for c in children.values() if isinstance(c, Mapping)],
    )


def ike_sas_from_vici(message: Raw) -> list[IkeSaStatus]:
    """A list-sa event: {<connection name>: {...}} (one IKE_SA per event, sections only)."""
    return [ike_sa_from_vici(name, raw) for name, raw in message.items() if isinstance(raw, Mapping)]


def event_from_vici(name: str, message: Raw, at: float) -> VpnEvent | None:
    """ike-/child-updown carry `up = yes` (absent when down); *-rekey carry old/new sections instead."""
    sections = [(k, v) for k, v in message.items() if isinstance(v, Mapping)]
    if not sections:
        return None
    ike, raw = sections[0]
    ike_raw = _section(raw, "new") or raw  # ike-rekey: {old: {...}, new: {...}}
    names = []
    for key, child in _section(ike_raw, "child-sas").items():
        child_raw = child if isinstance(child, Mapping) else {}
        child_raw = _section(child_raw, "new") or child_raw  # child-rekey
        names.append(_text(child_raw, "name") or key)
    up = _text(message, "up") == "yes" if name.endswith("updown") else None
    return VpnEvent(at, name, ike, _int(ike_raw, "uniqueid"), tuple(names), up)


def p2s_sa_from_vici(name: str, raw: Raw) -> P2sSa:
    kids = raw.get("child-sas")
    children = kids.values() if isinstance(kids, Mapping) else []
    installed = any(isinstance(c, Mapping) and _text(c, "state") == "INSTALLED" for c in children)
    uid = _text(raw, "uniqueid")
    return P2sSa(conn=name, uniqueid=int(uid) if uid.isdigit() else 0, state=_text(raw, "state"),
                 remote_host=_text(raw, "remote-host"), remote_id=_text(raw, "remote-id"),
                 local_vips=tuple(_strings(raw, "local-vips")), remote_vips=tuple(_strings(raw, "remote-vips")),
                 child_installed=installed)


def creds_requests(creds: Creds) -> list[tuple[str, str, Mapping[str, object]]]:
    """(vici command, what it loads, message) for every P2S item, in load order."""
    return ([("load_cert", "CA certificate", {"type": "X509", "flag": "CA", "data": c}) for c in creds.cacerts]
            + [("load_cert", "certificate", {"type": "X509", "flag": "NONE", "data": c}) for c in creds.certs]
            + [("load_cert", "CRL", {"type": "X509_CRL", "data": c}) for c in creds.crls]
            + [("load_key", "private key", {"type": "rsa", "data": k}) for k in creds.keys]
            + [("load_pool", f"pool {n}", {n: {"addrs": cidr}}) for n, cidr in creds.pools.items()]
            + [("load_conn", f"connection {n}", {n: vici_tree(t)}) for n, t in creds.conns.items()])


def _request(session: Session, method: str, message: Mapping[str, object]) -> object:
    return getattr(session, method)(message)


def vici_tree(tree: Mapping[str, object]) -> dict[str, object]:
    """Split comma strings of list keys into lists, as swanctl does: vici refuses a string there."""
    out: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out[key] = vici_tree(value)
        elif isinstance(value, str) and key in LIST_KEYS:
            out[key] = [item.strip() for item in value.split(",") if item.strip()]
        else:
            out[key] = value
    return out


def _errmsg(exc: CommandException) -> str:
    text = str(exc)
    return text.removeprefix("Command failed: ")


# ---- connecting ---------------------------------------------------------------------------------


def _connect_unix(sock: socket.socket, path: Path) -> None:
    """Long state paths exceed sun_path (108 bytes): connect through /proc/self/fd/<dir fd> instead."""
    if len(os.fsencode(path)) <= UNIX_PATH_MAX:
        sock.connect(str(path))
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        sock.connect(f"/proc/self/fd/{fd}/{path.name}")
    finally:
        os.close(fd)


def open_session(path: Path, connect_timeout: float, read_timeout: float) -> Session:
    """Retry until charon (just started) has created the socket and answers; else ControlError."""
    deadline = time.monotonic() + connect_timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(read_timeout)
        try:
            _connect_unix(sock, path)
            session = Session(sock)
            session.version()  # the socket can exist before charon serves requests
            return session
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            if time.monotonic() >= deadline:
                raise ControlError(
                    f"vici socket {path}: no charon answered within {connect_timeout:g} s ({exc.strerror})",
                    hint=START_HINT,
                ) from exc
            time.sleep(CONNECT_RETRY_S)
        except (OSError, SessionException, DeserializationException) as exc:
            sock.close()
            raise ControlError(f"vici socket {path}: cannot talk to charon: {exc}", hint=START_HINT) from exc


# ---- the control --------------------------------------------------------------------------------


class ViciControl:
    """VpnControl for one charon. Thread-safe: one request at a time on one session.

    A broken session (charon restarted, timeout) is dropped and reopened on the next call.
    """

    def __init__(self, socket_path: Path, connect_timeout: float = 10.0, read_timeout: float = 30.0) -> None:
        self._path = socket_path
        self._read_timeout = read_timeout
        self._lock = threading.Lock()
        self._session: Session | None = open_session(socket_path, connect_timeout, read_timeout)

    def load(self, config: SwanctlConfig) -> None:
        for key in config.secrets:
            self._call(f"charon refused shared key {key.name!r}", partial(Session.load_shared, secret=key.vici()))
        for name, tree in config.connections.items():
            load = partial(Session.load_conn, connection={name: vici_tree(tree)})
            self._call(f"charon refused connection {name!r}", load)

    def unload_conn(self, name: str) -> None:
        self._call(f"charon could not unload connection {name!r}", lambda s: s.unload_conn({"name": name}))

    def initiate(self, child: str, ike: str, timeout: float) -> None:
        """Blocks up to `timeout`; initiating an already installed child creates a second CHILD_SA."""
        logs: list[str] = []
        request = {"child": child, "ike": ike, "timeout": str(max(1, int(timeout * 1000)))}

        def run(session: Session) -> None:
            logs.extend(_text(event, "msg") for event in session.initiate(request))

        try:
            self._call(f"initiating child {child!r} of connection {ike!r} failed", run, timeout + 5)
        except ControlError as exc:
            reason = diagnose_log(logs)
            raise ControlError(exc.message + (f": {reason}" if reason else ""), hint=exc.hint) from exc

    def terminate_ike(self, ike: str) -> None:
        """Sends DELETE and waits up to 3 s for the answer, then destroys the IKE_SA regardless (force)."""
        request = {"ike": ike, "force": "yes", "timeout": str(TERMINATE_TIMEOUT_MS)}
        read_timeout = TERMINATE_TIMEOUT_MS / 1000 + 5
        self._call(f"terminating connection {ike!r} failed", lambda s: list(s.terminate(request)), read_timeout)

    def sas(self) -> list[IkeSaStatus]:
        return self._call("listing SAs failed", lambda s: [a for m in s.list_sas() for a in ike_sas_from_vici(m)])

    def conns(self) -> list[str]:
        reply = self._call("listing connections failed", lambda s: s.get_conns())
        return _strings(reply, "conns")

    def load_creds(self, creds: Creds) -> None:
        for method, what, message in creds_requests(creds):
            self._call(f"charon refused the P2S {what}", partial(_request, method=method, message=message))

    def p2s_sas(self, conn: str) -> list[P2sSa]:
        def run(session: Session) -> list[P2sSa]:
            return [p2s_sa_from_vici(name, raw) for message in session.list_sas({"ike": conn})
                    for name, raw in message.items() if isinstance(raw, Mapping)]

        return self._call("listing P2S SAs failed", run)

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _call(self, what: str, action: Callable[[Session], T], read_timeout: float | None = None) -> T:
        """Run one vici exchange; charon's `success: no` and broken sessions become ControlError."""
        with self._lock, self._session_for(read_timeout) as session:
            try:
                return action(session)
            except CommandException as exc:
                hint = f"charon's log: {self._path.parent.parent / 'charon.log'} (`lab logs <node>`)"
                raise ControlError(f"{what}: {_errmsg(exc)}", hint=hint) from exc
            except (OSError, SessionException, DeserializationException) as exc:
                self._drop()
                raise ControlError(f"{what}: vici connection {self._path} broke: {exc}", hint=START_HINT) from exc

    @contextmanager
    def _session_for(self, read_timeout: float | None) -> Iterator[Session]:
        if self._session is None:
            self._session = open_session(self._path, 0.0, self._read_timeout)
        session = self._session
        session.transport.socket.settimeout(read_timeout or self._read_timeout)
        try:
            yield session
        finally:
            if self._session is session:
                session.transport.socket.settimeout(self._read_timeout)

    def _drop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            with suppress(OSError):  # already closed by charon
                session.transport.close()


def _is_a_control(path: Path) -> VpnControl:
    """Checked by mypy (`make lint`): ViciControl satisfies the VpnControl protocol."""
    return ViciControl(path)


# ---- events -------------------------------------------------------------------------------------


def watch_events(
    socket_path: Path,
    event_names: Sequence[str],
    callback: Callable[[VpnEvent], None],
    stop: threading.Event,
    connect_timeout: float = 10.0,
) -> threading.Thread:
    """Listen on a session of its own in a daemon thread until `stop` is set or charon goes away.

    Registration happens before this returns, so an event caused right after the call is not missed.
    vici's listen() blocks a session, hence the separate one; events are stamped with time.monotonic().
    """
    session = open_session(socket_path, connect_timeout, LISTEN_TICK_S * 10)
    stream = session.listen(list(event_names), timeout=LISTEN_TICK_S)
    try:
        first = next(stream)  # registers every event, then yields (None, None) or an early event
    except (OSError, SessionException, EventUnknownException) as exc:
        session.transport.close()
        raise ControlError(f"vici socket {socket_path}: cannot listen for {list(event_names)}: {exc}") from exc
    thread = threading.Thread(
        target=_pump, args=(first, stream, session, callback, stop), name=f"vici-events {socket_path}", daemon=True
    )
    thread.start()
    return thread


def _pump(
    first: tuple[bytes | None, Raw | None],
    stream: Iterator[tuple[bytes | None, Raw | None]],
    session: Session,
    callback: Callable[[VpnEvent], None],
    stop: threading.Event,
) -> None:
    pending: list[tuple[bytes | None, Raw | None]] = [first]
    try:
        while not stop.is_set():
            name, message = pending.pop() if pending else next(stream)
            now = time.monotonic()
            if name is None or message is None:
                continue
            event = event_from_vici(name.decode(), message, now)
            if event is not None:
                callback(event)
    except (OSError, SessionException, DeserializationException, StopIteration):
        pass  # charon stopped or restarted: the watch ends with it
    finally:
        _close_quietly(stream, session)


def _close_quietly(stream: Iterator[object], session: Session) -> None:
    with suppress(OSError, SessionException, RuntimeError):
        stream.close()  # type: ignore[attr-defined]  # unregisters the events
    with suppress(OSError):
        session.transport.close()
