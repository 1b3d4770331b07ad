"""Loading a page in headless Chromium over the DevTools protocol (a pipe, no extra package).

`load_page` opens a local HTML file, waits for its load event, and returns what a reader's
browser would show: console errors and exceptions, the state of every image, and a
full-page screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

_IMAGES = (
    "JSON.stringify(Array.from(document.images).map(i => ({src: i.src.slice(0, 40), "
    "complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})))"
)


@dataclass
class Page:
    errors: list[str]  # console errors, uncaught exceptions, failed loads
    images: list[dict]  # per <img>: complete, width, height (natural size; 0 = not decoded)
    title: str


class _DevTools:
    """The DevTools protocol over Chromium's --remote-debugging-pipe (fds 3 and 4)."""

    def __init__(self, user_data_dir: str, timeout: float) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # The child must find them at fds 3 (it reads) and 4 (it writes).
        high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)

        def child_fds() -> None:
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.process = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-pipe",
                f"--user-data-dir={user_data_dir}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=child_fds,
        )
        for fd in (to_chrome_r, from_chrome_w, high_r, high_w):
            os.close(fd)
        self.timeout = timeout
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def load_page(html_file: Path, screenshot: Path, width: int = 1200, timeout: float = 60) -> Page:
    """Opens `html_file` in headless Chromium, writes a full-page PNG to `screenshot`."""
    with tempfile.TemporaryDirectory() as profile:
        tools = _DevTools(profile, timeout)
        try:
            target = tools.send("Target.createTarget", url="about:blank")["targetId"]
            session = tools.send("Target.attachToTarget", targetId=target, flatten=True)[
                "sessionId"
            ]
            for domain in ("Page", "Runtime", "Log"):
                tools.send(f"{domain}.enable", session)
            tools.send(
                "Emulation.setDeviceMetricsOverride",
                session,
                width=width,
                height=900,
                deviceScaleFactor=1,
                mobile=False,
            )
            tools.events.clear()
            tools.send("Page.navigate", session, url=Path(html_file).resolve().as_uri())
            tools.wait_for("Page.loadEventFired")
            images = tools.send(
                "Runtime.evaluate", session, expression=_IMAGES, returnByValue=True
            )["result"]["value"]
            title = tools.send(
                "Runtime.evaluate", session, expression="document.title", returnByValue=True
            )["result"]["value"]
            shot = tools.send(
                "Page.captureScreenshot", session, format="png", captureBeyondViewport=True
            )["data"]
            Path(screenshot).write_bytes(base64.b64decode(shot))
            errors = []
            for event in tools.events:
                method, params = event.get("method"), event.get("params", {})
                if method == "Runtime.consoleAPICalled" and params.get("type") in (
                    "error",
                    "assert",
                ):
                    errors.append(f"console.{params['type']}: {params.get('args')}")
                elif method == "Runtime.exceptionThrown":
                    errors.append(f"exception: {params.get('exceptionDetails')}")
                elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                    errors.append(f"log: {params['entry'].get('text')}")
            return Page(errors=errors, images=json.loads(images), title=title)
        finally:
            tools.close()
