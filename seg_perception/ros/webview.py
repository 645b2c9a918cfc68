"""The live view in a browser (web/), wired to the node: made at configure when `web_port` is
set, ended at cleanup. The engine thread reaches it only through `feed` (claim, offer); the
diagnostics timer hands it each published /diagnostics for /status.json."""
from __future__ import annotations

from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node

from ..model.labels import ClassMap
from ..web.feed import OverlayFeed
from ..web.limits import WebLimits
from ..web.page import ViewInfo
from ..web.server import WebServer
from .diagnostics import as_plain


class WebView:
    def __init__(self, node: Node) -> None:
        self._node = node
        self.server: WebServer | None = None
        self.feed: OverlayFeed | None = None

    def _param(self, name: str) -> Any:
        return self._node.get_parameter(name).value

    def start(self, model: str, class_map: ClassMap, cameras: list[str]) -> None:
        port = self._param("web_port")
        if port == 0:
            return
        address = self._param("web_address")
        info = ViewInfo.from_class_map(model, cameras, class_map)
        feed = OverlayFeed(cameras, self._param("web_max_fps"), self._param("web_jpeg_quality"))
        limits = WebLimits(max_clients=self._param("web_max_clients"), timeout=self._param("web_timeout"))
        try:
            server = WebServer(address, port, info, feed, limits)
            server.start()
        except (OSError, ValueError) as exc:  # the node segments on without its view
            self._node.get_logger().error(f"live view off: cannot serve on {address}:{port}: {exc}")
            return
        self.server, self.feed = server, feed
        self._node.get_logger().info(f"live view at {server.url}")

    def update(self) -> None:
        """The run-time parameters (web_max_fps, web_jpeg_quality) took new values."""
        if self.feed is not None:
            self.feed.max_fps = self._param("web_max_fps")
            self.feed.jpeg_quality = self._param("web_jpeg_quality")

    def publish(self, array: DiagnosticArray) -> None:
        if self.server is not None:
            self.server.set_diagnostics(as_plain(array))

    def stop(self) -> None:
        server, self.server, self.feed = self.server, None, None
        if server is not None:
            server.stop()
