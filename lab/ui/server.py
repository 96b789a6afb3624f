"""The HTTP side of `lab ui` on the standard library: one page per lab, its state as JSON, its changes as
server-sent events, actions by POST, capture downloads. Every request must carry the token (auth.py);
nothing else is answered. One action runs at a time, in its own thread, as a `lab` process (actions.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urlsplit

from lab.ui import actions
from lab.ui.auth import authorized, redact
from lab.ui.events import parse_failover
from lab.ui.live import Collector

STATIC = Path(__file__).parent / "static"
ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
KEEPALIVE_S = 15.0
MAX_BODY = 4096
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
       "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class UiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], collector: Collector, token: str, log: Callable[[str], None]):
        super().__init__(addr, Handler)
        self.collector, self.token, self.log = collector, token, log
        self.action_lock = threading.Lock()
        self.stopping = threading.Event()

    @property
    def capture_dir(self) -> Path:
        return self.collector.lab.dir.root / actions.CAPTURE_DIR

    def url(self) -> str:
        host, port = str(self.server_address[0]), int(self.server_address[1])
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/lab/{quote(self.collector.name)}?token={self.token}"


class Handler(BaseHTTPRequestHandler):
    server: UiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass  # the token is in every URL: request lines are not logged

    # ---- plumbing ----

    def _send(self, code: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        headers = {"Content-Type": ctype, "Content-Length": str(len(body)), "Cache-Control": "no-store",
                   "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                   "Content-Security-Policy": CSP, **(extra or {})}
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, data: object) -> None:
        self._send(code, json.dumps(data).encode(), "application/json")

    def _text(self, code: int, text: str) -> None:
        self._send(code, text.encode(), "text/plain; charset=utf-8")

    def _allowed(self) -> bool:
        if authorized(self.path, dict(self.headers.items()), self.server.token):
            return True
        self._text(HTTPStatus.FORBIDDEN, "403: this lab UI needs the token from the URL `lab ui` printed\n")
        return False

    # ---- routes ----

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if not self._allowed():
            return
        path = urlsplit(self.path).path
        col = self.server.collector
        if path in ("/", f"/lab/{col.name}"):
            if path == "/":
                self._send(HTTPStatus.FOUND, b"", "text/plain", {"Location": self.server.url()})
                return
            self._send(HTTPStatus.OK, _page(col.name, self.server.token), "text/html; charset=utf-8")
        elif path.startswith("/static/") and path.removeprefix("/static/") in ASSETS:
            name = path.removeprefix("/static/")
            self._send(HTTPStatus.OK, (STATIC / name).read_bytes(), ASSETS[name])
        elif path == "/api/state":
            self._send(HTTPStatus.OK, col.state_json().encode(), "application/json")
        elif path == "/api/events":
            self._events()
        elif path == "/api/captures":
            self._json(HTTPStatus.OK, actions.capture_files(self.server.capture_dir))
        elif path.startswith("/api/capture/"):
            self._download(path.removeprefix("/api/capture/"))
        else:
            self._text(HTTPStatus.NOT_FOUND, "404\n")

    def do_POST(self) -> None:  # noqa: N802
        if not self._allowed():
            return
        if urlsplit(self.path).path != "/api/action":
            self._text(HTTPStatus.NOT_FOUND, "404\n")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._text(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "413\n")
            return
        try:
            req = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"body: JSON object expected ({exc})"})
            return
        self._start_action(req)

    def _start_action(self, req: dict) -> None:
        col = self.server.collector
        scenario = (col.snapshot.get("scenario") or {}) if col.snapshot else {}
        try:
            action = actions.plan_action(req, col.lab, col.name if scenario else None, self.server.capture_dir)
        except actions.ActionError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        if not self.server.action_lock.acquire(blocking=False):
            self._json(HTTPStatus.CONFLICT, {"error": f"busy: {col.action.get('running')} is running"})
            return
        col.set_action(action.command)
        col.note("action", action.node, f"{action.command} started")
        threading.Thread(target=_run, args=(self.server, action), daemon=True).start()
        self._json(HTTPStatus.ACCEPTED, {"started": action.command})

    def _download(self, name: str) -> None:
        if name not in actions.capture_files(self.server.capture_dir):
            self._text(HTTPStatus.NOT_FOUND, "404: no such capture file\n")
            return
        body = (self.server.capture_dir / name).read_bytes()
        ctype = "image/png" if name.endswith(".png") else "application/octet-stream"  # the plot shows inline
        self._send(HTTPStatus.OK, body, ctype,
                   {"Content-Disposition": f'attachment; filename="{name}"'})

    def _events(self) -> None:
        """Server-sent events: `state` (the snapshot; the SVG only when it changed for this page) and
        `events` (timeline entries this page has not seen). Waits on the collector, never polls it."""
        col = self.server.collector
        self.send_response(HTTPStatus.OK)
        for k, v in {"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                     "X-Content-Type-Options": "nosniff", "Connection": "close"}.items():
            self.send_header(k, v)
        self.end_headers()
        self.close_connection = True
        seen_version, seen_seq, last_svg = 0, 0, None  # version 0: nothing collected yet, nothing to send
        try:
            while not self.server.stopping.is_set():
                with col.cond:
                    col.cond.wait_for(_changed(col, seen_version), timeout=KEEPALIVE_S)
                    version, closed = col.version, col.closed
                if closed:
                    break
                if version == seen_version:
                    self.wfile.write(b": keepalive\n\n")
                    self.wfile.flush()
                    continue
                seen_version = version
                svg = col.snapshot.get("svg")
                state = col.state_json(with_svg=svg != last_svg)
                last_svg = svg
                seen_seq, new = col.events_since(seen_seq)
                self._sse("state", state)
                if new:
                    self._sse("events", redact(json.dumps(new), col.secrets))
        except (BrokenPipeError, ConnectionResetError):
            return

    def _sse(self, event: str, data: str) -> None:
        self.wfile.write(f"event: {event}\ndata: {data}\n\n".encode())
        self.wfile.flush()


def _changed(col: Collector, seen: int) -> Callable[[], bool]:
    return lambda: col.version != seen or col.closed


def _run(server: UiServer, action: actions.Action) -> None:
    col = server.collector
    try:
        result = actions.run_action(action, col.home, server.capture_dir)
        verdict = "ok" if result["ok"] else f"exit {result['code']}"
        col.note("action", action.node, f"{action.command}: {verdict}")
        if action.name == "failover" and isinstance(result["data"], dict):
            col.publish(None, sorted(parse_failover(result["data"]), key=lambda e: e.t))
        col.set_action(None, result)
    except Exception as exc:  # noqa: BLE001 - the page must learn that it failed
        col.set_action(None, {"name": action.name, "command": action.command, "ok": False, "code": -1,
                              "output": f"{type(exc).__name__}: {exc}", "data": None})
    finally:
        server.action_lock.release()


def _page(name: str, token: str) -> bytes:
    html = (STATIC / "index.html").read_text()
    return (html.replace("{{LAB}}", _html_escape(name)).replace("{{TOKEN}}", quote(token))).encode()


def _html_escape(text: str) -> str:
    from html import escape

    return escape(text, quote=True)
