"""The HTTP server of the live view: standard library threads, one per admitted connection.

Routes (GET or HEAD; nothing else, no path outside these, no file is ever read):
  /                          the page (web.page)
  /status.json               the last /diagnostics, the class map, the server's counters
  /stream/<camera>.mjpg      multipart/x-mixed-replace JPEGs of the camera's overlay
  /snapshot/<camera>.png     the camera's next overlay as a PNG

Connections are admitted by `limits.ConnectionGate` on the accepting thread, before any thread
is made for them; a refused one gets a short 503 (busy) or 429 (too fast) written without
waiting and is closed. The engine thread only ever touches the `feed`.
"""
from __future__ import annotations

import http.server
import io
import socket
import socketserver
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import cv2

from . import limits as lim
from .feed import OverlayFeed
from .page import ViewInfo, camera_id, render, status_document

BOUNDARY = "frame"
SNAPSHOT_WAIT_S = 5.0
"""How long /snapshot waits for the next overlay before answering 503."""


class _Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values = {"requests": 0, "bad_requests": 0, "request_timeouts": 0, "streams_open": 0,
                       "frames_sent": 0, "frames_skipped": 0, "stalled_closed": 0}

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.values[key] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.values)


class WebServer:
    """The live view. `start` binds and serves on a thread of its own; `stop` ends every
    connection and the thread. `set_diagnostics` hands over what /status.json reports."""

    def __init__(self, address: str, port: int, info: ViewInfo, feed: OverlayFeed,
                 limits: lim.WebLimits = lim.WebLimits()) -> None:
        ids = [camera_id(c) for c in info.cameras]
        if len(set(ids)) != len(ids):
            raise ValueError(f"cameras {info.cameras} give two streams the same name "
                             f"('' is served as '{camera_id('')}')")
        self.address = address
        self.requested_port = port
        self.info = info
        self.feed = feed
        self.limits = limits
        self.gate = lim.ConnectionGate(limits)
        self.counters = _Counters()
        self.closing = threading.Event()
        self.cameras = dict(zip(ids, info.cameras))
        self.page = render(info).encode()
        self._diagnostics: dict[str, Any] | None = None
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        """The port bound (the requested one, or the one the system chose for 0)."""
        return self._httpd.server_address[1] if self._httpd is not None else 0

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}/"

    def start(self) -> None:
        """Bind and serve; OSError (address in use, not an address of this machine) as it comes."""
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        self._httpd = _HTTPServer((self.address, self.requested_port), self, family)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="web_view", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.closing.set()
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        with self._lock:
            for conn in self._connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)  # a write blocked on a stalled client returns now
                except OSError:
                    pass
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def set_diagnostics(self, diagnostics: dict[str, Any]) -> None:
        self._diagnostics = diagnostics

    def stats(self) -> dict[str, Any]:
        feed, gate = self.feed, self.gate
        values: dict[str, Any] = self.counters.snapshot()
        values.update(
            connections_open=gate.open, connections_admitted=gate.admitted, refused_busy=gate.refused_busy,
            refused_rate=gate.refused_rate, overlays_offered=feed.offered, jpeg_encoded=feed.encoded,
            jpeg_encode_ms_mean=round(feed.encode_ms / feed.encoded, 3) if feed.encoded else 0.0,
            max_fps=feed.max_fps, jpeg_quality=feed.jpeg_quality,
            watchers={camera_id(c): feed.watching(c) for c in feed.cameras},
            process_cpu_s=round(time.process_time(), 4))
        return values

    def status_json(self) -> bytes:
        return status_document(self.info, self._diagnostics, self.stats())

    # connection bookkeeping (called by _HTTPServer) -----------------------------------------

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


class _HTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], view: WebServer, family: socket.AddressFamily) -> None:
        self.address_family = family
        self.view = view
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN: a DNS query that can hang a robot offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        reason = self.view.gate.admit(str(client_address[0]))
        if reason is not None:
            _turn_away(request, reason)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self.view.gate.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        self.view._track(request, True)
        try:
            super().process_request_thread(request, client_address)  # type: ignore[misc]
        finally:
            self.view._track(request, False)
            self.view.gate.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.view.counters.add("bad_requests")  # a client's fault: never a traceback on the node's stderr


