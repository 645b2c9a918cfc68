"""The live view without a node: the feed (latest wins, nothing while nobody watches, one JPEG
per frame), the connection gate, and the HTTP routes and limits with real sockets."""
from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from devtools.fakes import FakeClock
from devtools.waiting import wait_until
from devtools.webclient import MjpegReader, http_get, stalled_stream
from seg_perception.web import limits as lim
from seg_perception.web.feed import OverlayFeed
from seg_perception.web.page import ViewInfo
from seg_perception.web.server import WebServer

CAMERAS = ["", "front/left"]
CLASSES = [(0, "background", (0, 0, 0)), (1, "<img src=x onerror=alert(1)>", (255, 0, 0))]


def _frame(value: int, width: int = 64, height: int = 48) -> np.ndarray:
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:, : width // 2] = (value, 255 - value, 40)
    return rgb


# feed ---------------------------------------------------------------------------------------


def test_nothing_is_claimed_or_copied_while_nobody_watches() -> None:
    feed = OverlayFeed(CAMERAS)
    assert not any(feed.claim(c) for c in CAMERAS for _ in range(5))
    assert feed.offered == 0 and feed.encoded == 0
    with feed.watch("front/left"):
        assert feed.claim("front/left")
        assert not feed.claim("")
    assert not feed.claim("front/left")


def test_claims_follow_max_fps_without_bursts() -> None:
    clock = FakeClock()
    feed = OverlayFeed([""], max_fps=10.0, clock=clock)
    claimed = 0
    with feed.watch(""):
        for _ in range(300):  # 10 s of a 30 Hz camera
            claimed += feed.claim("")
            clock.advance(1 / 30)
        assert 95 <= claimed <= 101
        clock.advance(60.0)  # a pause, then the camera again: one frame, not a catch-up burst
        burst = sum(feed.claim("") for _ in range(10))
        assert burst == 1


def test_a_slow_viewer_gets_the_newest_frame_and_one_encoding_serves_all() -> None:
    feed = OverlayFeed([""])
    for value in (10, 20, 30):
        feed.offer("", _frame(value))
    frame = feed.wait_newer("", 0, 1.0)
    assert frame is not None and frame.seq == 3 and frame.rgb[0, 0, 0] == 30
    assert feed.wait_newer("", 3, 0.05) is None
    first, second = feed.jpeg("", frame), feed.jpeg("", frame)
    assert first is second and feed.encoded == 1
    feed.jpeg_quality = 30
    assert feed.jpeg("", frame) != first and feed.encoded == 2


def test_offer_copies_the_engine_buffer() -> None:
    feed = OverlayFeed([""])
    buffer = _frame(10)
    feed.offer("", buffer)
    buffer[:] = 0  # the pipeline reuses its buffers for the next frame
    frame = feed.wait_newer("", 0, 0.1)
    assert frame is not None and frame.rgb[0, 0, 0] == 10


# gate ---------------------------------------------------------------------------------------


def test_gate_limits_open_connections() -> None:
    gate = lim.ConnectionGate(lim.WebLimits(max_clients=2), FakeClock())
    assert [gate.admit("a"), gate.admit("b"), gate.admit("c")] == [None, None, "busy"]
    gate.release()
    assert gate.admit("c") is None
    assert (gate.open, gate.admitted, gate.refused_busy) == (2, 3, 1)


def test_gate_limits_the_connection_rate_per_address() -> None:
    clock = FakeClock()
    gate = lim.ConnectionGate(lim.WebLimits(max_clients=100, connections_per_s=5, connection_burst=10), clock)
    assert sum(gate.admit("a") is None for _ in range(30)) == 10  # the burst, then refused
    assert gate.admit("b") is None  # another address has its own bucket
    clock.advance(1.0)
    assert sum(gate.admit("a") is None for _ in range(30)) == 5
    assert gate.refused_rate == 45


# server -------------------------------------------------------------------------------------


class Producer:
    """Stands in for the engine thread: offers a frame whenever the feed claims one."""

    def __init__(self, feed: OverlayFeed, period: float = 0.01) -> None:
        self.feed, self.period = feed, period
        self.count = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            for index, camera in enumerate(self.feed.cameras):
                if self.feed.claim(camera):
                    self.count += 1
                    self.feed.offer(camera, _frame((self.count * 7 + index * 100) % 200))

    def stop(self) -> None:
        self._stop.set()
        self.thread.join()


@pytest.fixture
def server() -> Iterator[WebServer]:
    feed = OverlayFeed(CAMERAS, max_fps=50.0)
    web = WebServer("127.0.0.1", 0, ViewInfo("test model", CAMERAS, CLASSES), feed,
                    lim.WebLimits(max_clients=4, timeout=1.0, connections_per_s=1000, connection_burst=1000))
    web.start()
    producer = Producer(feed)
    yield web
    producer.stop()
    web.stop()


def test_page_lists_every_camera_and_the_escaped_legend(server: WebServer) -> None:
    status, headers, body = http_get(server.port, "/")
    page = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert 'src="stream/default.mjpg"' in page and 'src="stream/front/left.mjpg"' in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "rgb(255,0,0)" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere


def test_status_json_carries_the_diagnostics_handed_over(server: WebServer) -> None:
    diag = {"stamp": 12.5, "status": [{"name": "n: segmentation", "level": 0, "message": "segmenting at 9.9 Hz",
                                        "values": {"output_rate_hz": "9.90"}}]}
    server.set_diagnostics(diag)
    status, headers, body = http_get(server.port, "/status.json")
    doc = json.loads(body)
    assert status == 200 and headers["content-type"] == "application/json"
    assert doc["diagnostics"] == diag
    assert doc["cameras"] == ["default", "front/left"] and doc["model"] == "test model"
    assert doc["classes"][1] == {"id": 1, "name": CLASSES[1][1], "color": [255, 0, 0]}
    assert doc["web"]["process_cpu_s"] > 0


