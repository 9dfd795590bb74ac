"""Debian's Chromium, headless, driven over the DevTools protocol on a pipe: the battle
browser's tests and its benchmark open a page, read it, type into it and screenshot it.

No driver package: Chromium's `--remote-debugging-pipe` reads protocol commands from fd 3
and writes replies and events to fd 4, NUL-terminated JSON, so the standard library is
enough. bash puts the two pipe ends on fds 3 and 4 (they are moved above 9 first, so no
redirection clobbers the other end).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

BINARIES = ("chromium", "chromium-browser", "google-chrome")
INSTALL = "apt-get install -y chromium fonts-liberation"
# Where the browser tests leave what they saw (runs/ is not versioned; pytest's own
# temporary folders are rotated away by later sessions).
SCREENSHOTS = Path(__file__).resolve().parents[1] / "runs" / "screenshots"


def find_chromium() -> str | None:
    return next((path for name in BINARIES if (path := shutil.which(name))), None)


def _high(fd: int) -> int:
    """`fd` moved to a number above 9, for bash's `3<&N` redirections."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class ChromiumError(RuntimeError):
    pass


class Chromium:
    """One headless browser. `open(url)` gives a Page; use as a context manager."""

    def __init__(self, binary: str | None = None, width: int = 1280, height: int = 900):
        binary = binary or find_chromium()
        if binary is None:
            raise ChromiumError(f"no Chromium on PATH ({INSTALL})")
        self.profile = tempfile.mkdtemp(prefix="arena-chromium-")
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()
        commands_read, replies_write = _high(commands_read), _high(replies_write)
        flags = [
            "--headless",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.profile}",
            f"--window-size={width},{height}",
            "--disable-gpu",
            "--disable-dev-shm-usage",  # containers give /dev/shm 64 MB
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--allow-file-access-from-files",
        ]
        if os.geteuid() == 0:  # Chromium refuses to run as root with its sandbox (CI)
            flags.append("--no-sandbox")
        script = f'exec "$0" "$@" 3<&{commands_read} 4>&{replies_write}'
        self.process = subprocess.Popen(
            ["bash", "-c", script, binary, *flags, "about:blank"],
            pass_fds=(commands_read, replies_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60) -> dict:  # fmt: skip
        """Send one command and wait for its reply (events that arrive meanwhile are kept)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline, f"{method} (no reply in {timeout:.0f} s)")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise ChromiumError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, session: str | None, timeout: float = 60) -> dict:
        """The first event `method` of `session` not yet consumed."""
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self.events.pop(i)
            self.events.append(self._read(deadline, f"no {method} in {timeout:.0f} s"))

    def _read(self, deadline: float, what: str) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                raise ChromiumError(what)
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise ChromiumError(f"Chromium exited ({self.process.poll()}): {what}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str, timeout: float = 120) -> Page:
        """A new tab at `url`, once its load event fired."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        page.goto(url, timeout)
        return page

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (ChromiumError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._commands, self._replies):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Page:
    def __init__(self, browser: Chromium, session: str):
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict | None = None, timeout: float = 60) -> dict:
        return self.browser.send(method, params, self.session, timeout)

    def goto(self, url: str, timeout: float = 120) -> None:
        self.send("Page.navigate", {"url": url})
        self.browser.wait_event("Page.loadEventFired", self.session, timeout)

    def evaluate(self, expression: str, timeout: float = 60):
        """The value of a JavaScript expression (promises awaited); a thrown error raises."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise ChromiumError(f"{expression[:80]}: {text}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60, poll: float = 0.05):
        """The first truthy value of `expression`, polled."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise ChromiumError(f"{expression[:80]}: still falsy after {timeout:.0f} s")
            time.sleep(poll)

    def type_text(self, text: str) -> None:
        """Text typed into the focused element, as the keyboard would (input events)."""
        self.send("Input.insertText", {"text": text})

    def screenshot(self, path: str | Path, full_page: bool = False) -> Path:
        params = {"format": "png", "captureBeyondViewport": full_page}
        data = self.send("Page.captureScreenshot", params)["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def problems(self) -> list[str]:
        """What went wrong in the page so far: uncaught exceptions and console or browser
        errors (a refused inline script, a failed load), as text."""
        found = []
        for event in self.browser.events:
            if event.get("sessionId") != self.session:
                continue
            params = event.get("params", {})
            if event.get("method") == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append(details.get("exception", {}).get("description") or details["text"])
            elif event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(params["entry"]["text"])
            elif event.get("method") == "Runtime.consoleAPICalled" and params["type"] == "error":
                found.append(" ".join(str(a.get("value")) for a in params.get("args", [])))
        return found