def _turn_away(conn: socket.socket, reason: str) -> None:
    """Answer a refused connection without waiting on it, then close it."""
    status = "503 Service Unavailable" if reason == "busy" else "429 Too Many Requests"
    text = b"too many viewers\n" if reason == "busy" else b"too many connections from this address\n"
    reply = (f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(text)}\r\n"
             "Retry-After: 1\r\nConnection: close\r\n\r\n").encode() + text
    try:
        conn.setblocking(False)
        try:
            conn.recv(lim.MAX_REQUEST_BYTES)  # what already came: unread data would turn close into a reset
        except OSError:
            pass
        conn.send(reply)
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        conn.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "seg_perception"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # so errors before the version is read still get a status line
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's signature
        pass  # one line per request would flood the node's log; the counters tell the story

    def handle(self) -> None:
        self.close_connection = True  # one request per connection: admission is the rate limit
        self.handle_one_request()

    def handle_one_request(self) -> None:
        view = self.server.view
        view.counters.add("requests")
        self.command, self.request_version, self.requestline = "", "HTTP/1.1", ""
        head = self._read_head(view.limits.timeout)
        if head is None:
            return
        self.raw_requestline, _, rest = head.partition(b"\n")
        self.raw_requestline += b"\n"
        self.rfile = io.BytesIO(rest)  # parse_request reads the headers from here
        if not self.parse_request():
            view.counters.add("bad_requests")
            return
        if self.command not in ("GET", "HEAD"):
            view.counters.add("bad_requests")
            self.send_error(405, "only GET and HEAD")
            return
        self._route(urllib.parse.urlsplit(self.path).path, self.command == "HEAD")

    def _read_head(self, timeout: float) -> bytes | None:
        """The request line and headers, whole within `timeout` s (whatever the pace of the bytes)
        and within the size limits; None after answering (or dropping) a request that is not."""
        view = self.server.view
        deadline = time.monotonic() + timeout
        head = b""
        while True:
            end = min((i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0), default=-1)
            if end >= 0:
                head = head[:end]
                break
            first_line = head.split(b"\n", 1)[0]
            problem = ((414, f"request line above {lim.MAX_REQUEST_LINE} bytes")
                       if len(first_line) > lim.MAX_REQUEST_LINE else
                       (431, f"request head above {lim.MAX_REQUEST_BYTES} bytes")
                       if len(head) > lim.MAX_REQUEST_BYTES else None)
            if problem is not None:
                view.counters.add("bad_requests")
                self.send_error(*problem)
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                view.counters.add("request_timeouts")
                return None
            self.connection.settimeout(remaining)
            try:
                chunk = self.connection.recv(4096)
            except TimeoutError:
                view.counters.add("request_timeouts")
                return None
            if not chunk:
                return None
            head += chunk
        if len(head) > lim.MAX_REQUEST_BYTES:
            view.counters.add("bad_requests")
            self.send_error(431, f"request head above {lim.MAX_REQUEST_BYTES} bytes")
            return None
        if head.count(b"\n") > lim.MAX_HEADERS:
            view.counters.add("bad_requests")
            self.send_error(431, f"more than {lim.MAX_HEADERS} header lines")
            return None
        if len(head.split(b"\n", 1)[0]) > lim.MAX_REQUEST_LINE:
            view.counters.add("bad_requests")
            self.send_error(414, f"request line above {lim.MAX_REQUEST_LINE} bytes")
            return None
        return head + b"\r\n"

    def _route(self, path: str, head_only: bool) -> None:
        view = self.server.view
        self.connection.settimeout(view.limits.timeout)
        if path == "/":
            self._reply(view.page, "text/html; charset=utf-8", head_only)
        elif path == "/status.json":
            self._reply(view.status_json(), "application/json", head_only)
        elif path.startswith("/stream/") and path.endswith(".mjpg") and path[8:-5] in view.cameras:
            self._stream(view.cameras[path[8:-5]], head_only)
        elif path.startswith("/snapshot/") and path.endswith(".png") and path[10:-4] in view.cameras:
            self._snapshot(view.cameras[path[10:-4]], head_only)
        else:
            self.send_error(404, "routes: /, /status.json, /stream/<camera>.mjpg, /snapshot/<camera>.png")

    def _reply(self, body: bytes, content_type: str, head_only: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def _snapshot(self, camera: str, head_only: bool) -> None:
        feed = self.server.view.feed
        with feed.watch(camera):
            frame = feed.wait_newer(camera, feed.latest_seq(camera), SNAPSHOT_WAIT_S)
        if frame is None:
            self.send_error(503, f"no overlay from camera '{camera_id(camera)}' within {SNAPSHOT_WAIT_S:.0f} s "
                                 "(is the node active and the camera publishing?)")
            return
        ok, png = cv2.imencode(".png", cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            self.send_error(500, "PNG encoding failed")
            return
        self._reply(png.tobytes(), "image/png", head_only)

    def _stream(self, camera: str, head_only: bool) -> None:
        view = self.server.view
        feed, counters = view.feed, view.counters
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, lim.STREAM_SEND_BUFFER)
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        if head_only:
            return
        sent, next_send = 0, 0.0
        counters.add("streams_open")
        try:
            with feed.watch(camera):
                while not view.closing.is_set():
                    frame = feed.wait_newer(camera, sent, 0.5)
                    if frame is None:
                        continue
                    wait = next_send - time.monotonic()
                    if wait > 0:
                        if view.closing.wait(wait):
                            break
                        frame = feed.wait_newer(camera, sent, 0.0) or frame  # the newest by now
                    jpeg = feed.jpeg(camera, frame)
                    self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                                     .encode() + jpeg + b"\r\n")
                    counters.add("frames_sent")
                    if sent:
                        counters.add("frames_skipped", frame.seq - sent - 1)
                    sent, next_send = frame.seq, time.monotonic() + 1.0 / feed.max_fps
        except TimeoutError:
            counters.add("stalled_closed")  # a write waited `timeout`: the client stopped reading
        except OSError:
            pass  # the viewer went away
        finally:
            counters.add("streams_open", -1)


__all__ = ["WebServer"]
