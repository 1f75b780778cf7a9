"""Headless Chromium (Debian's `chromium` package) for looking at the UI as a person would.

Two ways in: the command line (`--dump-dom`, `--screenshot`) for a page as it renders, and the
DevTools protocol over a websocket for the few things that need a click (a metadata plot sits
behind a "[Show Markdown]" link).
"""

import base64
import contextlib
import html
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from skinseg_assets_tests.processes import stop_process_group

CHROMIUM_NAMES = ("chromium", "chromium-browser")
# Flags for a closed network and no first-run UI; without the background-networking ones,
# Chromium keeps trying to reach Google's hosts.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
    "--hide-scrollbars",
)
CHROMIUM_INSTALL_HINT = "apt-get update && apt-get install -y chromium"
PAGE_RENDER_BUDGET_MS = 20_000  # virtual time: how long the page's scripts may run before the dump
COMMAND_TIMEOUT_SECONDS = 90


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(chromium: str, args: list[str], what: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="skinseg-chromium-") as profile:
        result = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL,
        )
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace")[-3000:]
        raise AssertionError(f"chromium failed to {what} (exit {result.returncode}):\n{stderr}")
    return result


def dump_dom(chromium: str, url: str, window: tuple[int, int] = (1400, 900)) -> str:
    """The page's DOM after its scripts ran for the render budget (virtual time)."""
    result = _run(
        chromium,
        [f"--window-size={window[0]},{window[1]}", f"--virtual-time-budget={PAGE_RENDER_BUDGET_MS}", "--dump-dom", url],
        f"render {url}",
    )
    return result.stdout.decode(errors="replace")


def visible_text(dom: str) -> str:
    """The text a reader sees in a dumped DOM: no scripts or styles, tags as spaces, one-spaced."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(html.unescape(text).split())


def screenshot(chromium: str, url: str, path: Path, window: tuple[int, int] = (1400, 900)) -> Path:
    """A PNG of the page as rendered after the render budget."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(
        chromium,
        [f"--window-size={window[0]},{window[1]}", f"--virtual-time-budget={PAGE_RENDER_BUDGET_MS}",
         f"--screenshot={path}", url],
        f"take a screenshot of {url}",
    )
    assert path.is_file() and path.stat().st_size > 0, f"chromium wrote no screenshot of {url} to {path}"
    return path


class DevToolsPage:
    """One Chromium tab driven over the DevTools protocol (navigate, evaluate, wait, screenshot)."""

    def __init__(self, chromium: str, window: tuple[int, int] = (1400, 900)):
        self._window = window
        self._profile = tempfile.TemporaryDirectory(prefix="skinseg-chromium-")
        self._process = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}",
             f"--window-size={window[0]},{window[1]}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._ids = itertools.count(1)
        self._connection = contextlib.ExitStack()
        try:
            self._socket = self._connection.enter_context(self._connect())
        except BaseException:
            self.close()
            raise

    def _connect(self):
        from websockets.sync.client import connect

        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"chromium did not open its DevTools port (exit code {self._process.poll()})")
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
                    targets = json.load(response)
                page = next(target for target in targets if target["type"] == "page")
                break
            except (OSError, StopIteration):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        return connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)

    def call(self, method: str, **params) -> dict:
        """Send one DevTools command and wait for its answer (events in between are skipped)."""
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=COMMAND_TIMEOUT_SECONDS))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message.get("result", {})

    def navigate(self, url: str) -> None:
        self.call("Page.enable")
        # The viewport is exactly the window size (headless windows otherwise lose some height).
        width, height = self._window
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, what: str, expression: str, timeout: float = 30):
        """Poll a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                text = self.evaluate("document.body ? document.body.innerText.slice(0, 2000) : ''")
                raise AssertionError(f"the page did not show {what} within {timeout:.0f}s; it shows:\n{text}")
            time.sleep(0.5)

    def wait_for_transitions(self, timeout: float = 10) -> None:
        """Wait until no CSS transition runs (a dialog fading in would be half-transparent)."""
        self.wait_for(
            "its transitions to finish",
            "document.getAnimations().filter(a => a instanceof CSSTransition && a.playState === 'running').length === 0",
            timeout,
        )

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path

    def close(self) -> None:
        try:
            self._connection.close()
        except Exception:  # noqa: BLE001 - closing the socket of a browser about to be killed
            pass
        stop_process_group(self._process, grace_seconds=10)
        self._profile.cleanup()

    def __enter__(self) -> "DevToolsPage":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