def test_stream_sends_the_offered_overlays_as_jpeg(server: WebServer) -> None:
    reader = MjpegReader(server.port, "/stream/front/left.mjpg")
    try:
        assert reader.status == 200
        assert reader.headers["content-type"] == "multipart/x-mixed-replace; boundary=frame"
        images = [reader.next_rgb() for _ in range(3)]
    finally:
        reader.close()
    for rgb in images:
        assert rgb.shape == (48, 64, 3)
        value = int(rgb[24, 10, 0])  # the left half is (v, 255 - v, 40), the right half black
        assert np.abs(rgb[:, :28].astype(int) - _frame(value)[:, :28]).max() <= 12
        assert rgb[:, 36:].max() <= 12


def test_snapshot_is_the_overlay_exactly(server: WebServer) -> None:
    status, headers, body = http_get(server.port, "/snapshot/default.png")
    assert status == 200 and headers["content-type"] == "image/png"
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(rgb, _frame(int(rgb[0, 0, 0])))


def test_snapshot_without_frames_says_why() -> None:
    feed = OverlayFeed([""])
    web = WebServer("127.0.0.1", 0, ViewInfo("m", [""], CLASSES), feed)
    web.start()
    try:
        import seg_perception.web.server as server_module

        old, server_module.SNAPSHOT_WAIT_S = server_module.SNAPSHOT_WAIT_S, 0.2
        status, _, body = http_get(web.port, "/snapshot/default.png")
        server_module.SNAPSHOT_WAIT_S = old
    finally:
        web.stop()
    assert status == 503 and b"no overlay from camera" in body


@pytest.mark.parametrize("path", ["/index.html", "/stream/right.mjpg", "/stream/../../etc/passwd",
                                  "/stream/%2e%2e/default.mjpg", "/snapshot/default.jpg", "/status.json/x",
                                  "/stream/default.mjpg/../../x", "/stream/.mjpg"])
def test_no_path_outside_the_routes(server: WebServer, path: str) -> None:
    assert http_get(server.port, path)[0] == 404


def test_only_get_and_head(server: WebServer) -> None:
    assert http_get(server.port, "/", method="POST")[0] == 405
    status, headers, body = http_get(server.port, "/status.json", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0


def _raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while (chunk := sock.recv(65536)):
            chunks.append(chunk)
        return b"".join(chunks)


def test_request_size_limits(server: WebServer) -> None:
    long_line = b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n\r\n"
    assert _raw(server.port, long_line).startswith(b"HTTP/1.1 414")
    many = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(40)) + b"\r\n"
    assert _raw(server.port, many).startswith(b"HTTP/1.1 431")
    big = b"GET / HTTP/1.1\r\nX: " + b"y" * 9000 + b"\r\n\r\n"
    assert _raw(server.port, big).startswith(b"HTTP/1.1 431")
    assert _raw(server.port, b"BREW / HTCPCP/1.0\r\n\r\n").startswith(b"HTTP/1.1 400")


def test_a_request_head_trickled_slowly_is_cut_at_the_timeout(server: WebServer) -> None:
    """Each byte comes well within the timeout, the whole head never does (slowloris)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5.0) as sock:
        start = time.monotonic()
        while time.monotonic() - start < 5.0:
            try:
                sock.sendall(b"X")
                if select.select([sock], [], [], 0.1)[0] and sock.recv(4096) == b"":
                    break
            except OSError:
                break
        closed_after = time.monotonic() - start
    assert closed_after < 3.0
    assert server.stats()["request_timeouts"] >= 1


def test_connections_beyond_the_limit_are_refused_and_stalled_streams_closed(server: WebServer) -> None:
    """Four stalled streams fill the server; the fifth connection gets 503 at once. Once their
    writes wait `timeout`, the stalled ones are closed and a reader is served again, while frames
    kept flowing into the feed throughout (the producer never waited on a client)."""
    stalled = [stalled_stream(server.port, "/stream/default.mjpg") for _ in range(4)]
    try:
        wait_until(lambda: server.stats()["connections_open"] >= 4, 5.0, "four open streams", 0.02)
        offered_before = server.feed.offered
        assert http_get(server.port, "/status.json")[0] == 503
        assert server.stats()["refused_busy"] >= 1
        wait_until(lambda: server.stats()["stalled_closed"] >= 4, 10.0, "the stalled streams closed", 0.05)
        stats = server.stats()
        assert stats["stalled_closed"] == 4, stats
        assert server.feed.offered > offered_before
        reader = MjpegReader(server.port, "/stream/default.mjpg")
        try:
            assert reader.next_rgb().shape == (48, 64, 3)
        finally:
            reader.close()
    finally:
        for sock in stalled:
            sock.close()


def test_stop_ends_open_streams(server: WebServer) -> None:
    reader = MjpegReader(server.port, "/stream/default.mjpg")
    reader.next_jpeg()
    stalled = stalled_stream(server.port, "/stream/front/left.mjpg")
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 3.0
    with pytest.raises((ValueError, OSError)):
        for _ in range(1000):
            reader.next_jpeg()
    reader.close()
    stalled.close()


def test_two_cameras_with_one_stream_name_are_refused() -> None:
    with pytest.raises(ValueError, match="same name"):
        WebServer("127.0.0.1", 0, ViewInfo("m", ["", "default"], CLASSES), OverlayFeed(["", "default"]))
