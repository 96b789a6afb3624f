"""A headless Chromium driven over the W3C WebDriver protocol (chromedriver), with the standard library only:
the browser tests and the screenshots in docs/ui.md use it. Chromium gets a proxy that does not exist, so
it can reach the loopback UI server and nothing else (no update checks, no outside traffic).
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = ("chromedriver",)
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-extensions", "--metrics-recording-only",
        "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>;127.0.0.1"]


def find(names: tuple[str, ...]) -> str | None:
    return next((p for n in names if (p := shutil.which(n))), None)


def available() -> bool:
    return find(CHROMIUM) is not None and find(DRIVER) is not None


class BrowserError(Exception):
    pass


class Browser:
    """One chromedriver process and one session; close() ends both."""

    def __init__(self, width: int = 1500, height: int = 1000, timeout: float = 30.0) -> None:
        driver, chromium = find(DRIVER), find(CHROMIUM)
        if not driver or not chromium:
            raise BrowserError("chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self._wait_driver(timeout)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium, "args": [*ARGS, f"--window-size={width},{height}"]}}}}
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _wait_driver(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.base + "/status", timeout=2).read()
                return
            except OSError:
                time.sleep(0.1)
        self.proc.kill()
        raise BrowserError(f"chromedriver did not answer within {timeout:.0f} s")

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return json.loads(resp.read())["value"]
        except urllib.error.HTTPError as exc:
            raise BrowserError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from exc

    def _s(self, path: str) -> str:
        return f"/session/{self.session}{path}"

    def get(self, url: str) -> None:
        self._call("POST", self._s("/url"), {"url": url})

    def js(self, script: str, *args: object) -> Any:
        """Run `script` (a function body; `arguments` holds args) in the page and return its value."""
        return self._call("POST", self._s("/execute/sync"), {"script": script, "args": list(args)})

    def wait(self, script: str, timeout: float, what: str, *args: object) -> Any:
        """Until `script` returns something truthy; BrowserError naming `what` after `timeout` s."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.js(script, *args)
            if value:
                return value
            time.sleep(0.1)
        raise BrowserError(f"waited {timeout:.0f} s for {what}; last value {value!r}")

    def click(self, css: str) -> None:
        self.js("document.querySelector(arguments[0]).click()", css)

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self._call("GET", self._s("/screenshot"))))
        return path

    def close(self) -> None:
        try:
            self._call("DELETE", self._s(""))
        except (BrowserError, OSError):
            pass
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            raise BrowserError(f"waited {timeout:.0f} s for {what}")
        time.sleep(step)
