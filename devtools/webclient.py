"""Clients of the live view for tests and benchmarks: an MJPEG reader over a plain socket, a
hostile client that never reads, and headless Chromium driven over the DevTools protocol
(`--remote-debugging-pipe`: JSON messages on fds 3/4, no WebSocket library needed)."""
from __future__ import annotations

import base64
import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any

import cv2
import numpy as np
import simplejpeg


def http_get(port: int, path: str, host: str = "127.0.0.1", timeout: float = 10.0,
             method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """(status, headers lower-cased, body) of one request on a fresh connection."""
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path)
        reply = conn.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        conn.close()


class MjpegReader:
    """Reads /stream/<camera>.mjpg part by part."""

    def __init__(self, port: int, path: str, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        self.file = self.sock.makefile("rb")
        status = self.file.readline().decode("latin-1")
        self.status = int(status.split()[1])
        self.headers: dict[str, str] = {}
        while (line := self.file.readline().decode("latin-1").strip()):
            key, _, value = line.partition(":")
            self.headers[key.strip().lower()] = value.strip()

    def next_jpeg(self) -> bytes:
        boundary = self.file.readline().strip()
        if not boundary.startswith(b"--"):
            raise ValueError(f"expected a boundary, got {boundary[:80]!r}")
        length = -1
        while (line := self.file.readline().strip()):
            key, _, value = line.decode("latin-1").partition(":")
            if key.strip().lower() == "content-length":
                length = int(value)
        data = self.file.read(length)
        self.file.readline()
        return data

    def next_rgb(self) -> np.ndarray:
        return simplejpeg.decode_jpeg(self.next_jpeg(), colorspace="RGB")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def stalled_stream(port: int, path: str, host: str = "127.0.0.1") -> socket.socket:
    """A client that asks for a stream and never reads a byte (smallest receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.connect((host, port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return sock


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--force-device-scale-factor=1"]


class Chromium:
    """Headless Chromium on the DevTools protocol over a pipe, one page attached."""

    def __init__(self, width: int = 1280, height: int = 720, executable: str | None = None) -> None:
        exe = executable or chromium_path()
        if exe is None:
            raise FileNotFoundError("no chromium on PATH")
        self._profile = tempfile.TemporaryDirectory(prefix="seg_chromium_")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4: bash puts the pipe ends there.
        args = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}", f"--window-size={width},{height}",
                "--remote-debugging-pipe", "about:blank"]
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}', *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(to_browser_r, from_browser_w))
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.session = ""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return dict(reply.get("result", {}))
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._from_browser], [], [], remaining)[0]:
                raise TimeoutError(f"chromium did not answer {method} within {timeout:.0f} s")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium exited (code {self.proc.poll()}) during {method}")
            self._buffer += chunk

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.1)

    def screenshot(self) -> np.ndarray:
        """The page as RGB uint8, one pixel per CSS pixel."""
        data = base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError("chromium's screenshot is not a PNG")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.session = ""
                self.call("Browser.close", timeout=5.0)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._profile.cleanup()
